"""Prompt construction for experts: messages first, then a template renders them to one string.

Two steps, both deterministic and free of heavy imports:

1. :func:`build_messages` turns a user prompt (plus optional system text, schema, dialect and history) into
   chat messages, following the original system's conventions (section 6.4 of the reference):

   - an explicit ``system`` wins; a ``schema`` is appended to it as ``Schema:\\n<schema>``;
   - else a ``schema`` gives the system message ``Dialect: <d>\\nSchema:\\n<schema>`` (the training-data
     convention; the ``Dialect:`` line is left out when the dialect is ``text`` or unknown);
   - else, with no dialect (the bare base model), there is no system message and the prompt is the user turn;
   - else, with ``split_context`` (the original's ``qwen3`` rule), a prompt holding a blank line splits at the
     FIRST ``\\n\\n`` into context and query: the system message is the context when it starts with
     ``Dialect:``, otherwise ``Dialect: <d>\\n<context>`` (or, for ``text``, the context itself or the default
     system message when the context is empty), and the user message is the query;
   - otherwise the system message is ``Dialect: <d>`` (the default system message for ``text``) and the
     user message is the whole prompt; a prompt whose first line is a ``Dialect:`` line gives that line to
     the system message and the rest to the user (the original duplicated the whole prompt instead).

2. :func:`render_prompt` renders messages with a named template:

   - ``qwen3``: the tokenizer's own chat template with ``enable_thinking`` when it has one, else our ChatML
     renderer, which mirrors Qwen3's: ``enable_thinking=False`` prefills the empty ``<think>\\n\\n</think>\\n\\n``
     so the model answers directly;
   - ``chatml`` / ``qwen``: the original's LEGACY format ``<|system|>\\n...\\n<|end|>\\n<|user|>\\n...`` (not real
     ChatML; the json, elastic, tools and typescript experts were trained on it);
   - ``llama`` / ``llama2``: ``[INST] ... [/INST]`` (a system message goes in a ``<<SYS>>`` block);
   - ``alpaca``: ``### Instruction:\\n...\\n\\n### Response:\\n``;
   - ``None`` or any other name: the tokenizer's chat template, else our ChatML renderer.

:func:`build_prompt` does both for one expert, applying each template's original rules (the context split
only for ChatML-style templates; llama and alpaca ignore the dialect, as the original did).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_SYSTEM = "You are a helpful AI assistant."
QWEN3_EMPTY_THINK = "<think>\n\n</think>\n\n"
ROLES = ("system", "user", "assistant")

LEGACY_TEMPLATES = frozenset({"chatml", "qwen"})
LLAMA_TEMPLATES = frozenset({"llama", "llama2"})
NATIVE_TEMPLATES = frozenset({"qwen3"})

# (dialect, substrings) checked in this order over all capabilities, as the original does.
_DIALECT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cypher", ("cypher", "neo4j")),
    ("sql", ("sql", "postgres", "mysql")),
    ("json", ("json",)),
    ("python", ("python",)),
    ("rust", ("rust",)),
    ("typescript", ("typescript", "javascript")),
)
_THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", re.IGNORECASE | re.DOTALL)

Message = dict[str, str]


def dialect_from_capabilities(capabilities: Iterable[str] | None) -> str:
    """Map manifest capabilities to a dialect name; ``text`` when none of the known substrings appears."""
    text = " ".join(capabilities or ()).lower()
    for dialect, needles in _DIALECT_RULES:
        if any(needle in text for needle in needles):
            return dialect
    return "text"


def build_messages(
    prompt: str,
    *,
    system: str | None = None,
    schema: str | None = None,
    dialect: str | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    split_context: bool = True,
) -> list[Message]:
    """Chat messages for ``prompt`` (see the module docstring for the exact rules)."""
    system_text, user_text = _system_and_user(prompt, system, schema, dialect, split_context)
    messages: list[Message] = [{"role": "system", "content": system_text}] if system_text is not None else []
    messages.extend(_checked_history(history, has_system=system_text is not None))
    messages.append({"role": "user", "content": user_text})
    return messages


def _system_and_user(
    prompt: str, system: str | None, schema: str | None, dialect: str | None, split_context: bool
) -> tuple[str | None, str]:
    if system is not None:
        return (f"{system}\nSchema:\n{schema}" if schema else system), prompt
    if schema:
        return f"{_dialect_line(dialect)}Schema:\n{schema}", prompt
    if dialect is None:
        return None, prompt
    context, sep, query = prompt.partition("\n\n")
    if split_context and sep and query.strip():
        return _context_system(context, dialect), query
    first_line, _, rest = prompt.partition("\n")
    if first_line.startswith("Dialect:") and rest.strip():
        return first_line, rest
    return (f"Dialect: {dialect}" if dialect != "text" else DEFAULT_SYSTEM), prompt


def _dialect_line(dialect: str | None) -> str:
    return f"Dialect: {dialect}\n" if dialect and dialect != "text" else ""


def _context_system(context: str, dialect: str) -> str:
    if context.startswith("Dialect:"):
        return context
    if dialect != "text":
        return f"Dialect: {dialect}\n{context}"
    return context or DEFAULT_SYSTEM


def _checked_history(history: Sequence[Mapping[str, Any]] | None, *, has_system: bool) -> list[Message]:
    """Copy earlier turns, refusing unknown roles and a second system message."""
    checked: list[Message] = []
    for index, message in enumerate(history or ()):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise ValueError(
                f"history[{index}] needs a role in {ROLES} and a string content, got {message!r}"
            )
        if role == "system" and (has_system or index > 0):
            raise ValueError(f"history[{index}] is a system message; only one, first, is allowed")
        checked.append({"role": role, "content": content})
    return checked


def render_prompt(
    tokenizer: Any | None,
    messages: Sequence[Mapping[str, str]],
    template_name: str | None,
    enable_thinking: bool = False,
) -> str:
    """Render ``messages`` as the text the model continues (ends with the assistant turn's opening)."""
    name = (template_name or "").strip().lower()
    if name in LEGACY_TEMPLATES:
        return render_legacy_chatml(messages)
    if name in LLAMA_TEMPLATES:
        return render_llama2(messages)
    if name == "alpaca":
        return render_alpaca(messages)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [dict(message) for message in messages],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=enable_thinking,
        )
    return render_chatml(messages, enable_thinking=enable_thinking)


def render_chatml(messages: Sequence[Mapping[str, str]], *, enable_thinking: bool = False) -> str:
    """Qwen3-style ChatML; earlier assistant turns lose their think blocks, as Qwen3's template does."""
    parts = []
    for message in messages:
        content = message["content"]
        if message["role"] == "assistant":
            content = _THINK_BLOCK.sub("", content)
        parts.append(f"<|im_start|>{message['role']}\n{content}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    if not enable_thinking:
        parts.append(QWEN3_EMPTY_THINK)
    return "".join(parts)


def render_legacy_chatml(messages: Sequence[Mapping[str, str]]) -> str:
    """The original's ``chatml``/``qwen`` format; the default system message when there is none."""
    if not messages or messages[0]["role"] != "system":
        messages = [{"role": "system", "content": DEFAULT_SYSTEM}, *messages]
    turns = [f"<|{message['role']}|>\n{message['content']}\n<|end|>\n" for message in messages]
    return "".join(turns) + "<|assistant|>\n"


def render_llama2(messages: Sequence[Mapping[str, str]]) -> str:
    """Llama 2 chat format; a system message goes in ``<<SYS>>`` inside the first instruction."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    turns = [message for message in messages if message["role"] != "system"]
    text = ""
    for index, message in enumerate(turns):
        if message["role"] == "user":
            content = message["content"]
            if system is not None and index == 0:
                content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
            text += ("<s>" if text else "") + f"[INST] {content} [/INST]"
        else:
            text += f" {message['content']} </s>"
    return text


def render_alpaca(messages: Sequence[Mapping[str, str]]) -> str:
    """Alpaca format: the system message (if any) as a preamble, then instruction/response pairs."""
    blocks = []
    for message in messages:
        if message["role"] == "system":
            blocks.append(f"{message['content']}\n\n")
        elif message["role"] == "user":
            blocks.append(f"### Instruction:\n{message['content']}\n\n### Response:\n")
        else:
            blocks.append(f"{message['content']}\n\n")
    return "".join(blocks)


def build_prompt(
    tokenizer: Any | None,
    prompt: str,
    template_name: str | None,
    *,
    capabilities: Iterable[str] | None = None,
    system: str | None = None,
    schema: str | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    enable_thinking: bool = False,
) -> str:
    """The full prompt for one expert (``capabilities=None``: the bare base model, no dialect)."""
    name = (template_name or "").strip().lower()
    dialect = None if capabilities is None else dialect_from_capabilities(capabilities)
    if name in LLAMA_TEMPLATES or name == "alpaca":
        dialect = None
    messages = build_messages(
        prompt,
        system=system,
        schema=schema,
        dialect=dialect,
        history=history,
        split_context=name not in LEGACY_TEMPLATES,
    )
    return render_prompt(tokenizer, messages, template_name, enable_thinking=enable_thinking)
