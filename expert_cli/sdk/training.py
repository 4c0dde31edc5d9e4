"""Training and datasets, as the CLI and scripts ask for them (the SDK face of :mod:`expert_cli.training`)."""

from __future__ import annotations

from collections.abc import Callable

from expert_cli.core.progress import ProgressCallback
from expert_cli.sdk.extras import require_extra
from expert_cli.training.dataset_report import MAX_PROBLEMS_SHOWN, DatasetReport, inspect_dataset
from expert_cli.training.trainer import TrainRequest, TrainResult
from expert_cli.training.trainer import train_expert as _train_expert

__all__ = ["MAX_PROBLEMS_SHOWN", "DatasetReport", "TrainRequest", "TrainResult", "inspect_dataset", "train_expert"]


def train_expert(request: TrainRequest, progress: ProgressCallback | None = None,
                 warn: Callable[[str], None] | None = None, processes: int = 1) -> TrainResult:
    """Train the manifest's adapter (and soft prompts) into ``weights/<model_slug>/``; see
    :class:`~expert_cli.training.trainer.TrainRequest`. ``processes`` > 1: data-parallel in that many local
    processes (same global batch; rank 0 writes the adapter). Needs the ``train`` extra."""
    require_extra("train")
    if processes > 1:
        from expert_cli.training.distributed import train_in_processes

        return train_in_processes(request, processes, progress, warn)
    return _train_expert(request, progress, warn)
