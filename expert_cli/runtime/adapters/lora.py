"""LoRA, rsLoRA and DoRA (PEFT type ``LORA``), applied unmerged.

On top of ``base = W x + b`` (``w`` = the expert's weight in the composition):

- LoRA: ``+ w * s * B(A(x))`` with ``s = alpha / r`` (``alpha / sqrt(r)`` for rsLoRA; ``rank_pattern`` and
  ``alpha_pattern`` honoured); one ``mm`` and one ``addmm`` whose ``alpha`` folds in ``w * s``.
- DoRA (``use_dora``, a ``lora_magnitude_vector`` per module): ``+ w * ((g - 1) * (W x) + g * s * B(A(x)))``
  with ``g = m / ||W + s B A||_row``, the magnitude over the row norm, precomputed once at load (PEFT
  recomputes the norm each forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from expert_cli.runtime.adapters.files import (
    AdapterFile,
    incomplete,
    misfit,
    pattern_value,
    read_module_slots,
)
from expert_cli.runtime.adapters.linear import AdapterWeights, DeltaSlot

SUFFIXES = {
    ".lora_A.weight": "a",
    ".lora_B.weight": "b",
    ".lora_magnitude_vector.weight": "m",
    ".lora_magnitude_vector": "m",
}


@dataclass
class LoraSlot(DeltaSlot):
    a: torch.Tensor  # (r, in)
    b: torch.Tensor  # (out, r)
    scale: float
    gatherable = True

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.a, self.b

    def add_to(self, out: torch.Tensor | None, x: torch.Tensor, base: torch.Tensor, weight: float,
               bias: torch.Tensor | None) -> torch.Tensor:
        shape = base.shape
        hidden = torch.mm(x.reshape(-1, x.shape[-1]), self.a.t())
        if out is None:
            return (torch.mm(hidden, self.b.t()) * (weight * self.scale)).view(shape)
        return torch.addmm(out.reshape(-1, shape[-1]), hidden, self.b.t(), alpha=weight * self.scale).view(shape)


@dataclass
class DoraSlot(LoraSlot):
    factor: torch.Tensor  # (out,) = magnitude / ||W + s B A||
    gatherable = False

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.a, self.b, self.factor

    def add_to(self, out: torch.Tensor | None, x: torch.Tensor, base: torch.Tensor, weight: float,
               bias: torch.Tensor | None) -> torch.Tensor:
        lora = super().add_to(None, x, base, 1.0, bias)  # s * B(A(x))
        plain = base - bias if bias is not None else base
        delta = (self.factor - 1) * plain + self.factor * lora
        delta = delta * weight if weight != 1.0 else delta
        return delta if out is None else out + delta


def read(file: AdapterFile, model: nn.Module, dtype: torch.dtype) -> AdapterWeights:
    def make_slot(parts: dict[str, torch.Tensor], base: nn.Linear, module_path: str) -> LoraSlot:
        if "a" not in parts or "b" not in parts:
            raise incomplete(file.folder, module_path, "LoRA pair")
        scale = lora_scale(file.config, module_path, parts["a"].shape[0])
        return lora_slot(parts, scale, base, module_path, file.folder, dtype)

    return AdapterWeights(slots=read_module_slots(file, model, SUFFIXES, make_slot))


def lora_slot(parts: dict[str, torch.Tensor], scale: float, base: nn.Linear, module_path: str, folder: Path,
              dtype: torch.dtype) -> LoraSlot:
    """The slot for ``parts`` ``a`` and ``b`` (a DoRA slot when a magnitude ``m`` comes with them)."""
    a, b = parts["a"], parts["b"]
    rank = a.shape[0]
    if a.shape != (rank, base.in_features) or b.shape != (base.out_features, rank):
        raise misfit(folder, module_path, f"LoRA shapes {tuple(a.shape)} and {tuple(b.shape)}", base)
    a, b = a.to(dtype).contiguous(), b.to(dtype).contiguous()
    if "m" not in parts:
        return LoraSlot(a=a, b=b, scale=scale)
    return DoraSlot(a=a, b=b, scale=scale, factor=dora_factor(base.weight, a, b, scale, parts["m"].flatten()))


def lora_scale(config: dict[str, Any], module_path: str, rank: int) -> float:
    alpha = pattern_value(config.get("alpha_pattern") or {}, module_path, config.get("lora_alpha", 8))
    if config.get("use_rslora"):
        return float(alpha) / math.sqrt(rank)
    return float(alpha) / rank


def dora_factor(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float,
                magnitude: torch.Tensor) -> torch.Tensor:
    """``magnitude / ||W + scale * B A||`` per output row, computed in float32, returned in W's dtype."""
    combined = weight.float() + scale * (b.float() @ a.float())
    return (magnitude.float() / torch.linalg.norm(combined, dim=1)).to(weight.dtype)
