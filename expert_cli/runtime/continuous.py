"""Continuous batching: rows join a running batch between two decoding steps and leave the moment they finish.

:class:`ContinuousBatch` keeps one KV cache for every running row, right-aligned (left padding), each row with
its own composition of experts (a per-row plan on the base), decoding settings, random generator and grammar.
:meth:`ContinuousBatch.admit` takes new rows; :meth:`step` decodes one token for every row and drops the
finished ones (their cache rows are cut out, and columns that only padding still uses are trimmed). Greedy
output does not depend on the other rows: positions follow each row's own tokens and padding is masked.

On models that :mod:`~expert_cli.runtime.ragged` supports (SDPA attention, as Qwen3 and Llama load), the
newcomers' prompts are folded into the next step: one forward computes the running rows' next tokens and the
newcomers' first ones, and the newcomers' cache then joins the running one. Elsewhere :meth:`admit` prefills
the newcomers as a batch of their own at once, then joins their cache (the shorter side padded on the left,
where the attention mask hides it).

The join needs a cache whose layers hold plain ``keys``/``values`` tensors (transformers' dynamic layers, as
Qwen3 and Llama use); :func:`can_join` says whether a model's cache does. Imported lazily (it imports torch).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from expert_cli.core.errors import InferenceError
from expert_cli.models.device import translate_oom
from expert_cli.prompts.cleaning import StopChecker, clean_output
from expert_cli.runtime.decoder import (
    RowOutput,
    RowRequest,
    cache_argument,
    output_cache,
    prefill_inputs,
    stop_token_ids,
)
from expert_cli.runtime.pool import LoadedBase
from expert_cli.runtime.sampling import choose_token, row_generator


@dataclass(eq=False)
class LiveRow:
    """One row in a continuous batch: its request, what it generated so far, and how it ended."""

    request: RowRequest
    generator: Any = None
    matcher: Any = None  # an xgrammar GrammarMatcher, or None
    checker: StopChecker | None = None
    generated: list[int] = field(default_factory=list)
    raw_text: str = ""
    finish: str | None = None
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    ended: float | None = None
    cancelled: bool = False

    def output(self) -> RowOutput:
        row = self.request
        seconds = (self.ended or time.perf_counter()) - self.started
        return RowOutput(list(self.generated), self.raw_text,
                         clean_output(self.raw_text, row.show_reasoning, row.params.stop),
                         self.finish or "cancelled", len(row.prompt_ids), seconds)


def can_join(cache: Any) -> bool:
    """Whether the rows of two caches of this kind can be joined and cut (plain key/value tensors)."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


class ContinuousBatch:
    """Rows decoding together on ``base``; see the module docstring. Not thread-safe: one owner drives it."""

    def __init__(self, base: LoadedBase) -> None:
        from expert_cli.runtime import ragged

        self.base = base
        self.device = base.placement.torch_device()
        self.stop_ids = stop_token_ids(base)
        self.rows: list[LiveRow] = []  # running rows first, then the ones admitted for the next step
        self.waiting = 0  # how many of the last rows wait for their prompt to go through (ragged steps)
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # [running rows, columns]: 1/True where a row has a real token
        self._last: torch.Tensor | None = None  # [running rows]: the token each row feeds next
        self._plan: Any = ()
        self.joinable = True
        self.ragged = ragged.supports(base.model)
        if self.ragged:
            ragged.enable(base.model)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def running(self) -> list[LiveRow]:
        return self.rows[: len(self.rows) - self.waiting]

    # -- joining ----------------------------------------------------------------------------------
    def admit(self, requests: Sequence[RowRequest]) -> list[LiveRow]:
        """Add ``requests`` to the batch. Ragged: their prompts go through with the next :meth:`step`. Else
        they are prefilled now and their first token is chosen at once. Returns the new rows (some may already
        be finished: see :meth:`take_finished`)."""
        if not requests:
            return []
        if self.rows and not self.joinable:
            raise InferenceError("this model's KV cache cannot be joined; wait for the running rows to finish")
        rows = [self._new_row(request) for request in requests]
        if self.ragged:
            self.rows = self.rows + rows
            self.waiting += len(rows)
            return rows
        with torch.inference_mode(), translate_oom("generating", self.base.placement.device):
            inputs, mask, _, _ = prefill_inputs(self.base, requests, self.stop_ids[0], self.device)
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            plan = self.base.rows_plan([request.composition for request in requests])
            with self.base.using_plan(plan):
                out = self.base.model(**inputs, attention_mask=mask, position_ids=positions, use_cache=True,
                                      logits_to_keep=1)
            chosen = self._choose(rows, out.logits[:, -1, :].float())
        self._join(rows, output_cache(out), mask, chosen)
        return rows

    def _new_row(self, request: RowRequest) -> LiveRow:
        matcher = None
        if request.grammar is not None:
            from expert_cli.core.errors import require

            matcher = require("xgrammar", "chat").GrammarMatcher(request.grammar)
        return LiveRow(request, row_generator(request.params.seed, self.base.placement.device), matcher,
                       StopChecker(request.params.stop))

    def _join(self, rows: list[LiveRow], cache: Any, mask: torch.Tensor, chosen: torch.Tensor) -> None:
        if not self.rows:
            self.rows, self._cache, self._mask, self._last = rows, cache, mask, chosen
            self.joinable = can_join(cache)
        else:
            width = max(self._mask.shape[1], mask.shape[1])
            for old, new in zip(self._cache.layers, cache.layers):
                old.keys = torch.cat([_pad_left(old.keys, width, -2), _pad_left(new.keys, width, -2)], dim=0)
                old.values = torch.cat([_pad_left(old.values, width, -2), _pad_left(new.values, width, -2)], dim=0)
            self._mask = torch.cat([_pad_left(self._mask, width, 1), _pad_left(mask, width, 1)], dim=0)
            self._last = torch.cat([self._last, chosen])
            self.rows = self.rows + rows
        self._plan = self.base.rows_plan([row.request.composition for row in self.rows])

    # -- decoding ---------------------------------------------------------------------------------
    def step(self) -> None:
        """Decode one token for every unfinished row (finished rows are left for :meth:`take_finished`)."""
        if not self.rows:
            return
        if self.ragged:
            self._ragged_step()
            return
        with torch.inference_mode(), translate_oom("generating", self.base.placement.device):
            self._mask = torch.cat([self._mask, torch.ones_like(self._mask[:, :1])], dim=1)
            positions = (self._mask.sum(dim=1) - 1)[:, None]
            with self.base.using_plan(self._plan):
                out = self.base.model(input_ids=self._last[:, None], attention_mask=self._mask,
                                      position_ids=positions, use_cache=True, logits_to_keep=1,
                                      **cache_argument(self.base, self._cache))
            self._cache = output_cache(out)
            self._last = self._choose(self.rows, out.logits[:, -1, :].float())

    def _ragged_step(self) -> None:
        """One forward for the running rows' next tokens and the waiting rows' prompts (see the module doc)."""
        from expert_cli.runtime.ragged import PREPARED_MASK

        running, waiting = self.running, self.rows[len(self.rows) - self.waiting :]
        decoder = self.base.model.model
        with torch.inference_mode(), translate_oom("generating", self.base.placement.device):
            step, embeds, positions, plan = self._ragged_inputs(running, waiting)
            with self.base.using_plan(plan):
                hidden = decoder(inputs_embeds=embeds, position_ids=positions, attention_mask=PREPARED_MASK,
                                 ragged=step, use_cache=True, **cache_argument(self.base, step, decoder))
            last = hidden.last_hidden_state[:, -1, :]
            if step.new:
                last = last[torch.tensor(step.last_tokens(), device=last.device)]
            chosen = self._choose(running + waiting, self.base.model.lm_head(last).float())
        self.waiting = 0
        if step.decode:
            self._mask, self._last = step.decode_mask, chosen[: step.decode]
        if step.new:
            self._join_ragged(step, chosen[step.decode :])

    def _ragged_inputs(self, running: list[LiveRow], waiting: list[LiveRow]) -> tuple[Any, torch.Tensor,
                                                                                     torch.Tensor, Any]:
        """The step, its input embeddings and positions (``[tokens, 1, ...]``: one row per token) and the plan
        (each token with its row's experts): the running rows' next tokens first, then the waiting prompts."""
        from expert_cli.runtime.ragged import RaggedStep

        embed = self.base.model.get_input_embeddings()
        step = RaggedStep(self._cache.layers if running else [], len(running), None, len(waiting), 0, None)
        embeds, positions = [], []
        if running:
            step.decode_mask = torch.cat([self._mask, torch.ones_like(self._mask[:, :1])], dim=1)
            embeds.append(embed(self._last))
            positions.append(self._mask.sum(dim=1))
        plan = self._plan
        if waiting:
            requests = [row.request for row in waiting]
            inputs, mask, _, _ = prefill_inputs(self.base, requests, self.stop_ids[0], self.device)
            step.width, step.new_mask = mask.shape[1], mask.bool()
            prompts = inputs["inputs_embeds"] if "inputs_embeds" in inputs else embed(inputs["input_ids"])
            embeds.append(prompts.reshape(-1, prompts.shape[-1]))
            positions.append((mask.cumsum(dim=1) - 1).clamp(min=0).reshape(-1))
            compositions = [row.request.composition for row in running]
            for request in requests:
                compositions += [request.composition] * step.width
            plan = self.base.rows_plan(compositions)
        return step, torch.cat(embeds)[:, None, :], torch.cat(positions)[:, None], plan

    def _join_ragged(self, step: Any, chosen: torch.Tensor) -> None:
        """The waiting rows' cache (filled by the step) joins the running rows' (padded left to one width)."""
        new_mask = step.new_mask
        if self._cache is None:
            self._cache = _Cache([_Layer(keys, values) for keys, values in zip(step.new_keys, step.new_values)])
            self._mask, self._last = new_mask, chosen
        else:
            width = max(self._mask.shape[1], new_mask.shape[1])
            for layer, keys, values in zip(self._cache.layers, step.new_keys, step.new_values):
                layer.keys = torch.cat([_pad_left(layer.keys, width, -2), _pad_left(keys, width, -2)], dim=0)
                layer.values = torch.cat([_pad_left(layer.values, width, -2), _pad_left(values, width, -2)], dim=0)
            self._mask = torch.cat([_pad_left(self._mask, width, 1), _pad_left(new_mask, width, 1)], dim=0)
            self._last = torch.cat([self._last, chosen])
        self._plan = self.base.rows_plan([row.request.composition for row in self.rows])

    def take_finished(self) -> list[LiveRow]:
        """Remove and return the running rows that finished (or were cancelled) since the last call."""
        running = self.running
        for row in running:
            if row.cancelled and row.finish is None:
                self._end(row, "cancelled")
        done = [row for row in running if row.finish is not None]
        if done:
            keep = [i for i, row in enumerate(running) if row.finish is None]
            waiting = self.rows[len(running):]
            self._keep(keep)
            self.rows = self.rows + waiting
        return done

    def _keep(self, keep: list[int]) -> None:
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._cache = self._mask = self._last = None
            self._plan = ()
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        mask = self._mask[index]
        first = int(mask.any(dim=0).nonzero()[0])  # columns before it are padding for every row left
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, first:]
            layer.values = layer.values[index, :, first:]
        self._mask, self._last = mask[:, first:], self._last[index]
        self._plan = self.base.rows_plan([row.request.composition for row in self.rows])

    def _choose(self, rows: list[LiveRow], logits: torch.Tensor) -> torch.Tensor:
        self._mask_grammars(rows, logits)
        no_eos = [index for index, row in enumerate(rows) if row.request.params.ignore_eos]
        if no_eos:
            rows_index = torch.tensor(no_eos, device=logits.device)[:, None]
            logits[rows_index, torch.tensor(self.stop_ids, device=logits.device)] = float("-inf")
        # Plain greedy rows (most of a serving batch) take one argmax for all of them; the others sample alone.
        argmax = logits.argmax(dim=-1).tolist()
        chosen = []
        for index, row in enumerate(rows):
            if row.finish is not None:
                chosen.append(self.stop_ids[0])
                continue
            params = row.request.params
            if params.greedy and params.repetition_penalty == 1:
                token = argmax[index]
            else:
                seen = None
                if params.repetition_penalty != 1:
                    seen = torch.tensor(sorted(set(row.request.prompt_ids) | set(row.generated)),
                                        dtype=torch.long, device=logits.device)
                token = choose_token(logits[index], params, row.generator, seen)
            chosen.append(token)
            self._record(row, token)
        return torch.tensor(chosen, dtype=torch.long, device=self.device)

    def _mask_grammars(self, rows: list[LiveRow], logits: torch.Tensor) -> None:
        constrained = [(i, row.matcher) for i, row in enumerate(rows) if row.matcher is not None and row.finish is None]
        if not constrained:
            return
        from expert_cli.core.errors import require

        xgr = require("xgrammar", "chat")
        vocab = rows[constrained[0][0]].request.grammar.tokenizer_info.vocab_size
        bitmask = xgr.allocate_token_bitmask(len(rows), vocab)
        masked = []
        for index, matcher in constrained:
            if matcher.is_terminated():  # a complete answer may only stop
                kept = logits[index, list(self.stop_ids)].clone()
                logits[index] = float("-inf")
                logits[index, list(self.stop_ids)] = kept
            else:
                matcher.fill_next_token_bitmask(bitmask, index)
                masked.append(index)
        if masked:
            width = min(logits.shape[-1], vocab)
            target = logits if logits.device.type in ("cpu", "cuda") else logits.cpu()
            xgr.apply_token_bitmask_inplace(target, bitmask.to(target.device), vocab_size=width, indices=masked)
            if target.shape[-1] > vocab:
                target[masked, vocab:] = float("-inf")
            if target is not logits:
                logits.copy_(target)

    def _record(self, row: LiveRow, token: int) -> None:
        if row.first_token_at is None:
            row.first_token_at = time.perf_counter()
        row.generated.append(token)
        if row.matcher is not None and not row.matcher.is_terminated() and not row.matcher.accept_token(token):
            row.matcher = None  # the grammar cannot follow (it never should); the row goes on unconstrained
        if token in self.stop_ids:
            self._end(row, "stop")
            return
        row.raw_text = self.base.tokenizer.decode(row.generated, skip_special_tokens=False)
        if row.checker is not None and row.checker.find(row.raw_text) is not None:
            self._end(row, "stop_sequence")
        elif len(row.generated) >= row.request.params.max_tokens:
            self._end(row, "length")

    def _end(self, row: LiveRow, reason: str) -> None:
        row.finish, row.ended = reason, time.perf_counter()
        if row.generated and row.generated[-1] in self.stop_ids:
            row.raw_text = self.base.tokenizer.decode(row.generated[:-1], skip_special_tokens=False)


@dataclass(eq=False)
class _Layer:
    """One layer's cache for the running rows: ``[rows, kv_heads, columns, dim]`` each."""

    keys: torch.Tensor
    values: torch.Tensor


@dataclass(eq=False)
class _Cache:
    layers: list[_Layer]


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """``tensor`` with zeros added before its start along ``dim`` up to ``width``."""
    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
