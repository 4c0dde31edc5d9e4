"""The Python SDK: :class:`Expert` for one expert, :class:`ExpertManager` for many on shared bases.

    from expert_cli import Expert, ExpertManager
    sql = Expert.load("sql")                              # installed name, folder, or .expert file
    print(sql.generate("Users older than 30", schema="CREATE TABLE users (id INT, age INT)").text)
    for piece in sql.generate_stream("Count the orders"):
        print(piece, end="")

    manager = ExpertManager(max_loaded_experts=4)
    manager.load_expert("sql", "experts/expert-sql")
    manager.load_expert("neo4j", "expert-neo4j@0.1.0")
    manager.generate(["sql", "neo4j"], "...")             # composed: both adapters active at once

Importing this module does not import torch; the first load does. Every Expert and ExpertManager in a
process shares the same loaded bases (:func:`expert_cli.runtime.pool.default_pool`), so experts on one
base model share one copy of it and switch without reloading; experts on different bases each get theirs.
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

from expert_cli.core.errors import InferenceError, UsageError
from expert_cli.runtime.results import Result

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Expert", "ExpertManager", "LoadedExpertInfo", "Result"]

Names = None | str | Sequence[str] | Mapping[str, float]
_OPTION_NAMES = ("system", "history", "enable_thinking", "show_reasoning", "grammar", "json_schema")


def _options(schema: str | None, kwargs: dict[str, Any]) -> Any:
    """Split keyword arguments into prompt options and decoding overrides."""
    from expert_cli.runtime.generate import PromptOptions

    picked = {name: kwargs.pop(name) for name in _OPTION_NAMES if name in kwargs}
    return PromptOptions(schema=schema, overrides=kwargs, **picked)


class Expert:
    """One expert attached to its base model. Create with :meth:`Expert.load`."""

    def __init__(self, bundle: Any, base: Any, slot: str, pool: Any) -> None:
        self.bundle = bundle
        self.base = base
        self.slot = slot
        self._pool = pool
        self.loaded_at = time.time()
        self.last_used = self.loaded_at

    @classmethod
    def load(cls, source: str | Path, device: str | None = None, *, base_model: str | None = None,
             model_path: str | Path | None = None, dtype: str | None = None) -> Expert:
        """Load an expert from a folder, a ``.expert`` file or an installed name (``sql``, ``sql@0.3.0``).

        ``device``: ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``, ``mps``. ``base_model`` picks one of
        a multi-model manifest's base models; ``model_path`` overrides where the base weights are read from.
        """
        from expert_cli.runtime.generate import base_model_path
        from expert_cli.runtime.bundle import open_expert
        from expert_cli.runtime.pool import default_pool
        from expert_cli.packages.open import resolve_expert_source

        bundle = open_expert(resolve_expert_source(source), base_model)
        pool = default_pool()
        path = Path(model_path) if model_path else base_model_path(bundle.base_model.name)
        base = pool.acquire(path, device, dtype, bundle.rope_scaling)
        try:
            slot = base.acquire_adapter(bundle.label, bundle.adapter_dir, bundle.soft_prompt_files)
        except BaseException:
            pool.drop(base)
            raise
        return cls(bundle, base, slot, pool)

    # -- identity ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def manifest(self) -> Any:
        return self.bundle.manifest

    @property
    def device(self) -> str:
        return self._loaded().placement.device

    @property
    def memory_bytes(self) -> int:
        """Bytes of this expert's adapter tensors (the shared base is not counted)."""
        return self._loaded().adapters[self.slot].nbytes

    def __repr__(self) -> str:
        state = "unloaded" if self.base is None else self.base.placement.device
        return f"Expert({self.bundle.label!r}, {state})"

    # -- generation -------------------------------------------------------------------------------
    def generate(self, prompt: str, schema: str | None = None, **overrides: Any) -> Result:
        """One answer. Overrides: ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``top_k``,
        ``min_p``, ``repetition_penalty``, ``stop``, ``seed``; options: ``system``, ``history``,
        ``enable_thinking``, ``show_reasoning``, ``grammar`` (False turns the expert's grammar off),
        ``json_schema`` (a JSON Schema dict: the answer is JSON it accepts, instead of the expert's grammar)."""
        return self.generate_batch([prompt], schema, **overrides)[0]

    def generate_stream(self, prompt: str, schema: str | None = None, **overrides: Any) -> Any:
        """A :class:`~expert_cli.runtime.generate.TextStream` of text pieces; ``.result`` when done,
        ``.close()`` to stop early (returns the partial Result)."""
        from expert_cli.runtime.generate import TextStream, prepare_row

        base, members = self._loaded(), self._members()
        self.last_used = time.time()
        return TextStream(base, prepare_row(base, prompt, members, _options(schema, overrides)), members)

    def generate_batch(self, prompts: Sequence[str], schema: str | None = None, **overrides: Any) -> list[Result]:
        """Answers for several prompts decoded together (same results as one at a time), in order."""
        from expert_cli.runtime.generate import generate_rows, prepare_row

        base, members = self._loaded(), self._members()
        options = _options(schema, overrides)
        self.last_used = time.time()
        rows = [prepare_row(base, prompt, members, options) for prompt in prompts]
        return generate_rows(base, rows, [members] * len(rows))

    def unload(self) -> None:
        """Detach the adapter (and free the base when nothing else uses it). Later calls raise."""
        if self.base is None:
            return
        base, self.base = self.base, None
        base.release_adapter(self.slot)
        self._pool.drop(base)

    def _members(self) -> list[Any]:
        from expert_cli.runtime.generate import Member

        return [Member(self.slot, self.bundle)]

    def _loaded(self) -> Any:
        if self.base is None:
            raise InferenceError(f"expert `{self.bundle.label}` was unloaded",
                                 hint="load it again with `Expert.load(...)`")
        return self.base


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

    # -- loading ----------------------------------------------------------------------------------
    def load_expert(self, name: str, source: str | Path | None = None, *, base_model: str | None = None,
                    model_path: str | Path | None = None) -> LoadedExpertInfo:
        """Load ``source`` (folder, ``.expert`` file, installed name; default: ``name`` as installed name)
        under ``name``, evicting the least recently used expert when over the limit."""
        with self._lock:
            if name in self._loaded:
                self.unload_expert(name)
            self._sources[name] = {"source": source if source is not None else name, "base_model": base_model,
                                   "model_path": model_path}
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
        from expert_cli.runtime.generate import TextStream, prepare_row

        with self._lock:
            base, members = self._composition(name_or_names)
            row = prepare_row(base, prompt, members, _options(schema, overrides))
        return TextStream(base, row, members)

    def generate_batch(self, prompts: Sequence[str], experts: Names = None, schema: str | None = None, *,
                       row_experts: Sequence[Names] | None = None, **overrides: Any) -> list[Result]:
        """Several prompts decoded together: every row with ``experts``, or row ``i`` with
        ``row_experts[i]`` (a mixed-expert batch; rows on different base models run as separate batches)."""
        from expert_cli.runtime.generate import generate_rows, prepare_row

        if row_experts is not None and (experts is not None or len(row_experts) != len(prompts)):
            raise UsageError("`row_experts` needs one entry per prompt, and no `experts` beside it")
        per_row = list(row_experts) if row_experts is not None else [experts] * len(prompts)
        options = _options(schema, overrides)
        needed = list(dict.fromkeys(name for names in per_row for name, _ in _weighted(names)))
        with self._lock:
            self._check_capacity(needed)
            self._ensure_loaded(needed)
            prepared = []
            for prompt, names in zip(prompts, per_row):
                base, members = self._composition(names)
                prepared.append((base, prepare_row(base, prompt, members, options), members))
            results: list[Result | None] = [None] * len(prompts)
            for base in {id(item[0]): item[0] for item in prepared}.values():
                indexes = [i for i, item in enumerate(prepared) if item[0] is base]
                outputs = generate_rows(base, [prepared[i][1] for i in indexes], [prepared[i][2] for i in indexes])
                for index, result in zip(indexes, outputs):
                    results[index] = result
        return results  # type: ignore[return-value]

    # -- internals --------------------------------------------------------------------------------
    def _composition(self, names: Names) -> tuple[Any, list[Any]]:
        from expert_cli.runtime.generate import Member

        weighted = _weighted(names)
        if not weighted:
            return self._base_for_bare(), []
        self._check_capacity([name for name, _ in weighted])
        self._ensure_loaded([name for name, _ in weighted])
        experts = [self._loaded[name] for name, _ in weighted]
        bases = {id(expert.base) for expert in experts}
        if len(bases) > 1:
            raise InferenceError(f"experts {', '.join(f'`{n}`' for n, _ in weighted)} are on different base "
                                 "models and cannot be composed", hint="compose experts trained on one base model")
        now = time.time()
        for expert in experts:
            expert.last_used = now
        return experts[0].base, [Member(e.slot, e.bundle, w) for e, (_, w) in zip(experts, weighted)]

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
                                             model_path=source["model_path"], dtype=self.dtype)
            self.loads += 1
            self._evict(keep=set(names))

    def _evict(self, keep: set[str]) -> None:
        limit = self.max_loaded_experts
        while limit is not None and len(self._loaded) > limit:
            victim = next((name for name in self._loaded if name not in keep), None)
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
            from expert_cli.runtime.generate import base_model_path
            from expert_cli.runtime.pool import default_pool

            self._bare_base = default_pool().acquire(base_model_path(str(self.base_model)), self.device, self.dtype)
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


def _weighted(names: Names) -> list[tuple[str, float]]:
    if names is None:
        return []
    if isinstance(names, str):
        return [(names, 1.0)]
    if isinstance(names, Mapping):
        return [(str(k), float(v)) for k, v in names.items()]
    return [(item, 1.0) if isinstance(item, str) else (str(item[0]), float(item[1])) for item in names]
