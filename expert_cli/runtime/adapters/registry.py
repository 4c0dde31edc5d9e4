"""The adapter methods the runtime applies unmerged, keyed by PEFT's ``peft_type``: one line per method.

Each method module reads an adapter folder into :class:`~expert_cli.runtime.adapters.linear.AdapterWeights`
(its own slots on the targeted Linear layers, or prompt embeddings); a type not listed here is refused by
name. Adding a method is one module with a ``read`` function plus its line in :data:`READERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from expert_cli.core.errors import InferenceError
from expert_cli.runtime.adapters import adalora, ia3, lokr, lora, prompt_tuning
from expert_cli.runtime.adapters.files import AdapterFile, load_tensors, read_adapter_config
from expert_cli.runtime.adapters.linear import AdapterWeights

Reader = Callable[[AdapterFile, nn.Module, torch.dtype], AdapterWeights]

READERS: dict[str, Reader] = {
    "LORA": lora.read,  # rsLoRA and DoRA included
    "ADALORA": adalora.read,
    "LOKR": lokr.read,
    "IA3": ia3.read,
    "PROMPT_TUNING": prompt_tuning.read,
}


def read_adapter(folder: Path, model: nn.Module, device: str, dtype: torch.dtype) -> AdapterWeights:
    """Read the adapter in ``folder`` for ``model``: its method's slots per module path (shapes checked
    against the base) or its prompt embeddings, on ``device`` in ``dtype``."""
    config = read_adapter_config(folder)
    peft_type = str(config.get("peft_type", "LORA")).upper()
    reader = READERS.get(peft_type)
    if reader is None:
        raise InferenceError(f"adapter type `{peft_type}` is not supported by the runtime "
                             f"(supported: {', '.join(t.lower() for t in READERS)})")
    return reader(AdapterFile(folder, config, load_tensors(folder, device)), model, dtype)
