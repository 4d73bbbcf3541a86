"""Training configuration: `TrainConfig` (+ `OptimConfig`), loaded with `audionas.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audionas.data import DataConfig
from audionas.errors import UserError
from audionas.utils.dist import check_device_name
from audionas.utils.rng import check_seed


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.1
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam / adamw only
    weight_decay: float = 0.0
    schedule: str = "constant"  # cosine | step | constant, applied per optimizer step
    warmup_epochs: float = 0.0  # linear 0 -> lr over this many epochs (per step), then the schedule
    min_lr: float = 0.0  # cosine floor
    step_size: float = 0.0  # step: multiply by gamma every step_size epochs (used when milestones is empty)
    gamma: float = 0.1
    milestones: list[float] = field(default_factory=list)  # step: epochs (fractional ok) where lr *= gamma
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    ema_decay: float = 0.0  # exponential moving average of the weights; 0 = off

    def validate(self) -> None:
        if self.name not in ("sgd", "adam", "adamw"):
            raise UserError(f"config field 'optim.name': expected sgd, adam or adamw, got '{self.name}'")
        if self.schedule not in ("cosine", "step", "constant"):
            raise UserError(f"config field 'optim.schedule': expected cosine, step or constant, "
                            f"got '{self.schedule}'")
        if self.lr <= 0:
            raise UserError(f"config field 'optim.lr': expected a positive number, got {self.lr}")
        if self.warmup_epochs < 0:
            raise UserError("config field 'optim.warmup_epochs': expected >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"config field 'optim.ema_decay': expected 0 <= decay < 1, got {self.ema_decay}")
        if self.grad_clip < 0:
            raise UserError("config field 'optim.grad_clip': expected >= 0 (0 = off)")
        if self.schedule == "step" and not self.milestones and self.step_size <= 0:
            raise UserError("config field 'optim.milestones': the step schedule needs milestones (epochs) "
                            "or optim.step_size > 0")
        ms = list(self.milestones)
        if any(m <= 0 for m in ms) or any(a >= b for a, b in zip(ms, ms[1:])):
            raise UserError(f"config field 'optim.milestones': expected increasing epochs > 0, got {ms}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise UserError(f"config field 'optim.betas': expected two numbers in [0, 1), got {self.betas}")
        for name in ("weight_decay", "momentum", "min_lr", "gamma"):
            if (value := getattr(self, name)) < 0:
                raise UserError(f"config field 'optim.{name}': expected >= 0, got {value}")
        if self.schedule == "step" and self.gamma == 0:
            raise UserError("config field 'optim.gamma': expected > 0 with the step schedule (0 sets the lr "
                            "to 0 at the first milestone)")
        if self.schedule == "cosine" and self.min_lr > self.lr:
            raise UserError(f"config field 'optim.min_lr': the cosine floor {self.min_lr} is above optim.lr "
                            f"{self.lr}; expected min_lr <= lr")
        if self.name == "sgd" and self.nesterov and self.momentum == 0:
            raise UserError("config field 'optim.nesterov': Nesterov needs momentum; set optim.momentum > 0 "
                            "or optim.nesterov=false")


@dataclass
class TrainConfig:
    model: str = "res15"  # a registered model name (audionas.models)
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 26
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    aux_weight: float = 0.4  # weight of the auxiliary head's loss when the model returns (logits, aux)
    label_smoothing: float = 0.0
    checkpoint_every_steps: int = 0  # 0 = last.pt at the end of every epoch only
    eval_split: str = "val"  # split evaluated after every epoch (val | test | train)
    save_best: bool = True  # also keep best.pt by eval_split accuracy
    log_every: int = 50  # TensorBoard scalars every N steps
    max_steps_per_epoch: int = 0  # 0 = the whole training split; >0 caps an epoch (quick runs)
    # Model and inputs in channels_last (faster CPU convs), via models/channels_last.optimize_for_training.
    channels_last: bool = False
    # With channels_last: BNs as FastBatchNorm2d, whose training statistics are close to NCHW's in accuracy
    # (PyTorch's channels_last BN sums them naively in float32); false = native BN, faster, less accurate.
    accurate_bn: bool = True
    device: str = "auto"  # auto (cuda if present) | cpu | cuda | cuda:N

    def validate(self) -> None:
        if self.epochs < 1:
            raise UserError(f"config field 'epochs': expected a positive integer, got {self.epochs}")
        check_seed(self.seed)
        if self.eval_split not in ("val", "test", "train"):
            raise UserError(f"config field 'eval_split': expected val, test or train, "
                            f"got '{self.eval_split}'")
        if self.checkpoint_every_steps < 0 or self.max_steps_per_epoch < 0 or self.log_every < 1:
            raise UserError("config fields 'checkpoint_every_steps'/'max_steps_per_epoch' must be >= 0 "
                            "and 'log_every' >= 1")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError("config field 'label_smoothing': expected 0 <= value < 1")
        if not 0.0 <= self.aux_weight <= 1.0:
            raise UserError(f"config field 'aux_weight': expected 0 <= weight <= 1 (the auxiliary head's "
                            f"loss weight; DARTS uses 0.4), got {self.aux_weight}")
        check_device_name(self.device)


# Fields that may differ when resuming a run: they change neither the data seen nor the weights.
RESUME_FREE_FIELDS = ("data.root", "data.cache", "data.num_workers", "data.eval_batch_size", "log_every",
                      "device")


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields where two config dicts differ."""
    out = []
    for k in sorted(set(a) | set(b)):
        name = f"{prefix}{k}"
        va, vb = a.get(k, None), b.get(k, None)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, prefix=f"{name}.")
        elif va != vb:
            out.append(name)
    return out
