"""The adapter types a manifest may name (``base_models[].adapters[].type``), one line per method.

The manifest rules, the trainer's PEFT configs (:mod:`expert_cli.training.peft_configs`) and the runtime's
readers (:mod:`expert_cli.runtime.adapters.registry`, keyed by ``peft_type``) all follow this table; a test
checks that each type here has a training builder, a runtime reader and a place in the bundled JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdapterType:
    name: str  # the manifest's `type`
    peft_type: str  # PEFT's `peft_type` in adapter_config.json
    ranked: bool  # needs `r` and `alpha` (an unranked type refuses them)


ADAPTER_METHODS: dict[str, AdapterType] = {kind.name: kind for kind in (
    AdapterType("lora", "LORA", ranked=True),
    AdapterType("dora", "LORA", ranked=True),  # LoRA with use_dora
    AdapterType("lokr", "LOKR", ranked=True),
    AdapterType("adalora", "ADALORA", ranked=True),
    AdapterType("ia3", "IA3", ranked=False),
)}
ADAPTER_TYPES = tuple(ADAPTER_METHODS)


def is_ranked(kind: str) -> bool:
    """Whether adapter type ``kind`` needs ``r`` and ``alpha`` (False for unknown types)."""
    method = ADAPTER_METHODS.get(kind)
    return method is not None and method.ranked
