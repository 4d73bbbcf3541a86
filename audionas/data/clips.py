"""Fixed-length clips of a folder-per-class dataset with Honk augmentation, and the DataBundle they make.

`ClipDataset` reads one clip per item (or none: a silence item is noise only), fits it to the input length
and, for training, shifts it and adds background noise (castorini/honk utils/model.py). `finish` turns the
per-split items of Speech Commands or a user's folder into the bundle training and both searches read.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from audionas.data import RATIO_SPLITS, DataBundle, DataConfig, unread_by_split
from audionas.data.audio import check_clips, check_decodes, load_wav
from audionas.data.class_folders import NOISE_DIR
from audionas.data.wave_cache import WaveCache, make_wave_cache
from audionas.errors import UserError, warn
from audionas.utils.progress import progress_off

EVAL_SLOTS = {"val": 2**32 - 1, "test": 2**32 - 2, "train": 2**32 - 3}  # see ClipDataset: beyond any epoch
ALPHA_SEED_OFFSET = 104729  # Choice: the augmented val view draws from its own stream (seed + 104729)


@dataclass
class AugmentConfig:
    """Honk training augmentation (castorini/honk utils/model.py)."""

    enabled: bool = True
    shift_samples: int = 1600
    noise_prob: float = 0.8
    noise_max: float = 0.1


def _shared_flags(n: int) -> torch.Tensor:
    """n False flags in shared memory, or in this process's own where there is none (no /dev/shm): then
    DataLoader workers warn again each epoch, the run is otherwise the same."""
    flags = torch.zeros(n, dtype=torch.bool)
    try:
        return flags.share_memory_()
    except RuntimeError:
        return flags


class ClipDataset(Dataset):
    """Fixed-length clips `(float32 waveform (clip_samples,), label)`; `None` paths are silence (noise only).

    Every random number of item i in an epoch comes from `np.random.default_rng([seed, epoch, i])`. An
    evaluation split (train=False) draws its fixed silence crops with `EVAL_SLOTS[split]` in the epoch's
    place, a number no training epoch reaches: else val and test (both seeded by data.split_seed) would draw
    the same crops at the same index, and training's epoch 0 too when seed == split_seed.
    """

    def __init__(self, root: Path, items: Sequence[tuple[str | None, int]], classes: Sequence[str],
                 sample_rate: int, clip_samples: int, train: bool, augment: AugmentConfig,
                 noise: Sequence[np.ndarray], seed: int, read: torch.Tensor | None = None,
                 split: str = "train", mixdown: bool = False, cache_mb: int = 0,
                 cache_of: ClipDataset | None = None):
        self.root = Path(root)
        self.items = list(items)
        self.classes = list(classes)
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.train = train
        # Evaluation: no shift, no noise; silence clips still get noise up to noise_max.
        self.augment = augment if train else replace(augment, enabled=False)
        self.noise = list(noise)
        self.mixdown = mixdown  # data.mixdown: a multi-channel clip is read as the mean of its channels
        self.seed = int(seed) % 2**32
        self.epoch = 0
        self.eval_slot = None if train else EVAL_SLOTS[split]
        self.targets = np.array([y for _, y in self.items], dtype=np.int64)
        # Which clips were read (and warned about, if beyond [-1, 1]) in this run: in shared memory, as the
        # DataLoader's workers are new processes each epoch and would warn again every epoch. `read`: the
        # flags of another dataset of the same items (the val half, augmented for a DARTS alpha step).
        self._read = read if read is not None else _shared_flags(len(self.items))
        self._cache_mb = cache_mb  # data.wave_cache_mb: the cache is made by the first set_epoch
        self._cache: WaveCache | None = None
        self._cache_of = cache_of  # a dataset of the same items whose cache this one reads and fills too
        if any(p is None for p, _ in self.items) and not self.noise:
            raise UserError(f"{self.root / NOISE_DIR}: background noise wavs are needed for '_silence_' "
                            f"clips")

    def set_epoch(self, epoch: int) -> None:
        """Called in the main process before each epoch's loader starts its workers."""
        self.epoch = int(epoch)
        if self._cache_mb > 0 and self._cache is None:
            self._cache = make_wave_cache(len(self.items), self.clip_samples, self._cache_mb)
            self._cache_mb = 0  # made, or none to be had: not tried again

    def scoring_view(self) -> ClipDataset:
        """These items as an evaluation split reads them (no shift, no noise; silence with fixed crops): a
        training split scored with its augmentation would score random draws that change every epoch."""
        if not self.train:
            return self
        # The same fitted clips: read from (and put into) the training split's cache, made by its set_epoch.
        return ClipDataset(self.root, self.items, self.classes, self.sample_rate, self.clip_samples, False,
                           self.augment, self.noise, self.seed, read=self._read, split="train",
                           mixdown=self.mixdown, cache_of=self)

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> dict[str, int]:
        """Clips per class name."""
        return {c: int((self.targets == k).sum()) for k, c in enumerate(self.classes)}

    def check_readable(self, what: str = "clips") -> None:
        """Decode every clip once (a UserError naming the first bad one); the trainer runs it on the test
        split before training, which otherwise is first read after the last epoch."""
        from tqdm import tqdm

        paths = [self.root / rel for rel, _ in self.items if rel is not None]
        for path in tqdm(paths, desc=f"checking {what}", file=sys.stderr, leave=False, dynamic_ncols=True,
                         disable=progress_off(len(paths) < 1000)):
            check_decodes(path, mixdown=self.mixdown)
        self._read.fill_(True)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        n = self.clip_samples
        # Choice: longer clips keep their first clip_samples (Honk pads at the end; SC clips are <= 1 s).
        return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rel, y = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch if self.train else self.eval_slot, int(i)])
        n = self.clip_samples
        if rel is None:
            x = np.zeros(n, np.float32)
        else:
            cache = self._cache if self._cache_of is None else self._cache_of._cache
            x = cache.get(i) if cache is not None else None
            if x is None:
                # finish() warned once about all clips at another rate (check_clips)
                first = not bool(self._read[i])
                x = self._fit(load_wav(self.root / rel, self.sample_rate, warn_resample=False,
                                       warn_range=first, mixdown=self.mixdown))
                self._read[i] = True
                if cache is not None:
                    cache.put(i, x)
        aug = self.augment
        # Choice: shift, then noise, as Honk's code (REFERENCE section 2); the KWS paper lists noise first.
        if aug.enabled and aug.shift_samples > 0:
            s = int(rng.integers(-aug.shift_samples, aug.shift_samples + 1))
            # Honk _timeshift_audio: zero-padded shift, length kept.
            if s > 0:
                x = np.concatenate([x[s:], np.zeros(s, np.float32)])
            elif s < 0:
                x = np.concatenate([np.zeros(-s, np.float32), x[:s]])
        if self.noise and (rel is None or (aug.enabled and rng.random() < aug.noise_prob)):
            bg = self.noise[int(rng.integers(len(self.noise)))]
            off = int(rng.integers(0, len(bg) - n + 1))
            a = rng.uniform(0.0, aug.noise_max)
            x = np.clip(x + a * bg[off:off + n], -1.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(y)


def augment_config(cfg: DataConfig, sample_rate: int, clip_samples: int) -> AugmentConfig:
    if cfg.shift_ms < 0 or not 0 <= cfg.noise_prob <= 1 or cfg.noise_max < 0:
        raise UserError("config fields 'data.shift_ms', 'data.noise_prob', 'data.noise_max': expected "
                        "shift_ms >= 0, 0 <= noise_prob <= 1, noise_max >= 0")
    shift = int(round(cfg.shift_ms * sample_rate / 1000))
    if shift >= clip_samples:  # a shift by a whole clip or more (once rounded to samples) leaves no sound
        raise UserError(f"config field 'data.shift_ms': expected less than the clip length "
                        f"({1000 * clip_samples / sample_rate:g} ms), got {cfg.shift_ms:g}")
    return AugmentConfig(enabled=bool(cfg.augment), shift_samples=shift,
                         noise_prob=float(cfg.noise_prob), noise_max=float(cfg.noise_max))


def finish(root: Path, split_items: list[list[tuple[str | None, int]]], classes: list[str], cfg: DataConfig,
           seed: int, noise: list[np.ndarray], split: str | None = None,
           checked: Collection[str] | None = None, training: bool = True) -> DataBundle:
    """Datasets (train with augmentation), frontend and input shape from the per-split items, whose clips'
    headers are checked first (check_clips, told `training`; only those of the `checked` splits when
    given)."""
    from audionas.features import build_frontend, get_spec

    split = split or cfg.split
    if split not in RATIO_SPLITS and list(cfg.ratios) != DataConfig().ratios:
        warn(unread_by_split("ratios", split))
    for name in ("val_pct", "test_pct") if split != "hash" else ():
        if getattr(cfg, name) != getattr(DataConfig(), name):
            warn(unread_by_split(name, split))
    spec = get_spec(cfg.feature)
    train_items, val_items, test_items = split_items
    if cfg.merge_val_into_train:
        train_items, val_items = train_items + val_items, []
    if not train_items:
        raise UserError(f"{root}: no training clips after the '{split}' split")
    aug = augment_config(cfg, spec.sample_rate, spec.clip_samples)
    named = {"train": train_items, "val": val_items, "test": test_items}  # after a merge of val into train
    clips = [root / rel for name, items in named.items() if checked is None or name in checked
             for rel, _ in items if rel is not None]
    # Speech Commands at another input length than 1 s is warned about by its build, with its own remedy.
    padding = cfg.kind != "speech_commands"
    check_clips(clips, spec.sample_rate, spec.clip_samples, f"{root}: ", padding=padding, mixdown=cfg.mixdown,
                training=training)

    def make(items, train, seed_, same_items_as=None, split="train"):
        if not items:
            return None
        return ClipDataset(root, items, classes, spec.sample_rate, spec.clip_samples, train, aug, noise,
                           seed_, read=same_items_as._read if same_items_as is not None else None,
                           split=split, mixdown=cfg.mixdown, cache_mb=cfg.wave_cache_mb)

    untrained = [c for k, c in enumerate(classes) if k not in {label for _, label in train_items}]
    if untrained:
        warn(f"{root}: the 'train' split has no clips of {', '.join(untrained)} ('{split}' split): "
             f"the network never learns those classes; give them more clips (or speakers)")
    for name, items in (("val", val_items), ("test", test_items)):
        if not items and not (name == "val" and cfg.merge_val_into_train):
            warn(f"{root}: the '{name}' split is empty ('{split}' split)")
        present = {label for _, label in items}
        missing = [c for k, c in enumerate(classes) if items and k not in present]
        if missing:
            hint = "" if split == "ratio" else "; data.split=ratio splits each class on its own"
            warn(f"{root}: the '{name}' split has no clips of {', '.join(missing)} "
                 f"('{split}' split): those classes get no score there{hint}")
    # Evaluation splits' silence crops belong to the split (split_seed); augmentation to the run (seed).
    val = make(val_items, False, cfg.split_seed, split="val")
    return DataBundle(train=make(train_items, True, seed), val=val,
                      test=make(test_items, False, cfg.split_seed, split="test"), classes=classes,
                      frontend=build_frontend(cfg.feature), input_shape=(1, *spec.output_shape),
                      val_augmented=make(val_items, True, seed + ALPHA_SEED_OFFSET, same_items_as=val),
                      split_rule=split,
                      time_axis=spec.time_axis,
                      why_missing={"val": "data.merge_val_into_train=true trains on it"}
                      if cfg.merge_val_into_train else {})
