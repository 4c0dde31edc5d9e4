"""LoKr on Linear layers (PEFT type ``LOKR``), applied unmerged.

The update is ``w * s * (W1 kron W2) x`` with ``s = alpha / r`` (``rank_pattern`` and ``alpha_pattern``
honoured), each factor saved full or as a low-rank pair (multiplied out at load). It is computed without
forming the Kronecker product: ``x`` reshaped to ``(in1, in2)`` gives ``W1 X W2^T``, reshaped back to
``out1 * out2``. LoKr's convolution factor (``lokr_t2``) is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

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

SUFFIXES = {f".lokr_{name}": name for name in ("w1", "w1_a", "w1_b", "w2", "w2_a", "w2_b")}


@dataclass
class KronSlot(DeltaSlot):
    w1: torch.Tensor  # (out1, in1)
    w2: torch.Tensor  # (out2, in2); the layer is out1 * out2 by in1 * in2
    scale: float

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.w1, self.w2

    def add_to(self, out: torch.Tensor | None, x: torch.Tensor, base: torch.Tensor, weight: float,
               bias: torch.Tensor | None) -> torch.Tensor:
        grid = x.reshape(-1, self.w1.shape[1], self.w2.shape[1])
        delta = torch.matmul(torch.matmul(self.w1, grid), self.w2.t()).reshape(*x.shape[:-1], -1)
        delta = delta * (weight * self.scale)
        return delta if out is None else out + delta


def read(file: AdapterFile, model: nn.Module, dtype: torch.dtype) -> AdapterWeights:
    def make_slot(parts: dict[str, torch.Tensor], base: nn.Linear, module_path: str) -> KronSlot:
        w1, w2 = (_factor(parts, name, module_path, file) for name in ("w1", "w2"))
        if w1.dim() != 2 or w2.dim() != 2 or (w1.shape[0] * w2.shape[0], w1.shape[1] * w2.shape[1]) != (
                base.out_features, base.in_features):
            raise misfit(file.folder, module_path, f"LoKr factors {tuple(w1.shape)} and {tuple(w2.shape)}", base)
        rank = pattern_value(file.config.get("rank_pattern") or {}, module_path, file.config.get("r", 8))
        alpha = pattern_value(file.config.get("alpha_pattern") or {}, module_path, file.config.get("alpha", rank))
        return KronSlot(w1=w1.to(dtype).contiguous(), w2=w2.to(dtype).contiguous(), scale=float(alpha) / float(rank))

    return AdapterWeights(slots=read_module_slots(file, model, SUFFIXES, make_slot))


def _factor(parts: dict[str, torch.Tensor], name: str, module_path: str, file: AdapterFile) -> torch.Tensor:
    """Kronecker factor ``name``, full or multiplied out from its low-rank pair."""
    if name in parts:
        return parts[name]
    if f"{name}_a" in parts and f"{name}_b" in parts:
        return parts[f"{name}_a"] @ parts[f"{name}_b"]
    raise incomplete(file.folder, module_path, f"LoKr factor `{name}`")
