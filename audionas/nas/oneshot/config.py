"""Configs of the one-shot pipeline: `SupernetConfig` (presets asc-fairnas, kws-fairnas, kws-fairnas-cpu) and
`SearchConfig` (NSGA-II / random search over a trained supernet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audionas.data import DataConfig
from audionas.errors import UserError
from audionas.train.config import OptimConfig, check_at_least, check_epochs
from audionas.utils.dist import check_device_name
from audionas.utils.jsonio import read_json
from audionas.utils.rng import check_seed


def _asc_optim() -> OptimConfig:
    # Choice: the ASC paper gives no supernet optimiser; its stand-alone recipe (Adam, wd 1e-6, lr warmed up
    # 0 -> 0.003 over 3 epochs, then constant).
    return OptimConfig(name="adam", lr=3e-3, weight_decay=1e-6, warmup_epochs=3.0, schedule="constant")


@dataclass
class SupernetConfig:
    """Supernet training with FairNAS strict fairness (`audionas search supernet`): space, optimiser, data."""
    kind: str = "fairnas"  # marks a preset / run as a supernet run (audionas search supernet)
    space: Any = "asc"  # built-in space name, a space YAML file, or an inline mapping (see space.py)
    epochs: int = 10
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=_asc_optim)
    sampler: str = "fair"  # fair (FairNAS strict fairness, Algorithm 1) | uniform (SPOS, one path per step)
    batched: bool = True  # run the paths of a step as one chunked pass (same gradients as sequential)
    # Supernet and features in channels_last: ~1.7x faster steps on CPU (oneDNN's NHWC convolutions), but
    # PyTorch's channels_last BN sums its statistics naively in float32. Measured gradient error vs float64
    # (median per parameter): asc space 6% (NCHW 0.5%), kws-fairnas-cpu space 0.7% (NCHW 2e-6); so NCHW by
    # default and channels_last only where chosen (kws-fairnas-cpu). FastBatchNorm2d was 2x slower than NCHW.
    channels_last: bool = False
    checkpoint_every_steps: int = 0  # 0 = checkpoints/last.pt at the end of every epoch only
    max_steps_per_epoch: int = 0  # >0 caps an epoch (quick runs)
    log_every: int = 20
    device: str = "auto"

    def validate(self) -> None:
        if self.kind != "fairnas":
            raise UserError(f"config field 'kind': expected fairnas (a supernet preset), got '{self.kind}'")
        if self.sampler not in ("fair", "uniform"):
            raise UserError(f"config field 'sampler': expected fair or uniform, got '{self.sampler}'")
        check_epochs(self.epochs)
        check_seed(self.seed)
        check_at_least(self, 0, "checkpoint_every_steps", "max_steps_per_epoch")
        check_at_least(self, 1, "log_every")
        check_device_name(self.device)


# Fields that may change when resuming a supernet run (they change neither the data seen nor the weights).
RESUME_FREE_FIELDS = ("data.root", "data.cache", "data.num_workers", "data.wave_cache_mb",
                      "data.eval_batch_size", "log_every", "device", "checkpoint_every_steps")


# How candidates are computed, not what they score (up to float rounding): free to change on a resume;
# search.json records the values of the last session that scored a candidate.
EXECUTION_FIELDS = ("eval_batch_size", "candidates_per_pass", "channels_last")


@dataclass
class SearchConfig:
    """Candidate evaluation and the evolutionary search of `audionas search nsga2|random` (presets asc-nsga2,
    asc-random; each field also a flag)."""

    algorithm: str = "nsga2"  # nsga2 | random
    population: int = 64  # P (random search: candidates per generation / state checkpoint)
    generations: int = 70  # I (random search: derived from evaluations)
    evaluations: int = 4480  # random search budget (64 x 70, as the paper's comparison)
    seed: int = 0
    bn: str = "none"  # none (eval-mode BN, MixPath / FairNAS) | recalibrate (SPOS: fresh stats per candidate)
    calib_batches: int = 8  # training batches for BN recalibration
    calib_batch_size: int = 64
    metric: str = "auto"  # auto (asc: paper_f1, else accuracy) | accuracy | macro_f1 | paper_f1
    val_limit: int = 0  # >0: score on N evenly spaced validation items (quick runs)
    candidates_per_pass: int = 4  # bn=none: candidates evaluated in one batched forward pass
    channels_last: bool = True  # supernet and cached features in channels_last (~1.7x candidates/s on CPU)
    eval_batch_size: int | None = None  # None: the supernet run's data.eval_batch_size
    # the minimised objective: macs (the paper) | params (model size) | latency_ms (CPU lookup table)
    cost: str = "macs"

    def validate(self) -> None:
        def name(key: str) -> str:  # the field and the flag that sets it
            flag = "--batch" if key == "population" and self.algorithm == "random" else "--" + key
            return f"{key} ({flag.replace('_', '-')})"

        if self.algorithm not in ("nsga2", "random"):
            raise UserError(f"algorithm: expected nsga2 or random, got '{self.algorithm}'")
        for key, known in (("cost", ("macs", "params", "latency_ms")), ("bn", ("none", "recalibrate")),
                           ("metric", ("auto", "accuracy", "macro_f1", "paper_f1"))):
            if getattr(self, key) not in known:
                raise UserError(f"{name(key)}: expected {', '.join(known[:-1])} or {known[-1]}, got "
                                f"'{getattr(self, key)}'")
        for key in ("population", "generations", "evaluations", "calib_batches", "calib_batch_size",
                    "candidates_per_pass", "eval_batch_size"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise UserError(f"{name(key)}: expected a positive integer, got {getattr(self, key)}")
        if self.population < 2:
            raise UserError(f"{name('population')}: expected at least 2, got {self.population}")
        for key in ("seed", "val_limit"):
            if getattr(self, key) < 0:
                all_ = " (0 = all)" if key == "val_limit" else ""
                raise UserError(f"{name(key)}: expected an integer >= 0{all_}, got {getattr(self, key)}")


def started_with(out: Path) -> dict:
    """The settings a search in `out` started with (search.json's config, SearchConfig fields but the
    algorithm), when `out` holds one to resume; {} otherwise. A resume without a preset starts from them."""
    if not all((out / name).is_file() for name in ("state.json", "search.json")):
        return {}
    config = read_json(out / "search.json", "a search's settings").get("config")
    if not isinstance(config, dict):
        return {}
    return {k: v for k, v in config.items() if k in SearchConfig.__dataclass_fields__ and k != "algorithm"}
