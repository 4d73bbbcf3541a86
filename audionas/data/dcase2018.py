"""DCASE2018 Task 5 (domestic activities, 4-channel 16 kHz 10 s segments): lists, search split, datasets.

Raw layout (see REFERENCE.md section 3): the development set (meta.txt, audio/DevNode{n}_ex{s}_{g}.wav,
evaluation_setup/fold{1-4}_{train,test,evaluate}.txt) and the evaluation set (meta.txt, audio/{n}.wav,
evaluation_setup/{test,evaluate,map}.txt).

The feature cache that `build` reads (prepare-dcase2018, shuffle-and-mix rows, verification) is
audionas.data.dcase_cache.

Training items are single channels `(x (1, 40, 501) float32, label)`; test items carry `segment_ids` and
`channel_ids` so the four channels of a segment can be scored together.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from audionas.data.audio import check_root
from audionas.data.splits import search_split
from audionas.errors import UserError, warn
from audionas.features.presets import get_spec

if TYPE_CHECKING:
    from audionas.data.dcase_cache import CacheSet

__all__ = ["CLASSES", "SAMPLE_RATE", "CHANNELS", "DEV_DIRNAME", "EVAL_DIRNAME", "SegmentList",
           "locate_dataset", "is_raw_dataset", "raw_dataset_error", "read_dev", "read_eval", "build",
           "FeatureRows"]

CLASSES = ["absence", "cooking", "dishwashing", "eating", "other", "social_activity", "vacuum_cleaner",
           "watching_tv", "working"]
SAMPLE_RATE = 16000
CHANNELS = 4  # each SINS node records 4 microphones
DEV_DIRNAME = "DCASE2018-task5-dev"
EVAL_DIRNAME = "DCASE2018-task5-eval"

_DEV_NAME = re.compile(r"^DevNode\d+_ex(\d+)_\d+\.wav$")


# ---------------------------------------------------------------------------------------------- lists
@dataclass
class SegmentList:
    """Segments of one set in file order; `folds[k] = (train indices, test indices)` for the dev set."""

    files: list[str]
    labels: list[int]
    sessions: list[str]
    groups: list[str]  # session key used to keep recordings together (see session_group)
    folds: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)
    origs: list[str] = field(default_factory=list)  # evaluation set: map.txt names

    def subset(self, keep: Sequence[int]) -> SegmentList:
        keep = sorted(keep)
        pos = {old: new for new, old in enumerate(keep)}
        folds = {k: ([pos[i] for i in tr if i in pos], [pos[i] for i in te if i in pos])
                 for k, (tr, te) in self.folds.items()}
        return SegmentList([self.files[i] for i in keep], [self.labels[i] for i in keep],
                           [self.sessions[i] for i in keep], [self.groups[i] for i in keep], folds,
                           [self.origs[i] for i in keep] if self.origs else [])


def session_group(file: str, session: str) -> str:
    """The recording session of a development file: `ex{s}` from DevNode{n}_ex{s}_{g}.wav, else `session`.

    Choice: the `ex` id is shared by the sensor nodes that recorded the same activity at the same time
    (dataset readme), so grouping by it keeps simultaneous recordings of one session on one side of a split.
    """
    m = _DEV_NAME.match(os.path.basename(file))
    return f"ex{m.group(1)}" if m else session


def _read_tsv(path: Path, min_fields: int) -> list[tuple[int, list[str]]]:
    """(line number, tab-separated fields) of each non-blank line; a file listed twice (the first field) is a
    UserError: every DCASE2018 list names each segment once, and a repeat would train or score it twice."""
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected the DCASE2018 task 5 layout)")
    try:
        # utf-8-sig: a byte-order mark (Windows editors) is not part of the first file name
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (expected a tab-separated DCASE2018 list)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    rows, seen = [], set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < min_fields or not all(parts[:min_fields]):
            raise UserError(f"{path} line {lineno}: expected {min_fields} tab-separated field(s), got "
                            f"'{line.strip()}'")
        if parts[0] in seen:
            raise UserError(f"{path} line {lineno}: '{parts[0]}' is listed twice")
        seen.add(parts[0])
        rows.append((lineno, parts))
    return rows


def _label(path: Path, lineno: int, name: str) -> int:
    try:
        return CLASSES.index(name)
    except ValueError:
        raise UserError(f"{path} line {lineno}: unknown label '{name}' (expected one of "
                        f"{', '.join(CLASSES)})") from None


def locate_dataset(root: str | Path) -> tuple[Path | None, Path | None]:
    """(development dir, evaluation dir) under `root`: the set itself, or a parent holding the official
    DCASE2018-task5-dev / DCASE2018-task5-eval folders."""
    root = check_root(root)
    dev = ev = None
    if (root / "evaluation_setup" / "fold1_train.txt").exists() or (
            (root / "meta.txt").exists() and not (root / "evaluation_setup" / "test.txt").exists()):
        dev = root
    elif (root / "evaluation_setup" / "test.txt").exists():
        ev = root
    if (root / DEV_DIRNAME).is_dir():
        dev = root / DEV_DIRNAME
    if (root / EVAL_DIRNAME).is_dir():
        ev = root / EVAL_DIRNAME
    if dev is None and ev is None:
        raise UserError(f"{root}: not a DCASE2018 task 5 dataset (expected meta.txt and evaluation_setup/, "
                        f"or the folders {DEV_DIRNAME} / {EVAL_DIRNAME})")
    return dev, ev


def is_raw_dataset(root: Path) -> bool:
    """Whether `root` is a DCASE2018 task 5 download (a set, or the parent of the official folders): a list
    file in its evaluation_setup/. Stricter than locate_dataset, which also takes a bare meta.txt, so a user's
    own class folders beside a meta.txt of theirs are not mistaken for one."""
    return any((d / "evaluation_setup" / name).is_file() for name in ("fold1_train.txt", "test.txt")
               for d in (root, root / DEV_DIRNAME, root / EVAL_DIRNAME))


def raw_dataset_error(root: Path, expected: str, asc_hint: bool = False) -> UserError:
    """The one line for a raw DCASE2018 download passed where `expected` was: its features are cached first
    (and read by an asc-* preset: `asc_hint`, for a run that reads audio folders)."""
    preset = " with an asc-* preset" if asc_hint else ""
    return UserError(f"{root}: a raw DCASE2018 dataset, not {expected}; run `audionas data prepare-dcase2018 "
                     f"--root {root} --out CACHE` first and pass --data CACHE{preset}")


def read_dev(dev: str | Path) -> SegmentList:
    """Parse meta.txt and the four folds; every inconsistency is a UserError naming the file (a session on
    both sides of a fold is a warning: see _read_fold)."""
    dev = Path(dev)
    meta_path = dev / "meta.txt"
    if not meta_path.is_file() and (dev / DEV_DIRNAME / "meta.txt").is_file():
        raise UserError(f"{meta_path}: file not found, but {dev / DEV_DIRNAME} holds one (the archive was "
                        f"extracted one folder deeper): move its contents up (passing {dev / DEV_DIRNAME} as "
                        f"--root would leave the evaluation set out unless --eval-root names it)")
    files, labels, sessions, where = [], [], [], {}
    for lineno, parts in _read_tsv(meta_path, 3):
        where[parts[0]] = len(files)
        files.append(parts[0])
        labels.append(_label(meta_path, lineno, parts[1]))
        sessions.append(parts[2])
    if not files:
        raise UserError(f"{meta_path}: no segments listed")
    groups = [session_group(f, s) for f, s in zip(files, sessions)]
    seg = SegmentList(files, labels, sessions, groups)
    setup = dev / "evaluation_setup"
    for k in range(1, 5):
        seg.folds[k] = _read_fold(setup, k, seg, where)
    return seg


def _lookup(path: Path, lineno: int, name: str, where: dict[str, int]) -> int:
    if name not in where:
        raise UserError(f"{path} line {lineno}: '{name}' is not listed in meta.txt")
    return where[name]


def _read_labelled(path: Path, seg: SegmentList, where: dict[str, int]) -> list[int]:
    """Segment indices of a `file<TAB>label` list; each label must agree with meta.txt's."""
    out = []
    for lineno, parts in _read_tsv(path, 2):
        i = _lookup(path, lineno, parts[0], where)
        if _label(path, lineno, parts[1]) != seg.labels[i]:
            raise UserError(f"{path} line {lineno}: label '{parts[1]}' of '{parts[0]}' disagrees with "
                            f"meta.txt ('{CLASSES[seg.labels[i]]}')")
        out.append(i)
    return out


def _read_fold(setup: Path, k: int, seg: SegmentList, where: dict[str, int]) -> tuple[list[int], list[int]]:
    train_p, test_p, eval_p = (setup / f"fold{k}_{s}.txt" for s in ("train", "test", "evaluate"))
    train = _read_labelled(train_p, seg, where)
    test = [_lookup(test_p, lineno, parts[0], where) for lineno, parts in _read_tsv(test_p, 1)]
    evaluate = _read_labelled(eval_p, seg, where)
    if sorted(test) != sorted(evaluate):
        raise UserError(f"{eval_p}: lists other files than {test_p.name}")
    both = set(train) & set(evaluate)
    if both:
        i = min(both)
        raise UserError(f"{eval_p}: '{seg.files[i]}' is also in {train_p.name} (expected each segment of a "
                        f"fold in one of its train and evaluate lists)")
    train_groups = {seg.groups[i] for i in train}
    shared = [i for i in evaluate if seg.groups[i] in train_groups]
    if shared:
        # Choice: a warning, not an error: the official lists define the protocol, and grouping nodes by their
        # `ex` id (session_group) is this loader's reading of the dataset readme, not a fact it can check.
        i = shared[0]
        warn(f"{eval_p}: {len(shared)} segment(s) share a session with {train_p.name} (first: "
             f"'{seg.files[i]}', session '{seg.groups[i]}'); fold {k}'s scores may be optimistic")
    return sorted(train), sorted(evaluate)


def read_eval(ev: str | Path) -> SegmentList:
    """The evaluation set: files from test.txt, labels from evaluate.txt, sessions/map names if present."""
    ev = Path(ev)
    setup = ev / "evaluation_setup"
    test_p = setup / "test.txt"
    eval_p = setup / "evaluate.txt"
    if not eval_p.exists() and (setup / "evaluation.txt").exists():
        eval_p = setup / "evaluation.txt"  # the name the evaluation set's readme uses
    files = [parts[0] for _, parts in _read_tsv(test_p, 1)]
    if not files:
        raise UserError(f"{test_p}: no segments listed")
    label_of = {}
    for lineno, parts in _read_tsv(eval_p, 2):
        label_of[parts[0]] = _label(eval_p, lineno, parts[1])
    missing = [f for f in files if f not in label_of]
    if missing:
        raise UserError(f"{eval_p}: no label for '{missing[0]}' (listed in {test_p.name})")
    session_of: dict[str, str] = {}
    if (ev / "meta.txt").exists():
        for lineno, p in _read_tsv(ev / "meta.txt", 2):
            session_of[p[0]] = p[2] if len(p) > 2 else ""
            if p[0] in label_of and _label(ev / "meta.txt", lineno, p[1]) != label_of[p[0]]:
                raise UserError(f"{ev / 'meta.txt'} line {lineno}: label '{p[1]}' of '{p[0]}' disagrees with "
                                f"{eval_p.name} ('{CLASSES[label_of[p[0]]]}')")
    orig_of: dict[str, str] = {}
    if (setup / "map.txt").exists():
        orig_of = {p[0]: p[1] for _, p in _read_tsv(setup / "map.txt", 2)}
    sessions = [session_of.get(f, "") for f in files]
    return SegmentList(files, [label_of[f] for f in files], sessions, list(sessions), {},
                       [orig_of.get(f, "") for f in files])


def limit_per_class(seg: SegmentList, limit: int) -> SegmentList:
    """At most `limit` segments per class, the first ones in file-list order (a cap for quick runs: the last
    session kept can be cut short, so the cap does not keep whole sessions)."""
    if limit <= 0:
        return seg
    count = [0] * len(CLASSES)
    keep = []
    for i, y in enumerate(seg.labels):
        if count[y] < limit:
            count[y] += 1
            keep.append(i)
    return seg.subset(keep)


# ---------------------------------------------------------------------------------------------- datasets
class FeatureRows(Dataset):
    """Items `(features (1, H, W) float32, label)` read from memory-mapped float16 caches.

    `src[i]` picks one of `paths`, `rows[i]` the row in it. Test sets carry `segment_ids`/`channel_ids`.
    """

    def __init__(self, paths: Sequence[Path], src: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                 segment_ids: np.ndarray | None = None, channel_ids: np.ndarray | None = None):
        self.paths = [str(p) for p in paths]
        self.src = np.asarray(src, dtype=np.int64)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        if segment_ids is not None:
            self.segment_ids = np.asarray(segment_ids, dtype=np.int64)
            self.channel_ids = np.asarray(channel_ids, dtype=np.int64)
        self._mm: list | None = None

    @property
    def held_out(self) -> bool:
        """Whether every row is of the evaluation set, which no training split of any cache draws from."""
        return all(Path(p).parent.name == "eval" for p in self.paths)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:  # DataLoader workers open their own memory maps
        state = dict(self.__dict__)
        state["_mm"] = None
        return state

    def __getitem__(self, i: int):
        if self._mm is None:
            self._mm = [np.load(p, mmap_mode="r") for p in self.paths]
        x = np.asarray(self._mm[self.src[i]][self.rows[i]], dtype=np.float32)
        if not np.isfinite(x).all():  # ~1% of reading a row; a NaN would poison normalisation and training
            raise UserError(f"{self.paths[self.src[i]]}: row {self.rows[i]} holds NaN or infinite values (a "
                            f"damaged cache: delete it and run audionas data prepare-dcase2018 again)")
        return torch.from_numpy(x)[None], int(self.labels[i])


def _channel_items(seg_idx: np.ndarray, seg_labels: np.ndarray, src: int = 0):
    seg_idx = np.asarray(seg_idx, dtype=np.int64)
    ch = np.tile(np.arange(CHANNELS), len(seg_idx))
    segs = np.repeat(seg_idx, CHANNELS)
    return np.full(len(segs), src), segs * CHANNELS + ch, np.repeat(seg_labels[seg_idx], CHANNELS), segs, ch


def _cap(seg_idx: np.ndarray, labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """limit_per_class counts channel items: keep ceil(limit / 4) whole segments per class (seeded)."""
    if limit <= 0:
        return np.asarray(seg_idx, dtype=np.int64)
    per = -(-limit // CHANNELS)
    rng = np.random.default_rng([seed, 4242])
    keep = []
    seg_idx = np.asarray(seg_idx, dtype=np.int64)
    for c in np.unique(labels[seg_idx]):
        idx = seg_idx[labels[seg_idx] == c]
        keep += rng.permutation(idx)[:per].tolist()
    return np.sort(np.array(keep, dtype=np.int64))


def _rows_dataset(cs: CacheSet, seg_idx: np.ndarray, with_ids: bool) -> FeatureRows:
    src, rows, labels, segs, ch = _channel_items(seg_idx, cs.labels)
    if with_ids:
        return FeatureRows([cs.features_path], src, rows, labels, segs, ch)
    return FeatureRows([cs.features_path], src, rows, labels)


def _train_dataset(dev: CacheSet, seg_idx: np.ndarray, aug: CacheSet | None, limit: int,
                   seed: int) -> FeatureRows:
    src, rows, labels, _, _ = _channel_items(_cap(seg_idx, dev.labels, limit, seed), dev.labels, 0)
    paths = [dev.features_path]
    if aug is not None:
        a_idx = _cap(np.arange(aug.info["n_segments"]), aug.labels, limit, seed)
        a_src, a_rows, a_labels, _, _ = _channel_items(a_idx, aug.labels, 1)
        src, rows, labels = (np.concatenate([src, a_src]), np.concatenate([rows, a_rows]),
                             np.concatenate([labels, a_labels]))
        paths.append(aug.features_path)
    return FeatureRows(paths, src, rows, labels)


def aug_scope(cfg) -> str:
    return "search" if cfg.search_split else ("dev" if cfg.fold == 0 else f"fold{cfg.fold}")


def build(cfg, seed: int = 0, checked=None, training: bool = True):
    """DataBundle from a feature cache (data.root or data.cache): folds, single mode or the search split.

    fold k (1-4): train = fold k train list, test = fold k evaluate list, val = the evaluation set if
    cached. fold 0 (single mode): train = the whole development set, test = the evaluation set if cached.
    search_split: train/val = the 70/30 split (seeded with data.split_seed), test = the evaluation set if
    cached. Shuffle-and-mix rows of the matching scope are appended to the training set when data.augment
    is true. A raw dataset folder is a UserError (Choice: no on-the-fly features; 4 x 72984 log-mels are
    computed once by prepare-dcase2018). `seed` is unused: the rows are fixed features (Cutout draws on the
    device, from the run's RNG), unlike the keyword loaders' per-item augmentation streams. `checked` and
    `training` are unused too: a cache holds features, no clip headers to read.
    """
    from audionas.data import DataBundle
    from audionas.data.augment import Cutout
    from audionas.data.dcase_cache import open_cache, open_set
    from audionas.features.normalize import BandStandardize, band_statistics

    # Choice: the split and the limit_per_class picks follow data.split_seed (not the run's seed), as the
    # keyword loaders do, so runs with different seeds share their validation and test sets.
    split_seed = int(cfg.split_seed)
    if cfg.mixdown:
        warn("config field 'data.mixdown': not used for DCASE2018 (its cache holds the features of each "
             "channel, each an item of its own)")

    cache = Path(cfg.cache or cfg.root)
    manifest, sets = open_cache(cache)
    if cfg.feature != manifest["feature"]:
        raise UserError(f"config field 'data.feature': '{cfg.feature}', but the cache {cache} holds "
                        f"'{manifest['feature']}' features")
    if cfg.fold not in range(5):
        raise UserError(f"config field 'data.fold': expected 0 (all development data) or 1-4, got {cfg.fold}")
    if cfg.search_split and cfg.fold != 0:
        raise UserError("config field 'data.search_split': uses the whole development set; set data.fold=0")
    dev = sets["dev"]
    ev = sets.get("eval")
    seg = dev.segments()
    val = test = None
    if cfg.search_split:
        train_idx, val_idx = search_split(seg.labels, seg.groups, split_seed)
        val = _rows_dataset(dev, _cap(val_idx, dev.labels, cfg.limit_per_class, split_seed), with_ids=True)
    elif cfg.fold == 0:
        train_idx = np.arange(len(seg.files))
    else:
        tr, te = seg.folds[cfg.fold]
        limit = dev.info.get("limit") or 0
        if not tr:
            why = (f"prepare-dcase2018 --limit {limit} kept none of them" if limit
                   else f"its dataset's evaluation_setup/fold{cfg.fold}_train.txt lists none")
            raise UserError(f"config field 'data.fold': fold {cfg.fold} of the cache {cache} has no training "
                            f"segments ({why})")
        train_idx = np.asarray(tr, dtype=np.int64)
        if te:  # an empty fold{k}_evaluate.txt leaves the fold run without a test split (why_missing)
            test = _rows_dataset(dev, _cap(te, dev.labels, cfg.limit_per_class, split_seed), with_ids=True)
        if ev is not None:
            # Choice: in fold mode the evaluation set is the `val` split, so the four fold models can be
            # scored as the paper's ensemble on it: `audionas evaluate RUN1 RUN2 RUN3 RUN4 --split val`.
            val = _rows_dataset(ev, _cap(np.arange(len(ev.labels)), ev.labels, cfg.limit_per_class,
                                         split_seed), with_ids=True)
    if test is None and ev is not None and cfg.fold == 0:
        test = _rows_dataset(ev, _cap(np.arange(len(ev.labels)), ev.labels, cfg.limit_per_class, split_seed),
                             with_ids=True)
    aug = None
    if cfg.augment:
        scope = aug_scope(cfg)
        if (cache / f"aug-{scope}" / "set.json").is_file():
            aug = open_set(cache / f"aug-{scope}", tuple(manifest["shape"]))
        if aug is None:
            warn(f"{cache}: no shuffle-and-mix segments for '{scope}' (prepare-dcase2018 --augment "
                 f"--augment-scope {scope}); training on the original segments only")
        elif len(aug.labels) == 0:
            warn(f"{cache}: aug-{scope} holds no shuffle-and-mix segments (its --augment-scale "
                 f"{aug.info.get('scale')} added none); training on the original segments only")
            aug = None
        elif scope == "search" and aug.info.get("seed") != split_seed:
            raise UserError(f"{cache}: aug-search was made for the split of seed {aug.info.get('seed')}, "
                            f"this run splits with data.split_seed={split_seed}; rerun prepare-dcase2018 "
                            f"--augment --augment-scope search --seed {split_seed} or set data.augment=false")
    train = _train_dataset(dev, train_idx, aug, cfg.limit_per_class, split_seed)
    # Choice: per-band standardisation with training-split statistics (DCASE baseline); the paper is silent.
    frontend = BandStandardize(*band_statistics(train)) if cfg.normalize else nn.Identity()
    no_eval = f"the cache {cache} holds no evaluation set"
    if cfg.search_split:
        why = {"test": no_eval}
    elif cfg.fold == 0:
        why = {"val": "single mode (data.fold=0) has no val split; fold runs (data.fold=1-4) use the "
                      "evaluation set as val", "test": no_eval}
    else:
        listed = f"fold {cfg.fold}'s list evaluation_setup/fold{cfg.fold}_evaluate.txt"
        why = {"val": f"fold runs use the evaluation set as val, and {no_eval}",
               "test": f"prepare-dcase2018 --limit {limit} kept none of the segments {listed} names" if limit
               else f"{listed} is empty"}
    return DataBundle(train=train, val=val, test=test, classes=list(CLASSES), frontend=frontend,
                      input_shape=(1, *manifest["shape"]), train_augment=Cutout() if cfg.cutout else None,
                      why_missing=why, time_axis=get_spec(manifest["feature"]).time_axis)
