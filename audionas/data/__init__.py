"""Datasets behind one contract: `build_data(DataConfig, seed) -> DataBundle`.

Loaders yield `(x, y)`: `x` is a fixed-length float32 waveform (samples,) for audio datasets, or a feature
tensor (C, H, W) for cached features (DCASE); the bundle's `frontend` turns a batch of `x` into model input
(N, C, H, W) on the training device, so features are computed batched (CPU or GPU), never per file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import torch.nn as nn
from torch.utils.data import Dataset

from audionas.errors import UserError, warn
from audionas.utils.jsonio import is_integer

# The splits that read data.ratios (the others take their shares from lists, hashes or folds).
RATIO_SPLITS = ("ratio", "speaker_ratio")


@dataclass
class DataConfig:
    """The dataset, its split rule, features and augmentation (the `data:` section of a preset)."""
    kind: str = "speech_commands"  # speech_commands | folder | dcase2018
    root: str = ""
    feature: str = "honk-mfcc"  # a preset of audionas.features, or NAME@Xs for inputs of X seconds
    # -- Speech Commands / folder datasets
    # lists (validation_list/testing_list) | hash (TF rule) | ratio (seeded, per class) | speaker_ratio
    # (seeded, whole speakers: speaker-disjoint, class shares only approximate)
    split: str = "lists"
    val_pct: float = 10.0  # for split=hash
    test_pct: float = 10.0
    # Choice: 80/10/10 for split=ratio, as a user training on their own sounds expects; the KWS paper's
    # 40/40/20 search split is set by the presets that follow the paper (kws-nas1, kws-darts-retrain).
    ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    merge_val_into_train: bool = False  # the KWS paper retrains on train+val of the 40/40/20 split
    # Choice: which clips are in which split (ratio split, unknown/limit choices, val/test silence crops) is
    # seeded by split_seed, not the run's seed, so a search and a retraining with another seed share splits.
    split_seed: int = 0
    words: list[str] = field(default_factory=lambda: ["yes", "no", "up", "down", "left", "right", "on",
                                                      "off", "stop", "go"])
    silence_pct: float = 10.0  # `_silence_` samples per split, % of the command-word samples
    unknown_pct: float = 10.0  # `_unknown_` samples per split, % of the command-word samples
    augment: bool = True  # Honk: shift + background noise on the training split only
    shift_ms: float = 100.0
    noise_prob: float = 0.8
    noise_max: float = 0.1
    # Choice: a clip of several channels is refused (Speech Commands is mono) unless mixdown=true reads it
    # as the mean of its channels (a folder of stereo recordings); predict --channel mix reads files so.
    mixdown: bool = False
    # -- DCASE2018 Task 5
    cache: str = ""  # feature cache written by `audionas data prepare-dcase2018`
    fold: int = 0  # 0: all of the development set (single mode); 1-4: the official fold
    search_split: bool = False  # the ASC paper's 70/30 per-class split of the development set
    cutout: bool = True
    normalize: bool = True  # standardise each band with training-split statistics (DCASE baseline)
    # -- loading
    batch_size: int = 64  # per process: with torchrun the global batch is batch_size x processes
    eval_batch_size: int = 256
    num_workers: int = 0
    limit_per_class: int = 0  # >0: cap samples per class per split (quick runs)
    # Decoded clips of a split read every epoch kept in shared memory (MB per split; 0: decode every epoch).
    # Choice: 4096 holds Speech Commands v0.02's training split (~2.4 GB as float32); capped by /dev/shm.
    wave_cache_mb: int = 4096

    def validate(self) -> None:
        if self.kind not in ("speech_commands", "folder", "dcase2018"):
            raise UserError(f"config field 'data.kind': expected speech_commands, folder or dcase2018, "
                            f"got '{self.kind}'")
        if self.split not in ("lists", "hash", *RATIO_SPLITS):
            raise UserError(f"config field 'data.split': expected lists, hash, ratio or speaker_ratio, "
                            f"got '{self.split}'")
        for name in ("silence_pct", "unknown_pct", "val_pct", "test_pct"):
            if not 0 <= (value := getattr(self, name)) <= 100:
                raise UserError(f"config field 'data.{name}': expected a percentage in 0..100, got {value:g}")
        if not isinstance(self.ratios, list) or len(self.ratios) != 3:
            raise UserError(f"config field 'data.ratios': expected 3 numbers (train, val, test), "
                            f"got {self.ratios}")
        from audionas.data.splits import checked_ratios

        try:  # whatever the split: a run saved with ratios no split could use would fail when switched to one
            checked_ratios(self.ratios)
        except (ValueError, TypeError) as e:
            raise UserError(f"config field 'data.ratios': {e}") from None
        if self.val_pct + self.test_pct >= 100:
            raise UserError(f"config fields 'data.val_pct', 'data.test_pct': expected a sum below 100 (the "
                            f"rest trains), got {self.val_pct:g} + {self.test_pct:g}")
        for name, least in (("split_seed", 0), ("batch_size", 1), ("eval_batch_size", 1), ("num_workers", 0),
                            ("limit_per_class", 0), ("wave_cache_mb", 0)):
            if (value := getattr(self, name)) < least:
                raise UserError(f"config field 'data.{name}': expected an integer >= {least}, got {value}")


# The fields only some kinds of dataset read (every other field applies to all three); data.mixdown is not
# here: a DCASE run says it itself.
_SPEECH, _CLIPS = ("speech_commands",), ("speech_commands", "folder")
READ_BY_KIND = {**dict.fromkeys(("words", "silence_pct", "unknown_pct"), _SPEECH),
                **dict.fromkeys(("split", "val_pct", "test_pct", "ratios", "merge_val_into_train", "shift_ms",
                                 "noise_prob", "noise_max", "wave_cache_mb"), _CLIPS),
                **dict.fromkeys(("cache", "fold", "search_split", "cutout", "normalize"), ("dcase2018",))}


def unread_by_split(name: str, split: str) -> str:
    """The warning for data.ratios / val_pct / test_pct beside a `split` that does not read it: one text,
    said by the config check (fields set by hand) and by the clip datasets' finish (the split used), so a
    command shows it once."""
    reads = "hash" if name in ("val_pct", "test_pct") else " or ".join(RATIO_SPLITS)
    return f"config field 'data.{name}': not used: only data.split={reads} reads it (this split: {split})"


def warn_unread(cfg: DataConfig, fields) -> None:
    """Warn for each of the `data.` fields a user set by hand (key=value) that this dataset never reads:
    `data.fold=2` on Speech Commands, `data.val_pct` beside a list-file split, trains as if not given."""
    for name in dict.fromkeys(fields):
        kinds = READ_BY_KIND.get(name, (cfg.kind,))
        if cfg.kind not in kinds:
            does = "does" if len(kinds) == 1 else "do"
            warn(f"config field 'data.{name}': not used: a {cfg.kind} dataset does not read it (only "
                 f"{' and '.join(kinds)} {does})")
        elif (name in ("val_pct", "test_pct") and (cfg.split in RATIO_SPLITS or cfg.kind == "speech_commands"
                                                    and cfg.split == "lists")  # a folder without lists: hash
              or name == "ratios" and cfg.split not in RATIO_SPLITS):
            warn(unread_by_split(name, cfg.split))


def with_absolute_paths(cfg: DataConfig) -> DataConfig:
    """`cfg` with data.root and data.cache made absolute (`~` expanded), so a run's saved config works from
    any folder."""
    import dataclasses
    import os

    paths = {k: os.path.abspath(os.path.expanduser(v)) for k in ("root", "cache") if (v := getattr(cfg, k))}
    return dataclasses.replace(cfg, **paths)


def upgrade_run_config(data: dict) -> dict:
    """A run config saved before `data.split_seed` existed split its data with the run's seed: keep that."""
    d = data.get("data")
    if isinstance(d, dict) and "split_seed" not in d and isinstance(data.get("seed", 0), int):
        data["data"] = {**d, "split_seed": data.get("seed", 0)}
    return data


@dataclass
class DataBundle:
    """Everything a trainer or a search needs from a dataset."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    classes: list[str]
    frontend: nn.Module  # batch of loader `x` -> (N, C, H, W) model input, on the device
    input_shape: tuple[int, int, int]  # (C, H, W) after the frontend
    train_augment: nn.Module | None = None  # batched on-device augmentation after the frontend (train only)
    # The val split with the training split's per-clip augmentation (DARTS alpha steps); None: val as is.
    val_augmented: Dataset | None = None
    why_missing: dict[str, str] = field(default_factory=dict)  # split name -> why it is absent here
    split_rule: str = ""  # the rule val/test were split by (lists, hash, ratio...); saved with test results
    time_axis: str = ""  # time runs along input_shape's h (C, time, freq) or w (C, freq, time); '': unknown

    def split(self, name: str) -> Dataset:
        """The split `name` as it is scored (the training split without its per-clip augmentation)."""
        splits = {"train": self.train, "val": self.val, "test": self.test}
        ds = splits.get(name)
        if ds is None:
            have = ", ".join(k for k, v in splits.items() if v is not None)
            why = self.why_missing.get(name, "empty" if name in splits else "unknown split name")
            raise UserError(f"split '{name}': not available for this dataset ({why}); available: {have}")
        return scoring_view(ds)


def scoring_view(ds: Dataset | None) -> Dataset | None:
    """`ds` as an evaluation reads it: a training split of clips without its shift and noise draws (their
    ClipDataset.scoring_view); a dataset without per-item augmentation (DCASE feature rows) as it is."""
    view = getattr(ds, "scoring_view", None)
    return view() if view is not None else ds


def check_num_workers(n: int) -> None:
    """UserError when `n` DataLoader workers are more than MAX_PER_CORE per CPU core available here."""
    from audionas.utils.dist import check_threads

    check_threads(n, "config field 'data.num_workers'", unit="worker processes")


def clip_keys(dataset) -> list | None:
    """One key per clip in order, independent of where the dataset lies: (path in the dataset, label) or
    (cache set name, row, label); None for other dataset types."""
    if hasattr(dataset, "items"):
        from audionas.utils.text import nfc

        # in NFC: a Mac's NFD copy holds the same clips (a silence item has no path)
        return [(p if p is None else nfc(p), int(y)) for p, y in dataset.items]
    if all(hasattr(dataset, a) for a in ("paths", "src", "rows", "labels")):
        sets = [Path(p).parent.name for p in dataset.paths]  # dev, eval, aug-<scope>
        return [(sets[s], int(r), int(y)) for s, r, y in zip(dataset.src, dataset.rows, dataset.labels)]
    return None


def clips_digest(dataset, mixed: bool = True) -> str | None:
    """A sha1 of a split's clip keys: the same clips give the same digest wherever the data lies; None for
    datasets without clip keys. `mixed=False` leaves out a DCASE cache's shuffle-and-mix rows (its sets
    aug-<scope>), which are made of the split's own segments."""
    keys = clip_keys(dataset) if dataset is not None else None
    if keys is not None and not mixed:
        keys = [k for k in keys if not (len(k) == 3 and k[0].startswith("aug-"))]
    return None if keys is None else hashlib.sha1("\n".join(map(repr, keys)).encode()).hexdigest()


def split_fingerprint(bundle: DataBundle) -> dict[str, str]:
    """The clips_digest of the train and the val split: a resume or a scoring tells another dataset, cache or
    split rule from the run's own; {} for datasets without clip keys."""
    digests = {name: clips_digest(ds) for name, ds in (("train", bundle.train), ("val", bundle.val))}
    return {name: d for name, d in digests.items() if d is not None}


def build_data(cfg: DataConfig, seed: int = 0, training: bool = True,
               checked: Collection[str] | None = None) -> DataBundle:
    """The bundle of `cfg`; `training=False` (scoring, export) drops the warnings only training needs, and
    the advice to train with data.mixdown=true for a clip of several channels (mono_remedy).
    `checked` names the splits whose clips' headers are read up front (None: all): a scoring of one split
    neither reads the others' headers nor warns about clips it never reads."""
    from audionas.config import from_dict, to_dict

    # A DataConfig built in Python is checked (and coerced: a tuple of ratios, numpy numbers) as a preset is.
    cfg = from_dict(DataConfig, to_dict(cfg), prefix="data.")
    if not is_integer(seed):
        raise UserError(f"build_data: seed {seed!r}: expected an integer")
    if not training:
        with warnings.catch_warnings():
            # The run's training already said its shuffle-and-mix rows were missing, what its cap left out
            # and that data.mixdown does nothing for DCASE; scoring is not training.
            warnings.filterwarnings("ignore", message=".*no shuffle-and-mix segments")
            warnings.filterwarnings("ignore", message=r".*data\.limit_per_class=\d+ keeps")
            warnings.filterwarnings("ignore", message=r"config field 'data\.mixdown': not used")
            return _build(cfg, seed, checked, training=False)
    return _build(cfg, seed, checked, training=True)


def _build(cfg: DataConfig, seed: int, checked: Collection[str] | None, training: bool) -> DataBundle:
    """build_data's work: the loader of `cfg.kind`."""
    cfg.validate()
    check_num_workers(cfg.num_workers)  # here, not in validate: a run's config may come from a bigger machine
    if not cfg.root:
        raise UserError("config field 'data.root': a dataset folder is required (--data DIR)")
    if cfg.kind == "speech_commands":
        from audionas.data.speech_commands import build
    elif cfg.kind == "folder":
        from audionas.data.folder import build
    else:
        from audionas.data.dcase2018 import build
    return build(cfg, seed, checked, training)
