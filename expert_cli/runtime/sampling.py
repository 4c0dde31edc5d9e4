"""Decoding parameters (manifest defaults, per-call overrides) and choosing the next token for one row.

Priority: a per-call override > the expert's ``training.decoding`` > the built-in default. Overrides use
the SDK's names: ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``top_k`` (0 = off), ``min_p``,
``repetition_penalty`` (1 = off), ``stop`` (a string or a list; replaces the manifest's stop sequences) and
``seed`` (sampling is reproducible per row with the same seed, alone or in a batch) and ``ignore_eos`` (never
end at an end-of-turn token: answers run to ``max_tokens`` or a stop sequence, as benchmarks want).

The order of logit processing follows transformers: repetition penalty, temperature, top-k, top-p, min-p,
then softmax and a draw (or the argmax when greedy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from expert_cli.core.errors import UsageError

OVERRIDE_NAMES = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "stop", "seed",
                  "ignore_eos")


@dataclass(frozen=True)
class DecodingParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def resolve_decoding(spec: Any = None, overrides: Mapping[str, Any] | None = None) -> DecodingParams:
    """Combine a manifest ``DecodingSpec`` (or None) with per-call overrides (None values are ignored)."""
    params = DecodingParams()
    if spec is not None:
        from_manifest = {
            "max_tokens": spec.max_new_tokens, "temperature": spec.temperature, "top_p": spec.top_p,
            "top_k": spec.top_k, "min_p": spec.min_p, "repetition_penalty": spec.repetition_penalty,
        }
        params = replace(params, **{k: v for k, v in from_manifest.items() if v is not None})
        if spec.stop_sequences:
            params = replace(params, stop=tuple(spec.stop_sequences))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(OVERRIDE_NAMES))
    if unknown:
        raise UsageError(f"unknown generation option `{unknown[0]}`", hint=f"use {', '.join(OVERRIDE_NAMES)}")
    if "stop" in given:
        given["stop"] = _stops(given["stop"])
    return _checked(replace(params, **given))


def _stops(stop: str | Iterable[str]) -> tuple[str, ...]:
    items = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(item, str) for item in items):
        raise UsageError("`stop` must be a string or a list of strings")
    return tuple(dict.fromkeys(item for item in items if item))


def _checked(params: DecodingParams) -> DecodingParams:
    rules = (
        (isinstance(params.max_tokens, int) and params.max_tokens >= 1, "max_tokens", "an integer >= 1"),
        (params.temperature >= 0, "temperature", ">= 0 (0 = greedy)"),
        (0 < params.top_p <= 1, "top_p", "in (0, 1]"),
        (isinstance(params.top_k, int) and params.top_k >= 0, "top_k", "an integer >= 0 (0 = off)"),
        (0 <= params.min_p <= 1, "min_p", "in [0, 1]"),
        (params.repetition_penalty > 0, "repetition_penalty", "> 0 (1 = off)"),
    )
    for ok, name, expected in rules:
        if not ok:
            raise UsageError(f"`{name}` must be {expected}, got `{getattr(params, name)}`")
    return params


def choose_token(logits: Any, params: DecodingParams, generator: Any, seen: Any) -> int:
    """The next token id from one row's logits (1-D, float32; already grammar-masked)."""
    import torch

    if params.repetition_penalty != 1.0 and seen.numel():
        picked = logits[seen]
        logits[seen] = torch.where(picked < 0, picked * params.repetition_penalty,
                                   picked / params.repetition_penalty)
    if params.greedy:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if 0 < params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= params.top_p  # keep the smallest prefix reaching top_p
        logits = logits.index_fill(0, order[drop], float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if params.min_p > 0:
        probs = probs.masked_fill(probs < params.min_p * probs.max(), 0.0)
    return int(torch.multinomial(probs, 1, generator=generator))


def row_generator(seed: int | None, device: str) -> Any:
    """A torch.Generator for one row: seeded when ``seed`` is given, else from fresh entropy."""
    import torch

    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator
