"""Unmerged adapters on a shared base: one wrapper per target Linear, one slot per attached adapter.

The first adapter that targets a ``nn.Linear`` replaces it with an :class:`AdapterLinear` holding the base
layer untouched and a dict of slots (adapter name -> tensors read straight from ``adapter_model.safetensors``).
Every wrapper of a base shares one :class:`AdapterRouting`; its ``plan`` says which adapters are active, with
which weight and for which batch rows, so switching experts is one attribute assignment and a batch can mix
experts row by row. With an empty plan a wrapper returns ``base_layer(x)`` itself: bit for bit the bare base.

Per active slot, on top of ``base = W x + b`` (``w`` = the expert's weight in the composition):

- LoRA: ``+ w * s * B(A(x))`` with ``s = alpha / r`` (``alpha / sqrt(r)`` for rsLoRA); one ``mm`` and one
  ``addmm`` whose ``alpha`` folds in ``w * s``.
- DoRA: ``+ w * ((g - 1) * (W x) + g * s * B(A(x)))`` with ``g = m / ||W + s B A||_row``, the magnitude over
  the row norm, precomputed once at load (PEFT recomputes the norm each forward).
- LoKr: ``+ w * s * (W1 kron W2) x`` with ``s = alpha / r``, computed without forming the Kronecker product:
  ``x`` reshaped to ``(in1, in2)`` gives ``W1 X W2^T``, reshaped back to ``out1 * out2``.
- IA3: the base input (feed-forward modules) or output is scaled by ``1 + w * (l - 1)``.

Several active slots add their deltas, each computed against the base output (PEFT chains DoRA adapters on
the running result instead; for one adapter the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Activation:
    """One adapter in the plan: its ``weight`` and the batch ``rows`` it applies to (None = every row)."""

    name: str
    weight: float = 1.0
    rows: torch.Tensor | None = None


class AdapterRouting:
    """The plan shared by every wrapper of one base model; empty means the bare base."""

    def __init__(self) -> None:
        self.plan: tuple[Activation, ...] = ()


@dataclass
class LoraSlot:
    a: torch.Tensor  # (r, in)
    b: torch.Tensor  # (out, r)
    scale: float
    dora_factor: torch.Tensor | None = None  # (out,) = magnitude / ||W + s B A||, DoRA only

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.a, self.b, self.dora_factor) if t is not None)


@dataclass
class KronSlot:
    w1: torch.Tensor  # (out1, in1)
    w2: torch.Tensor  # (out2, in2); the layer is out1 * out2 by in1 * in2
    scale: float

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.w1, self.w2))


@dataclass
class Ia3Slot:
    vector: torch.Tensor  # (in,) for feed-forward modules, else (out,)
    feedforward: bool

    def nbytes(self) -> int:
        return self.vector.numel() * self.vector.element_size()


Slot = LoraSlot | KronSlot | Ia3Slot


class AdapterLinear(nn.Module):
    """A ``nn.Linear`` plus named adapter slots, applied as the shared routing plan says."""

    def __init__(self, base_layer: nn.Linear, routing: AdapterRouting) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.routing = routing
        self.slots: dict[str, Slot] = {}
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features

    @property
    def weight(self) -> torch.Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.routing.plan
        if not plan:
            return self.base_layer(x)
        active = [(self.slots[step.name], step) for step in plan if step.name in self.slots]
        if not active:
            return self.base_layer(x)
        return self._adapted(x, active)

    def _adapted(self, x: torch.Tensor, active: list[tuple[Slot, Activation]]) -> torch.Tensor:
        base_input = x
        for slot, step in active:
            if isinstance(slot, Ia3Slot) and slot.feedforward:
                base_input = base_input * _ia3_factor(slot, step, x)
        base = self.base_layer(base_input)
        out = base
        for slot, step in active:
            if isinstance(slot, Ia3Slot):
                if not slot.feedforward:
                    out = out * _ia3_factor(slot, step, out)
            elif step.rows is None:
                out = _add_delta(out, x, base, slot, step.weight, self.base_layer.bias)
            else:
                rows = step.rows
                delta = _add_delta(None, x[rows], base[rows], slot, step.weight, self.base_layer.bias)
                out = out.index_add(0, rows, delta)
        return out


def _add_delta(out: torch.Tensor | None, x: torch.Tensor, base: torch.Tensor, slot: LoraSlot | KronSlot,
               weight: float, bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(slot, KronSlot):
        return _add_kron(out, x, slot, weight)
    return _add_lora(out, x, base, slot, weight, bias)


def _add_kron(out: torch.Tensor | None, x: torch.Tensor, slot: KronSlot, weight: float) -> torch.Tensor:
    """``out + w * s * (W1 kron W2) x`` (or the delta alone), as ``W1 X W2^T`` on ``x`` seen as a matrix."""
    grid = x.reshape(-1, slot.w1.shape[1], slot.w2.shape[1])
    delta = torch.matmul(torch.matmul(slot.w1, grid), slot.w2.t()).reshape(*x.shape[:-1], -1)
    delta = delta * (weight * slot.scale)
    return delta if out is None else out + delta


def _add_lora(out: torch.Tensor | None, x: torch.Tensor, base: torch.Tensor, slot: LoraSlot, weight: float,
              bias: torch.Tensor | None) -> torch.Tensor:
    """``out + delta`` (or the delta alone when ``out`` is None) for one LoRA or DoRA slot."""
    shape = base.shape
    hidden = torch.mm(x.reshape(-1, x.shape[-1]), slot.a.t())
    if slot.dora_factor is None:
        if out is None:
            return (torch.mm(hidden, slot.b.t()) * (weight * slot.scale)).view(shape)
        return torch.addmm(out.reshape(-1, shape[-1]), hidden, slot.b.t(), alpha=weight * slot.scale).view(shape)
    factor = slot.dora_factor
    plain = base - bias if bias is not None else base
    lora = torch.mm(hidden, slot.b.t()).view(shape) * slot.scale
    delta = (factor - 1) * plain + factor * lora
    delta = delta * weight if weight != 1.0 else delta
    return delta if out is None else out + delta


def _ia3_factor(slot: Ia3Slot, step: Activation, like: torch.Tensor) -> torch.Tensor:
    """``1 + w (l - 1)`` for the rows in ``step``, 1 elsewhere, shaped to broadcast over ``like``."""
    factor = slot.vector if step.weight == 1.0 else 1 + step.weight * (slot.vector - 1)
    factor = factor.to(like.dtype)
    if step.rows is None:
        return factor
    full = torch.ones((like.shape[0],) + (1,) * (like.dim() - 2) + (factor.shape[-1],),
                      dtype=like.dtype, device=like.device)
    full[step.rows] = factor
    return full


@dataclass
class AdapterWeights:
    """An adapter read from disk, not yet placed: per-module slots and/or prompt-tuning embeddings."""

    kind: str  # lora | dora | adalora | lokr | ia3 | prompt_tuning
    slots: dict[str, Slot] = field(default_factory=dict)
    prompt_embeddings: torch.Tensor | None = None

    def nbytes(self) -> int:
        total = sum(slot.nbytes() for slot in self.slots.values())
        if self.prompt_embeddings is not None:
            total += self.prompt_embeddings.numel() * self.prompt_embeddings.element_size()
        return total


def wrap_linear(model: nn.Module, module_path: str, routing: AdapterRouting) -> AdapterLinear:
    """The wrapper at ``module_path``, replacing the plain ``nn.Linear`` there the first time."""
    module = model.get_submodule(module_path)
    if isinstance(module, AdapterLinear):
        return module
    if not isinstance(module, nn.Linear):
        raise TypeError(f"`{module_path}` is a {type(module).__name__}, not a Linear layer")
    wrapper = AdapterLinear(module, routing)
    parent_path, _, child = module_path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, child, wrapper)
    return wrapper


def unwrap_linear(model: nn.Module, module_path: str) -> None:
    """Put the plain base layer back once a wrapper holds no slot (the model is then untouched)."""
    module = model.get_submodule(module_path)
    if isinstance(module, AdapterLinear) and not module.slots:
        parent_path, _, child = module_path.rpartition(".")
        setattr(model.get_submodule(parent_path) if parent_path else model, child, module.base_layer)


def dora_factor(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float,
                magnitude: torch.Tensor) -> torch.Tensor:
    """``magnitude / ||W + scale * B A||`` per output row, computed in float32, returned in W's dtype."""
    combined = weight.float() + scale * (b.float() @ a.float())
    return (magnitude.float() / torch.linalg.norm(combined, dim=1)).to(weight.dtype)


def module_nbytes(module: Any) -> int:
    """Bytes held by a module's parameters and buffers (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total
