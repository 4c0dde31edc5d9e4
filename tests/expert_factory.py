"""Make PEFT adapters and expert folders on the tiny model for runtime and SDK tests.

Adapters are built with ``peft.get_peft_model`` and saved with ``save_pretrained``; their weights are
randomised (LoRA B is non-zero, IA3 vectors away from 1, DoRA magnitudes rescaled) so each one visibly
changes the model's output, as a trained adapter would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peft_config(kind: str, targets: list[str] | None = None) -> Any:
    from peft import AdaLoraConfig, IA3Config, LoKrConfig, LoraConfig, PromptTuningConfig

    targets = targets or TARGETS
    if kind == "lora":
        return LoraConfig(r=4, lora_alpha=8, target_modules=targets)
    if kind == "dora":
        return LoraConfig(r=4, lora_alpha=8, target_modules=targets, use_dora=True)
    if kind == "rslora":  # rank-stabilised scale, with per-module rank and alpha overrides
        return LoraConfig(r=4, lora_alpha=8, target_modules=targets, use_rslora=True, rank_pattern={"q_proj": 2},
                          alpha_pattern={"v_proj": 3})
    if kind == "adalora":
        return AdaLoraConfig(task_type="CAUSAL_LM", init_r=4, target_r=2, lora_alpha=8, target_modules=targets,
                             total_step=10)
    if kind == "lokr":  # both Kronecker factors full
        return LoKrConfig(r=2, alpha=4, target_modules=targets)
    if kind == "lokr-factored":  # both factors as low-rank pairs
        return LoKrConfig(r=1, alpha=3, target_modules=targets, decompose_both=True)
    if kind == "ia3":
        return IA3Config(target_modules=targets, feedforward_modules=["down_proj"])
    if kind == "prompt_tuning":
        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
    raise ValueError(kind)


def make_adapter(base: Path, out: Path, kind: str = "lora", seed: int = 0,
                 targets: list[str] | None = None, scale: float = 0.6) -> Path:
    """Save a randomised ``kind`` adapter for the model in ``base`` into ``out`` and return ``out``."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, peft_config(kind, targets))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "lora_A" in name or "lora_B" in name or "lora_E" in name or "lokr_" in name:
                parameter.copy_(noise * scale)
            elif "ia3_l" in name:
                parameter.copy_(1 + noise.clamp(-2, 2) * 0.4)
            elif "lora_magnitude_vector" in name:
                parameter.mul_(1 + noise.clamp(-2, 2) * 0.2)
            elif "prompt" in name or "embedding" in name:
                parameter.copy_(noise)
    if kind == "adalora":
        prune_ranks(peft_model)
    peft_model.save_pretrained(out)
    return out


def prune_ranks(peft_model: Any) -> None:
    """What AdaLoRA's rank allocation leaves behind: a ``rank_pattern`` keeping a different number of each
    module's ranks (none in the first module), which ``save_pretrained`` applies to the saved tensors."""
    names = [name.removeprefix("base_model.model.").removesuffix(".default")
             for name, _ in peft_model.named_parameters() if "lora_E" in name]
    config = peft_model.peft_config["default"]
    config.rank_pattern = {name: [index < kept for index in range(config.init_r)]
                           for kept, name in zip([0, 1, 2, 3, 4] * len(names), names)}


def make_expert(base: Path, out: Path, name: str, kind: str = "lora", seed: int = 0, *,
                version: str = "0.1.0", capabilities: list[str] | None = None,
                decoding: dict[str, Any] | None = None, grammar: str | None = None,
                template: str = "qwen3", layout: str = "flat") -> Path:
    """An expert folder: ``manifest.json`` (schema 2.0, base model = the ``base`` folder) plus its adapter,
    flat at the root (installed layout) or in ``weights/<slug>/adapter`` (``layout="dev"``)."""
    from expert_cli.manifest.model import model_slug

    out.mkdir(parents=True, exist_ok=True)
    adapter = {"type": kind, "target_modules": TARGETS}
    if kind in ("lora", "dora"):
        adapter.update(r=4, alpha=8)
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "schema_version": "2.0",
        "description": f"test expert {name}",
        "base_models": [{"name": str(base), "prompt_template": template, "adapters": [adapter]}],
        "capabilities": capabilities or ["language:en"],
        "training": {"decoding": decoding or {"temperature": 0}},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    target = out if layout == "flat" else out / "weights" / model_slug(str(base)) / "adapter"
    make_adapter(base, target, kind, seed)
    if grammar is not None:
        (out / "grammar.gbnf").write_text(grammar, encoding="utf-8")
    return out
