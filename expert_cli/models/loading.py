"""Load a base model and its tokenizer from a local folder, with the manifest's RoPE scaling applied.

The manifest's ``rope_scaling`` (the original's shape: ``{"type": "ntk-by-parts", "factor": 8.0,
"original_max_position_embeddings": 8192, "max_position_embeddings": 32768, ...}``) is mapped onto the
transformers ``rope_parameters`` of the base config before the weights load:

- ``ntk-by-parts`` -> ``yarn`` with ``attention_factor`` 1.0 (YaRN is NTK-by-parts plus an attention
  temperature; without the temperature it is exactly NTK-by-parts);
- ``yarn``, ``linear``, ``dynamic``, ``longrope``, ``llama3`` -> the same transformers type
  (``ntk``/``dynamic-ntk`` -> ``dynamic``);
- ``none``/``default``/empty -> nothing changes. Anything else is an InferenceError.

Keys starting with ``_`` (comments) and keys transformers does not know (``fine_grained``) are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expert_cli.core.errors import InferenceError, ModelNotFoundError
from expert_cli.models.device import Placement, translate_oom

_ROPE_TYPES = {
    "ntk-by-parts": "yarn",
    "ntk_by_parts": "yarn",
    "yarn": "yarn",
    "linear": "linear",
    "dynamic": "dynamic",
    "ntk": "dynamic",
    "dynamic-ntk": "dynamic",
    "longrope": "longrope",
    "llama3": "llama3",
}
_ROPE_KEYS = ("factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow",
              "low_freq_factor", "high_freq_factor", "short_factor", "long_factor", "mscale", "mscale_all_dim",
              "truncate")


def rope_parameters(rope_scaling: Any, rope_theta: float) -> tuple[dict[str, Any] | None, int | None]:
    """``(rope_parameters, max_position_embeddings)`` for a manifest ``rope_scaling``; ``(None, None)`` = keep."""
    if not rope_scaling or not isinstance(rope_scaling, dict):
        return None, None
    kind = str(rope_scaling.get("rope_type", rope_scaling.get("type", "none"))).lower()
    if kind in ("none", "default"):
        return None, None
    if kind not in _ROPE_TYPES:
        raise InferenceError(f"unknown `rope_scaling` type `{kind}` in the manifest",
                             hint=f"use one of {', '.join(sorted(_ROPE_TYPES))}, or remove `rope_scaling`")
    params: dict[str, Any] = {"rope_type": _ROPE_TYPES[kind], "rope_theta": rope_theta}
    params.update({key: rope_scaling[key] for key in _ROPE_KEYS if key in rope_scaling})
    if "factor" not in params:
        raise InferenceError(f"`rope_scaling` of type `{kind}` needs a `factor`")
    if kind.startswith("ntk") and kind != "ntk" and "attention_factor" not in params:
        params["attention_factor"] = 1.0
    max_positions = rope_scaling.get("max_position_embeddings")
    return params, int(max_positions) if max_positions else None


def apply_rope_scaling(config: Any, rope_scaling: Any) -> None:
    """Set ``config.rope_parameters`` (and the longer ``max_position_embeddings``) from the manifest."""
    current = getattr(config, "rope_parameters", None) or {}
    theta = current.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    params, max_positions = rope_parameters(rope_scaling, theta)
    if params is None:
        return
    params.setdefault("original_max_position_embeddings", config.max_position_embeddings)
    config.rope_parameters = params
    if max_positions:
        config.max_position_embeddings = max_positions


def load_base_model(path: Path, placement: Placement, rope_scaling: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local model folder, on ``placement``, in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"no base model at `{path}` (no `config.json`)",
                                 hint="pass a model folder, or download it with `hf download <id>`")
    config = AutoConfig.from_pretrained(path)
    apply_rope_scaling(config, rope_scaling)
    options: dict[str, Any] = {"config": config, "dtype": placement.torch_dtype()}
    if placement.device != "cpu":
        options["device_map"] = placement.device
    with translate_oom("loading the base model", placement.device):
        try:
            model = AutoModelForCausalLM.from_pretrained(path, **options)
            tokenizer = AutoTokenizer.from_pretrained(path)
        except OSError as exc:
            raise ModelNotFoundError(f"cannot load the base model at `{path}`: {exc}") from exc
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, tokenizer


def disable_loading_progress() -> None:
    """Turn off transformers' own ``Loading weights`` bars, process-wide (for a CLI that shows no progress)."""
    from transformers.utils import logging

    logging.disable_progress_bar()
