"""Unmerged adapters on a shared base: one wrapper per target Linear, one slot per attached adapter.

The first adapter that targets a ``nn.Linear`` replaces it with an :class:`AdapterLinear` holding the base
layer untouched and a dict of slots (adapter name -> a :class:`Slot` of the adapter's method, read straight
from ``adapter_model.safetensors``). Every wrapper of a base shares one :class:`AdapterRouting`; its ``plan``
says which adapters are active, with which weight and for which batch rows, so switching experts is one
attribute assignment and a batch can mix experts row by row. With an empty plan a wrapper returns
``base_layer(x)`` itself: bit for bit the bare base.

Each method module (:mod:`.lora`, :mod:`.lokr`, :mod:`.ia3`, ...) defines its slot: what it does to the base
layer's input (:meth:`Slot.scale_input`, only when ``scales_input``) and to its output (:meth:`Slot.apply`).
Several active slots compose independently of their order: input scales first, then output scales, then
additive ones (:class:`DeltaSlot`), each computing its delta against the base output (PEFT chains DoRA
adapters on the running result instead; for one adapter the two agree).

A mixed batch (rows with different experts) would cost one gather, two small products and one scatter per
adapter per layer if each slot ran on its own rows. Plain LoRA slots (``gatherable``) instead run as one
gathered low-rank product: their ``A`` matrices stacked into one ``[R, in]``, their ``B`` into one
``[out, R]``, and a ``[rows, R]`` mask holding each row's ``weight * scale`` on its adapters' rank segments
(zero elsewhere), so ``out + ((x A^T) * mask) B^T`` is one ``mm``, one ``mul`` and one ``addmm`` whatever the
number of experts. The stacks depend only on which experts the batch uses (the same while rows come and go in a
continuous batch), the mask on the plan (the batch's membership); each wrapper keeps the last two of each
(:class:`LoraStack`, :class:`GatheredLora`), and drops them when an adapter is attached or detached.
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
    """The plan shared by every wrapper of one base model; empty means the bare base.

    It also keeps the gathered-LoRA row masks of the current plan (:meth:`mask_for`): every layer whose
    experts (names, ranks, scales) are the same uses the same mask, so a new plan builds it once, not per layer."""

    def __init__(self) -> None:
        self.plan: tuple[Activation, ...] = ()
        # The masks of the last two plans (a continuous batch alternates with its newcomers' plan), newest last.
        self._masks: list[tuple[tuple[Activation, ...], dict[tuple[Any, ...], torch.Tensor]]] = []

    def mask_for(self, stack: LoraStack, group: list[tuple[Slot, Activation]], batch: int) -> torch.Tensor:
        """The ``[batch, 1, R]`` row mask of ``group`` on ``stack`` under the current plan (shared, read-only)."""
        masks = next((masks for plan, masks in self._masks if plan is self.plan), None)
        if masks is None:
            masks = {}
            self._masks = [*self._masks[-1:], (self.plan, masks)]
        scales = tuple(slot.scale for slot, _ in group)  # type: ignore[attr-defined]
        key = (stack.names, stack.ranks, scales, batch, stack.a.dtype, stack.a.device)
        mask = masks.get(key)
        if mask is None:
            mask = masks[key] = stack.mask(group, batch)
        return mask


class Slot:
    """One adapter's tensors on one Linear layer; each method module subclasses it."""

    scales_input = False  # True when the slot scales the base layer's input (see scale_input)
    gatherable = False  # True for plain LoRA: ``a`` [r, in], ``b`` [out, r], ``scale``; see GatheredLora

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        raise NotImplementedError

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors() if t is not None)

    def scale_input(self, base_input: torch.Tensor, step: Activation, x: torch.Tensor) -> torch.Tensor:
        """The base layer's input after this slot (called only when ``scales_input``)."""
        return base_input

    def apply(self, out: torch.Tensor, x: torch.Tensor, base: torch.Tensor, step: Activation,
              bias: torch.Tensor | None) -> torch.Tensor:
        """The layer output after this slot: ``out`` so far, ``x`` the input, ``base`` the base output."""
        raise NotImplementedError


class DeltaSlot(Slot):
    """A slot that adds a delta to the output; :meth:`add_to` computes it for the rows it is given."""

    def add_to(self, out: torch.Tensor | None, x: torch.Tensor, base: torch.Tensor, weight: float,
               bias: torch.Tensor | None) -> torch.Tensor:
        """``out + weight * delta``, or the weighted delta alone when ``out`` is None."""
        raise NotImplementedError

    def apply(self, out: torch.Tensor, x: torch.Tensor, base: torch.Tensor, step: Activation,
              bias: torch.Tensor | None) -> torch.Tensor:
        if step.rows is None:
            return self.add_to(out, x, base, step.weight, bias)
        rows = step.rows
        return out.index_add(0, rows, self.add_to(None, x[rows], base[rows], step.weight, bias))


class AdapterLinear(nn.Module):
    """A ``nn.Linear`` plus named adapter slots, applied as the shared routing plan says."""

    def __init__(self, base_layer: nn.Linear, routing: AdapterRouting) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.routing = routing
        self.slots: dict[str, Slot] = {}
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        # Two of each, newest last: a batch admitting rows alternates between its own plan and the newcomers'.
        # (Changed in place: nn.Module's own __setattr__ costs more than the rest of a cache hit.)
        self._stacks: list[LoraStack] = []
        self._gathered: list[GatheredLora] = []

    def add_slot(self, name: str, slot: Slot) -> None:
        self.slots[name] = slot
        self._stacks.clear()
        self._gathered.clear()

    def remove_slot(self, name: str) -> None:
        self.slots.pop(name, None)
        self._stacks.clear()
        self._gathered.clear()

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
        base_input = x
        for slot, step in active:
            if slot.scales_input:
                base_input = slot.scale_input(base_input, step, x)
        out = base = self.base_layer(base_input)
        # Output scales (IA3) first, deltas after: a row's result does not depend on the order of its experts,
        # so a row composed in a mixed batch (whose plan orders groups by batch) equals the row served alone.
        for slot, step in active:
            if not isinstance(slot, DeltaSlot):
                out = slot.apply(out, x, base, step, self.base_layer.bias)
        deltas: list[tuple[Slot, Activation]] = []
        gathered: list[tuple[Slot, Activation]] = []
        for slot, step in active:
            if isinstance(slot, DeltaSlot):
                (gathered if slot.gatherable and step.rows is not None else deltas).append((slot, step))
        if len(gathered) > 1:
            out = self._gathered_for(plan, gathered, x.shape[0]).add_to(out, x)
        else:
            deltas += gathered
        for slot, step in deltas:
            out = slot.apply(out, x, base, step, self.base_layer.bias)
        return out

    def _gathered_for(self, plan: tuple[Activation, ...], group: list[tuple[Slot, Activation]],
                      batch: int) -> GatheredLora:
        for gathered in self._gathered:
            if gathered.plan is plan and gathered.batch == batch:
                return gathered
        group = sorted(group, key=lambda pair: pair[1].name)  # the same experts stack the same way in any plan
        names = tuple(step.name for _, step in group)
        stack = next((stack for stack in self._stacks if stack.names == names), None)
        if stack is None:
            stack = LoraStack.build(names, [slot for slot, _ in group])
            _keep_two(self._stacks, stack)
        gathered = GatheredLora(plan, batch, stack, self.routing.mask_for(stack, group, batch))
        _keep_two(self._gathered, gathered)
        return gathered


def _keep_two(items: list[Any], newest: Any) -> None:
    """Append ``newest`` and keep only the last two items (in place)."""
    items.append(newest)
    del items[:-2]


@dataclass(eq=False)
class LoraStack:
    """Plain LoRA slots of one layer stacked: every ``A`` in one ``[R, in]``, every ``B`` in one ``[R, out]``."""

    names: tuple[str, ...]
    a: torch.Tensor
    b_t: torch.Tensor
    ranks: tuple[int, ...]

    @classmethod
    def build(cls, names: tuple[str, ...], slots: list[Slot]) -> LoraStack:
        a = torch.cat([slot.a for slot in slots])  # type: ignore[attr-defined]
        b_t = torch.cat([slot.b for slot in slots], dim=1).t().contiguous()  # type: ignore[attr-defined]
        return cls(names, a, b_t, tuple(slot.a.shape[0] for slot in slots))  # type: ignore[attr-defined]

    def mask(self, group: list[tuple[Slot, Activation]], batch: int) -> torch.Tensor:
        """``[batch, 1, R]``: each activation's ``weight * scale`` on its rows and its own rank segment."""
        mask = torch.zeros(batch, 1, self.a.shape[0], dtype=self.a.dtype, device=self.a.device)
        start = 0
        for (slot, step), rank in zip(group, self.ranks):
            mask[step.rows, :, start:start + rank] = step.weight * slot.scale  # type: ignore[attr-defined]
            start += rank
        return mask


@dataclass(eq=False)
class GatheredLora:
    """One plan's plain LoRA slots on one layer as a single low-rank product (see the module docstring)."""

    plan: tuple[Activation, ...]
    batch: int
    stack: LoraStack
    mask: torch.Tensor  # [batch, 1, R]: weight * scale on a row's own segments, 0 elsewhere

    def add_to(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``out`` plus every row's own LoRA deltas; ``x`` is ``[batch, tokens, in]``."""
        hidden = torch.matmul(x, self.stack.a.t()) * self.mask
        flat = out.reshape(-1, out.shape[-1])
        return torch.addmm(flat, hidden.reshape(-1, hidden.shape[-1]), self.stack.b_t).view(out.shape)


@dataclass
class AdapterWeights:
    """An adapter read from disk, not yet placed: per-module slots and/or prompt-tuning embeddings."""

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
    _replace(model, module_path, wrapper)
    return wrapper


def unwrap_linear(model: nn.Module, module_path: str) -> None:
    """Put the plain base layer back once a wrapper holds no slot (the model is then untouched)."""
    module = model.get_submodule(module_path)
    if isinstance(module, AdapterLinear) and not module.slots:
        _replace(model, module_path, module.base_layer)


def _replace(model: nn.Module, module_path: str, module: nn.Module) -> None:
    parent_path, _, child = module_path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, child, module)


def module_nbytes(module: Any) -> int:
    """Bytes held by a module's parameters and buffers (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total
