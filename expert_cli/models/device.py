"""Where a base model runs and in which precision, and out-of-memory errors turned into ExpertErrors.

``auto`` (or None) picks CUDA when present (bf16 where the GPU supports it, else fp16), then Apple MPS (fp16),
else the CPU (fp32). ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are taken as given; anything else is a
UsageError (the original silently fell back to the CPU). Training resolves its device here too, without MPS
(``expert_cli.training.model.choose_device``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from expert_cli.core.errors import InferenceError, OutOfMemoryError, UsageError

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Placement:
    """A resolved device and dtype, by name (``cuda:0``, ``bfloat16``) so it can key caches without torch."""

    device: str
    dtype: str

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def torch_device(self) -> Any:
        import torch

        return torch.device(self.device)

    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)


def resolve_placement(device: str | None = None, dtype: str | None = None, *, mps: bool = True) -> Placement:
    """Turn a user's ``device`` (``auto``/None, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) into a Placement.

    ``mps=False`` leaves Apple MPS out (training): ``auto`` never picks it and ``mps`` is an unknown device.
    """
    import torch

    name = (device or "auto").strip().lower()
    if not _DEVICE.match(name) or (name == "mps" and not mps):
        choices = "`auto`, `cpu`, `cuda`, `cuda:N` or `mps`" if mps else "`auto`, `cpu`, `cuda` or `cuda:N`"
        raise UsageError(f"unknown device `{device}`", hint=f"use {choices}")
    if name == "auto":
        name = _auto_device(torch, mps)
    if name.startswith("cuda"):
        _check_cuda(torch, name)
        name = name if ":" in name else f"cuda:{torch.cuda.current_device()}"
    elif name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InferenceError("device `mps` was requested but MPS is not available", hint="use `--device cpu`")
    chosen = dtype or _default_dtype(torch, name)
    if chosen not in DTYPES:
        raise UsageError(f"unknown dtype `{dtype}`", hint=f"use one of {', '.join(DTYPES)}")
    return Placement(name, chosen)


def _auto_device(torch: Any, mps: bool) -> str:
    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    if mps and hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _check_cuda(torch: Any, name: str) -> None:
    if not torch.cuda.is_available():
        raise InferenceError(f"device `{name}` was requested but CUDA is not available",
                             hint="use `--device cpu` (or `auto`)")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise InferenceError(f"device `{name}` does not exist; this machine has {torch.cuda.device_count()} GPU(s)",
                             hint="use `cuda:0` or `auto`")


def _default_dtype(torch: Any, device: str) -> str:
    if device.startswith("cuda"):
        with torch.cuda.device(torch.device(device)):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OOM errors (CUDA, MPS, CPU allocator) and MemoryError."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


@contextlib.contextmanager
def translate_oom(action: str, device: str | None = None) -> Iterator[None]:
    """Re-raise an out-of-memory error during ``action`` as :class:`OutOfMemoryError` with a hint."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, OutOfMemoryError) or not is_out_of_memory(exc):
            raise
        _free_cached_memory()
        where = f" on `{device}`" if device else ""
        raise OutOfMemoryError(
            f"out of memory while {action}{where}",
            hint="use fewer prompts per batch, a smaller `max_tokens`, fewer loaded experts "
            "(`max_loaded_experts`), or `--device cpu`",
        ) from exc


def _free_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


SMALL_MODEL_PARAMETERS = 50_000_000


def preferred_cpu_threads(model: Any, on_cuda: bool, env_var: str) -> int | None:
    """Intra-op threads for ``model``: ``env_var`` when set; else 1 for a model under 50 M parameters on the
    CPU (unless ``OMP_NUM_THREADS`` is set); else None (torch's default).

    A small model's matrices are too small to split across threads: on this project's 2-core machines one
    thread ran the demo base 1.2x (idle) to 13x (other processes busy: OpenMP threads spin while they wait
    for a core) faster than two, in training and in serving alike.
    """
    import os

    value = os.environ.get(env_var, "").strip()
    if value.isdigit():
        return max(1, int(value))
    if on_cuda or os.environ.get("OMP_NUM_THREADS"):
        return None
    return 1 if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS else None


def apply_cpu_threads(model: Any, placement: Placement, env_var: str) -> None:
    """Set torch's intra-op threads to :func:`preferred_cpu_threads` for ``model``, when it prefers a number."""
    threads = preferred_cpu_threads(model, placement.on_cuda, env_var)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)

