"""The TRL trainer class to use: stock ``SFTTrainer``, or on the CPU one that computes the loss the lean way.

TRL 1.x computes every training loss through a chunked "fused" LM head that also measures entropy and token
accuracy per step. It spares GPU memory on Qwen3's 151k-token vocabulary, where full logits are gigabytes; on
the CPU, with the demo base's small vocabulary, it only costs time (about 10% of a step here). CPU training
computes the same number, the cross-entropy of the labelled tokens (TRL has already set the prompt's labels
to -100) divided by the same token count, and projects only the hidden states it needs: the positions whose
next token is labelled. A chat row's answer is a fifth of its tokens or less, so the LM head and the softmax
run on a fifth of the positions (measured on the demo base, expert-sql batches of 16: 13% less time per
step). Models whose forward takes no ``logits_to_keep`` mask (older transformers) and prompt tuning get the
model's own loss on full logits.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")
IGNORED = -100  # the label of a token that is not learned (prompt, padding)


def trainer_class(on_cuda: bool) -> Any:
    from trl import SFTTrainer

    return SFTTrainer if on_cuda else lean_trainer_class()


def keeps_labelled_positions(model: Any) -> bool:
    """Whether ``model``'s forward can project a boolean ``(batch, seq)`` mask of positions only (not with
    prompt tuning, whose virtual tokens lengthen the sequence inside PEFT's forward)."""
    config = getattr(model, "active_peft_config", None)
    if config is not None and config.is_prompt_learning:
        return False
    try:
        from transformers.modeling_utils import slice_logits_to_keep  # noqa: F401  (the 2D-mask support)
    except ImportError:
        return False
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def labelled_positions(labels: Any) -> Any:
    """``(batch, seq)`` booleans: True where the next token's label is learned (the shifted-label mask)."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORED
    return keep


def labelled_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> tuple[Any, Any]:
    """Mean cross-entropy over the labelled tokens, with logits computed only where a label follows.

    Equals the model's own causal-LM loss on the same labels; divided by ``num_items_in_batch`` when the
    trainer counts the tokens of a whole accumulated step, as transformers' loss does."""
    import torch
    import torch.nn.functional as F

    labels = inputs["labels"]
    keep = labelled_positions(labels)
    plain = {key: inputs[key] for key in MODEL_INPUTS if key in inputs}
    outputs = model(**plain, use_cache=False, logits_to_keep=keep)
    targets = labels[:, 1:][keep[:, :-1]]
    total = F.cross_entropy(outputs.logits.float(), targets, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else targets.numel()
    return total / torch.as_tensor(count, device=total.device).clamp(min=1), outputs


@functools.cache
def lean_trainer_class() -> Any:
    from transformers import Trainer
    from trl import SFTTrainer

    class LeanSFTTrainer(SFTTrainer):
        """``SFTTrainer`` whose loss is the plain cross-entropy of the labelled tokens (no fused head, no
        per-step metrics, logits only where they are learned)."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if not hasattr(self, "_keeps_labelled"):
                self._keeps_labelled = keeps_labelled_positions(model)
            if "labels" in inputs and self._keeps_labelled:
                loss, outputs = labelled_loss(model, inputs, num_items_in_batch)
                return (loss, outputs) if return_outputs else loss
            plain = {key: inputs[key] for key in (*MODEL_INPUTS, "labels") if key in inputs}
            plain["use_cache"] = False
            return Trainer.compute_loss(self, model, plain, return_outputs, num_items_in_batch)

    return LeanSFTTrainer
