"""The start every training loop shares (trainer, FairNAS supernet, DARTS search), in one order: processes and
device, the run directory's config check, the seed, then the data; the run folder only once all is built. Also
the warning for a run too short for its batch-norm statistics to settle."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from audionas.config import dump_yaml
from audionas.data import DataBundle, build_data
from audionas.errors import UserError, warn
from audionas.train.batches import steps_in_epoch
from audionas.utils.atomic import write_text_atomic
from audionas.utils.dist import DistInfo, autotune_convolutions, init_distributed, resolve_device
from audionas.utils.rng import seed_everything
from audionas.utils.rundir import (
    RUN_MARKERS,
    check_not_foreign,
    check_outside_data,
    check_run_dir,
    lock_run_dir,
)
from audionas.utils.runlog import check_tensorboard_path


@dataclass
class RunStart:
    """A run about to train: where, on which processes and device, with which data (frontend and training
    augmentation already on the device)."""

    run: Path
    info: DistInfo
    device: torch.device
    bundle: DataBundle
    frontend: nn.Module
    augment: nn.Module | None

    def steps_per_epoch(self, cfg) -> int:
        """Optimizer steps per epoch of `cfg` (data.batch_size per process, max_steps_per_epoch); UserError
        when the training split cannot fill one."""
        spe = steps_in_epoch(len(self.bundle.train), cfg.data.batch_size, self.info.world_size,
                             cfg.max_steps_per_epoch)
        if spe < 1:
            raise UserError(f"{cfg.data.root or 'data'}: the training split is empty")
        return spe

    def write_config(self, cfg) -> None:
        """Create the run folder and its config.yaml (main process), and under torchrun say the global batch.
        Called once the model and optimizers are built, so a config that cannot build them leaves no run
        behind."""
        if self.info.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            lock_run_dir(self.run)
            write_text_atomic(dump_yaml(cfg), self.run / "config.yaml")
            n, bs = self.info.world_size, cfg.data.batch_size
            if n > 1:  # train and both searches: data.batch_size is per process
                print(f"data.batch_size={bs} per process x {n} processes: global batch {bs * n}",
                      file=sys.stderr)


def start_run(cfg, run_dir: str | Path, free_fields: tuple[str, ...], what: str,
              bundle: DataBundle | None = None) -> RunStart:
    """Set up torch.distributed (under torchrun) and the device, refuse a run dir holding another config,
    seed, then build the data of `cfg.data` (unless `bundle` is given: tests, callers with their own data)."""
    run = Path(run_dir).expanduser()  # `~` as in data.root: a Python caller's path gets no shell
    check_not_foreign(run, what if what != "run" else "training run", RUN_MARKERS)  # as the commands do
    check_outside_data(run, cfg.data.kind, cfg.data.root)
    check_tensorboard_path(run)
    info = init_distributed()
    device = resolve_device(cfg.device, info)
    autotune_convolutions(device)
    if info.is_main and run.is_dir():  # a new run folder is locked once write_config makes it
        lock_run_dir(run)
    check_run_dir(run, cfg, free_fields, what)
    seed_everything(cfg.seed)
    if bundle is None:
        bundle = build_data(cfg.data, cfg.seed)
    frontend = bundle.frontend.to(device).eval()
    augment = bundle.train_augment.to(device).train() if bundle.train_augment is not None else None
    return RunStart(run, info, device, bundle, frontend, augment)


# Choice: below this many optimiser steps, BatchNorm's running statistics (momentum 0.1: 0.9^50 < 1%) still
# hold much of their initial values and lag the weights, so the eval-mode network can predict one class.
MIN_BN_STEPS = 50


def warn_if_too_few_steps(model: nn.Module, total_steps: int, n_train: int, batch_size: int,
                          epochs: int, capped_at: int = 0, min_steps: int = MIN_BN_STEPS) -> None:
    """A tiny dataset at a big batch trains in a handful of steps: say so instead of a silent bad model.
    `capped_at` > 0: max_steps_per_epoch shortened each epoch to that many steps (then it is the cause)."""
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and total_steps < min_steps:
        cap, remedy = ((f", max_steps_per_epoch={capped_at}", "raise max_steps_per_epoch or epochs")
                       if capped_at > 0 else ("", "lower data.batch_size or raise epochs"))
        steps = f"{total_steps} optimiser step" + "s" * (total_steps != 1)
        warn(f"only {steps} ({n_train} training clips, data.batch_size="
             f"{batch_size}, epochs={epochs}{cap}): batch-norm statistics need about "
             f"{min_steps}, or the trained network may predict one class; {remedy}")


def warn_if_run_too_short(model: nn.Module, cfg, steps_per_epoch: int, n_train: int, world_size: int,
                          min_steps: int = MIN_BN_STEPS) -> None:
    """warn_if_too_few_steps for a run of `cfg` (train, supernet or DARTS search config) of `steps_per_epoch`
    steps."""
    capped = steps_per_epoch < steps_in_epoch(n_train, cfg.data.batch_size, world_size)
    warn_if_too_few_steps(model, steps_per_epoch * cfg.epochs, n_train, cfg.data.batch_size, cfg.epochs,
                          cfg.max_steps_per_epoch if capped else 0, min_steps)
