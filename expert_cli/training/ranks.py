"""Which process this is under data parallelism (``RANK``/``WORLD_SIZE`` as ``torchrun``, ``accelerate launch``
and ``expert-cli train --processes`` set them), and the per-process batch that keeps the manifest's batch the
global one. Pure Python."""

from __future__ import annotations

import os
from typing import Any

from expert_cli.core.errors import TrainingError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def split_global_batch(args: dict[str, Any], processes: int) -> list[str]:
    """Per-process batch settings that keep the manifest's global batch; notes saying what changed."""
    if processes <= 1:
        return []
    batch, accumulation = args["per_device_train_batch_size"], args["gradient_accumulation_steps"]
    if batch % processes == 0:
        args["per_device_train_batch_size"] = batch // processes
        args["per_device_eval_batch_size"] = max(1, args.get("per_device_eval_batch_size", batch) // processes)
    elif accumulation % processes == 0:
        args["gradient_accumulation_steps"] = accumulation // processes
    else:
        raise TrainingError(f"a global batch of {batch} rows x {accumulation} accumulation steps cannot be split "
                            f"evenly over {processes} processes",
                            hint=f"use a `batch_size` or `gradient_accumulation_steps` divisible by {processes}")
    return [(f"{processes} processes share each global batch of {batch * accumulation} rows: "
            f"{args['per_device_train_batch_size']} rows x {args['gradient_accumulation_steps']} accumulation "
            "steps each")]
