"""`DartsSearchConfig`: the DARTS search settings (KWS paper section 3.1 defaults), loaded from presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audionas.data import DataConfig
from audionas.errors import UserError
from audionas.nas.darts.genotype import MAX_STEPS
from audionas.train.config import (
    check_at_least,
    check_epochs,
    check_fraction,
    check_lr,
    check_momentum,
)
from audionas.utils.dist import check_device_name
from audionas.utils.rng import check_seed


def _search_data() -> DataConfig:
    # The KWS paper: 40/40/20 split; the 40% train half trains w, the 40% val half trains alpha; batch 16.
    return DataConfig(split="ratio", ratios=[0.4, 0.4, 0.2], batch_size=16)


# Choice: a bound far above the papers' stem x3 (MAX_STEPS, the nodes of a cell, is the genotype's).
MAX_STEM_MULTIPLIER = 16


@dataclass
class DartsSearchConfig:
    """A DARTS cell search (`audionas search darts`): op set, search network, both optimisers, data."""
    ops: Any = "nas1"  # an op set name (nas1, nas2, darts) or a list of registered op names
    cells: int = 6
    channels: int = 16
    layout: str = "darts"  # darts (L//3, 2L//3) | nnr | explicit N/R string
    steps: int = 4  # intermediate nodes per cell
    multiplier: int = 4  # nodes concatenated to the cell output
    stem_multiplier: int = 3
    epochs: int = 50
    seed: int = 0
    # Choice: first order, as the KWS paper's update rule states (sec. 2: alpha descends grad_a L_val(w, a),
    # no unrolled step); unrolled=true gives DARTS's second-order gradient.
    unrolled: bool = False
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0  # max global norm of the weights' gradients; 0 = off
    a_lr: float = 3e-4
    a_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    a_weight_decay: float = 1e-3
    data: DataConfig = field(default_factory=_search_data)
    max_steps_per_epoch: int = 0  # >0 caps an epoch (quick runs)
    checkpoint_every_steps: int = 0  # 0: checkpoint at the end of every epoch only
    channels_last: bool = True  # ~10x faster depthwise conv backward on CPU; same mathematics
    eval_each_epoch: bool = True  # score the val split in eval mode after each epoch
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # >0: torch.set_num_threads for the search. Many tiny ops make intra-op threads a loss on a busy machine.
    threads: int = 0
    rank_files: bool = False  # every rank writes genotype.rank<R>.json (DDP consistency checks)

    def validate(self) -> None:
        check_at_least(self, 1, "cells", "channels", "steps")
        check_epochs(self.epochs)
        from audionas.models.darts import MAX_CELLS, MAX_CHANNELS

        for name, most in (("cells", MAX_CELLS), ("channels", MAX_CHANNELS), ("steps", MAX_STEPS),
                           ("stem_multiplier", MAX_STEM_MULTIPLIER)):
            if (value := getattr(self, name)) > most:
                raise UserError(f"config field '{name}': expected at most {most}, got {value}")
        check_seed(self.seed)
        if not 1 <= self.multiplier <= self.steps:
            raise UserError(f"config field 'multiplier': expected 1..{self.steps}, got {self.multiplier}")
        if self.channels % 2:
            raise UserError(f"config field 'channels': expected an even number (FactorizedReduce), got "
                            f"{self.channels}")
        if len(self.a_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.a_betas):
            raise UserError(f"config field 'a_betas': expected two numbers in [0, 1), got {self.a_betas}")
        check_lr(self.w_lr, "w_lr")
        check_lr(self.a_lr, "a_lr")
        check_momentum(self.w_momentum, "w_momentum")
        check_fraction(self.w_weight_decay, "w_weight_decay")
        check_fraction(self.a_weight_decay, "a_weight_decay")
        if self.stem_multiplier <= 0:
            raise UserError(f"config field 'stem_multiplier': expected a positive number, got "
                            f"{self.stem_multiplier}")
        for name in ("w_lr_min", "grad_clip"):
            if (value := getattr(self, name)) < 0:
                raise UserError(f"config field '{name}': expected >= 0, got {value}")
        if self.w_lr_min > self.w_lr:
            raise UserError(f"config field 'w_lr_min': the cosine floor {self.w_lr_min} is above w_lr "
                            f"{self.w_lr}; expected w_lr_min <= w_lr")
        check_at_least(self, 0, "max_steps_per_epoch", "checkpoint_every_steps", "threads")
        check_device_name(self.device)
        from audionas.nas.darts.layout import reduction_cells
        from audionas.nas.darts.operations import resolve_op_set

        resolve_op_set(self.ops)
        reduction_cells(self.cells, self.layout)
