"""One base model, many experts attached unmerged, switched by flipping a plan.

:class:`BasePool` loads each base once per (model folder, device, dtype, RoPE scaling) and hands out the same
:class:`LoadedBase` to every expert on it. A LoadedBase attaches adapters by name (:meth:`LoadedBase.attach`
reads the files straight into slots with the adapter's method; see :mod:`expert_cli.runtime.adapters`), runs
a forward with none, one or several of them, weighted, or a different composition per batch row
(:meth:`LoadedBase.rows_plan` and :meth:`LoadedBase.using_plan`), and detaches them
(:meth:`LoadedBase.detach`), after which the model is the untouched base again. Imported lazily (it imports
torch).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from expert_cli.core.errors import InferenceError
from expert_cli.models.device import Placement, resolve_placement, translate_oom
from expert_cli.models.loading import load_base_model
from expert_cli.runtime.adapters.linear import (
    Activation,
    AdapterRouting,
    AdapterWeights,
    module_nbytes,
    unwrap_linear,
    wrap_linear,
)
from expert_cli.runtime.adapters.prompt_tuning import read_soft_prompt
from expert_cli.runtime.adapters.registry import read_adapter

Composition = tuple[tuple[str, float], ...]  # (attached adapter name, weight), in order


@dataclass
class AttachedAdapter:
    name: str
    folder: Path
    weights: AdapterWeights
    load_seconds: float

    @property
    def nbytes(self) -> int:
        return self.weights.nbytes()


class LoadedBase:
    """A base model in memory with its attached adapters. Use :class:`BasePool` to get one."""

    def __init__(self, key: tuple, path: Path, model: Any, tokenizer: Any, placement: Placement) -> None:
        self.key = key
        self.path = path
        self.model = model
        self.tokenizer = tokenizer
        self.placement = placement
        self.routing = AdapterRouting()
        self.adapters: dict[str, AttachedAdapter] = {}
        self.lock = threading.RLock()
        self.base_nbytes = module_nbytes(model)
        self.holders = 0  # SDK objects using this base (see BasePool.acquire / BasePool.drop)
        self._users: dict[str, int] = {}

    # -- adapters ---------------------------------------------------------------------------------
    def attach(self, name: str, folder: str | Path, soft_prompts: Sequence[Path] = ()) -> AttachedAdapter:
        """Read the PEFT adapter in ``folder`` into slots named ``name`` (replacing one of that name); the
        ``soft_prompts`` files are prepended to every prompt this adapter answers (after a prompt-tuning
        adapter's own virtual tokens)."""
        folder = Path(folder)
        with self.lock, translate_oom(f"attaching expert `{name}`", self.placement.device):
            started = time.perf_counter()
            weights = read_adapter(folder, self.model, self.placement.device, self.placement.torch_dtype())
            if soft_prompts:
                weights.prompt_embeddings = self._with_soft_prompts(weights.prompt_embeddings, soft_prompts)
            if name in self.adapters:
                self.detach(name)
            for module_path, slot in weights.slots.items():
                wrap_linear(self.model, module_path, self.routing).add_slot(name, slot)
            attached = AttachedAdapter(name, folder, weights, time.perf_counter() - started)
            self.adapters[name] = attached
            return attached

    def detach(self, name: str) -> None:
        """Remove an adapter and free its tensors; wrappers left empty give back the plain Linear layers."""
        with self.lock:
            attached = self._get(name)
            for module_path in attached.weights.slots:
                wrapper = self.model.get_submodule(module_path)
                wrapper.remove_slot(name)
                unwrap_linear(self.model, module_path)
            del self.adapters[name]

    def _with_soft_prompts(self, embeddings: torch.Tensor | None, files: Sequence[Path]) -> torch.Tensor:
        parts = [] if embeddings is None else [embeddings]
        parts += [read_soft_prompt(path, self.model, self.tokenizer, self.placement.device,
                                   self.placement.torch_dtype()) for path in files]
        return torch.cat(parts, dim=0)

    def acquire_adapter(self, label: str, folder: str | Path, soft_prompts: Sequence[Path] = ()) -> str:
        """Attach ``folder`` (with its ``soft_prompts``) once however many callers use it; returns its slot
        name (``label``, or ``label#2``... when another folder already uses that label). Pair with
        :meth:`release_adapter`."""
        folder = Path(folder).resolve()
        with self.lock:
            slot = next((n for n, a in self.adapters.items() if a.folder.resolve() == folder), None)
            if slot is None:
                slot, number = label, 2
                while slot in self.adapters:
                    slot, number = f"{label}#{number}", number + 1
                self.attach(slot, folder, soft_prompts)
            self._users[slot] = self._users.get(slot, 0) + 1
            return slot

    def release_adapter(self, slot: str) -> None:
        """Drop one use of a slot; the adapter is detached when nobody uses it any more."""
        with self.lock:
            self._users[slot] = self._users.get(slot, 1) - 1
            if self._users[slot] <= 0:
                self._users.pop(slot, None)
                if slot in self.adapters:
                    self.detach(slot)

    def _get(self, name: str) -> AttachedAdapter:
        if name not in self.adapters:
            attached = ", ".join(f"`{n}`" for n in self.adapters) or "none"
            raise InferenceError(f"expert `{name}` is not attached to base `{self.path}` (attached: {attached})")
        return self.adapters[name]

    # -- plans ----------------------------------------------------------------------------------------
    def _has_slots(self, name: str) -> bool:
        return bool(self.adapters[name].weights.slots)

    def rows_plan(self, compositions: Sequence[Composition]) -> tuple[Activation, ...]:
        """The plan for a batch whose row ``i`` uses ``compositions[i]``."""
        for composition in compositions:
            for name, _ in composition:
                self._get(name)
        if len(set(compositions)) <= 1:
            first = compositions[0] if compositions else ()
            return tuple(Activation(n, w) for n, w in first if self._has_slots(n))
        groups: dict[tuple[str, float], list[int]] = {}
        for row, composition in enumerate(compositions):
            for name, weight in composition:
                if self._has_slots(name):
                    groups.setdefault((name, weight), []).append(row)
        device = self.placement.torch_device()
        return tuple(Activation(name, weight, torch.tensor(rows, dtype=torch.long, device=device))
                     for (name, weight), rows in groups.items())

    @contextlib.contextmanager
    def using_plan(self, plan: tuple[Activation, ...]) -> Iterator[None]:
        """Hold the lock and run with ``plan``; the plan before it comes back afterwards."""
        with self.lock:
            saved = self.routing.plan
            self.routing.plan = plan
            try:
                yield
            finally:
                self.routing.plan = saved

    def prompt_prefix(self, composition: Composition) -> torch.Tensor | None:
        """Prompt-tuning embeddings of the composition's prompt-tuning experts, concatenated in order."""
        parts = [self.adapters[name].weights.prompt_embeddings for name, _ in composition]
        parts = [p for p in parts if p is not None]
        return torch.cat(parts, dim=0) if parts else None

    # -- memory -----------------------------------------------------------------------------------
    def adapters_nbytes(self) -> int:
        return sum(adapter.nbytes for adapter in self.adapters.values())


class BasePool:
    """Loads each base once per (folder, device, dtype, RoPE scaling); ``load_count`` counts real loads."""

    def __init__(self) -> None:
        self._bases: dict[tuple, LoadedBase] = {}
        self._lock = threading.Lock()
        self.load_count = 0

    def get(self, model_path: str | Path, device: str | None = None, dtype: str | None = None,
            rope_scaling: Any = None) -> LoadedBase:
        path = Path(model_path).expanduser().resolve()
        placement = resolve_placement(device, dtype)
        key = (str(path), placement.device, placement.dtype, _rope_key(rope_scaling))
        with self._lock:
            base = self._bases.get(key)
            if base is None:
                model, tokenizer = load_base_model(path, placement, rope_scaling)
                base = LoadedBase(key, path, model, tokenizer, placement)
                self._bases[key] = base
                self.load_count += 1
            return base

    def acquire(self, model_path: str | Path, device: str | None = None, dtype: str | None = None,
                rope_scaling: Any = None) -> LoadedBase:
        """:meth:`get` plus one hold; :meth:`drop` the base when done so it can be freed."""
        base = self.get(model_path, device, dtype, rope_scaling)
        with self._lock:
            base.holders += 1
        return base

    def drop(self, base: LoadedBase) -> None:
        """Give back a hold; the base is released when no holder and no adapter is left."""
        with self._lock:
            base.holders = max(0, base.holders - 1)
            idle = base.holders == 0 and not base.adapters
        if idle:
            self.release(base)

    def release(self, base: LoadedBase) -> None:
        """Forget a base (its memory goes when the last reference does)."""
        with self._lock:
            self._bases.pop(base.key, None)
        if base.placement.device.startswith("cuda"):
            torch.cuda.empty_cache()


def _rope_key(rope_scaling: Any) -> str:
    if not rope_scaling:
        return ""
    return json.dumps(rope_scaling, sort_keys=True, default=str)


_DEFAULT_POOL: BasePool | None = None


def default_pool() -> BasePool:
    """The process-wide pool the SDK uses, so every Expert and ExpertManager shares bases."""
    global _DEFAULT_POOL
    if _DEFAULT_POOL is None:
        _DEFAULT_POOL = BasePool()
    return _DEFAULT_POOL
