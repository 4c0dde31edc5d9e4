"""AdaLoRA (PEFT type ``ADALORA``), applied unmerged as the LoRA pair it computes.

AdaLoRA's update is ``B @ (A * E) * alpha / (init_r + 1e-5)``: read as a LoRA slot with ``A * E`` and ``B``,
each module with the ranks its allocation kept (a module that kept none gets no slot). PEFT scales every
module by the initial rank, whatever its allocation kept (``ranknum`` is not saved and is restored to
``init_r`` on load), so the scale does not depend on the rank read here.
"""

from __future__ import annotations

import torch
from torch import nn

from expert_cli.runtime.adapters.files import AdapterFile, incomplete, read_module_slots
from expert_cli.runtime.adapters.linear import AdapterWeights
from expert_cli.runtime.adapters.lora import LoraSlot, lora_slot

SUFFIXES = {".lora_A": "a", ".lora_B": "b", ".lora_E": "e"}  # plain parameters: no ".weight"


def read(file: AdapterFile, model: nn.Module, dtype: torch.dtype) -> AdapterWeights:
    def make_slot(parts: dict[str, torch.Tensor], base: nn.Linear, module_path: str) -> LoraSlot | None:
        if not {"a", "b", "e"} <= parts.keys():
            raise incomplete(file.folder, module_path, "AdaLoRA triple")
        a, b, e = parts["a"], parts["b"], parts["e"]
        if a.shape[0] == 0:  # rank allocation kept none of this module's ranks
            return None
        init_r = float(file.config.get("init_r") or a.shape[0])
        alpha = float(file.config.get("lora_alpha") or 0) or init_r
        pair = {"a": a * e.reshape(-1, 1), "b": b}
        return lora_slot(pair, alpha / (init_r + 1e-5), base, module_path, file.folder, dtype)

    return AdapterWeights(slots=read_module_slots(file, model, SUFFIXES, make_slot))
