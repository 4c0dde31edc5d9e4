"""The optional extras each job needs, checked before any work starts: a machine without them gets one
``error:`` line naming the ``pip install 'expert-cli[...]'`` that fixes it, never an import traceback."""

from __future__ import annotations

from expert_cli.core.errors import require

EXTRAS: dict[str, tuple[str, ...]] = {
    "chat": ("torch", "transformers", "safetensors", "tokenizers"),
    "train": ("torch", "transformers", "peft", "trl", "datasets", "safetensors"),
    "serve": ("uvicorn", "starlette", "torch", "transformers", "safetensors", "tokenizers"),
    "gateway": ("uvicorn", "starlette", "prometheus_client", "httpx"),
    "ray": ("ray", "uvicorn", "starlette", "torch", "transformers", "safetensors", "tokenizers"),
}


def require_extra(extra: str) -> None:
    """Raise :class:`~expert_cli.core.errors.MissingDependencyError` for the first module of ``extra`` that
    cannot be imported."""
    for module in EXTRAS[extra]:
        require(module, extra)
