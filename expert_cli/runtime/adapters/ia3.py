"""IA3 (PEFT type ``IA3``), applied unmerged: a learned vector ``l`` scales the base layer's input (modules in
``feedforward_modules``, saved as a ``(1, in)`` vector) or its output (``(out, 1)``) by ``1 + w * (l - 1)``,
``w`` being the expert's weight in the composition."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from expert_cli.runtime.adapters.files import AdapterFile, misfit, read_module_slots
from expert_cli.runtime.adapters.linear import Activation, AdapterWeights, Slot

SUFFIXES = {".ia3_l": "l"}


@dataclass
class Ia3Slot(Slot):
    vector: torch.Tensor  # (in,) for feed-forward modules, else (out,)
    feedforward: bool

    @property
    def scales_input(self) -> bool:  # type: ignore[override]
        return self.feedforward

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.vector,)

    def scale_input(self, base_input: torch.Tensor, step: Activation, x: torch.Tensor) -> torch.Tensor:
        return base_input * self._factor(step, x)

    def apply(self, out: torch.Tensor, x: torch.Tensor, base: torch.Tensor, step: Activation,
              bias: torch.Tensor | None) -> torch.Tensor:
        return out if self.feedforward else out * self._factor(step, out)

    def _factor(self, step: Activation, like: torch.Tensor) -> torch.Tensor:
        """``1 + w (l - 1)`` for the rows in ``step``, 1 elsewhere, shaped to broadcast over ``like``."""
        factor = self.vector if step.weight == 1.0 else 1 + step.weight * (self.vector - 1)
        factor = factor.to(like.dtype)
        if step.rows is None:
            return factor
        full = torch.ones((like.shape[0],) + (1,) * (like.dim() - 2) + (factor.shape[-1],),
                          dtype=like.dtype, device=like.device)
        full[step.rows] = factor
        return full


def read(file: AdapterFile, model: nn.Module, dtype: torch.dtype) -> AdapterWeights:
    def make_slot(parts: dict[str, torch.Tensor], base: nn.Linear, module_path: str) -> Ia3Slot:
        vector = parts["l"]
        feedforward = vector.dim() == 2 and vector.shape[0] == 1
        expected = base.in_features if feedforward else base.out_features
        if vector.numel() != expected:
            raise misfit(file.folder, module_path, f"IA3 vector of {vector.numel()} values", base)
        return Ia3Slot(vector=vector.flatten().to(dtype).contiguous(), feedforward=feedforward)

    return AdapterWeights(slots=read_module_slots(file, model, SUFFIXES, make_slot))
