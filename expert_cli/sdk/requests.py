"""One generation request, from what a caller wrote to the row the runtime decodes: the one path every entry
point takes (``Expert``, ``ExpertManager``, the chat conversation, the evaluation, the server).

A :class:`Request` says what to answer and how (prompt, schema, system message, history, structured output,
decoding overrides). :func:`prepare` renders it for a loaded base and a composition of experts, fitting the
history into the model's context window when asked; :func:`run` decodes prepared rows together (rows on
different bases as separate batches) and :func:`stream` one row piece by piece. Importing this module does
not import torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from expert_cli.core.errors import UsageError
from expert_cli.runtime.options import PromptOptions
from expert_cli.runtime.results import Result

# The keyword-style options: PromptOptions' fields but the schema (an argument) and the overrides (the rest).
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(PromptOptions)
                     if f.name not in ("schema", "overrides"))


@dataclass
class Request(PromptOptions):
    """What to answer (``prompt``) and how: the runtime's :class:`~expert_cli.runtime.options.PromptOptions`
    (schema, system, history, thinking, grammar or structured output, decoding ``overrides``), by keyword.
    ``fit_context``: drop the oldest history exchanges (and shrink ``max_tokens``) so the row fits the
    model's context window; a prompt longer than the window is an error either way."""

    prompt: str
    _: KW_ONLY
    fit_context: bool = False

    @classmethod
    def from_keywords(cls, prompt: str, schema: str | None, keywords: dict[str, Any]) -> Request:
        """The SDK's keyword style: option names (:data:`OPTION_NAMES`) and decoding overrides mixed."""
        options = {name: keywords.pop(name) for name in OPTION_NAMES if name in keywords}
        return cls(prompt, schema=schema, overrides=keywords, **options)

@dataclass
class Prepared:
    """A request rendered for one base and composition: the row to decode, and what fitting it dropped."""

    base: Any
    row: Any
    members: list[Any]
    history: list[Mapping[str, Any]]
    history_dropped: int = 0  # exchanges (user + assistant turns) left out to fit the context window


def prepare(base: Any, members: Sequence[Any], request: Request) -> Prepared:
    """Render ``request`` for ``base`` with ``members`` (lead first; none: the bare base)."""
    from expert_cli.runtime.generate import prepare_row

    options = dataclasses.replace(request, overrides=dict(request.overrides))  # a Request is PromptOptions
    history = list(request.history or ())
    window = context_window(base)
    dropped = 0
    while True:
        row = prepare_row(base, request.prompt, members, dataclasses.replace(options, history=history))
        room = window - len(row.prompt_ids) - prefix_length(base, row) if window else None
        if room is None or room >= row.params.max_tokens or not history or not request.fit_context:
            break
        history, dropped = history[2:], dropped + 1
    if room is not None and room < 1:
        raise UsageError(f"the prompt is {window - room} tokens, more than the model's context of {window}",
                         hint="shorten the prompt or the conversation")
    if room is not None and room < row.params.max_tokens:
        row.params = dataclasses.replace(row.params, max_tokens=room)
    return Prepared(base, row, list(members), history, dropped)


def run(prepared: Sequence[Prepared]) -> list[Result]:
    """Decode prepared rows, those on one base together; results in the order given."""
    from expert_cli.runtime.generate import generate_rows

    results: list[Result | None] = [None] * len(prepared)
    for base in {id(item.base): item.base for item in prepared}.values():
        indexes = [i for i, item in enumerate(prepared) if item.base is base]
        outputs = generate_rows(base, [prepared[i].row for i in indexes], [prepared[i].members for i in indexes])
        for index, result in zip(indexes, outputs):
            results[index] = result
    return results  # type: ignore[return-value]


def stream(prepared: Prepared) -> Any:
    """A :class:`~expert_cli.runtime.generate.TextStream` of the answer's pieces."""
    from expert_cli.runtime.generate import TextStream

    return TextStream(prepared.base, prepared.row, prepared.members)


def context_window(base: Any) -> int | None:
    """The model's context length in tokens, or None when its config does not say."""
    config = base.model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def prefix_length(base: Any, row: Any) -> int:
    """Virtual tokens (prompt tuning, soft prompts) the composition puts before the row's prompt."""
    prefix = base.prompt_prefix(row.composition)
    return 0 if prefix is None else int(prefix.shape[0])
