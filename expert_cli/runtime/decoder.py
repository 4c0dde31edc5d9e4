"""The decoding loop: a left-padded batch, each row with its own experts, decoding settings and grammar.

:class:`BatchDecoder` runs the model step by step with a KV cache. Row ``i`` of the batch uses
``rows[i].composition`` (a mixed-expert batch sets a per-row plan on the base; see
:meth:`~expert_cli.runtime.pool.LoadedBase.rows_plan`), prompt-tuning experts prepend their virtual
tokens to that row, position ids follow the attention mask so left padding changes nothing, and every row
samples with its own generator, so a row's output does not depend on the rest of the batch. A row ends at
an end-of-turn token, a stop sequence or chat-format artefact in its text (:class:`~expert_cli.prompts.
cleaning.StopChecker`), when its grammar is complete, or at ``max_tokens``.

:meth:`BatchDecoder.steps` yields after every step (the streaming API builds on it; closing it stops early);
:meth:`BatchDecoder.run` decodes to the end. The plan is set under the base's lock for each forward only, so
several generations on one base (threads, interleaved streams) never see each other's experts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from expert_cli.core.errors import InferenceError
from expert_cli.models.device import translate_oom
from expert_cli.prompts.cleaning import StopChecker, clean_output
from expert_cli.runtime.pool import Composition, LoadedBase
from expert_cli.runtime.sampling import DecodingParams, choose_token, row_generator


@dataclass
class RowRequest:
    prompt_ids: list[int]
    composition: Composition = ()
    params: DecodingParams = field(default_factory=DecodingParams)
    grammar: Any = None  # an xgrammar CompiledGrammar, or None
    show_reasoning: bool = False


@dataclass
class RowOutput:
    token_ids: list[int]
    raw_text: str
    text: str
    finish_reason: str  # stop | stop_sequence | length | cancelled
    prompt_tokens: int
    seconds: float


class BatchDecoder:
    """Decodes ``rows`` together on ``base``; see the module docstring."""

    def __init__(self, base: LoadedBase, rows: Sequence[RowRequest]) -> None:
        if not rows:
            raise InferenceError("nothing to generate: the batch is empty")
        self.base = base
        self.rows = list(rows)
        self.tokenizer = base.tokenizer
        self.device = base.placement.torch_device()
        self.plan = base.rows_plan([row.composition for row in self.rows])
        self.stop_ids = stop_token_ids(base)
        self.generated: list[list[int]] = [[] for _ in self.rows]
        self.finish: list[str | None] = [None for _ in self.rows]
        self.texts: list[str] = ["" for _ in self.rows]
        self._checkers = [StopChecker(row.params.stop) for row in self.rows]
        self._generators = [row_generator(row.params.seed, base.placement.device) for row in self.rows]
        self._started = time.perf_counter()
        self._ended: list[float | None] = [None for _ in self.rows]

    # -- public -----------------------------------------------------------------------------------
    def run(self) -> list[RowOutput]:
        for _ in self.steps():
            pass
        return self.outputs()

    def steps(self) -> Iterator[None]:
        """Decode one token per unfinished row per iteration; closing the iterator cancels the rest."""
        try:
            with torch.inference_mode(), translate_oom("generating", self.base.placement.device):
                yield from self._decode()
        finally:
            for index, reason in enumerate(self.finish):
                if reason is None:
                    self._finish(index, "cancelled")

    def outputs(self) -> list[RowOutput]:
        results = []
        for index, row in enumerate(self.rows):
            reason = self.finish[index] or "cancelled"
            raw = self.raw_text(index)
            seconds = (self._ended[index] or time.perf_counter()) - self._started
            results.append(RowOutput(list(self.generated[index]), raw,
                                     clean_output(raw, row.show_reasoning, row.params.stop), reason,
                                     len(row.prompt_ids), seconds))
        return results

    @property
    def done(self) -> bool:
        return all(reason is not None for reason in self.finish)

    # -- the loop ---------------------------------------------------------------------------------
    def _decode(self) -> Iterator[None]:
        inputs, mask, lengths, sequence = self._first_inputs()
        processor = self._grammar_processor()
        cache = None
        max_steps = max(row.params.max_tokens for row in self.rows)
        for step in range(max_steps):
            logits, cache = self._forward(inputs, mask, lengths, cache, first=step == 0)
            if processor is not None:
                processor(sequence, logits)
            chosen = self._choose(logits, sequence)
            sequence = torch.cat([sequence, chosen[:, None]], dim=1)
            self._record(chosen.tolist())
            yield
            if self.done:
                return
            inputs = {"input_ids": chosen[:, None]}
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            lengths = lengths + 1

    def _first_inputs(self) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor, torch.Tensor]:
        return prefill_inputs(self.base, self.rows, self.stop_ids[0], self.device)

    def _forward(self, inputs: dict[str, Any], mask: torch.Tensor, lengths: torch.Tensor, cache: Any,
                 first: bool) -> tuple[torch.Tensor, Any]:
        if first:
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        else:
            positions = (lengths - 1)[:, None]
        with self.base.using_plan(self.plan):
            out = self.base.model(**inputs, attention_mask=mask, position_ids=positions, use_cache=True,
                                  logits_to_keep=1, **cache_argument(self.base, cache))
        return out.logits[:, -1, :].float(), output_cache(out)

    def _grammar_processor(self) -> Any:
        grammars = [row.grammar for row in self.rows]
        if all(grammar is None for grammar in grammars):
            return None
        from expert_cli.runtime.grammar import grammar_logits_processor

        return grammar_logits_processor(grammars, len(grammars))

    def _choose(self, logits: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        pad = self.stop_ids[0]
        chosen = []
        for index, row in enumerate(self.rows):
            if self.finish[index] is not None:
                chosen.append(pad)
                continue
            seen = None
            if row.params.repetition_penalty != 1:
                seen = _seen_ids(sequence[index], len(row.prompt_ids) + len(self.generated[index]))
            if row.params.ignore_eos:
                logits[index, list(self.stop_ids)] = float("-inf")
            chosen.append(choose_token(logits[index], row.params, self._generators[index], seen))
        return torch.tensor(chosen, dtype=torch.long, device=self.device)

    def _record(self, tokens: list[int]) -> None:
        for index, token in enumerate(tokens):
            if self.finish[index] is not None:
                continue
            self.generated[index].append(token)
            if token in self.stop_ids:
                self._finish(index, "stop")
                continue
            self.texts[index] = self.raw_text(index)
            if self._checkers[index].find(self.texts[index]) is not None:
                self._finish(index, "stop_sequence")
            elif len(self.generated[index]) >= self.rows[index].params.max_tokens:
                self._finish(index, "length")

    def _finish(self, index: int, reason: str) -> None:
        self.finish[index] = reason
        self._ended[index] = time.perf_counter()

    def raw_text(self, index: int) -> str:
        ids = self.generated[index]
        if ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=False)


def prefill_inputs(base: LoadedBase, rows: Sequence[RowRequest], fallback_pad: int, device: Any,
                   ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids (or embeddings when a row has prompt-tuning prefixes), mask, lengths, ids."""
    prefixes = [base.prompt_prefix(row.composition) for row in rows]
    prefix_lengths = [0 if p is None else p.shape[0] for p in prefixes]
    lengths = [len(row.prompt_ids) + extra for row, extra in zip(rows, prefix_lengths)]
    width = max(lengths)
    pad = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else fallback_pad
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, (row, length) in enumerate(zip(rows, lengths)):
        if row.prompt_ids:
            ids[index, width - len(row.prompt_ids):] = torch.tensor(row.prompt_ids, dtype=torch.long)
        mask[index, width - length:] = 1
    ids, mask = ids.to(device), mask.to(device)
    if not any(prefix_lengths):
        return {"input_ids": ids}, mask, mask.sum(dim=1), ids
    embeds = base.model.get_input_embeddings()(ids)
    for index, prefix in enumerate(prefixes):
        if prefix is not None:
            start = width - lengths[index]
            embeds[index, start:start + prefix.shape[0]] = prefix.to(embeds.dtype)
    return {"inputs_embeds": embeds}, mask, mask.sum(dim=1), ids


def cache_argument(base: LoadedBase, cache: Any, model: Any = None) -> dict[str, Any]:
    """The KV cache as the forward of ``model`` (default: the base's) names it: ``cache`` (transformers >= 5.24,
    which warns on the old name) or ``past_key_values``."""
    import inspect

    model = base.model if model is None else model
    name = getattr(model, "_expert_cli_cache_name", None)
    if name is None:
        name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        model._expert_cli_cache_name = name
    return {name: cache}


def output_cache(out: Any) -> Any:
    """The KV cache a forward returned, under either name (reading the old one warns on transformers 5)."""
    if "cache" in out:
        return out["cache"]
    return out.past_key_values


def _seen_ids(sequence: torch.Tensor, real_length: int) -> torch.Tensor:
    """Token ids already in a row (its prompt and what it generated; not the padding), for the penalty."""
    return torch.unique(sequence[sequence.shape[0] - real_length:]) if real_length else sequence[:0]


def stop_token_ids(base: LoadedBase) -> tuple[int, ...]:
    """End-of-turn ids: the generation config's EOS ids, the tokenizer's EOS and ``<|im_end|>``."""
    ids: list[int] = []
    config_eos = getattr(getattr(base.model, "generation_config", None), "eos_token_id", None)
    for value in (config_eos, base.tokenizer.eos_token_id):
        if value is None:
            continue
        ids.extend(value if isinstance(value, (list, tuple)) else [value])
    im_end = base.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != base.tokenizer.unk_token_id:
        ids.append(im_end)
    if not ids:
        raise InferenceError(f"the tokenizer of `{base.path}` has no end-of-sequence token")
    return tuple(dict.fromkeys(int(i) for i in ids))
