"""Training and datasets, as the CLI and scripts ask for them (the SDK face of :mod:`expert_cli.training`)."""

from __future__ import annotations

from expert_cli.training.dataset_report import MAX_PROBLEMS_SHOWN, DatasetReport, inspect_dataset
from expert_cli.training.trainer import TrainRequest, TrainResult, train_expert

__all__ = ["MAX_PROBLEMS_SHOWN", "DatasetReport", "TrainRequest", "TrainResult", "inspect_dataset", "train_expert"]
