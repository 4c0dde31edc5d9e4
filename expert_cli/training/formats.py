"""Dataset row formats: detect each row's shape, check it, and turn it into one training :class:`Example`.

Pure Python (no torch, no ``datasets``) so ``expert-cli dataset validate`` stays fast. Formats:

- ``messages``: ``{"messages": [{"role", "content"}, ...]}`` ending with an assistant turn;
- ``prompt_completion``: ``{"prompt", "completion"}``, plain strings (raw text) or message lists;
- ``instruction``: instruction / optional input / response columns, named by the manifest's
  ``field_mapping`` or, like the original trainer, found through fallbacks (``prompt``, ``question``, ...);
- ``text``: ``{"text"}``; a ChatML (``<|im_start|>``) or legacy (``<|system|>...<|end|>``) conversation is split
  before its last assistant turn, so the loss covers the answer only; other text is plain language modelling;
- ``multitask``: the original's ``{"task", "input": {"instruction", ...}, "output"}`` rows (DPO rows with
  ``chosen``/``rejected`` train on ``chosen``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FORMATS = ("messages", "prompt_completion", "instruction", "text", "multitask")
ROLES = ("system", "user", "assistant", "tool")
INSTRUCTION_FALLBACKS = ("instruction", "prompt", "question", "text", "sql_prompt")
INPUT_FALLBACKS = ("input", "context", "schema", "sql_context")
RESPONSE_FALLBACKS = ("response", "output", "answer", "completion", "text", "cypher", "sql")
CHATML_ASSISTANT = "<|im_start|>assistant"
LEGACY_ASSISTANT = "<|assistant|>"


class RowError(ValueError):
    """A row that cannot be used; the caller adds the file and line."""


@dataclass(frozen=True)
class FieldMapping:
    """``training.dataset.field_mapping``: which columns hold the instruction, input, response and text."""

    instruction: str | None = None
    input: str | None = None
    response: str | None = None
    text: str = "text"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FieldMapping:
        data = data or {}
        return cls(data.get("instruction"), data.get("input"), data.get("response"), data.get("text") or "text")

    @property
    def explicit(self) -> bool:
        return bool(self.instruction or self.response)


@dataclass(frozen=True)
class Example:
    """One training example: chat ``messages`` (last = the answer) or raw ``prompt`` + ``completion`` text."""

    format: str
    location: str
    messages: tuple[dict[str, str], ...] = ()
    prompt: str = ""
    completion: str = ""
    task: str | None = None
    schema: str | None = None

    @property
    def answer(self) -> str:
        """The text the loss is computed on (before template rendering)."""
        return self.messages[-1]["content"] if self.messages else self.completion

    @property
    def question(self) -> str:
        """The last user turn (or the raw prompt): what a router or a test would send."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else last_user_turn(self.prompt)


def detect_format(row: dict[str, Any], mapping: FieldMapping) -> str | None:
    """The format of one row, or None when it matches none."""
    if "messages" in row:
        return "messages"
    if "task" in row and isinstance(row.get("input"), dict) and ("output" in row or "chosen" in row):
        return "multitask"
    if mapping.explicit and _first_key(row, _candidates(mapping.instruction, ())) is not None:
        return "instruction"
    if "prompt" in row and "completion" in row:
        return "prompt_completion"
    if mapping.text in row and _first_key(row, RESPONSE_FALLBACKS, exclude=(mapping.text,)) is None:
        return "text"
    instruction = _first_key(row, INSTRUCTION_FALLBACKS)
    if instruction is not None and _first_key(row, RESPONSE_FALLBACKS, exclude=(instruction,)) is not None:
        return "instruction"
    return None


def convert_row(row: Any, fmt: str, location: str, mapping: FieldMapping) -> Example:
    """Check one row against ``fmt`` and convert it; raises :class:`RowError` saying what is wrong."""
    if not isinstance(row, dict):
        raise RowError(f"each row must be a JSON object, not {type(row).__name__}")
    return CONVERTERS[fmt](row, location, mapping)


def describe_format(fmt: str, mapping: FieldMapping) -> str:
    """What a row of ``fmt`` must hold, for error messages."""
    instruction = mapping.instruction or "instruction"
    response = mapping.response or "response"
    return {
        "messages": '`{"messages": [{"role": ..., "content": ...}, ...]}` ending with an assistant message',
        "prompt_completion": '`{"prompt": ..., "completion": ...}`',
        "instruction": f"`{instruction}` (or prompt/question) and `{response}` (or output/answer/completion)",
        "text": f'`{{"{mapping.text}": ...}}`',
        "multitask": '`{"task": ..., "input": {"instruction": ...}, "output": ...}`',
    }[fmt]


# -- converters --------------------------------------------------------------------------------------
def _messages(row: dict[str, Any], location: str, mapping: FieldMapping) -> Example:
    messages = _checked_messages(row.get("messages"), "messages")
    return Example("messages", location, messages=messages)


def _prompt_completion(row: dict[str, Any], location: str, mapping: FieldMapping) -> Example:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, list) and isinstance(completion, list):
        messages = _checked_messages(prompt + completion, "prompt` + `completion")
        return Example("prompt_completion", location, messages=messages)
    if not isinstance(prompt, str):
        raise RowError("`prompt` must be a string (or a list of messages)")
    _require_text(completion, "completion")
    return Example("prompt_completion", location, prompt=prompt, completion=completion)


def _instruction(row: dict[str, Any], location: str, mapping: FieldMapping) -> Example:
    instruction_key = _first_key(row, _candidates(mapping.instruction, INSTRUCTION_FALLBACKS))
    if instruction_key is None:
        raise RowError(f"no instruction column (`{mapping.instruction or 'instruction'}`, prompt, question, ...)")
    response_key = _first_key(row, _candidates(mapping.response, RESPONSE_FALLBACKS), exclude=(instruction_key,))
    if response_key is None:
        raise RowError(f"no response column (`{mapping.response or 'response'}`, output, answer, completion, ...)")
    instruction = _require_text(row[instruction_key], instruction_key)
    response = _require_text(row[response_key], response_key)
    input_key = _first_key(row, _candidates(mapping.input, INPUT_FALLBACKS), exclude=(instruction_key, response_key))
    inputs = {input_key: row[input_key]} if input_key is not None else {}
    user, schema = _user_text([instruction], inputs)
    messages = ({"role": "user", "content": user}, {"role": "assistant", "content": response})
    return Example("instruction", location, messages=messages, schema=schema)


def _text(row: dict[str, Any], location: str, mapping: FieldMapping) -> Example:
    text = _require_text(row.get(mapping.text), mapping.text)
    prompt, completion = split_chat_text(text)
    return Example("text", location, prompt=prompt, completion=completion)


def _multitask(row: dict[str, Any], location: str, mapping: FieldMapping) -> Example:
    task = row.get("task")
    if not isinstance(task, str) or not task.strip():
        raise RowError("`task` must be a non-empty string")
    inputs = row.get("input")
    if not isinstance(inputs, dict) or not inputs:
        raise RowError("`input` must be an object with at least an `instruction`")
    answer = row.get("output", row.get("chosen"))
    if answer is None:
        raise RowError("`output` (or `chosen`) is missing")
    answer = _require_text(_as_text(answer), "output")
    head = [_as_text(inputs["instruction"])] if "instruction" in inputs else []
    user, schema = _user_text(head, {k: v for k, v in inputs.items() if k != "instruction"})
    if not user.strip():
        raise RowError("`input` holds no text besides a schema")
    messages = ({"role": "user", "content": user}, {"role": "assistant", "content": answer})
    return Example("multitask", location, messages=messages, task=task, schema=schema)


CONVERTERS: dict[str, Callable[[dict[str, Any], str, FieldMapping], Example]] = {
    "messages": _messages,
    "prompt_completion": _prompt_completion,
    "instruction": _instruction,
    "text": _text,
    "multitask": _multitask,
}


# -- helpers -----------------------------------------------------------------------------------------
def split_chat_text(text: str) -> tuple[str, str]:
    """Split a ChatML or legacy conversation before its last assistant answer; plain text -> ``("", text)``."""
    for marker in (CHATML_ASSISTANT, LEGACY_ASSISTANT):
        index = text.rfind(marker)
        if index < 0:
            continue
        cut = index + len(marker)
        if text.startswith("\n", cut):
            cut += 1
        completion = text[cut:].rstrip()
        if not completion or completion in ("<|im_end|>", "<|end|>"):
            raise RowError("the last assistant turn is empty")
        return text[:cut], completion
    return "", text


def _user_text(head: list[str], inputs: dict[str, Any]) -> tuple[str, str | None]:
    """The user turn (instruction + labelled inputs) and the schema, which goes where the runtime puts it."""
    parts, schema = list(head), None
    for key, value in inputs.items():
        text = _as_text(value)
        if not text.strip():
            continue
        label = input_label(key, text)
        if label == "Schema" and schema is None:
            schema = text
        else:
            parts.append(f"{label}:\n{text}")
    return "\n\n".join(parts), schema


def last_user_turn(prompt: str) -> str:
    """The last user turn of a ChatML or legacy prompt, or the whole prompt."""
    for start, end in (("<|im_start|>user\n", "<|im_end|>"), ("<|user|>\n", "<|end|>")):
        index = prompt.rfind(start)
        if index >= 0:
            return prompt[index + len(start):].split(end, 1)[0].strip()
    return prompt


def input_label(field_name: str, value: str) -> str:
    """The original's label for an input column: Schema, Context, or the column's own name."""
    name = field_name.lower()
    if "schema" in name or "CREATE TABLE" in value.upper():
        return "Schema"
    if "context" in name:
        return "Context"
    return "Input" if name == "input" else field_name.replace("_", " ").capitalize()


def _checked_messages(value: Any, where: str) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise RowError(f"`{where}` must be a non-empty list of messages")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise RowError(f"message {index} must be an object with `role` and `content`")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RowError(f"message {index} has role `{role}`; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise RowError(f"message {index} needs a string `content`")
        messages.append({"role": role, "content": content})
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise RowError("the last message must be a non-empty assistant answer")
    if not any(m["role"] == "user" for m in messages[:-1]):
        raise RowError("there is no user message before the assistant answer")
    return tuple(messages)


def _candidates(preferred: str | None, fallbacks: tuple[str, ...]) -> tuple[str, ...]:
    return ((preferred,) if preferred else ()) + tuple(k for k in fallbacks if k != preferred)


def _first_key(row: dict[str, Any], keys: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str | None:
    return next((k for k in keys if k in row and k not in exclude and row[k] is not None), None)


def _require_text(value: Any, name: str) -> str:
    if value is None:
        raise RowError(f"`{name}` is missing")
    if not isinstance(value, str):
        raise RowError(f"`{name}` must be a string, not {type(value).__name__}")
    if not value.strip():
        raise RowError(f"`{name}` is empty")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
