"""Read a PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) into runtime slots.

No PEFT model is built: tensors go from the file straight to the target device and dtype, keyed by the base
model's module paths (``base_model.model.`` stripped). Supported: LoRA (rsLoRA, ``rank_pattern`` and
``alpha_pattern`` included), DoRA, AdaLoRA (read as the LoRA pair it computes: ``A * E`` and ``B``, scaled by
``lora_alpha / init_r``, each module with the ranks its allocation kept), LoKr on Linear layers (its two
Kronecker factors, each full or as a low-rank pair), IA3 and prompt tuning. Anything else in the file
(``modules_to_save``, LoRA biases, LoKr's convolution factor, ...) is refused by name rather than silently
ignored.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from expert_cli.core.errors import InferenceError
from expert_cli.runtime.adapters.layers import AdapterWeights, Ia3Slot, KronSlot, LoraSlot, dora_factor

CONFIG_FILE = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
_PREFIX = "base_model.model."
_SUFFIXES = (
    (".lora_A.weight", "a"),
    (".lora_B.weight", "b"),
    (".lora_magnitude_vector.weight", "m"),
    (".lora_magnitude_vector", "m"),
    (".ia3_l", "ia3"),
    (".lora_A", "a"),  # AdaLoRA keeps its factors as plain parameters: no ".weight"
    (".lora_B", "b"),
    (".lora_E", "e"),
    (".lokr_w1", "w1"),
    (".lokr_w1_a", "w1_a"),
    (".lokr_w1_b", "w1_b"),
    (".lokr_w2", "w2"),
    (".lokr_w2_a", "w2_a"),
    (".lokr_w2_b", "w2_b"),
)
SUPPORTED_TYPES = ("LORA", "ADALORA", "LOKR", "IA3", "PROMPT_TUNING")


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


def adapter_kind(config: dict[str, Any]) -> str:
    """``lora``, ``dora``, ``adalora``, ``lokr``, ``ia3`` or ``prompt_tuning``; InferenceError otherwise."""
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type not in SUPPORTED_TYPES:
        raise InferenceError(f"adapter type `{peft_type}` is not supported by the runtime "
                             f"(supported: {', '.join(t.lower() for t in SUPPORTED_TYPES)})")
    if peft_type == "LORA":
        return "dora" if config.get("use_dora") else "lora"
    return peft_type.lower()


def load_tensors(folder: Path, device: str) -> dict[str, torch.Tensor]:
    """The adapter's tensors, read straight onto ``device``."""
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
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


def read_adapter(folder: Path, model: nn.Module, device: str, dtype: torch.dtype) -> AdapterWeights:
    """Read the adapter in ``folder`` for ``model``: slots per module path, shapes checked against the base."""
    config = read_adapter_config(folder)
    kind = adapter_kind(config)
    tensors = load_tensors(folder, device)
    if kind == "prompt_tuning":
        return AdapterWeights(kind, prompt_embeddings=_prompt_embeddings(tensors, model, folder, dtype))
    grouped = _group_by_module(tensors, folder)
    slots: dict[str, Any] = {}
    for module_path, parts in grouped.items():
        base = _target_linear(model, module_path, folder)
        if kind == "adalora":
            parts = _adalora_as_lora(parts, module_path, config, folder)
            if parts is None:  # rank allocation kept none of this module's ranks
                continue
        if kind == "lokr":
            slots[module_path] = _kron_slot(parts, base, module_path, config, folder, dtype)
        elif "ia3" in parts:
            slots[module_path] = _ia3_slot(parts["ia3"], base, module_path, folder, dtype)
        else:
            slots[module_path] = _lora_slot(parts, base, module_path, config, folder, dtype)
    return AdapterWeights(kind, slots=slots)


def _group_by_module(tensors: dict[str, torch.Tensor], folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        path = key.removeprefix(_PREFIX)
        for suffix, part in _SUFFIXES:
            if path.endswith(suffix):
                grouped.setdefault(path[: -len(suffix)], {})[part] = tensor
                break
        else:
            raise InferenceError(f"adapter `{folder}` holds `{key}`, which the runtime cannot apply unmerged "
                                 "(modules_to_save, biases and embedding adapters are not supported)")
    return grouped


def _target_linear(model: nn.Module, module_path: str, folder: Path) -> nn.Module:
    try:
        module = model.get_submodule(module_path)
    except AttributeError as exc:
        raise InferenceError(f"adapter `{folder}` targets `{module_path}`, which this base model does not have",
                             hint="the adapter was trained for another base model") from exc
    base = getattr(module, "base_layer", module)
    if not isinstance(base, nn.Linear):
        raise InferenceError(f"adapter `{folder}` targets `{module_path}`, a {type(base).__name__}; "
                             "only Linear layers are supported")
    return base


def _lora_slot(parts: dict[str, torch.Tensor], base: nn.Linear, module_path: str, config: dict[str, Any],
               folder: Path, dtype: torch.dtype) -> LoraSlot:
    if "a" not in parts or "b" not in parts:
        raise InferenceError(f"adapter `{folder}` has an incomplete LoRA pair for `{module_path}`")
    a, b = parts["a"], parts["b"]
    rank = a.shape[0]
    if a.shape != (rank, base.in_features) or b.shape != (base.out_features, rank):
        raise InferenceError(
            f"adapter `{folder}` does not fit `{module_path}`: LoRA shapes {tuple(a.shape)} and {tuple(b.shape)} "
            f"for a {base.in_features}->{base.out_features} layer",
            hint="the adapter was trained for another base model")
    scale = float(parts["s"]) if "s" in parts else _lora_scale(config, module_path, rank)
    a, b = a.to(dtype).contiguous(), b.to(dtype).contiguous()
    factor = None
    if "m" in parts:
        factor = dora_factor(base.weight, a, b, scale, parts["m"].flatten())
    return LoraSlot(a=a, b=b, scale=scale, dora_factor=factor)


def _adalora_as_lora(parts: dict[str, torch.Tensor], module_path: str, config: dict[str, Any],
                     folder: Path) -> dict[str, torch.Tensor] | None:
    """AdaLoRA's update ``B @ (A * E) * alpha / (init_r + 1e-5)`` as a LoRA pair with its own scale (``s``).

    PEFT scales every module by the initial rank, whatever its allocation kept (``ranknum`` is not saved and
    is restored to ``init_r`` on load), so the scale does not depend on the rank read here."""
    if not {"a", "b", "e"} <= parts.keys():
        raise InferenceError(f"adapter `{folder}` has an incomplete AdaLoRA triple for `{module_path}`")
    a, b, e = parts["a"], parts["b"], parts["e"]
    if a.shape[0] == 0:
        return None
    init_r = float(config.get("init_r") or a.shape[0])
    alpha = float(config.get("lora_alpha") or 0) or init_r
    return {"a": a * e.reshape(-1, 1), "b": b, "s": torch.tensor(alpha / (init_r + 1e-5))}


def _kron_slot(parts: dict[str, torch.Tensor], base: nn.Linear, module_path: str, config: dict[str, Any],
               folder: Path, dtype: torch.dtype) -> KronSlot:
    """LoKr's update ``(W1 kron W2) * alpha / r``; a factor saved as a low-rank pair is multiplied out."""
    factors = []
    for name in ("w1", "w2"):
        if name in parts:
            factors.append(parts[name])
        elif f"{name}_a" in parts and f"{name}_b" in parts:
            factors.append(parts[f"{name}_a"] @ parts[f"{name}_b"])
        else:
            raise InferenceError(f"adapter `{folder}` has an incomplete LoKr factor `{name}` "
                                 f"for `{module_path}`")
    w1, w2 = factors
    if w1.dim() != 2 or w2.dim() != 2 or (w1.shape[0] * w2.shape[0], w1.shape[1] * w2.shape[1]) != (
            base.out_features, base.in_features):
        raise InferenceError(
            f"adapter `{folder}` does not fit `{module_path}`: LoKr factors {tuple(w1.shape)} and "
            f"{tuple(w2.shape)} for a {base.in_features}->{base.out_features} layer",
            hint="the adapter was trained for another base model")
    rank = _pattern_value(config.get("rank_pattern") or {}, module_path, config.get("r", 8))
    alpha = _pattern_value(config.get("alpha_pattern") or {}, module_path, config.get("alpha", rank))
    scale = float(alpha) / float(rank)
    return KronSlot(w1=w1.to(dtype).contiguous(), w2=w2.to(dtype).contiguous(), scale=scale)


def _lora_scale(config: dict[str, Any], module_path: str, rank: int) -> float:
    alpha = _pattern_value(config.get("alpha_pattern") or {}, module_path, config.get("lora_alpha", 8))
    if config.get("use_rslora"):
        return float(alpha) / math.sqrt(rank)
    return float(alpha) / rank


def _pattern_value(patterns: dict[str, Any], module_path: str, default: Any) -> Any:
    """PEFT's per-module override lookup: a pattern matches the end of the module path."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", module_path):
            return value
    return default


def _ia3_slot(vector: torch.Tensor, base: nn.Linear, module_path: str, folder: Path,
              dtype: torch.dtype) -> Ia3Slot:
    feedforward = vector.dim() == 2 and vector.shape[0] == 1
    expected = base.in_features if feedforward else base.out_features
    if vector.numel() != expected:
        raise InferenceError(f"adapter `{folder}` does not fit `{module_path}`: IA3 vector of {vector.numel()} "
                             f"values for a {base.in_features}->{base.out_features} layer",
                             hint="the adapter was trained for another base model")
    return Ia3Slot(vector=vector.flatten().to(dtype).contiguous(), feedforward=feedforward)


def read_soft_prompt(path: Path, model: nn.Module, tokenizer: Any, device: str,
                     dtype: torch.dtype) -> torch.Tensor:
    """A soft prompt's embeddings, ``(tokens, hidden)``: the tensor file ``expert-cli train`` writes
    (``.safetensors``, or ``torch.save`` of the tensor or of ``{"prompt_embeddings": tensor}``), or UTF-8 text
    as the original runtime read soft prompts, whose tokens' embeddings are used (the same as prepending the
    text's tokens)."""
    tensor = _soft_prompt_tensor(path, device)
    if tensor is None:
        ids = tokenizer(path.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
        if not ids:
            raise InferenceError(f"soft prompt `{path}` is empty", hint="write text or a tensor file there")
        with torch.no_grad():
            tensor = model.get_input_embeddings()(torch.tensor(ids, device=device))
    hidden = model.get_input_embeddings().embedding_dim
    if tensor.dim() != 2 or tensor.shape[1] != hidden:
        raise InferenceError(f"soft prompt `{path}` holds a {tuple(tensor.shape)} tensor; a base of hidden "
                             f"size {hidden} needs (tokens, {hidden})",
                             hint="the soft prompt was trained for another base model")
    return tensor.detach().to(dtype).contiguous()


_TORCH_SAVE_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive, or a legacy pickle


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _soft_prompt_tensor(path: Path, device: str) -> torch.Tensor | None:
    """The tensor in a soft-prompt file, or None when the file is text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InferenceError(f"cannot read soft prompt `{path}`: {exc.strerror or exc}") from exc
    binary = path.suffix == ".safetensors" or data.startswith(_TORCH_SAVE_MAGIC)
    if not binary and _is_text(data):
        return None
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load

            loaded: Any = {name: tensor.to(device) for name, tensor in load(data).items()}
        else:
            loaded = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # whatever a corrupt file makes the (safe) unpicklers raise: one clear error
        raise InferenceError(f"cannot read soft prompt `{path}`: {exc}",
                             hint="a soft prompt is a tensor file written by `expert-cli train`, or text") from exc
    if isinstance(loaded, dict):
        tensors = [value for value in loaded.values() if isinstance(value, torch.Tensor)]
        loaded = loaded.get("prompt_embeddings", tensors[0] if len(tensors) == 1 else None)
    if not isinstance(loaded, torch.Tensor):
        raise InferenceError(f"soft prompt `{path}` holds no single tensor",
                             hint='save the embeddings tensor, or {"prompt_embeddings": tensor}')
    return loaded


def _prompt_embeddings(tensors: dict[str, torch.Tensor], model: nn.Module, folder: Path,
                       dtype: torch.dtype) -> torch.Tensor:
    embeddings = tensors.get("prompt_embeddings")
    hidden = model.get_input_embeddings().embedding_dim
    if embeddings is None or embeddings.dim() != 2 or embeddings.shape[1] != hidden:
        raise InferenceError(f"adapter `{folder}` has no usable `prompt_embeddings` for a base of hidden size "
                             f"{hidden}", hint="the adapter was trained for another base model")
    return embeddings.to(dtype).contiguous()
