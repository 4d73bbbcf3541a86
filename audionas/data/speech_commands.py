"""Google Speech Commands v0.01 / v0.02 (official layout), the 12-class protocol and Honk augmentation.

Layout: ROOT/<word>/<8-hex speaker>_nohash_<n>.wav, ROOT/_background_noise_/*.wav, ROOT/validation_list.txt,
ROOT/testing_list.txt. Classes are `["_silence_", "_unknown_", *words]`; `_unknown_` = clips of the other
word folders and `_silence_` = background-noise crops, each `ceil(n * pct / 100)` per split for n command-word
clips (TF input_data.py); a pct of 0 drops that class. The split machinery and the dataset class are shared
with `folder.py`.
"""

from __future__ import annotations

import math
import posixpath
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from audionas.data import RATIO_SPLITS, DataBundle, DataConfig
from audionas.data.audio import (
    AUDIO_FILES,
    AUDIO_SUFFIXES,
    audio_below,
    broken_link,
    check_audio,
    check_clips,
    check_decodes,
    check_root,
    load_wav,
    warn_other_files,
    warn_other_rates,
)
from audionas.data.splits import group_ratio_split, ratio_split, which_set
from audionas.errors import UserError, warn
from audionas.utils.progress import progress_off
from audionas.utils.text import escape_controls, nfc

SPEECH_COMMANDS_V1_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                            "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
SPEECH_COMMANDS_V2_WORDS = SPEECH_COMMANDS_V1_WORDS + ("backward", "forward", "follow", "learn", "visual")
BACKGROUND_NOISE_NAMES = ("doing_the_dishes", "dude_miaowing", "exercise_bike", "pink_noise", "running_tap",
                          "white_noise")  # the wavs of v0.01's _background_noise_ folder
NOISE_DIR = "_background_noise_"
LIST_FILES = ("validation_list.txt", "testing_list.txt")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
EVAL_SLOTS = {"val": 2**32 - 1, "test": 2**32 - 2}  # see KeywordDataset: beyond any training epoch
ALPHA_SEED_OFFSET = 104729  # Choice: the augmented val view draws from its own stream (seed + 104729)


def speaker_of(name: str) -> str:
    """The speaker id of `<speaker>_nohash_<n>.wav` (the file stem when there is no `_nohash_`)."""
    stem = Path(name).name
    return stem.split("_nohash_")[0] if "_nohash_" in stem else Path(stem).stem


def _check_class_name(d: Path) -> None:
    """A class is named by its folder: refuse a name that plots, tables and listings cannot write."""
    if any(unicodedata.category(c) == "Cs" for c in d.name):
        raise UserError(f"{d.parent / escape_controls(d.name)}: a class folder name that is not UTF-8 "
                        f"(another encoding's bytes, shown escaped); rename the folder")
    if escape_controls(d.name) != d.name:  # a newline or tab breaks tables and listings
        raise UserError(f"{d.parent / escape_controls(d.name)}: a class folder name with a control "
                        f"character (a newline or tab?); rename the folder")


def scan_folders(root: Path, is_class: Callable[[str], bool] = lambda name: True) -> dict[str, list[str]]:
    """Class folder -> sorted POSIX paths 'folder/file.wav' relative to `root` (skips _background_noise_);
    a class folder's subfolders hold more clips of that class. A folder `is_class` names must have a name
    tables and plots can write; the others' clips are only data (Speech Commands' `_unknown_` words)."""
    out: dict[str, list[str]] = {}
    others: list[Path] = []
    seen: dict[Path, Path] = {}
    named: dict[str, Path] = {}
    nested: list[Path] = []
    loose: list[Path] = []
    entries = sorted(root.iterdir())
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_symlink() and not p.exists():  # a class folder's link whose target is gone: its class
            warn(f"{broken_link(p)}; if it was a class folder, that class is missing")
        elif p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES:
            loose.append(p)
    if loose:
        warn(f"{root}: {len(loose)} audio file(s) directly in the dataset folder are in no class folder and "
             f"are not used (e.g. {loose[0].name}); put each clip in the folder of its class")
    # Sorted by the NFC name: the class order (hence labels and seeded splits) of a copy a Mac wrote in NFD.
    for d in sorted((p for p in entries if p.is_dir()), key=lambda p: (nfc(p.name), p.name)):
        if d.name == NOISE_DIR or d.name.startswith("."):
            continue
        if is_class(d.name):
            _check_class_name(d)
        if d.name in LIST_FILES:  # not a class folder without audio: a list file made a folder
            raise UserError(f"{d}: a folder, expected the list file {d.name} (one clip path per line)")
        if d.resolve() in (root.resolve(), *root.resolve().parents):  # its clips would all be one more class
            raise UserError(f"{d}: a link to the dataset folder itself (or above it), not a class folder; "
                            f"remove it")
        same = seen.setdefault(d.resolve(), d)
        if same != d:  # a link to another class folder would put the same clips in two classes
            raise UserError(f"{d}: the same folder as {same} (a link); each class needs its own folder")
        twin = named.setdefault(nfc(d.name), d)
        if twin != d:
            raise UserError(f"{d}: the same name as {twin} in another Unicode form (NFC / NFD); merge the "
                            f"two folders")
        out[d.name] = [f"{d.name}/{f}" for f in audio_below(d, others)]
        if (d / NOISE_DIR).is_dir() or any((d / n).is_file() for n in LIST_FILES):
            nested.append(d)
    if nested:  # its noise recordings would be clips of a class, its word folders one class
        warn(f"{root}: {len(nested)} class folder(s) hold a dataset's {NOISE_DIR}/ or list files "
             f"(e.g. {nested[0]}); is this folder one level above the dataset?")
    warn_other_files(others, "the class folders", f"{root}: ")
    return out


def open_dataset(cfg: DataConfig, expected: str, is_class: Callable[[str], bool] = lambda name: True):
    """(feature spec, root, class folders) of a folder dataset; no class folder is a UserError ending in
    `expected` (the layout the loader wants); `is_class` as in `scan_folders`."""
    from audionas.features import get_spec

    cfg.validate()
    spec = get_spec(cfg.feature)
    root = check_root(cfg.root)
    if (root / "manifest.json").is_file() and (root / "dev").is_dir():
        raise UserError(f"{root}: a DCASE2018 feature cache, but this run or preset reads {expected} "
                        f"(data.kind={cfg.kind})")
    folders = scan_folders(root, is_class)
    if not folders:
        raise UserError(f"{root}: no class folders (expected {expected})")
    return spec, root, folders


def read_list_files(root: Path, known: dict[str, list[str]]) -> tuple[set[str], set[str]]:
    """validation_list.txt / testing_list.txt as sets of relative paths, checked against the folders."""
    missing = [str(root / n) for n in LIST_FILES if not (root / n).is_file()]
    if missing:
        raise UserError(f"{', '.join(missing)}: list file(s) not found (data.split=lists needs "
                        f"{' and '.join(LIST_FILES)}; or use data.split=hash / ratio)")
    # Choice: names are compared in Unicode NFC, so a list written on Linux matches folders a Mac wrote (NFD).
    existing = {nfc(rel): rel for rels in known.values() for rel in rels}
    labels = {nfc(label) for label in known}
    sets = []
    for name in LIST_FILES:
        path = root / name
        entries: set[str] = set()
        try:  # utf-8-sig: a byte-order mark (Windows editors) is not part of the first name
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:  # its bytes would be echoed into an "unknown label" line
            raise UserError(f"{path}: not UTF-8 text (expected one clip path per line)") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            rel = nfc(line.strip().replace("\\", "/"))
            if not rel:
                continue
            rel = posixpath.normpath(rel)  # ./down/x.wav, down//x.wav: the same file as down/x.wav
            label = rel.split("/")[0] if "/" in rel else ""
            if label not in labels:
                label, shown = (v if v.isprintable() else v.encode("unicode_escape").decode()
                                for v in (label, rel))  # no control character reaches the terminal
                raise UserError(f"{path}:{lineno}: unknown label '{label[:40]}' in '{shown[:80]}' "
                                f"(expected one of the class folders under {root})")
            if rel not in existing:
                raise UserError(f"{path}:{lineno}: listed file '{rel}' not found under {root}")
            entries.add(existing[rel])
        sets.append(entries)
    return sets[0], sets[1]


def assign_splits(root: Path, folders: dict[str, list[str]], cfg: DataConfig,
                  split: str | None = None) -> list[list[str]]:
    """Relative paths of the train, val and test splits by `split` (default cfg.split): lists|hash|ratio
    (seeded by cfg.split_seed)."""
    split = split or cfg.split
    rels = [rel for name in folders for rel in folders[name]]
    out: list[list[str]] = [[], [], []]
    if split == "lists":
        val, test = read_list_files(root, folders)
        for rel in rels:
            # TF order: a file in both lists counts as validation.
            out[1 if rel in val else 2 if rel in test else 0].append(rel)
    elif split == "hash":
        idx = {"training": 0, "validation": 1, "testing": 2}
        for rel in rels:
            out[idx[which_set(nfc(rel), cfg.val_pct, cfg.test_pct)]].append(rel)
    elif split in RATIO_SPLITS:
        labels = [i for i, name in enumerate(folders) for _ in folders[name]]
        # Choice: 'ratio' groups speakers within each word folder (a speaker's repetitions of a word stay in
        # one split), 'speaker_ratio' across all words; the KWS paper only says "40% / 40% / 20%". Both count
        # speakers, not clips, so each split's share of clips is only close to its ratio.
        groups = [nfc(speaker_of(rel)) for rel in rels]  # a Mac's NFD copy: the same speakers, same order
        try:
            parts = ratio_split(labels, cfg.ratios, cfg.split_seed, groups=groups) if split == "ratio" \
                else group_ratio_split(groups, cfg.ratios, cfg.split_seed)
        except ValueError as e:
            raise UserError(f"config field 'data.ratios': {e}") from None
        for s, part in enumerate(parts):
            out[s] = [rels[i] for i in part]
    else:
        raise UserError(f"config field 'data.split': expected lists, hash, ratio or speaker_ratio, "
                        f"got '{split}'")
    return out


def cap(items: list, limit: int, rng: np.random.Generator) -> list:
    """At most `limit` items (a seeded choice, original order kept); all of them when limit <= 0."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    keep = np.sort(rng.permutation(len(items))[:limit])
    return [items[i] for i in keep]


def warn_capped(root: Path, limit: int, kept: int, total: int) -> None:
    """One warning when data.limit_per_class left clips out (`kept` of `total` class clips in all splits): the
    quick CPU presets set it, and a user's bigger dataset would otherwise train on a part without a word."""
    if kept < total:
        warn(f"{root}: data.limit_per_class={limit} keeps {kept} of {total} clips (at most {limit} per class "
             f"in each split; a cap of quick presets); data.limit_per_class=0 uses them all")


def noise_files(d: Path) -> list[Path]:
    """The audio files of a _background_noise_ folder, sorted; names starting with '.' (._x.wav from macOS)
    and README files (the official sets hold one) are skipped silently, other files and subfolders (not
    entered) with one warning."""
    files, unused = [], []
    for f in sorted(d.iterdir()):
        if f.name.startswith(".") or (f.is_file() and f.stem.upper() == "README"):
            continue
        (files if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES else unused).append(f)
    if unused:  # an .aiff collection or a subfolder would otherwise turn noise augmentation off unsaid
        warn(f"{d}: {len(unused)} item(s) here are not {AUDIO_FILES} and are not used as noise "
             f"(subfolders are not entered; e.g. {unused[0]})")
    return files


def load_noise(root: Path, sample_rate: int, clip_samples: int) -> list[np.ndarray]:
    """All background-noise recordings of ROOT/_background_noise_ (loaded once, shared by the splits); one
    warning for all of them at another rate than `sample_rate`."""
    d = root / NOISE_DIR
    files = noise_files(d) if d.is_dir() else []
    warn_other_rates(files, [check_audio(f) for f in files], sample_rate, "background noise files",
                     when=" once")
    out = []
    for f in files:
        x = load_wav(f, sample_rate, warn_resample=False)
        if len(x) < clip_samples:
            # Choice: a noise file shorter than a clip is tiled to clip length (official ones are >= 60 s).
            x = np.resize(x, clip_samples)
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    return out


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


class KeywordDataset(Dataset):
    """Fixed-length clips `(float32 waveform (clip_samples,), label)`; `None` paths are silence (noise only).

    Every random number of item i in an epoch comes from `np.random.default_rng([seed, epoch, i])`. An
    evaluation split (train=False) draws its fixed silence crops with `EVAL_SLOTS[split]` in the epoch's
    place, a number no training epoch reaches: else val and test (both seeded by data.split_seed) would draw
    the same crops at the same index, and training's epoch 0 too when seed == split_seed.
    """

    def __init__(self, root: Path, items: Sequence[tuple[str | None, int]], classes: Sequence[str],
                 sample_rate: int, clip_samples: int, train: bool, augment: AugmentConfig,
                 noise: Sequence[np.ndarray], seed: int, read: torch.Tensor | None = None,
                 split: str = "train"):
        self.root = Path(root)
        self.items = list(items)
        self.classes = list(classes)
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.train = train
        # Evaluation: no shift, no noise; silence clips still get noise up to noise_max.
        self.augment = augment if train else replace(augment, enabled=False)
        self.noise = list(noise)
        self.seed = int(seed) % 2**32
        self.epoch = 0
        self.eval_slot = None if train else EVAL_SLOTS[split]
        self.targets = np.array([y for _, y in self.items], dtype=np.int64)
        # Which clips were read (and warned about, if beyond [-1, 1]) in this run: in shared memory, as the
        # DataLoader's workers are new processes each epoch and would warn again every epoch. `read`: the
        # flags of another dataset of the same items (the val half, augmented for a DARTS alpha step).
        self._read = read if read is not None else _shared_flags(len(self.items))
        if any(p is None for p, _ in self.items) and not self.noise:
            raise UserError(f"{self.root / NOISE_DIR}: background noise wavs are needed for "
                            f"'{SILENCE}' clips")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

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
            check_decodes(path)
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
            # finish() warned once about all clips at another rate (check_clips)
            first = not bool(self._read[i])
            x = self._fit(load_wav(self.root / rel, self.sample_rate, warn_resample=False, warn_range=first))
            self._read[i] = True
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
    if cfg.shift_ms * sample_rate / 1000 >= clip_samples:  # a shift by a whole clip or more leaves no sound
        raise UserError(f"config field 'data.shift_ms': expected less than the clip length "
                        f"({1000 * clip_samples / sample_rate:g} ms), got {cfg.shift_ms:g}")
    return AugmentConfig(enabled=bool(cfg.augment),
                         shift_samples=int(round(cfg.shift_ms * sample_rate / 1000)),
                         noise_prob=float(cfg.noise_prob), noise_max=float(cfg.noise_max))


def finish(root: Path, split_items: list[list[tuple[str | None, int]]], classes: list[str], cfg: DataConfig,
           seed: int, noise: list[np.ndarray], split: str | None = None) -> DataBundle:
    """Datasets (train with augmentation), frontend and input shape from the per-split items, whose clips'
    headers are checked first (check_clips)."""
    from audionas.features import build_frontend, get_spec

    split = split or cfg.split
    if split not in RATIO_SPLITS and list(cfg.ratios) != DataConfig().ratios:
        warn(f"config field 'data.ratios' {list(cfg.ratios)} is not used: the '{split}' split "
             f"decides the shares; add data.split=ratio to use it")
    moved = [f"data.{n}={getattr(cfg, n):g}" for n in ("val_pct", "test_pct")
             if getattr(cfg, n) != getattr(DataConfig(), n)]
    if split != "hash" and moved:  # as data.ratios above
        warn(f"config field(s) {', '.join(moved)} not used: the '{split}' split decides the shares; they are "
             f"the hash split's (data.split=hash)")
    spec = get_spec(cfg.feature)
    train_items, val_items, test_items = split_items
    if cfg.merge_val_into_train:
        train_items, val_items = train_items + val_items, []
    if not train_items:
        raise UserError(f"{root}: no training clips after the '{split}' split")
    aug = augment_config(cfg, spec.sample_rate, spec.clip_samples)
    clips = [root / rel for items in split_items for rel, _ in items if rel is not None]
    # Speech Commands at another input length than 1 s is warned about by its build, with its own remedy.
    padding = cfg.kind != "speech_commands"
    check_clips(clips, spec.sample_rate, spec.clip_samples, f"{root}: ", padding=padding)

    def make(items, train, seed_, same_items_as=None, split="train"):
        if not items:
            return None
        return KeywordDataset(root, items, classes, spec.sample_rate, spec.clip_samples, train, aug, noise,
                              seed_, read=same_items_as._read if same_items_as is not None else None,
                              split=split)

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


def build(cfg: DataConfig, seed: int = 0) -> DataBundle:
    """Speech Commands with the 12-class protocol (`words` + `_silence_` + `_unknown_`)."""
    spec, root, folders = open_dataset(cfg, "the Speech Commands layout ROOT/<word>/*.wav",
                                       lambda name: name in cfg.words)  # other words: only `_unknown_` clips
    if spec.clip_samples != spec.sample_rate:  # Speech Commands clips are at most 1 s
        seconds = spec.clip_samples / spec.sample_rate
        effect = (f"{1 - 1 / seconds:.0%} of each input is zero padding" if seconds > 1
                  else f"clips are cropped to {seconds:g} s")
        warn(f"data.feature={spec.name} makes {seconds:g} s inputs and Speech Commands clips are "
             f"1 s: {effect} (honk-mfcc is the keyword recipe)")
    words = list(cfg.words)
    if not words or len(set(words)) != len(words) or {SILENCE, UNKNOWN} & set(words):
        raise UserError(f"config field 'data.words': expected distinct word folder names, got {words}")
    for w in words:
        if w not in folders:
            # "train with": evaluate (--data DIR) reads data the way the run was trained and takes no override
            raise UserError(f"{root / w}: word folder not found (listed in data.words; for a "
                            f"folder-per-class dataset of your own, train with data.kind=folder)")
        if not folders[w]:
            raise UserError(f"{root / w}: no {AUDIO_FILES} in this word folder")
    # Choice: silence_pct=0 / unknown_pct=0 drop that class (TF keeps a label no clip has; no run wants an
    # output it never trains).
    classes = [c for c, pct in ((SILENCE, cfg.silence_pct), (UNKNOWN, cfg.unknown_pct)) if pct > 0] + words
    label_of = {c: k for k, c in enumerate(classes)}
    parts = assign_splits(root, folders, cfg)
    need_noise = cfg.silence_pct > 0 or (cfg.augment and cfg.noise_prob > 0)
    noise = load_noise(root, spec.sample_rate, spec.clip_samples) if need_noise else []
    if need_noise and not noise:
        raise UserError(f"{root / NOISE_DIR}: no background noise wavs (needed for '{SILENCE}' and "
                        f"noise augmentation; set data.silence_pct=0 data.augment=false to run without)")
    split_items: list[list[tuple[str | None, int]]] = []
    word_clips = word_kept = 0  # the words' clips, and those data.limit_per_class keeps
    for s, rels in enumerate(parts):
        rng = np.random.default_rng([int(cfg.split_seed) % 2**32, s])
        by_word: dict[str, list[str]] = {w: [] for w in words}
        unknown: list[str] = []
        for rel in rels:
            w = rel.split("/")[0]
            (by_word[w] if w in by_word else unknown).append(rel)
        items: list[tuple[str | None, int]] = []
        for w in words:
            kept = cap(by_word[w], cfg.limit_per_class, rng)
            items += [(rel, label_of[w]) for rel in kept]
            word_clips, word_kept = word_clips + len(by_word[w]), word_kept + len(kept)
        n = len(items)
        n_unknown = math.ceil(n * cfg.unknown_pct / 100)
        n_silence = math.ceil(n * cfg.silence_pct / 100)
        if cfg.limit_per_class > 0:
            n_unknown, n_silence = min(n_unknown, cfg.limit_per_class), min(n_silence, cfg.limit_per_class)
        # TF input_data.py: shuffle the other words' clips with the seed, take the first ceil(n * pct / 100).
        chosen = [unknown[i] for i in rng.permutation(len(unknown))[:n_unknown]]
        items += [(rel, label_of[UNKNOWN]) for rel in sorted(chosen)]
        if n_silence:
            items += [(None, label_of[SILENCE])] * n_silence
        split_items.append(items)
    warn_capped(root, cfg.limit_per_class, word_kept, word_clips)
    return finish(root, split_items, classes, cfg, seed, noise)
