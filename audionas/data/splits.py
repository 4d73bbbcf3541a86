"""Dataset splits: TensorFlow's hash rule (Speech Commands), seeded per-class ratio splits (e.g. 40/40/20)
and the ASC paper's 70/30 search split of DCASE2018's sessions."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import numpy as np

MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # TF input_data.py: ~134M


def which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """'training' | 'validation' | 'testing' exactly as TF examples/speech_commands/input_data.py decides.

    The speaker id before `_nohash_` is hashed, so one speaker's clips always land in the same split.
    """
    base = os.path.basename(filename)
    hash_name = re.sub(r"_nohash_.*$", "", base)
    # TF hashes the UTF-8 name; a name that is not UTF-8 (surrogate-escaped by Python) by its bytes on disk.
    h = hashlib.sha1(hash_name.encode("utf-8", "surrogateescape")).hexdigest()
    pct = (int(h, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if pct < validation_percentage:
        return "validation"
    if pct < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def checked_ratios(ratios: Sequence[float]) -> np.ndarray:
    """`ratios` as floats; ValueError unless they are >= 0 and sum to 1."""
    ratios = np.asarray(ratios, dtype=float)
    if (ratios < 0).any() or not np.isclose(ratios.sum(), 1.0):
        raise ValueError(f"split ratios must be >= 0 and sum to 1, got {ratios.tolist()}")
    return ratios


def ratio_split(labels: Sequence[int], ratios: Sequence[float], seed: int,
                groups: Sequence[str] | None = None) -> list[np.ndarray]:
    """Split indices by `ratios` (e.g. 0.4, 0.4, 0.2) per class, deterministic for `seed`.

    With `groups` (e.g. speaker ids) whole groups are assigned within each class: a speaker's clips of one
    word stay in one split, but their other words may land in other splits (not speaker-disjoint overall,
    unlike the hash rule).
    """
    ratios = checked_ratios(ratios)
    labels = np.asarray(labels)
    groups = None if groups is None else np.asarray(groups)
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in ratios]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        # Each clip, or each group, is a unit, dealt to the splits in a seeded order; the members of a unit
        # come from np.unique's inverse (QA: a mask per group was quadratic when each clip is its own group).
        if groups is None:
            unit_of = np.arange(len(idx))
        else:
            unit_of = np.unique(groups[idx], return_inverse=True)[1].reshape(-1)
        units = int(unit_of.max()) + 1
        order = rng.permutation(units)  # the same draws as permuting the clips or the sorted group names
        split_of = np.full(units, -1)
        bounds = np.round(np.cumsum(ratios) * units).astype(int)
        for s, (start, end) in enumerate(zip([0, *bounds[:-1]], bounds)):
            split_of[order[start:end]] = s
        for s in range(len(ratios)):
            out[s].extend(idx[split_of[unit_of] == s].tolist())
    return [np.sort(np.asarray(o, dtype=np.int64)) for o in out]


def group_ratio_split(groups: Sequence[str], ratios: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices by `ratios` of the clip count, whole groups (speakers) at a time; seeded.

    Groups are taken in a seeded order and each goes to the split its middle clip falls in, so every group
    lies in exactly one split (group-disjoint, like the hash rule) and the clip shares come close to `ratios`.
    """
    ratios = checked_ratios(ratios)
    groups = np.asarray(groups)
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    bounds = np.cumsum(ratios) * len(groups)
    split_of = np.empty(len(names), dtype=np.int64)
    seen = 0
    for g in np.random.default_rng(seed).permutation(len(names)):
        middle = seen + counts[g] / 2
        split_of[g] = min(int(np.searchsorted(bounds, middle, side="right")), len(ratios) - 1)
        seen += counts[g]
    return [np.flatnonzero(split_of[inverse] == s) for s in range(len(ratios))]


def search_split(labels: Sequence[int], groups: Sequence[str], seed: int,
                 train_fraction: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """The ASC paper's 70/30 split of each class of the development set, deterministic for `seed`.

    Choice: whole sessions (groups) are assigned, in a seeded random order, until the class's training
    share is closest to 70% of its segments, with at least one session on each side; a class recorded in
    one session only is split segment-wise (seeded), the only way to keep it in both parts.
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    rng = np.random.default_rng([seed, 7030])
    train: list[int] = []
    val: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        names = np.unique(groups[idx])
        if len(names) < 2:
            perm = rng.permutation(idx)
            cut = min(max(int(round(train_fraction * len(idx))), 1), len(idx) - 1) if len(idx) > 1 else 1
            train += perm[:cut].tolist()
            val += perm[cut:].tolist()
            continue
        order = rng.permutation(names)
        sizes = np.array([np.sum(groups[idx] == n) for n in order])
        cum = np.cumsum(sizes)[:-1]  # at least one session left for validation
        best = int(np.argmin(np.abs(cum - train_fraction * len(idx))))
        chosen = set(order[:best + 1].tolist())
        for i in idx:
            (train if groups[i] in chosen else val).append(int(i))
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))
