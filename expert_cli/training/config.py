"""``training.config`` -> TRL ``SFTConfig`` arguments, every key accounted for.

:func:`resolve_settings` is pure Python: each manifest key is mapped, consumed by the adapter builder,
explicitly ignored with a reason, or passed through when it names an ``SFTConfig`` field; anything else is
reported as unknown. Nothing is dropped silently (the original's Rust bridge lost ``warmup_ratio`` and more).
Defaults are the fast ones for CPU (no gradient checkpointing, fp32, no dataloader workers), the
original's defaults elsewhere (``logging_steps`` 10, ``save_total_limit`` 3, eval each epoch when there is
evaluation data, best checkpoint by ``eval_loss``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expert_cli.core.errors import TrainingError

ADAPTER_KEYS = frozenset({"method", "adapter_type", "rank", "alpha", "target_modules", "feedforward_modules",
                          "dropout"})
IGNORED_KEYS = {
    "use_unsloth": "Unsloth is not used; training runs on transformers + PEFT + TRL",
    "memory_efficient_attention": "SDPA already selects the memory-efficient kernel",
    "use_cuda_graphs": "CUDA graphs are not used",
    "cuda_graph_warmup_steps": "CUDA graphs are not used",
    "activation_checkpointing": "use `gradient_checkpointing` (`true` or `\"selective\"`) instead",
    "pretokenized_cache": "`datasets` caches tokenized data by itself",
}
MAPPED_KEYS = frozenset({
    "epochs", "num_epochs", "learning_rate", "batch_size", "gradient_accumulation_steps", "warmup_steps",
    "warmup_ratio", "lr_scheduler", "lr_scheduler_kwargs", "max_seq_length", "packing", "dataloader_num_workers",
    "dataloader_pin_memory", "dataloader_prefetch_factor", "dataloader_persistent_workers", "fp16", "bf16",
    "use_tf32", "use_sdpa", "flash_attention_2", "memory_clear_every", "optim", "group_by_length",
    "logging_steps", "max_steps", "save_strategy", "save_steps", "save_total_limit", "evaluation_strategy",
    "eval_strategy", "eval_steps", "load_best_model_at_end", "metric_for_best_model", "greater_is_better",
    "gradient_checkpointing", "gradient_checkpointing_kwargs", "torch_compile", "torch_compile_backend",
    "torch_compile_mode", "seed",
})
RESERVED_FIELDS = frozenset({"output_dir", "report_to", "resume_from_checkpoint", "push_to_hub", "hub_model_id",
                             "hub_token", "use_cpu", "disable_tqdm", "logging_dir", "do_train", "do_eval"})
CUDA_ONLY_OPTIMIZERS = ("adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "adamw_8bit")


@dataclass
class TrainingSettings:
    """Everything training needs besides data and adapter: trainer arguments and model-loading choices."""

    args: dict[str, Any]
    attn_implementation: str = "sdpa"
    passthrough: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_settings(config: dict[str, Any], *, output_dir: Path, on_cuda: bool, bf16_supported: bool = False,
                     has_eval: bool, epochs: float | None = None, max_steps: int | None = None) -> TrainingSettings:
    """Map a manifest's ``training.config`` (plus CLI overrides) to ``SFTConfig`` keyword arguments."""
    method = str(config.get("method", "sft")).lower()
    if method != "sft":
        raise TrainingError(f"`training.config.method` `{method}` is not supported; only `sft` is implemented")
    notes: list[str] = []
    args: dict[str, Any] = {"output_dir": str(output_dir), "report_to": "none", "disable_tqdm": True,
                            "include_num_input_tokens_seen": "non_padding", "save_only_model": False}
    args.update(_schedule(config, epochs, max_steps))
    args.update(_batches_and_data(config, on_cuda))
    args.update(_precision(config, on_cuda, bf16_supported, notes))
    args.update(_checkpoints_and_eval(config, has_eval, notes))
    args.update(_memory_and_compile(config, on_cuda, notes))
    settings = TrainingSettings(args, _attention(config, on_cuda, notes), notes=notes)
    if args["packing"]:
        args["packing_strategy"] = packing_strategy(settings.attn_implementation)
    for key, value in config.items():
        if key.startswith("_") or key in MAPPED_KEYS or key in ADAPTER_KEYS:
            continue
        if key in IGNORED_KEYS:
            notes.append(f"`training.config.{key}` is ignored: {IGNORED_KEYS[key]}")
        else:
            settings.passthrough[key] = value
    return settings


def _schedule(config: dict[str, Any], epochs: float | None, max_steps: int | None) -> dict[str, Any]:
    warmup = config.get("warmup_ratio") or config.get("warmup_steps") or 0
    return {
        "num_train_epochs": float(epochs or config.get("epochs") or config.get("num_epochs") or 1.0),
        "max_steps": int(max_steps or config.get("max_steps") or -1),
        "learning_rate": float(config.get("learning_rate", 2e-4)),
        "lr_scheduler_type": config.get("lr_scheduler", "linear"),
        "lr_scheduler_kwargs": config.get("lr_scheduler_kwargs") or {},
        "warmup_steps": warmup,  # transformers 5: a float below 1 is a ratio of the total steps
        "seed": int(config.get("seed", 42)),
        "data_seed": int(config.get("seed", 42)),
        "logging_steps": config.get("logging_steps", 10),
    }


def _batches_and_data(config: dict[str, Any], on_cuda: bool) -> dict[str, Any]:
    batch = int(config.get("batch_size", 8))
    workers = int(config.get("dataloader_num_workers", 0))
    args: dict[str, Any] = {
        "per_device_train_batch_size": batch,
        "per_device_eval_batch_size": batch,
        "gradient_accumulation_steps": int(config.get("gradient_accumulation_steps", 1)),
        "max_length": int(config.get("max_seq_length", 1024)),
        "packing": bool(config.get("packing", False)),
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": bool(config.get("dataloader_pin_memory", on_cuda)),
        "train_sampling_strategy": "group_by_length" if config.get("group_by_length") else "random",
    }
    if workers > 0:  # both are only valid with worker processes
        args["dataloader_prefetch_factor"] = config.get("dataloader_prefetch_factor")
        args["dataloader_persistent_workers"] = bool(config.get("dataloader_persistent_workers", False))
    optim = config.get("optim", "adamw_torch")
    args["optim"] = optim
    if optim in CUDA_ONLY_OPTIMIZERS and not on_cuda:
        args["optim"] = "adamw_torch"
    return args


def _precision(config: dict[str, Any], on_cuda: bool, bf16_supported: bool, notes: list[str]) -> dict[str, Any]:
    if not on_cuda:
        if config.get("bf16") or config.get("fp16"):
            notes.append("bf16/fp16 apply on CUDA only; training on the CPU in fp32")
        if config.get("optim") in CUDA_ONLY_OPTIMIZERS:
            notes.append(f"optimizer `{config['optim']}` needs CUDA; using `adamw_torch` on the CPU")
        return {"bf16": False, "fp16": False}
    tf32 = bool(config["use_tf32"]) if "use_tf32" in config else None
    if config.get("bf16") is False and config.get("fp16") is False:
        return {"bf16": False, "fp16": False, "tf32": tf32}
    if config.get("fp16") and not config.get("bf16"):
        return {"bf16": False, "fp16": True, "tf32": tf32}
    if not bf16_supported and config.get("bf16"):
        notes.append("this GPU has no bf16; using fp16 mixed precision")
    return {"bf16": bf16_supported, "fp16": not bf16_supported, "tf32": tf32}


def _checkpoints_and_eval(config: dict[str, Any], has_eval: bool, notes: list[str]) -> dict[str, Any]:
    eval_strategy = config.get("evaluation_strategy", config.get("eval_strategy"))
    eval_strategy = eval_strategy or ("epoch" if has_eval else "no")
    if eval_strategy != "no" and not has_eval:
        notes.append(f"evaluation `{eval_strategy}` asked for, but there is no evaluation data; not evaluating")
        eval_strategy = "no"
    save_strategy = config.get("save_strategy", "epoch")
    eval_steps, save_steps = config.get("eval_steps"), config.get("save_steps", 500)
    load_best = bool(config.get("load_best_model_at_end", has_eval)) and eval_strategy != "no"
    if config.get("load_best_model_at_end") and not load_best:
        notes.append("`load_best_model_at_end` needs evaluation data; keeping the last weights")
    if load_best and save_strategy != eval_strategy:
        notes.append(f"saving by `{eval_strategy}` to match evaluation (needed to keep the best checkpoint)")
        save_strategy = eval_strategy
        save_steps = eval_steps or save_steps
    if load_best and eval_strategy == "steps":
        eval_steps = eval_steps or save_steps
        if save_steps % eval_steps:
            save_steps = eval_steps
    args: dict[str, Any] = {
        "eval_strategy": eval_strategy,
        "save_strategy": save_strategy,
        "save_steps": save_steps,
        "save_total_limit": config.get("save_total_limit", 3),
        "load_best_model_at_end": load_best,
        "metric_for_best_model": config.get("metric_for_best_model", "eval_loss") if load_best else None,
        "greater_is_better": config.get("greater_is_better", False) if load_best else None,
    }
    if eval_steps is not None:
        args["eval_steps"] = eval_steps
    return args


def _memory_and_compile(config: dict[str, Any], on_cuda: bool, notes: list[str]) -> dict[str, Any]:
    checkpointing = config.get("gradient_checkpointing", False)
    kwargs = dict(config.get("gradient_checkpointing_kwargs") or {})
    if isinstance(checkpointing, str):
        if checkpointing.lower() == "selective":
            kwargs.setdefault("selective", True)
        checkpointing = checkpointing.lower() not in ("", "none", "false", "no")
    args: dict[str, Any] = {
        "gradient_checkpointing": bool(checkpointing),
        "gradient_checkpointing_kwargs": kwargs or None,
        "torch_compile": bool(config.get("torch_compile", False)),
    }
    if args["torch_compile"]:
        args["torch_compile_backend"] = config.get("torch_compile_backend")
        args["torch_compile_mode"] = config.get("torch_compile_mode")
    if config.get("memory_clear_every"):
        if on_cuda:
            args["torch_empty_cache_steps"] = int(config["memory_clear_every"])
        else:
            notes.append("`training.config.memory_clear_every` applies to CUDA memory only; ignored on the CPU")
    return args


def _attention(config: dict[str, Any], on_cuda: bool, notes: list[str]) -> str:
    if config.get("flash_attention_2"):
        if on_cuda and _has_flash_attn():
            return "flash_attention_2"
        notes.append("`flash_attention_2` needs CUDA and the `flash-attn` package; using SDPA")
    if config.get("use_sdpa") is False:
        return "eager"
    return "sdpa"


def packing_strategy(attn_implementation: str) -> str:
    """TRL's best-fit packing runs padding-free: each batch becomes one long row split by position ids, which
    only FlashAttention's variable-length kernel handles in linear time. SDPA and eager attention build the
    full mask instead, quadratic in the batch's tokens (3x slower than no packing on the CPU here), so there
    packing uses fixed-length ``wrapped`` rows (1.4-1.6x faster than no packing here; documents in one row
    may attend to earlier ones). A manifest's own ``packing_strategy`` wins."""
    return "bfd" if attn_implementation == "flash_attention_2" else "wrapped"


def _has_flash_attn() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def make_sft_config(settings: TrainingSettings, *, use_cpu: bool):
    """Build the TRL ``SFTConfig``; pass-through keys must name one of its fields (else they are reported)."""
    from trl import SFTConfig

    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    args = {k: v for k, v in settings.args.items() if v is not None}
    _adapt_to_installed_version(args, fields)
    for key, value in settings.passthrough.items():
        if key in fields and key not in RESERVED_FIELDS:
            args[key] = value
        else:
            settings.notes.append(f"`training.config.{key}` is unknown; ignored")
    args["use_cpu"] = use_cpu
    try:
        return SFTConfig(**{k: v for k, v in args.items() if k in fields})
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"invalid training settings: {exc}",
                            hint="check `training.config` in the manifest") from exc


def _adapt_to_installed_version(args: dict[str, Any], fields: set[str]) -> None:
    """transformers renamed a few arguments across versions; keep the manifest's meaning on either side."""
    if "warmup_ratio" in fields and isinstance(args.get("warmup_steps"), float) and args["warmup_steps"] < 1:
        args["warmup_ratio"] = args.pop("warmup_steps")
    if "train_sampling_strategy" not in fields and args.pop("train_sampling_strategy", None) == "group_by_length":
        args["group_by_length"] = True
    if "activation_checkpointing" in fields:  # transformers >= 5.2x renamed gradient checkpointing
        args["activation_checkpointing"] = args.pop("gradient_checkpointing", False)
        if "gradient_checkpointing_kwargs" in args:
            args["activation_checkpointing_kwargs"] = args.pop("gradient_checkpointing_kwargs")
