"""How one row is rendered and decoded, besides its prompt. Pure Python, so the SDK's ``Request`` (which
builds on it) imports without torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class PromptOptions:
    """``schema`` and ``system`` go into the prompt with ``history`` (earlier turns); ``enable_thinking`` opens
    the model's reasoning block and ``show_reasoning`` keeps it in the answer; ``grammar`` applies the lead
    expert's grammar, which ``json_schema`` (structured output) replaces; ``overrides``: decoding settings
    (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``min_p``, ``repetition_penalty``, ``stop``,
    ``seed``) that win over the lead expert's manifest."""

    schema: str | None = None
    system: str | None = None
    history: Sequence[Mapping[str, Any]] | None = None
    enable_thinking: bool = False
    show_reasoning: bool = False
    grammar: bool = True
    json_schema: Mapping[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
