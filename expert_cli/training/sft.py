"""The TRL trainer class to use: stock ``SFTTrainer``, or on the CPU one that computes the loss the plain way.

TRL 1.x computes every training loss through a chunked "fused" LM head that also measures entropy and token
accuracy per step. It spares GPU memory on Qwen3's 151k-token vocabulary, where full logits are gigabytes; on
the CPU, with the demo base's small vocabulary, it only costs time (about 10% of a step here). The model's own
loss on TRL's labels (prompt tokens already masked with -100, normalised by the same token count) is the same
number, so CPU training uses it.
"""

from __future__ import annotations

import functools
from typing import Any

MODEL_INPUTS = ("input_ids", "attention_mask", "labels", "position_ids")


def trainer_class(on_cuda: bool) -> Any:
    from trl import SFTTrainer

    return SFTTrainer if on_cuda else lean_trainer_class()


@functools.cache
def lean_trainer_class() -> Any:
    from transformers import Trainer
    from trl import SFTTrainer

    class LeanSFTTrainer(SFTTrainer):
        """``SFTTrainer`` whose loss is the model's own cross-entropy (no fused head, no per-step metrics)."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            plain = {key: inputs[key] for key in MODEL_INPUTS if key in inputs}
            plain["use_cache"] = False
            return Trainer.compute_loss(self, model, plain, return_outputs, num_items_in_batch)

    return LeanSFTTrainer
