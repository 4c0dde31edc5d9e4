"""The base model for training: where it is, which device, which precision, QLoRA or not, RoPE as the manifest says.

The manifest's ``rope_scaling`` is applied exactly as the runtime applies it
(:func:`expert_cli.models.loading.apply_rope_scaling`), so an adapter is trained on the positions it
will see at inference.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from expert_cli.core.errors import InferenceError, ModelNotFoundError, TrainingError, require
from expert_cli.models.device import Placement

QUANTIZED = ("int4", "int8")
THREADS_ENV = "EXPERT_TRAIN_THREADS"


def locate_base_model(name: str) -> Path:
    """A local folder for ``name``: a built-in demo base, a local folder, or a Hugging Face id in the HF cache."""
    from expert_cli.models.resolve import resolve_base_model

    return Path(resolve_base_model(name))


def choose_device(requested: str | None) -> Placement:
    """The runtime's placement (:func:`expert_cli.models.device.resolve_placement`) with training's own rules:
    ``auto`` -> CUDA when present, else the CPU (never MPS); ``cpu``, ``cuda``, ``cuda:N`` as given (checked);
    under data parallelism ``cuda`` (or ``auto`` with CUDA) is the process's ``LOCAL_RANK`` GPU. A CUDA device
    becomes torch's current device; its dtype is bf16 where the GPU supports it, else fp16."""
    import torch

    from expert_cli.models.device import resolve_placement

    name = (requested or "auto").strip().lower()
    local_rank = os.environ.get("LOCAL_RANK", "")  # one GPU per process under data parallelism
    if local_rank.isdigit() and (name == "cuda" or (name == "auto" and torch.cuda.is_available())):
        requested = f"cuda:{local_rank}"
    try:
        placement = resolve_placement(requested, mps=False)
    except InferenceError as exc:  # no such GPU here: the training cannot start
        raise TrainingError(exc.message, hint=exc.hint) from exc
    if placement.on_cuda:
        torch.cuda.set_device(placement.torch_device())
    return placement


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load the tokenizer of `{model_dir}`: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_dir: Path, *, device: Placement, quantization: str | None, rope_scaling: Any,
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


def _quantization_options(quantization: str | None, device: Placement, options: dict[str, Any],
                          note: Callable[[str], None]) -> bool:

    kind = (quantization or "none").lower()
    if device.on_cuda:
        options["dtype"] = device.torch_dtype()  # bf16 where the GPU supports it, else fp16
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
def cpu_threads(model: Any, device: Placement) -> Iterator[int]:
    """Intra-op threads for CPU training, restored afterwards.

    A small model's matrices are too small to split across threads: on this project's 2-core machines one
    thread ran the demo base 1.2x (idle) to 13x (other processes busy: OpenMP threads spin while they wait
    for a core) faster than two. So models under 50 M parameters train on one thread unless
    ``EXPERT_TRAIN_THREADS`` (or ``OMP_NUM_THREADS``) says otherwise; larger models keep torch's default.
    """
    import torch

    from expert_cli.models.device import preferred_cpu_threads

    previous = torch.get_num_threads()
    wanted = preferred_cpu_threads(model, device.on_cuda, THREADS_ENV) or previous
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)

