"""A PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) as its method modules read it.

No PEFT model is built: tensors go from the file straight to the target device, keyed by the base model's
module paths (``base_model.model.`` stripped). Each method names the tensor suffixes it understands
(:func:`read_module_slots`); any other tensor in the file (``modules_to_save``, LoRA biases, LoKr's
convolution factor, ...) is refused by name rather than silently ignored. Importing this module loads no
torch (:mod:`expert_cli.runtime.bundle` uses :data:`CONFIG_FILE`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expert_cli.core.errors import InferenceError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from expert_cli.runtime.adapters.linear import Slot

CONFIG_FILE = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
_PREFIX = "base_model.model."
OTHER_BASE_HINT = "the adapter was trained for another base model"


@dataclass(frozen=True)
class AdapterFile:
    """An adapter folder read from disk: its config and its tensors (already on the target device)."""

    folder: Path
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]


def read_adapter_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InferenceError(f"no `{CONFIG_FILE}` in `{folder}`",
                             hint="point at a PEFT adapter folder (as written by `expert-cli train`)") from exc
    except (OSError, ValueError) as exc:
        raise InferenceError(f"cannot read `{path}`: {exc}") from exc
    if not isinstance(config, dict):
        raise InferenceError(f"`{path}` must hold a JSON object")
    return config


def load_tensors(folder: Path, device: str) -> dict[str, torch.Tensor]:
    """The adapter's tensors, read straight onto ``device``."""
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            import torch
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                if name.endswith(".safetensors"):
                    return load_file(str(path), device=device)
                return torch.load(path, map_location=device, weights_only=True)
            except (OSError, RuntimeError, ValueError, SafetensorError) as exc:
                raise InferenceError(f"cannot read adapter weights `{path}`: {exc}") from exc
    raise InferenceError(f"no adapter weights (`{WEIGHT_FILES[0]}`) in `{folder}`",
                         hint="train the expert first (`expert-cli train`) or point at its adapter folder")


def read_module_slots(file: AdapterFile, model: nn.Module, suffixes: dict[str, str],
                      make_slot: Callable[[dict[str, torch.Tensor], nn.Linear, str], Slot | None]
                      ) -> dict[str, Slot]:
    """One slot per targeted module: its tensors grouped by ``suffixes`` (tensor suffix -> part name) and
    handed with the module's base Linear layer and path to ``make_slot`` (which may return None to skip it)."""
    slots: dict[str, Slot] = {}
    for module_path, parts in _group_by_module(file, suffixes).items():
        slot = make_slot(parts, target_linear(model, module_path, file.folder), module_path)
        if slot is not None:
            slots[module_path] = slot
    return slots


def _group_by_module(file: AdapterFile, suffixes: dict[str, str]) -> dict[str, dict[str, torch.Tensor]]:
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in file.tensors.items():
        path = key.removeprefix(_PREFIX)
        suffix = next((s for s in suffixes if path.endswith(s)), None)
        if suffix is None:
            raise InferenceError(f"adapter `{file.folder}` holds `{key}`, which the runtime cannot apply unmerged "
                                 "(modules_to_save, biases and embedding adapters are not supported)")
        grouped.setdefault(path[: -len(suffix)], {})[suffixes[suffix]] = tensor
    return grouped


def target_linear(model: nn.Module, module_path: str, folder: Path) -> nn.Linear:
    from torch import nn

    try:
        module = model.get_submodule(module_path)
    except AttributeError as exc:
        raise InferenceError(f"adapter `{folder}` targets `{module_path}`, which this base model does not have",
                             hint=OTHER_BASE_HINT) from exc
    base = getattr(module, "base_layer", module)
    if not isinstance(base, nn.Linear):
        raise InferenceError(f"adapter `{folder}` targets `{module_path}`, a {type(base).__name__}; "
                             "only Linear layers are supported")
    return base


def misfit(folder: Path, module_path: str, what: str, base: nn.Linear) -> InferenceError:
    """The error for tensors whose shapes do not fit the targeted layer (``what`` names them)."""
    return InferenceError(f"adapter `{folder}` does not fit `{module_path}`: {what} for a "
                          f"{base.in_features}->{base.out_features} layer", hint=OTHER_BASE_HINT)


def incomplete(folder: Path, module_path: str, what: str) -> InferenceError:
    return InferenceError(f"adapter `{folder}` has an incomplete {what} for `{module_path}`")


def pattern_value(patterns: dict[str, Any], module_path: str, default: Any) -> Any:
    """PEFT's per-module override lookup (``rank_pattern``, ``alpha_pattern``): a pattern matches the end of
    the module path."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", module_path):
            return value
    return default
