"""Prompt tuning (PEFT type ``PROMPT_TUNING``) and soft prompts: embeddings prepended to every prompt.

A prompt-tuning adapter has no slot on any layer: its ``prompt_embeddings`` ride on the
:class:`~expert_cli.runtime.adapters.linear.AdapterWeights` and the decoder prepends them (see
:meth:`expert_cli.runtime.pool.LoadedBase.prompt_prefix`). A manifest's soft prompts
(:func:`read_soft_prompt`) are added to the same embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from expert_cli.core.errors import InferenceError
from expert_cli.runtime.adapters.files import OTHER_BASE_HINT, AdapterFile
from expert_cli.runtime.adapters.linear import AdapterWeights

_TORCH_SAVE_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive, or a legacy pickle


def read(file: AdapterFile, model: nn.Module, dtype: torch.dtype) -> AdapterWeights:
    embeddings = file.tensors.get("prompt_embeddings")
    hidden = model.get_input_embeddings().embedding_dim
    if embeddings is None or embeddings.dim() != 2 or embeddings.shape[1] != hidden:
        raise InferenceError(f"adapter `{file.folder}` has no usable `prompt_embeddings` for a base of hidden "
                             f"size {hidden}", hint=OTHER_BASE_HINT)
    return AdapterWeights(prompt_embeddings=embeddings.to(dtype).contiguous())


def read_soft_prompt(path: Path, model: nn.Module, tokenizer: Any, device: str,
                     dtype: torch.dtype) -> torch.Tensor:
    """A soft prompt's embeddings, ``(tokens, hidden)``: the tensor file ``expert-cli train`` writes
    (``.safetensors``, or ``torch.save`` of the tensor or of ``{"prompt_embeddings": tensor}``), or UTF-8 text
    as the original runtime read soft prompts, whose tokens' embeddings are used (the same as prepending the
    text's tokens)."""
    tensor = _soft_prompt_tensor(path, device)
    if tensor is None:
        ids = tokenizer(path.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
        if not ids:
            raise InferenceError(f"soft prompt `{path}` is empty", hint="write text or a tensor file there")
        with torch.no_grad():
            tensor = model.get_input_embeddings()(torch.tensor(ids, device=device))
    hidden = model.get_input_embeddings().embedding_dim
    if tensor.dim() != 2 or tensor.shape[1] != hidden:
        raise InferenceError(f"soft prompt `{path}` holds a {tuple(tensor.shape)} tensor; a base of hidden "
                             f"size {hidden} needs (tokens, {hidden})",
                             hint="the soft prompt was trained for another base model")
    return tensor.detach().to(dtype).contiguous()


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _soft_prompt_tensor(path: Path, device: str) -> torch.Tensor | None:
    """The tensor in a soft-prompt file, or None when the file is text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InferenceError(f"cannot read soft prompt `{path}`: {exc.strerror or exc}") from exc
    binary = path.suffix == ".safetensors" or data.startswith(_TORCH_SAVE_MAGIC)
    if not binary and _is_text(data):
        return None
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load

            loaded: Any = {name: tensor.to(device) for name, tensor in load(data).items()}
        else:
            loaded = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # whatever a corrupt file makes the (safe) unpicklers raise: one clear error
        raise InferenceError(f"cannot read soft prompt `{path}`: {exc}",
                             hint="a soft prompt is a tensor file written by `expert-cli train`, or text") from exc
    if isinstance(loaded, dict):
        tensors = [value for value in loaded.values() if isinstance(value, torch.Tensor)]
        loaded = loaded.get("prompt_embeddings", tensors[0] if len(tensors) == 1 else None)
    if not isinstance(loaded, torch.Tensor):
        raise InferenceError(f"soft prompt `{path}` holds no single tensor",
                             hint='save the embeddings tensor, or {"prompt_embeddings": tensor}')
    return loaded
