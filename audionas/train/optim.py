"""Optimizers, per-step lr schedules (linear warm-up, then cosine / step / constant) and weight EMA."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from audionas.errors import warn
from audionas.train.config import OptimConfig


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """The trainable parameters of `model` as optimizer groups: one, or with weight_decay_on=weights the
    conv / linear weights (>= 2 dims) and, without weight decay, the rest (BN scales and shifts, biases)."""
    params = list(model.parameters())
    if cfg.weight_decay_on == "all":
        return [{"params": params}]
    groups = [{"params": [p for p in params if p.ndim >= 2]},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam (L2 weight decay, as the ASC paper's recipe) or AdamW (decoupled)."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


class LRSchedule:
    """lr(step) as a pure function of the global optimizer step (0-based), so resuming needs only the step."""

    def __init__(self, cfg: OptimConfig, steps_per_epoch: int, epochs: int):
        self.cfg = cfg
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.total = self.steps_per_epoch * int(epochs)
        self.warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        self.milestone_steps = [int(round(m * self.steps_per_epoch)) for m in cfg.milestones]
        # Without milestones, step_size puts one at every k * step_size <= epochs (counted, not listed: a long
        # run with a short step_size would make a huge list).
        self.step_milestones = int(epochs / cfg.step_size) if not cfg.milestones and cfg.step_size > 0 else 0
        late = [m for m in cfg.milestones if m >= epochs] if cfg.schedule == "step" else []
        if late:  # a paper recipe shortened with epochs=N: say so, the run is still valid
            warn(f"optim.milestones [{', '.join(f'{m:g}' for m in late)}] are at or after the last "
                 f"epoch ({epochs}): they never lower the lr in this run")
        if cfg.warmup_epochs > epochs:
            warn(f"optim.warmup_epochs {cfg.warmup_epochs:g} is longer than the run ({epochs} "
                 f"epoch{'s' if epochs != 1 else ''}): the lr never reaches optim.lr")

    def factor(self, step: int) -> float:
        """Multiplier of the base lr for the update with index `step`."""
        c = self.cfg
        if step < self.warmup:
            # Choice: update s uses lr * (s + 1) / warmup, so the first update is not wasted at lr 0.
            return (step + 1) / self.warmup
        if c.schedule == "constant":
            return 1.0
        if c.schedule == "step":
            # Milestones count absolute steps (warm-up included), as the Honk / TC-ResNet recipes do.
            return c.gamma ** self.milestones_passed(step)
        span = max(1, self.total - self.warmup)
        t = min(step - self.warmup, span) / span
        floor = c.min_lr / c.lr
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def milestones_passed(self, step: int) -> int:
        """Milestones at or before `step`: listed ones, or the k <= step_milestones with round(k * step_size *
        steps_per_epoch) <= step (that rounding is monotone in k: start above the answer, step down)."""
        if not self.step_milestones:
            return sum(1 for m in self.milestone_steps if step >= m)
        size, spe = self.cfg.step_size, self.steps_per_epoch
        k = min(self.step_milestones, int((step + 0.5) / (size * spe)) + 1)
        while k > 0 and int(round(size * k * spe)) > step:
            k -= 1
        return k

    def lr(self, step: int) -> float:
        return self.cfg.lr * self.factor(step)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                    epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimizer step; its state_dict is weights_only-safe."""
    sched = LRSchedule(cfg, steps_per_epoch, epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: sched.factor(step))


class ModelEMA:
    """Exponential moving average of a model's weights: ema = decay * ema + (1 - decay) * w after every step.

    Choice: buffers (BatchNorm statistics) are copied from the live model, not averaged, as TensorFlow's
    ExponentialMovingAverage over trainable variables leaves them (timm's ModelEma averages them too); the
    ASC paper names no variant.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        for m in self.module.modules():
            # deepcopy clones each weight into its own storage: on cuDNN a GRU/LSTM would then re-pack its
            # weights (and warn) at every forward. On CPU this is a no-op.
            if isinstance(m, nn.RNNBase):
                m.flatten_parameters()

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = dict(self.module.named_parameters())
        for name, p in model.named_parameters():
            ema_params[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        ema_bufs = dict(self.module.named_buffers())
        for name, b in model.named_buffers():
            ema_bufs[name].copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
