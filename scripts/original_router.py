"""The original system's two keyword routers, reproduced faithfully for comparison (benchmarks only).

Nothing in ``expert_cli`` or ``tests`` imports this. See section 5 of the reference
(``shared/reference/original-system.md``):

- :class:`OriginalChatRouter` (5.1, ``ExpertRouter``, used by ``chat``): a 17-substring generic gate, then
  per expert +1.0 per keyword substring, -2.0 per exclude substring, times ``priority`` when set, then +0.5
  per capability whose second ``:`` segment is a substring of the prompt (the ``language:en`` quirk), all in
  f32; a stable sort; the top expert if its score is > 0, else the base model (None).
- :class:`OriginalKeywordRouter` (5.2, the ``route`` command): exact whitespace-word matches only,
  ``|keywords & words| / |keywords| x (priority or 0.5)``; keeps scores > 0, best first, top k.
"""

from __future__ import annotations

import struct
from typing import Any

GENERIC_PATTERNS = (
    "what is", "what are", "who is", "who are", "where is", "where are", "when is", "when are", "how to",
    "how do", "why", "explain", "meaning of", "definition of", "describe", "tell me about", "can you explain",
)


def f32(value: float) -> float:
    """Round to the nearest IEEE single-precision value, as the original's f32 arithmetic does."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _routing(manifest: dict[str, Any]) -> dict[str, Any] | None:
    routing = manifest.get("routing")
    return routing if isinstance(routing, dict) else None


class OriginalChatRouter:
    """Section 5.1. ``experts`` are raw manifest dicts in ``--experts`` order."""

    def __init__(self, experts: list[dict[str, Any]]) -> None:
        self.experts = experts

    def score(self, manifest: dict[str, Any], prompt_lower: str) -> float:
        routing = _routing(manifest)
        if routing is None:
            return 0.0
        score = f32(0.0)
        for keyword in routing.get("keywords") or []:
            if keyword.lower() in prompt_lower:
                score = f32(score + 1.0)
        for keyword in routing.get("exclude_keywords") or []:
            if keyword.lower() in prompt_lower:
                score = f32(score - 2.0)
        priority = routing.get("priority")
        if priority is not None:
            score = f32(score * f32(priority))
        for capability in manifest.get("capabilities") or []:
            parts = capability.split(":")
            if len(parts) >= 2 and parts[1] in prompt_lower:
                score = f32(score + 0.5)
        return score

    def route(self, prompt: str) -> str | None:
        """The chosen expert's name, or None for the base model."""
        lowered = prompt.lower()
        if any(pattern in lowered for pattern in GENERIC_PATTERNS):
            return None
        scored = [(self.score(manifest, lowered), manifest.get("name", "")) for manifest in self.experts]
        scored.sort(key=lambda item: item[0], reverse=True)  # stable: ties keep --experts order
        if scored and scored[0][0] > 0:
            return scored[0][1]
        return None


class OriginalKeywordRouter:
    """Section 5.2: exact word overlap with the keyword set, times priority (0.5 when unset)."""

    def __init__(self, experts: list[dict[str, Any]]) -> None:
        self.experts = experts

    def scores(self, query: str, top_k: int = 3) -> list[tuple[str, float]]:
        words = set(query.lower().split())
        scored = []
        for manifest in self.experts:
            routing = _routing(manifest) or {}
            keywords = {keyword.lower() for keyword in routing.get("keywords") or []}
            if not keywords:
                continue
            priority = routing.get("priority")
            factor = f32(priority) if priority is not None else 0.5
            score = len(keywords & words) / len(keywords) * factor
            if score > 0:
                scored.append((manifest.get("name", ""), score))
        scored.sort(key=lambda item: item[1], reverse=True)
        return scored[:top_k]

    def route(self, query: str) -> str | None:
        best = self.scores(query, top_k=1)
        return best[0][0] if best else None
