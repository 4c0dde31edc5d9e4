"""Adapters as plain LoRA folders that engines built for LoRA fleets (vLLM) load: what they cannot load is
refused by name with the reason, and what they would load with other numbers is rewritten.

vLLM reads ``r``, ``lora_alpha``, ``use_rslora`` and ``target_modules`` from ``adapter_config.json`` and scales
every module by one ``lora_alpha / r``; it refuses DoRA, ``modules_to_save`` and biases, and loads no other
PEFT method. So a LoRA folder without per-module overrides is copied as it is; an AdaLoRA folder (``B (A * E)``
scaled by ``alpha / init_r``, ranks kept per module) and a LoRA with ``rank_pattern``/``alpha_pattern`` are
written as the LoRA pairs they compute: each module's scale folded into its ``B``, every pair zero-padded to
one rank ``R`` (zero rows add nothing), ``r = lora_alpha = R``. The logits are the same under stock PEFT.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ExportError
from expert_cli.runtime.adapters.files import CONFIG_FILE, WEIGHT_FILES, read_adapter_config

WEIGHTS = WEIGHT_FILES[0]
NOT_LORA = {
    "IA3": "IA3 rescales activations, which no LoRA pair expresses, and vLLM loads LoRA adapters only",
    "LOKR": "a LoKr update is a Kronecker product, not a low-rank pair, and vLLM loads LoRA adapters only",
    "PROMPT_TUNING": "vLLM loads LoRA adapters only (its prompt adapters went with its V0 engine)",
}
LORA_KEYS = (".lora_A.weight", ".lora_B.weight")
ADALORA_KEYS = (".lora_A", ".lora_B", ".lora_E")
DROPPED = ("rank_pattern", "alpha_pattern", "use_rslora", "use_dora", "init_r", "target_r", "tinit", "tfinal",
           "deltaT", "beta1", "beta2", "orth_reg_weight", "total_step", "peft_type", "r", "lora_alpha")


@dataclass
class PlainLora:
    """An exported adapter: its folder, its rank (the largest of its modules) and what it was."""

    folder: Path
    rank: int
    method: str
    rewritten: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.folder), "rank": self.rank, "method": self.method, "rewritten": self.rewritten}


def vllm_refusal(config: dict[str, Any]) -> str | None:
    """Why vLLM cannot load the adapter ``config`` describes, or None."""
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type in NOT_LORA:
        return NOT_LORA[peft_type]
    if peft_type not in ("LORA", "ADALORA"):
        return f"vLLM loads LoRA adapters only, not `{peft_type.lower()}`"
    if config.get("use_dora"):
        return "vLLM does not support DoRA (`use_dora`): its magnitude vector rescales the base weights"
    if config.get("modules_to_save"):
        names = ", ".join(f"`{name}`" for name in config["modules_to_save"])
        return f"vLLM loads no `modules_to_save` (fully trained {names})"
    if str(config.get("bias") or "none") != "none":
        return f"vLLM loads no adapter biases (`bias: {config['bias']}`)"
    return None


def export_plain_lora(adapter_dir: Path, out: Path, label: str) -> PlainLora:
    """Write the adapter in ``adapter_dir`` to ``out`` as a plain LoRA folder (``label`` names it in errors)."""
    config = read_adapter_config(adapter_dir)
    reason = vllm_refusal(config)
    if reason is not None:
        raise ExportError(f"`{label}` cannot be served by vLLM: {reason}",
                          hint="leave it out with `--experts`, or serve it with `expert-cli serve`")
    method = "adalora" if str(config.get("peft_type")).upper() == "ADALORA" else (
        "rslora" if config.get("use_rslora") else "lora")
    if method != "adalora" and not config.get("rank_pattern") and not config.get("alpha_pattern"):
        out.mkdir(parents=True, exist_ok=True)
        _check_tensor_names(adapter_dir, label, LORA_KEYS)
        for name in (CONFIG_FILE, WEIGHTS):
            shutil.copyfile(adapter_dir / name, out / name)
        return PlainLora(out, int(config.get("r", 8)), method, rewritten=False)
    return _rewrite(adapter_dir, out, config, label, method)


def _check_tensor_names(adapter_dir: Path, label: str, suffixes: tuple[str, ...]) -> list[str]:
    from safetensors import safe_open

    path = adapter_dir / WEIGHTS
    if not path.is_file():
        raise ExportError(f"`{label}` has no `{WEIGHTS}` in `{adapter_dir}`",
                          hint="reinstall it, or train it again with `expert-cli train`")
    with safe_open(str(path), "pt") as handle:
        keys = list(handle.keys())
    odd = next((key for key in keys if not key.endswith(suffixes)), None)
    if odd is not None:
        raise ExportError(f"`{label}` cannot be served by vLLM: it holds `{odd}`, which is not a LoRA pair",
                          hint="leave it out with `--experts`, or serve it with `expert-cli serve`")
    return keys


def _rewrite(adapter_dir: Path, out: Path, config: dict[str, Any], label: str, method: str) -> PlainLora:
    """The LoRA pairs the adapter computes, each module's scale folded into ``B``, zero-padded to one rank."""
    import torch
    from safetensors.torch import load_file, save_file

    from expert_cli.runtime.adapters.lora import lora_scale

    adalora = method == "adalora"
    _check_tensor_names(adapter_dir, label, ADALORA_KEYS if adalora else LORA_KEYS)
    tensors = load_file(str(adapter_dir / WEIGHTS))
    suffix_a, suffix_b = (".lora_A", ".lora_B") if adalora else LORA_KEYS
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for key in tensors:
        if not key.endswith(suffix_a):
            continue
        module = key[: -len(suffix_a)]
        a, b = tensors[key].float(), tensors[module + suffix_b].float()
        if adalora:
            init_r = float(config.get("init_r") or a.shape[0])
            alpha = float(config.get("lora_alpha") or 0) or init_r
            a, scale = a * tensors[module + ".lora_E"].float().reshape(-1, 1), alpha / (init_r + 1e-5)
        else:
            scale = lora_scale(config, module.removeprefix("base_model.model."), a.shape[0])
        pairs[module] = (a, b * scale)
    rank = max((a.shape[0] for a, _ in pairs.values()), default=0) or 1
    written: dict[str, torch.Tensor] = {}
    for module, (a, b) in pairs.items():
        padded_a, padded_b = a.new_zeros(rank, a.shape[1]), b.new_zeros(b.shape[0], rank)
        padded_a[: a.shape[0]], padded_b[:, : b.shape[1]] = a, b
        dtype = tensors[module + suffix_a].dtype
        written[module + ".lora_A.weight"] = padded_a.to(dtype).contiguous()
        written[module + ".lora_B.weight"] = padded_b.to(dtype).contiguous()
    kept = {key: value for key, value in config.items() if key not in DROPPED}
    plain = {**kept, "peft_type": "LORA", "r": rank, "lora_alpha": rank, "use_rslora": False, "use_dora": False,
             "task_type": config.get("task_type") or "CAUSAL_LM", "lora_dropout": 0.0, "bias": "none"}
    out.mkdir(parents=True, exist_ok=True)
    save_file(written, str(out / WEIGHTS), metadata={"format": "pt"})
    (out / CONFIG_FILE).write_text(json.dumps(plain, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return PlainLora(out, rank, method, rewritten=True)
