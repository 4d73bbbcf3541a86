"""Training configuration: `TrainConfig` (+ `OptimConfig`), loaded with `audionas.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audionas.data import DataConfig
from audionas.errors import UserError
from audionas.utils.dist import check_device_name
from audionas.utils.rng import check_seed

# Choice: limits that stop typos before they hang or overflow. No recipe trains for more than a few hundred
# epochs, and torch's float32 optimizer maths fails with a traceback for learning rates or decays near 1e38.
MAX_EPOCHS = 100_000
MAX_LR = 100.0


def check_epochs(value: int, field: str = "epochs") -> None:
    if not 1 <= value <= MAX_EPOCHS:
        raise UserError(f"config field '{field}': expected an integer in 1..{MAX_EPOCHS:,}, got {value}")


def check_at_least(cfg, low: int, *fields: str) -> None:
    """UserError naming the first of the integer `fields` of `cfg` below `low`, with its value."""
    for name in fields:
        if (value := getattr(cfg, name)) < low:
            raise UserError(f"config field '{name}': expected an integer >= {low}, got {value}")


def check_lr(value: float, field: str) -> None:
    if not 0 < value <= MAX_LR:
        raise UserError(f"config field '{field}': expected a learning rate in (0, {MAX_LR:g}], got {value}")


def check_momentum(value: float, field: str) -> None:
    """0 <= momentum < 1: at 1 or above, SGD's velocity never decays and the weights diverge."""
    if not 0 <= value < 1:
        raise UserError(f"config field '{field}': expected 0 <= momentum < 1, got {value}")


def check_fraction(value: float, field: str) -> None:
    """A weight decay or lr decay factor: 0 <= value <= 1."""
    if not 0 <= value <= 1:
        raise UserError(f"config field '{field}': expected a number in [0, 1], got {value}")


@dataclass
class OptimConfig:
    """Optimiser, learning-rate schedule, weight decay, EMA and clipping (the `optim:` section)."""
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.1
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam / adamw only
    weight_decay: float = 0.0
    # all: every trainable parameter (torch optimisers, Honk); weights: conv / linear weights only (>= 2 dims,
    # not BN scales and shifts or biases), as TF-slim's weights_regularizer in the TC-ResNet reference
    weight_decay_on: str = "all"
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
        if self.weight_decay_on not in ("all", "weights"):
            raise UserError(f"config field 'optim.weight_decay_on': expected all or weights, "
                            f"got '{self.weight_decay_on}'")
        if self.schedule not in ("cosine", "step", "constant"):
            raise UserError(f"config field 'optim.schedule': expected cosine, step or constant, "
                            f"got '{self.schedule}'")
        check_lr(self.lr, "optim.lr")
        # Beyond MAX_EPOCHS (or a step more often than every thousandth of an epoch) only a typo, and a step
        # count past the float range crashed the schedule with an OverflowError.
        if not 0 <= self.warmup_epochs <= MAX_EPOCHS:
            raise UserError(f"config field 'optim.warmup_epochs': expected 0..{MAX_EPOCHS:,}, "
                            f"got {self.warmup_epochs}")
        if not (self.step_size == 0 or 1e-3 <= self.step_size <= MAX_EPOCHS):
            raise UserError(f"config field 'optim.step_size': expected 0 (off) or 0.001..{MAX_EPOCHS:,} "
                            f"epochs, got {self.step_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"config field 'optim.ema_decay': expected 0 <= decay < 1, got {self.ema_decay}")
        if self.grad_clip < 0:
            raise UserError("config field 'optim.grad_clip': expected >= 0 (0 = off)")
        if self.schedule == "step" and not self.milestones and self.step_size <= 0:
            raise UserError("config field 'optim.milestones': the step schedule needs milestones (epochs) "
                            "or optim.step_size > 0")
        ms = list(self.milestones)
        if (any(not 0 < m <= MAX_EPOCHS for m in ms)
                or any(a >= b for a, b in zip(ms, ms[1:]))):
            raise UserError(f"config field 'optim.milestones': expected increasing epochs in (0, "
                            f"{MAX_EPOCHS:,}], got {ms}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise UserError(f"config field 'optim.betas': expected two numbers in [0, 1), got {self.betas}")
        check_momentum(self.momentum, "optim.momentum")
        check_fraction(self.weight_decay, "optim.weight_decay")
        check_fraction(self.gamma, "optim.gamma")
        if self.min_lr < 0:
            raise UserError(f"config field 'optim.min_lr': expected >= 0, got {self.min_lr}")
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
    """One training run (`audionas train`): model, data, optimisation, epochs, seed and run outputs."""
    model: str = "res15"  # a registered model name (audionas.models)
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 26
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    aux_weight: float = 0.4  # weight of the auxiliary head's loss when the model returns (logits, aux)
    label_smoothing: float = 0.0
    checkpoint_every_steps: int = 0  # 0 = last.pt at the end of every epoch only
    eval_split: str = "val"  # split scored after every epoch (val | test | train: logged as train_eval_*)
    save_best: bool = True  # also keep best.pt by eval_split accuracy
    # The weights final.pt holds and the test split scores: last (the papers' runs: the last checkpoint, EMA
    # if enabled) | best (best.pt, highest eval_split accuracy: TC-ResNet's reference script tests it).
    test_weights: str = "last"
    log_every: int = 50  # TensorBoard scalars every N steps
    max_steps_per_epoch: int = 0  # 0 = the whole training split; >0 caps an epoch (quick runs)
    # Model and inputs in channels_last (faster CPU convs), via models/channels_last.optimize_for_training.
    channels_last: bool = False
    # With channels_last: BNs as FastBatchNorm2d, whose training statistics are close to NCHW's in accuracy
    # (PyTorch's channels_last BN sums them naively in float32); false = native BN, faster, less accurate.
    accurate_bn: bool = True
    device: str = "auto"  # auto (cuda if present) | cpu | cuda | cuda:N

    def validate(self) -> None:
        check_epochs(self.epochs)
        check_seed(self.seed)
        if self.eval_split not in ("val", "test", "train"):
            raise UserError(f"config field 'eval_split': expected val, test or train, "
                            f"got '{self.eval_split}'")
        if self.test_weights not in ("last", "best"):
            raise UserError(f"config field 'test_weights': expected last or best, got '{self.test_weights}'")
        if self.test_weights == "best" and not self.save_best:
            raise UserError("config field 'test_weights': best needs save_best=true (best.pt holds them)")
        if self.test_weights == "best" and self.eval_split == "test":
            raise UserError("config field 'test_weights': best picks the weights by eval_split accuracy, "
                            "here the test split's, so the test score would be chosen on the test split; set "
                            "eval_split=val")
        check_at_least(self, 0, "checkpoint_every_steps", "max_steps_per_epoch")
        check_at_least(self, 1, "log_every")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError("config field 'label_smoothing': expected 0 <= value < 1")
        if not 0.0 <= self.aux_weight <= 1.0:
            raise UserError(f"config field 'aux_weight': expected 0 <= weight <= 1 (the auxiliary head's "
                            f"loss weight; DARTS uses 0.4), got {self.aux_weight}")
        if self.aux_weight == 0 and self.model_args.get("auxiliary") is True:
            # An unused head's parameters get no gradient, which DDP refuses at the second step.
            raise UserError("config field 'aux_weight': 0 trains no auxiliary loss, but "
                            "model_args.auxiliary=true builds the head; set model_args.auxiliary=false or "
                            "aux_weight > 0")
        check_device_name(self.device)


# Fields that may differ when resuming a run: they change neither the data seen nor the weights.
RESUME_FREE_FIELDS = ("data.root", "data.cache", "data.num_workers", "data.wave_cache_mb",
                      "data.eval_batch_size", "log_every", "device", "checkpoint_every_steps", "test_weights")


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
