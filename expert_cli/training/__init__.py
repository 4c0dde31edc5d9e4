"""Training: the only place that imports transformers/peft/trl/datasets for training."""
