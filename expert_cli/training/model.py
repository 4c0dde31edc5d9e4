"""The base model for training: where it is, which device, which precision, QLoRA or not, RoPE as the manifest says.

The manifest's ``rope_scaling`` is applied exactly as the runtime applies it
(:func:`expert_cli.models.loading.apply_rope_scaling`), so an adapter is trained on the positions it
will see at inference.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expert_cli.core.errors import ModelNotFoundError, TrainingError, UsageError, require

QUANTIZED = ("int4", "int8")
SMALL_MODEL_PARAMETERS = 50_000_000
THREADS_ENV = "EXPERT_TRAIN_THREADS"


@dataclass(frozen=True)
class DeviceChoice:
    """``cpu`` or ``cuda:N``; whether bf16 works there."""

    device: str
    bf16_supported: bool = False

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")


def locate_base_model(name: str) -> Path:
    """A local folder for ``name``: a built-in demo base, a local folder, or a Hugging Face id in the HF cache."""
    from expert_cli.models.resolve import resolve_base_model

    return Path(resolve_base_model(name))


def choose_device(requested: str | None) -> DeviceChoice:
    """``auto`` -> CUDA when present, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as given (checked)."""
    import torch

    name = (requested or "auto").strip().lower()
    if name not in ("auto", "cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise UsageError(f"unknown device `{requested}`", hint="use `auto`, `cpu`, `cuda` or `cuda:N`")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return DeviceChoice("cpu")
    if not torch.cuda.is_available():
        raise TrainingError(f"device `{name}` was requested but CUDA is not available", hint="use `--device cpu`")
    local_rank = os.environ.get("LOCAL_RANK", "")  # one GPU per process under data parallelism
    index = int(name.split(":")[1]) if ":" in name else int(local_rank) if local_rank.isdigit() else (
        torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise TrainingError(f"device `{name}` does not exist ({torch.cuda.device_count()} GPU(s))")
    torch.cuda.set_device(index)
    return DeviceChoice(f"cuda:{index}", torch.cuda.is_bf16_supported())


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load the tokenizer of `{model_dir}`: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_dir: Path, *, device: DeviceChoice, quantization: str | None, rope_scaling: Any,
               attn_implementation: str, gradient_checkpointing: bool, note: Callable[[str], None]):
    """The causal LM, ready for PEFT: fp32 on the CPU, bf16/fp16 on CUDA, 4/8-bit through bitsandbytes."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from expert_cli.models.loading import apply_rope_scaling

    if not (model_dir / "config.json").is_file():
        raise ModelNotFoundError(f"no base model at `{model_dir}` (no `config.json`)")
    config = AutoConfig.from_pretrained(model_dir)
    apply_rope_scaling(config, rope_scaling)
    options: dict[str, Any] = {"config": config, "attn_implementation": attn_implementation,
                               "dtype": torch.float32}
    quantized = _quantization_options(quantization, device, options, note)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **options)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load the base model at `{model_dir}`: {exc}") from exc
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    model.config.use_cache = False
    return model


def _quantization_options(quantization: str | None, device: DeviceChoice, options: dict[str, Any],
                          note: Callable[[str], None]) -> bool:
    import torch

    kind = (quantization or "none").lower()
    if device.on_cuda:
        options["dtype"] = torch.bfloat16 if device.bf16_supported else torch.float16
        options["device_map"] = {"": device.device}
    if kind not in QUANTIZED:
        return False
    if not device.on_cuda:
        note(f"quantization `{kind}` needs CUDA (bitsandbytes); ignored on the CPU, training in full precision")
        return False
    require("bitsandbytes", "train")
    from transformers import BitsAndBytesConfig

    compute = options["dtype"]
    options["quantization_config"] = (
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=compute)
        if kind == "int4" else BitsAndBytesConfig(load_in_8bit=True)
    )
    return True


@contextlib.contextmanager
def cpu_threads(model: Any, device: DeviceChoice) -> Iterator[int]:
    """Intra-op threads for CPU training, restored afterwards.

    A small model's matrices are too small to split across threads: on this project's 2-core machines one
    thread ran the demo base 1.2x (idle) to 13x (other processes busy: OpenMP threads spin while they wait
    for a core) faster than two. So models under 50 M parameters train on one thread unless
    ``EXPERT_TRAIN_THREADS`` (or ``OMP_NUM_THREADS``) says otherwise; larger models keep torch's default.
    """
    import torch

    previous = torch.get_num_threads()
    wanted = previous
    if os.environ.get(THREADS_ENV, "").strip().isdigit():
        wanted = max(1, int(os.environ[THREADS_ENV]))
    elif not device.on_cuda and not os.environ.get("OMP_NUM_THREADS") and _is_small(model):
        wanted = 1
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)


def _is_small(model: Any) -> bool:
    return sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
