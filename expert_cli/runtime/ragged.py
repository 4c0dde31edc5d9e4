"""One forward for a decoding batch and the prompts joining it (prefill folded into the decode step).

A continuous batch used to run two forwards when requests joined: a prefill of the newcomers' prompts, then
the decode step of the running rows. On a small model each forward costs mostly per-operation overhead, so
the second one doubled the time a newcomer waited for its first token. Here the running rows' next tokens
(one each) and the newcomers' left-padded prompts go through the model as one batch of ``D + n * L``
single-token rows: every layer's linear parts, norms, rotary embeddings and the experts' adapters (a
composition per token, through the usual per-row plan) see each token once; only attention is split, by
:func:`ragged_attention`, into two SDPA calls: the ``D`` decode queries against the running rows' KV cache
(right-aligned rows, as :class:`~expert_cli.runtime.continuous.ContinuousBatch` keeps it, plus the new key),
and the newcomers' queries against their own prompts (causal, padding masked). vLLM's chunked prefill does
the same with paged-attention kernels.

It plugs into transformers through documented seams: the attention function is registered under
:data:`IMPLEMENTATION` (:class:`~transformers.AttentionInterface`, with SDPA's mask builder) and hands every
other call to transformers' own SDPA, so the model answers exactly as before outside a ragged step. In a ragged
step the model gets a :class:`RaggedStep` as its cache and as the ``ragged`` keyword argument (transformers
passes extra keywords down to the attention function), and :data:`PREPARED_MASK` (an empty 4-D mask, which
transformers takes as already prepared) as its attention mask, so no mask is built. Models with sliding-window
layers, another attention implementation or a head other than one ``lm_head`` keep the two-forward path
(:func:`supports`). Imported lazily (it imports torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

IMPLEMENTATION = "expert_cli_ragged"
PREPARED_MASK = torch.empty((0, 0, 0, 0), dtype=torch.bool)  # "already prepared": transformers builds no mask
_REGISTERED = False


def supports(model: Any) -> bool:
    """Whether ``model`` can run ragged steps: a decoder (``model.model``) and one ``lm_head``, SDPA attention
    (or ours already), no sliding-window layers, no logit soft-capping."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", IMPLEMENTATION):
        return False
    inner = getattr(model, "model", None)
    return (inner is not None and isinstance(getattr(model, "lm_head", None), torch.nn.Linear)
            and not getattr(inner, "has_sliding_layers", False) and hasattr(model, "set_attn_implementation")
            and not getattr(config, "final_logit_softcapping", None))


def enable(model: Any) -> None:
    """Register the ragged attention once and switch ``model`` to it (an SDPA model answers the same)."""
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(IMPLEMENTATION, ragged_attention)
        AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)
        _REGISTERED = True
    if model.config._attn_implementation != IMPLEMENTATION:
        model.set_attn_implementation(IMPLEMENTATION)


@dataclass(eq=False)
class RaggedStep:
    """One ragged forward over ``decode + new * width`` single-token rows: first one new token for each of the
    ``decode`` running rows (their cache ``layers`` and ``decode_mask``), then ``new`` prompts of ``width``
    tokens each (left-padded, ``new_mask``). Passed to the model as its cache and as ``ragged=``; after
    the forward, the running rows' layers have their new key appended and :attr:`new_keys`/:attr:`new_values`
    hold the newcomers' cache per layer."""

    layers: list[Any]  # the running rows' cache layers (``keys``/``values``: [decode, kv_heads, columns, dim])
    decode: int
    decode_mask: torch.Tensor | None  # [decode, columns + 1] bool, the new token included
    new: int
    width: int
    new_mask: torch.Tensor | None  # [new, width] bool
    new_keys: list[torch.Tensor | None] = field(default_factory=list)
    new_values: list[torch.Tensor | None] = field(default_factory=list)
    _decode_bias: torch.Tensor | None = None
    _new_bias: torch.Tensor | None = None

    # -- the cache side (what the attention layers call) --------------------------------------------
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
               *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Split this layer's new keys/values ([tokens, kv_heads, 1, dim]) between the running rows (appended to
        their cache) and the newcomers (kept for the join)."""
        if self.decode:
            layer = self.layers[layer_idx]
            layer.keys = torch.cat([layer.keys, key_states[: self.decode]], dim=-2)
            layer.values = torch.cat([layer.values, value_states[: self.decode]], dim=-2)
        while len(self.new_keys) <= layer_idx:
            self.new_keys.append(None)
            self.new_values.append(None)
        if self.new:
            self.new_keys[layer_idx] = self._prompts(key_states[self.decode :])
            self.new_values[layer_idx] = self._prompts(value_states[self.decode :])
        return key_states, value_states

    def last_tokens(self) -> list[int]:
        """The rows (tokens) whose logits choose the next tokens: every running row's, each prompt's last."""
        return list(range(self.decode)) + [self.decode + (index + 1) * self.width - 1 for index in range(self.new)]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0  # positions are always given explicitly

    def _prompts(self, states: torch.Tensor) -> torch.Tensor:
        """[new * width, heads, 1, dim] -> [new, heads, width, dim]."""
        heads, dim = states.shape[1], states.shape[3]
        return states.reshape(self.new, self.width, heads, dim).transpose(1, 2)

    # -- masks, built once per step and shared by every layer -----------------------------------------
    def decode_bias(self) -> torch.Tensor:
        if self._decode_bias is None:
            self._decode_bias = self.decode_mask[:, None, None, :]  # type: ignore[index]
        return self._decode_bias

    def new_bias(self) -> torch.Tensor:
        """[new, 1, width, width]: causal over each prompt's real tokens; a padding query sees only itself (an
        all-masked row would turn into NaNs that later layers spread)."""
        if self._new_bias is None:
            mask = self.new_mask
            assert mask is not None
            allowed = torch.ones(self.width, self.width, dtype=torch.bool, device=mask.device).tril()[None]
            allowed = allowed & mask[:, None, :]
            allowed |= torch.eye(self.width, dtype=torch.bool, device=mask.device)[None]
            self._new_bias = allowed[:, None]
        return self._new_bias


def ragged_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: Any, scaling: float | None = None, dropout: float = 0.0,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """The registered attention: in a ragged step (``ragged=`` a :class:`RaggedStep`) split in two, anything else
    is transformers' SDPA. Returns ``[tokens, 1, heads, dim]`` as transformers' attention functions do."""
    step = kwargs.pop("ragged", None)
    if step is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    layer = module.layer_idx
    parts = []
    if step.decode:  # [decode, heads, 1, dim] against each row's cache
        cache = step.layers[layer]
        parts.append(_sdpa(query[: step.decode], cache.keys, cache.values, step.decode_bias(), scaling))
    if step.new:  # [new, heads, width, dim] against each prompt, back to one row per token
        out = _sdpa(step._prompts(query[step.decode :]), step.new_keys[layer], step.new_values[layer],
                    step.new_bias(), scaling)
        parts.append(out.transpose(1, 2).reshape(step.new * step.width, out.shape[1], 1, out.shape[3]))
    out = torch.cat(parts) if len(parts) > 1 else parts[0]
    return out.transpose(1, 2), None


_GQA = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)  # SDPA's enable_gqa


def _sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
          scaling: float | None) -> torch.Tensor:
    groups = query.shape[1] // key.shape[1]
    if groups == 1:
        return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    if _GQA:  # grouped-query attention: each key/value head serves `groups` query heads
        return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling,
                                                                enable_gqa=True)
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
