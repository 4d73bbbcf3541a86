"""Training: TrainConfig, optimizers and schedules, the training loop, metrics, evaluation."""
