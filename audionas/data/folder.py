"""Any folder-per-class dataset (a user's own sounds): ROOT/<class>/*.{wav,flac,ogg,mp3}; classes = sorted
folder names.

The layout, splits (list files, TF hash rule, seeded ratio split grouped by speaker) and clip dataset with
Honk augmentation are Speech Commands' (class_folders.py, clips.py); ROOT/_background_noise_/ is used for
noise augmentation when present.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from audionas.data import DataBundle, DataConfig
from audionas.data.audio import AUDIO_FILES
from audionas.data.class_folders import (
    LIST_FILES,
    NOISE_DIR,
    assign_splits,
    cap,
    load_noise,
    open_dataset,
    warn_capped,
)
from audionas.data.clips import finish
from audionas.errors import UserError, warn
from audionas.utils.text import nfc


def effective_split(root: Path, split: str) -> str:
    """The rule the folder dataset at `root` splits by: `lists` falls back to `hash` without list files."""
    # Choice: a user's folder rarely has list files; fall back to the TF hash rule rather than fail.
    if split == "lists" and not any((root / n).is_file() for n in LIST_FILES):
        return "hash"
    return split


def build(cfg: DataConfig, seed: int = 0, checked: Collection[str] | None = None,
          training: bool = True) -> DataBundle:
    """Folder-per-class dataset; `data.words`, `silence_pct` and `unknown_pct` do not apply."""
    spec, root, folders = open_dataset(cfg, f"ROOT/<class>/ holding {AUDIO_FILES}")
    for name, rels in folders.items():
        if not rels:
            raise UserError(f"{root / name}: class folder holds no {AUDIO_FILES}")
    if len(folders) < 2:
        raise UserError(f"{root}: only one class folder ({next(iter(folders))}); 2 or more needed")
    # Choice: a class is named by its folder's name in Unicode NFC, so a copy a Mac wrote (NFD) matches a run.
    classes = sorted(nfc(name) for name in folders)
    split = effective_split(root, cfg.split)
    if split != cfg.split:
        warn(f"{root}: no {' / '.join(LIST_FILES)}; using the hash split "
             f"({cfg.val_pct:g}% / {cfg.test_pct:g}%)")
    parts = assign_splits(root, folders, cfg, split=split)
    noise = load_noise(root, spec.sample_rate, spec.clip_samples, cfg.mixdown, training)  # [] without it
    if (root / NOISE_DIR).is_dir() and not noise and cfg.augment and cfg.noise_prob > 0:
        warn(f"{root / NOISE_DIR}: holds no {AUDIO_FILES}; training without noise augmentation")
    label_of = {c: k for k, c in enumerate(classes)}
    split_items = []
    for s, rels in enumerate(parts):
        rng = np.random.default_rng([int(cfg.split_seed) % 2**32, s])
        by_class: dict[str, list[str]] = {c: [] for c in classes}
        for rel in rels:
            by_class[nfc(rel.split("/")[0])].append(rel)
        split_items.append([(rel, label_of[c]) for c in classes
                            for rel in cap(by_class[c], cfg.limit_per_class, rng)])
    warn_capped(root, cfg.limit_per_class, sum(map(len, split_items)), sum(map(len, parts)))
    return finish(root, split_items, classes, cfg, seed, noise, split=split, checked=checked,
                  training=training)
