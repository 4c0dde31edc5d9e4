"""What one generation returns. Pure Python, so ``expert_cli.Result`` imports without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    """One answer.

    ``text`` is the cleaned answer; ``raw_text`` what the model produced (end-of-turn token excluded);
    ``tokens`` the number of new tokens (``token_ids``); ``experts`` the experts that were active, as
    ``name@version`` (empty for the bare base); ``latency_s`` seconds from the request to this row's last
    token; ``finish_reason`` is ``stop`` (end of turn or grammar complete), ``stop_sequence``, ``length``
    (``max_tokens`` reached) or ``cancelled`` (a stream closed early).
    """

    text: str
    tokens: int
    experts: list[str]
    latency_s: float
    finish_reason: str
    raw_text: str = ""
    token_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    base_model: str = ""
    grammar: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.latency_s if self.latency_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens_per_second"] = round(self.tokens_per_second, 3)
        return data

    def __str__(self) -> str:
        return self.text
