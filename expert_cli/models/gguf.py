"""Import a GGUF file (llama.cpp's and ollama's format) as an ordinary model folder in the model store.

transformers reads GGUF files (with the ``gguf`` package) and dequantizes every tensor into a plain PyTorch
model. What it returns still carries a ``quantization_config`` that blocks ``save_pretrained`` and
training, so the model is rebuilt from its config and state dict without it, cast to the chosen dtype and
saved as safetensors with the file's tokenizer and chat template (see :mod:`expert_cli.models.store`).

Two things the GGUF metadata states that transformers' reader drops are put back: the head width of
architectures whose heads are not ``hidden_size / heads`` (``<arch>.attention.key_length``, e.g. Qwen3), and
SmolLM's digit-by-digit pre-tokenizer (``tokenizer.ggml.pre = smollm``).
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from expert_cli.core import paths
from expert_cli.core.errors import ModelImportError, ModelNotFoundError, UsageError, require
from expert_cli.core.hashing import hash_files, list_files, sha256_file
from expert_cli.core.progress import ProgressCallback, report
from expert_cli.models import store

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
NOT_ARCHITECTURES = frozenset({"general", "tokenizer", "t5", "t5encoder", "umt5"})  # mapping keys, encoders
ALIASES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}
_READ_ERRORS = (ValueError, OSError, IndexError, KeyError, TypeError, UnicodeDecodeError, OverflowError)


@dataclass(frozen=True)
class GgufHeader:
    """What the import needs to know before converting: the architecture, a display name, the tensors."""

    path: Path
    architecture: str
    model_name: str
    tensor_count: int
    head_width: int | None  # ``<arch>.attention.key_length``
    pre_tokenizer: str  # ``tokenizer.ggml.pre``


def read_gguf_header(path: Path) -> GgufHeader:
    """Parse a GGUF file's header and tensor table; a corrupt or truncated file is a ModelImportError."""
    require("gguf", "train")
    from gguf import GGUFReader

    if not path.is_file():
        raise ModelNotFoundError(f"GGUF file `{path}` does not exist", hint="pass the path of a `.gguf` file")
    try:
        reader = GGUFReader(path)
        architecture = _field_text(reader, "general.architecture")
        tensors = len(reader.tensors)
        width = reader.fields.get(f"{architecture}.attention.key_length")
        head_width = int(width.parts[width.data[0]][0]) if width is not None and width.data else None
    except _READ_ERRORS as exc:
        raise ModelImportError(f"`{path}` is not a readable GGUF file ({_reason(exc)})",
                               hint="download the file again: a truncated or corrupt GGUF cannot be converted"
                               ) from None
    if not architecture or not tensors:
        raise ModelImportError(f"`{path}` names no architecture or holds no tensors",
                               hint="pass a model GGUF exported by llama.cpp or ollama")
    return GgufHeader(path, architecture, _field_text(reader, "general.name") or path.stem, tensors, head_width,
                      _field_text(reader, "tokenizer.ggml.pre"))


def _field_text(reader: Any, key: str) -> str:
    field = reader.fields.get(key)
    if field is None or not field.data:
        return ""
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def supported_architectures() -> list[str]:
    """GGUF architectures transformers can turn into a causal language model."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        from transformers.integrations.gguf import GGUF_ARCHS
    except ImportError:  # older transformers: the legacy loader only
        GGUF_ARCHS = {}
    return sorted((set(GGUF_SUPPORTED_ARCHITECTURES) | set(GGUF_ARCHS)) - NOT_ARCHITECTURES)


def check_architecture(header: GgufHeader) -> None:
    supported = supported_architectures()
    if ALIASES.get(header.architecture, header.architecture) not in supported:
        raise ModelImportError(
            f"`{header.path.name}` is a `{header.architecture}` model, which cannot be converted",
            hint=f"transformers converts these GGUF architectures: {', '.join(supported)}")


def import_gguf(path: Path, name: str, dtype: str = "fp32", source: str | None = None,
                source_sha256: str | None = None, progress: ProgressCallback | None = None,
                ) -> store.ModelInfo:
    """Convert ``path`` into ``$EXPERT_HOME/models/<name>/`` and return what was stored."""
    require("torch", "train")
    require("transformers", "train")
    store.check_model_name(name)
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype `{dtype}`", hint=f"use one of {', '.join(DTYPES)}")
    if store.stored_model_dir(name) or (store.store_root() / name).exists():
        raise store.model_exists(name)
    header = read_gguf_header(path)
    check_architecture(header)
    digest = source_sha256 or sha256_file(path, progress, "importing · hashing the GGUF", 0, path.stat().st_size)
    paths.tmp_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"model-{name}-", dir=paths.tmp_dir()))
    try:
        with transformers_bars_off():  # progress goes to ``progress``, not to transformers' own bars
            model, tokenizer = load_gguf(header, DTYPES[dtype], progress)
            info = save_model_folder(model, tokenizer, staging, name, dtype, source or str(path), digest, progress)
        store.publish_model(staging, name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def load_gguf(header: GgufHeader, dtype: str, progress: ProgressCallback | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a plain dequantized model in ``dtype`` (no quantization config)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, file = header.path.parent, header.path.name
    report(progress, "importing · reading the tokenizer", 0, None)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
        config = AutoConfig.from_pretrained(folder, gguf_file=file)
        apply_head_width(config, header)
        with tensor_progress(progress, header.tensor_count):
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, config=config,
                                                          dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError, RuntimeError, OSError) as exc:
        raise ModelImportError(f"`{file}` (`{header.architecture}`) cannot be converted: {_reason(exc)}",
                               hint="check that the file is a complete model GGUF; "
                                    "`pip install -U transformers gguf` may add support") from None
    fix_pre_tokenizer(tokenizer, header)
    return rebuild_plain(loaded, getattr(torch, dtype)), tokenizer


def apply_head_width(config: Any, header: GgufHeader) -> None:
    """Set ``head_dim`` from ``<arch>.attention.key_length`` when the file states it (Qwen3: 128, not 64)."""
    if header.head_width and hasattr(config, "head_dim"):
        config.head_dim = header.head_width


def fix_pre_tokenizer(tokenizer: Any, header: GgufHeader) -> None:
    """SmolLM splits digits one by one before the byte-level split; transformers' GGUF reader does not."""
    from tokenizers import pre_tokenizers

    if header.pre_tokenizer != "smollm":
        return
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def rebuild_plain(loaded: Any, dtype: Any) -> Any:
    """The same weights in a model built from its config without the GGUF ``quantization_config``."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = ""
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.tie_weights()
    return model.eval()


@contextlib.contextmanager
def transformers_bars_off() -> Iterator[None]:
    """transformers' ``Loading weights`` and ``Writing model shards`` bars off, then back as they were."""
    from transformers.utils import logging

    was_on = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            logging.enable_progress_bar()


@contextlib.contextmanager
def tensor_progress(progress: ProgressCallback | None, total: int) -> Iterator[None]:
    """Report transformers' per-tensor dequantization loop to ``progress`` instead of its own tqdm bar."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)

    def counted(items: Any, **_: Any) -> Iterator[Any]:
        for index, item in enumerate(items):
            report(progress, "importing · dequantizing tensors", index, total)
            yield item
        report(progress, "importing · dequantizing tensors", total, total)

    if original is not None:
        gguf_utils.tqdm = counted
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def save_model_folder(model: Any, tokenizer: Any, folder: Path, name: str, dtype: str, source: str,
                      source_sha256: str, progress: ProgressCallback | None = None) -> store.ModelInfo:
    """Write the model, tokenizer, ``checksums.json`` and ``expert-model.json`` into ``folder``."""
    report(progress, "importing · writing safetensors", 0, None)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    checksums = hash_files({file: folder / file for file in list_files(folder)}, progress)
    info = store.ModelInfo(
        name=name, architecture=model.config.model_type, parameters=sum(p.numel() for p in model.parameters()),
        dtype=DTYPES[dtype], fingerprint=store.weights_fingerprint(checksums), source=source,
        source_sha256=source_sha256, imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    store.write_json(folder / store.INFO_FILE, info.to_dict())
    checksums[store.INFO_FILE] = sha256_file(folder / store.INFO_FILE)
    store.write_json(folder / store.CHECKSUMS_FILE, {"algorithm": "sha256", "files": checksums})
    return info
