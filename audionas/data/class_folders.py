"""A folder-per-class dataset's layout: class folders, list files, the three splits, background noise.

ROOT/<class>/**/*.{wav,flac,ogg,mp3}, optional ROOT/validation_list.txt + ROOT/testing_list.txt and
ROOT/_background_noise_/. Speech Commands (its word folders are the classes) and a user's own folder
(`folder.py`) both read their files through here.
"""

from __future__ import annotations

import os
import posixpath
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audionas.data import RATIO_SPLITS, DataConfig
from audionas.data.audio import (
    AUDIO_FILES,
    AUDIO_SUFFIXES,
    audio_below,
    broken_link,
    check_audio,
    check_root,
    load_wav,
    mono_remedy,
    not_a_file,
    warn_other_files,
    warn_other_rates,
)
from audionas.data.splits import group_ratio_split, ratio_split, which_set
from audionas.errors import UserError, warn
from audionas.utils.text import escape_controls, nfc

NOISE_DIR = "_background_noise_"
LIST_FILES = ("validation_list.txt", "testing_list.txt")


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
    return _drop_same_files(root, out)


def _drop_same_files(root: Path, folders: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each clip once: a file reached twice (a link to a file, a hard link) would be split independently and
    could land in train and test. Within one class the second name is dropped with a warning; across two
    classes it is a UserError (one recording, two labels)."""
    first: dict[tuple[int, int], str] = {}
    dropped: list[tuple[str, str]] = []
    out, base = {}, str(root)
    for name, files in folders.items():
        kept = []
        for f in files:
            try:
                st = os.stat(f"{base}/{f}")  # a str path: a Path per clip costs 5x the stat itself
            except OSError:  # unreadable: the audio check names it when the file is opened
                kept.append(f)
                continue
            same = first.setdefault((st.st_dev, st.st_ino), f)
            if same == f:
                kept.append(f)
            elif same.split("/", 1)[0] != name:
                raise UserError(f"{root / f}: the same file as {root / same} (a link), in two classes; "
                                f"expected each clip in one class folder")
            else:
                dropped.append((f, same))
        out[name] = kept
    if dropped:
        f, same = dropped[0]
        warn(f"{root}: {len(dropped)} clip(s) are links to another clip of their class and are used once "
             f"(e.g. {f}, the same file as {same})")
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
    from audionas.data.dcase2018 import is_raw_dataset, raw_dataset_error

    if is_raw_dataset(root):  # its two set folders would be two classes (dev vs eval)
        raise raw_dataset_error(root, f"{expected} (data.kind={cfg.kind})", asc_hint=True)
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
                if rel.startswith("/") or (len(label) == 2 and label[1] == ":"):  # /x/y.wav, C:/x/y.wav
                    raise UserError(f"{path}:{lineno}: '{shown[:300]}' is an absolute path; list entries are "
                                    f"relative to the dataset folder {root} (e.g. <class>/<file>.wav)")
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
        both = sorted(val & test)
        if both:  # the official lists share none: one that does was edited, and its test split is smaller
            warn(f"{root}: {len(both)} clip(s) are in both {LIST_FILES[0]} and {LIST_FILES[1]} and count as "
                 f"validation, as TensorFlow's rule has it (e.g. {both[0]})")
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
        if f.suffix.lower() in AUDIO_SUFFIXES and not f.is_file() and not f.is_dir():
            raise not_a_file(f)  # as in a class folder (was counted among the files that are not audio)
        (files if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES else unused).append(f)
    if unused:  # an .aiff collection or a subfolder would otherwise turn noise augmentation off unsaid
        warn(f"{d}: {len(unused)} item(s) here are not {AUDIO_FILES} and are not used as noise "
             f"(subfolders are not entered; e.g. {unused[0]})")
    return files


def load_noise(root: Path, sample_rate: int, clip_samples: int, mixdown: bool = False,
               training: bool = True) -> list[np.ndarray]:
    """All background-noise recordings of ROOT/_background_noise_ (loaded once, shared by the splits); one
    warning for all of them at another rate than `sample_rate`. `mixdown`, `training`: as for the clips
    (check_clips)."""
    d = root / NOISE_DIR
    files = noise_files(d) if d.is_dir() else []
    fix = f"mix it down to mono first{mono_remedy(training)}"  # as check_clips says for the clips
    warn_other_rates(files, [check_audio(f, mixdown=mixdown, mono_fix=fix) for f in files], sample_rate,
                     "background noise files", when=" once")
    out = []
    for f in files:
        x = load_wav(f, sample_rate, warn_resample=False, mixdown=mixdown)
        if len(x) < clip_samples:
            # Choice: a noise file shorter than a clip is tiled to clip length (official ones are >= 60 s).
            x = np.resize(x, clip_samples)
        out.append(np.ascontiguousarray(x, dtype=np.float32))
    return out
