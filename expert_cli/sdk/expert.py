"""One expert attached to its base model: :class:`Expert`.

    from expert_cli import Expert
    sql = Expert.load("sql")                              # installed name, folder, or .expert file
    print(sql.generate("Users older than 30", schema="CREATE TABLE users (id INT, age INT)").text)
    for piece in sql.generate_stream("Count the orders"):
        print(piece, end="")

Importing this module does not import torch; the first load does. Every Expert and ExpertManager in a
process shares the same loaded bases (:func:`expert_cli.runtime.pool.default_pool`), so experts on one base
model share one copy of it and switch without reloading; experts on different bases each get theirs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InferenceError
from expert_cli.runtime.results import Result
from expert_cli.sdk import requests
from expert_cli.sdk.requests import Request

__all__ = ["Expert", "Result"]


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
             model_path: str | Path | None = None, dtype: str | None = None, allow_unsigned: bool = False,
             allow_untrusted: bool = False) -> Expert:
        """Load an expert from a folder, a ``.expert`` file or an installed name (``sql``, ``sql@0.3.0``).

        ``device``: ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``, ``mps``. ``base_model`` picks one of
        a multi-model manifest's base models; ``model_path`` overrides where the base weights are read from.
        The trust policy of ``install`` applies: an unsigned package needs ``allow_unsigned=True``; a package
        signed by a key not trusted here, or an installed expert whose key was revoked, ``allow_untrusted``.
        """
        from expert_cli.models.resolve import resolve_base_model
        from expert_cli.packages.open import resolve_expert_source
        from expert_cli.runtime.bundle import open_expert
        from expert_cli.sdk.extras import require_extra

        require_extra("chat")
        from expert_cli.runtime.pool import default_pool

        folder = resolve_expert_source(source, allow_unsigned=allow_unsigned, allow_untrusted=allow_untrusted)
        bundle = open_expert(folder, base_model)
        pool = default_pool()
        path = Path(model_path) if model_path else resolve_base_model(bundle.base_model.name)
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
        return requests.stream(self.prepare(Request.from_keywords(prompt, schema, overrides)))

    def generate_batch(self, prompts: Sequence[str], schema: str | None = None, **overrides: Any) -> list[Result]:
        """Answers for several prompts decoded together (same results as one at a time), in order."""
        return requests.run([self.prepare(Request.from_keywords(prompt, schema, dict(overrides)))
                             for prompt in prompts])

    def prepare(self, request: Request, *, with_adapter: bool = True) -> requests.Prepared:
        """``request`` rendered for this expert (or, ``with_adapter=False``, for its bare base with this
        expert's decoding settings left to the caller)."""
        self.last_used = time.time()
        return requests.prepare(self._loaded(), self.members() if with_adapter else [], request)

    def unload(self) -> None:
        """Detach the adapter (and free the base when nothing else uses it). Later calls raise."""
        if self.base is None:
            return
        base, self.base = self.base, None
        base.release_adapter(self.slot)
        self._pool.drop(base)

    def members(self, weight: float = 1.0) -> list[Any]:
        """This expert as a member of a composition, with ``weight``."""
        from expert_cli.runtime.generate import Member

        return [Member(self.slot, self.bundle, weight)]

    def _loaded(self) -> Any:
        if self.base is None:
            raise InferenceError(f"expert `{self.bundle.label}` was unloaded",
                                 hint="load it again with `Expert.load(...)`")
        return self.base


