"""Dataset splits: TensorFlow's hash rule (Speech Commands) and seeded per-class ratio splits (40/40/20)."""

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


def _checked_ratios(ratios: Sequence[float]) -> np.ndarray:
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
    ratios = _checked_ratios(ratios)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in ratios]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if groups is None:
            units = [np.array([i]) for i in rng.permutation(idx)]
        else:
            g = np.asarray(groups)[idx]
            names = np.unique(g)
            units = [idx[g == n] for n in rng.permutation(names)]
        bounds = np.round(np.cumsum(ratios) * len(units)).astype(int)
        start = 0
        for s, end in enumerate(bounds):
            for u in units[start:end]:
                out[s].extend(u.tolist())
            start = end
    return [np.sort(np.asarray(o, dtype=np.int64)) for o in out]


def group_ratio_split(groups: Sequence[str], ratios: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices by `ratios` of the clip count, whole groups (speakers) at a time; seeded.

    Groups are taken in a seeded order and each goes to the split its middle clip falls in, so every group
    lies in exactly one split (group-disjoint, like the hash rule) and the clip shares come close to `ratios`.
    """
    ratios = _checked_ratios(ratios)
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
