"""The start every training loop shares (trainer, FairNAS supernet, DARTS search), in one order: processes and
device, the run directory's config check, the seed, then the data; the run folder only once all is built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from audionas.config import dump_yaml
from audionas.data import DataBundle, build_data
from audionas.errors import UserError
from audionas.train.batches import steps_in_epoch
from audionas.utils.atomic import write_text_atomic
from audionas.utils.dist import DistInfo, init_distributed, resolve_device
from audionas.utils.rng import seed_everything
from audionas.utils.rundir import (
    RUN_MARKERS,
    check_not_foreign,
    check_outside_data,
    check_run_dir,
    lock_run_dir,
)


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
        """Create the run folder and its config.yaml (main process). Called once the model and optimizers are
        built, so a config that cannot build them leaves no run behind."""
        if self.info.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            lock_run_dir(self.run)
            write_text_atomic(dump_yaml(cfg), self.run / "config.yaml")


def start_run(cfg, run_dir: str | Path, free_fields: tuple[str, ...], what: str,
              bundle: DataBundle | None = None) -> RunStart:
    """Set up torch.distributed (under torchrun) and the device, refuse a run dir holding another config,
    seed, then build the data of `cfg.data` (unless `bundle` is given: tests, callers with their own data)."""
    run = Path(run_dir).expanduser()  # `~` as in data.root: a Python caller's path gets no shell
    check_not_foreign(run, what if what != "run" else "training run", RUN_MARKERS)  # as the commands do
    check_outside_data(run, cfg.data.kind, cfg.data.root)
    info = init_distributed()
    device = resolve_device(cfg.device, info)
    if info.is_main and run.is_dir():  # a new run folder is locked once write_config makes it
        lock_run_dir(run)
    check_run_dir(run, cfg, free_fields, what)
    seed_everything(cfg.seed)
    if bundle is None:
        bundle = build_data(cfg.data, cfg.seed)
    frontend = bundle.frontend.to(device).eval()
    augment = bundle.train_augment.to(device).train() if bundle.train_augment is not None else None
    return RunStart(run, info, device, bundle, frontend, augment)
