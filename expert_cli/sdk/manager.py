"""Many experts on shared base models: :class:`ExpertManager`.

    from expert_cli import ExpertManager
    manager = ExpertManager(max_loaded_experts=4)
    manager.load_expert("sql", "experts/expert-sql")
    manager.load_expert("neo4j", "expert-neo4j@0.1.0")
    manager.generate(["sql", "neo4j"], "...")             # composed: both adapters active at once
    manager.generate({"sql": 0.7, "neo4j": 0.3}, "...")   # with weights
    manager.generate(None, "...")                         # the bare base

Experts above ``max_loaded_experts`` are evicted least recently used first and reloaded on their next use.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expert_cli.core.errors import CompositionError, InferenceError, UsageError
from expert_cli.runtime.results import Result
from expert_cli.sdk import requests
from expert_cli.sdk.expert import Expert
from expert_cli.sdk.requests import Prepared, Request

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExpertManager", "LoadedExpertInfo", "Names", "composition"]

Names = None | str | Sequence[str] | Sequence[tuple[str, float]] | Mapping[str, float]


def composition(names: Names) -> list[tuple[str, float]]:
    """Names as callers give them -> ``[(name, weight), ...]``, lead first: ``None``/``[]`` is the bare base,
    ``"a"``, ``["a", "b"]`` (weight 1 each), ``{"a": 0.7, "b": 0.3}``, ``[("a", 0.7), ("b", 0.3)]``."""
    if names is None:
        return []
    if isinstance(names, str):
        return [(names, 1.0)]
    items = names.items() if isinstance(names, Mapping) else names
    out: list[tuple[str, float]] = []
    for item in items:
        name, weight = (item, 1.0) if isinstance(item, str) else (str(item[0]), float(item[1]))
        if any(existing == name for existing, _ in out):
            raise UsageError(f"expert `{name}` appears twice in one composition", hint="name each expert once")
        out.append((name, weight))
    return out


@dataclass
class LoadedExpertInfo:
    name: str
    label: str
    base_model: str
    device: str
    memory_bytes: int
    loaded_at: str
    last_used: str
    load_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ExpertManager:
    """Named experts with LRU eviction above ``max_loaded_experts`` and transparent reload on next use.

    ``base_model``: a base model folder (or name) used for prompts with no expert (``generate(None, ...)``).
    """

    def __init__(self, max_loaded_experts: int | None = None, device: str | None = None, *,
                 dtype: str | None = None, base_model: str | Path | None = None) -> None:
        if max_loaded_experts is not None and max_loaded_experts < 1:
            raise UsageError(f"`max_loaded_experts` must be at least 1, got `{max_loaded_experts}`")
        self.max_loaded_experts = max_loaded_experts
        self.device = device
        self.dtype = dtype
        self.base_model = base_model
        self.loads = 0
        self.evictions = 0
        self._sources: dict[str, dict[str, Any]] = {}
        self._loaded: OrderedDict[str, Expert] = OrderedDict()  # least recently used first
        self._bare_base: Any = None
        self._lock = threading.RLock()
        self.pinned: set[str] = set()  # experts in use elsewhere (a running batch): never evicted

    # -- loading ----------------------------------------------------------------------------------
    def load_expert(self, name: str, source: str | Path | None = None, *, base_model: str | None = None,
                    model_path: str | Path | None = None, lazy: bool = False, allow_unsigned: bool = False,
                    allow_untrusted: bool = False) -> LoadedExpertInfo | None:
        """Load ``source`` (folder, ``.expert`` file, installed name; default: ``name`` as installed name)
        under ``name``, evicting the least recently used expert when over the limit. ``lazy``: only remember
        the source; the expert loads on its first use (returns None)."""
        with self._lock:
            if name in self._sources:
                self.unload_expert(name)
            self._sources[name] = {"source": source if source is not None else name, "base_model": base_model,
                                   "model_path": model_path, "allow_unsigned": allow_unsigned,
                                   "allow_untrusted": allow_untrusted}
            if lazy:
                return None
            try:
                self._ensure_loaded([name])
            except BaseException:
                del self._sources[name]  # a failed load leaves nothing behind
                raise
            return self._info(name)

    def unload_expert(self, name: str) -> None:
        """Unload and forget ``name``; using it later is an error until it is loaded again."""
        with self._lock:
            if name not in self._sources:
                raise InferenceError(f"expert `{name}` is not loaded", hint=self._loaded_hint())
            del self._sources[name]
            expert = self._loaded.pop(name, None)
            if expert is not None:
                expert.unload()

    def list_loaded_experts(self) -> list[LoadedExpertInfo]:
        with self._lock:
            return [self._info(name) for name in self._loaded]

    def expert(self, name: str) -> Expert:
        """The loaded :class:`Expert` behind ``name`` (loading it when it was evicted or is lazy)."""
        with self._lock:
            self._ensure_loaded([name])
            return self._loaded[name]

    def bare_base(self) -> Any:
        """The loaded base model that answers without experts (loaded now if need be)."""
        with self._lock:
            return self._base_for_bare()

    def close(self) -> None:
        """Unload everything."""
        with self._lock:
            for name in list(self._sources):
                self.unload_expert(name)
            if self._bare_base is not None:
                from expert_cli.runtime.pool import default_pool

                default_pool().drop(self._bare_base)
                self._bare_base = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generation -------------------------------------------------------------------------------
    def generate(self, name_or_names: Names, prompt: str, schema: str | None = None, **overrides: Any) -> Result:
        """Generate with one expert, several composed (a list, or a dict of weights), or none (None)."""
        return self.generate_batch([prompt], name_or_names, schema, **overrides)[0]

    def generate_stream(self, name_or_names: Names, prompt: str, schema: str | None = None,
                        **overrides: Any) -> Any:
        """A :class:`~expert_cli.runtime.generate.TextStream`; see :meth:`Expert.generate_stream`."""
        return requests.stream(self.prepare(name_or_names, Request.from_keywords(prompt, schema, overrides)))

    def generate_batch(self, prompts: Sequence[str], experts: Names = None, schema: str | None = None, *,
                       row_experts: Sequence[Names] | None = None, **overrides: Any) -> list[Result]:
        """Several prompts decoded together: every row with ``experts``, or row ``i`` with
        ``row_experts[i]`` (a mixed-expert batch; rows on different base models run as separate batches)."""
        if row_experts is not None and (experts is not None or len(row_experts) != len(prompts)):
            raise UsageError("`row_experts` needs one entry per prompt, and no `experts` beside it")
        per_row = list(row_experts) if row_experts is not None else [experts] * len(prompts)
        return self.generate_requests([(names, Request.from_keywords(prompt, schema, dict(overrides)))
                                       for prompt, names in zip(prompts, per_row)])

    def generate_requests(self, batch: Sequence[tuple[Names, Request]]) -> list[Result]:
        """Each request with its own experts and options, decoded together where they share a base."""
        with self._lock:
            needed = list(dict.fromkeys(name for names, _ in batch for name, _ in composition(names)))
            self._check_capacity(needed)
            self._ensure_loaded(needed)
            prepared = [self.prepare(names, request) for names, request in batch]
            return requests.run(prepared)

    def prepare(self, names: Names, request: Request) -> Prepared:
        """``request`` rendered for the composition ``names`` (loading what is missing)."""
        with self._lock:
            base, members = self._composition(names)
            return requests.prepare(base, members, request)

    # -- internals --------------------------------------------------------------------------------
    def _composition(self, names: Names) -> tuple[Any, list[Any]]:
        weighted = composition(names)
        if not weighted:
            return self._base_for_bare(), []
        self._check_capacity([name for name, _ in weighted])
        self._ensure_loaded([name for name, _ in weighted])
        experts = [self._loaded[name] for name, _ in weighted]
        if len({id(expert.base) for expert in experts}) > 1:
            raise CompositionError(f"experts {', '.join(f'`{n}`' for n, _ in weighted)} are on different base "
                                 "models (or RoPE settings) and cannot be composed",
                                 hint="compose experts trained on one base model")
        now = time.time()
        for expert in experts:
            expert.last_used = now
        return experts[0].base, [m for e, (_, w) in zip(experts, weighted) for m in e.members(w)]

    def _check_capacity(self, names: list[str]) -> None:
        if self.max_loaded_experts is not None and len(names) > self.max_loaded_experts:
            raise UsageError(f"{len(names)} experts in one request but `max_loaded_experts` is "
                             f"{self.max_loaded_experts}", hint="raise `max_loaded_experts` or split the batch")

    def _ensure_loaded(self, names: list[str]) -> None:
        for name in names:
            if name not in self._sources:
                raise InferenceError(f"expert `{name}` is not loaded", hint=self._loaded_hint())
            if name in self._loaded:
                self._loaded.move_to_end(name)
                continue
            source = self._sources[name]
            self._loaded[name] = Expert.load(source["source"], self.device, base_model=source["base_model"],
                                             model_path=source["model_path"], dtype=self.dtype,
                                             allow_unsigned=source["allow_unsigned"],
                                             allow_untrusted=source["allow_untrusted"])
            self.loads += 1
            self._evict(keep=set(names))

    def _evict(self, keep: set[str]) -> None:
        limit = self.max_loaded_experts
        while limit is not None and len(self._loaded) > limit:
            victim = next((name for name in self._loaded if name not in keep and name not in self.pinned), None)
            if victim is None:
                return
            self._loaded.pop(victim).unload()  # its source stays known: the next use reloads it
            self.evictions += 1

    def _base_for_bare(self) -> Any:
        if self._bare_base is None:
            if self.base_model is None and self._loaded:
                return next(reversed(self._loaded.values())).base  # the most recently used expert's base
            if self.base_model is None:
                raise UsageError("no expert given and no `base_model` to run without one",
                                 hint="pass `ExpertManager(base_model=...)` or name an expert")
            from expert_cli.models.resolve import resolve_base_model
            from expert_cli.runtime.pool import default_pool

            self._bare_base = default_pool().acquire(resolve_base_model(str(self.base_model)), self.device,
                                                     self.dtype)
        return self._bare_base

    def _info(self, name: str) -> LoadedExpertInfo:
        expert = self._loaded[name]
        attached = expert.base.adapters[expert.slot]
        return LoadedExpertInfo(name, expert.bundle.label, expert.bundle.base_model.name, expert.device,
                                attached.nbytes, _iso(expert.loaded_at), _iso(expert.last_used),
                                round(attached.load_seconds, 6))

    def _loaded_hint(self) -> str:
        known = ", ".join(f"`{n}`" for n in self._sources) or "none"
        return f"load it with `manager.load_expert(name, source)` (loaded: {known})"
