"""ASC augmentation: offline shuffle-and-mix (Inoue et al., DCASE2018 task 5) and online batched Cutout.

Shuffle-and-mix works on cached log-mel features: two segments of the same class are cut into N_PIECES equal
pieces along time, each permuted, and mixed in the linear mel domain (dcase-logmel's mels are magnitudes),
keeping the label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

# The ASC paper (section 3.1): minority classes raised to 14K segments, the others to 28K.
MINORITY_CLASSES = ("cooking", "dishwashing", "eating", "other", "social_activity", "vacuum_cleaner")
TARGET_MINORITY = 14000
TARGET_MAJORITY = 28000
# Choice: 3 pieces, since 501 frames = 3 x 167 gives exactly equal pieces (3.34 s each, long enough to keep
# an activity's local texture; 3! = 6 orders per clip).
N_PIECES = 3
# Choice: mixing weight w ~ U(0.2, 0.8) for clip A and 1 - w for clip B, so both clips stay audible.
WEIGHT_RANGE = (0.2, 0.8)


def augment_targets(counts: Sequence[int], classes: Sequence[str], scale: float = 1.0) -> np.ndarray:
    """New segments per class: round(14K or 28K x scale) minus what the pool already holds (never < 0).

    Choice: a class absent from the pool gets none (there is nothing of that class to mix).
    Choice: the same 14K / 28K targets for the smaller pools of the 70% search split and of each fold's
    training list, so their synthetic share is larger than in single mode (the paper only says it augments
    "the training set based on the strategy in section 3.1").
    """
    out = []
    for n, name in zip(counts, classes):
        target = TARGET_MINORITY if name in MINORITY_CLASSES else TARGET_MAJORITY
        out.append(max(0, int(round(target * scale)) - int(n)) if n > 0 else 0)
    return np.asarray(out, dtype=np.int64)


def plan_shuffle_mix(labels: np.ndarray, pool: np.ndarray, classes: Sequence[str], scale: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, source a, source b) of every new segment, drawn from `pool` (segment indices), seeded.

    Sources are two different segments of the same class (the same one only if the class has one segment).
    """
    labels = np.asarray(labels)
    pool = np.asarray(pool, dtype=np.int64)
    counts = [int(np.sum(labels[pool] == c)) for c in range(len(classes))]
    n_new = augment_targets(counts, classes, scale)
    rng = np.random.default_rng([seed, 5151])
    out_y, out_a, out_b = [], [], []
    for c, n in enumerate(n_new):
        if n == 0:
            continue
        members = pool[labels[pool] == c]
        a = rng.integers(0, len(members), n)
        if len(members) > 1:
            b = (a + rng.integers(1, len(members), n)) % len(members)  # uniform over the others
        else:
            b = a
        out_y.append(np.full(n, c))
        out_a.append(members[a])
        out_b.append(members[b])
    if not out_y:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(out_y), np.concatenate(out_a), np.concatenate(out_b)


def _shuffle_pieces(x: np.ndarray, order: np.ndarray) -> np.ndarray:
    pieces = np.array_split(np.arange(x.shape[-1]), len(order))
    return np.concatenate([x[..., pieces[p]] for p in order], axis=-1)


def shuffle_and_mix(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                    n_pieces: int = N_PIECES, weight_range: tuple[float, float] = WEIGHT_RANGE) -> np.ndarray:
    """Mix two log-mel segments (..., bands, frames) of one class into a new one of the same shape.

    Each segment's time axis is cut into `n_pieces` equal pieces and permuted independently; all channels of a
    segment share the permutation and weight (the multi-channel segment stays coherent). Mixing happens on
    the linear mels: log(w * exp(a') + (1 - w) * exp(b')), computed with logaddexp. With dcase-logmel's
    log(mel + eps), this equals log(w mel_a + (1 - w) mel_b + eps) exactly.
    """
    w = rng.uniform(*weight_range)
    a2 = _shuffle_pieces(np.asarray(a, dtype=np.float32), rng.permutation(n_pieces))
    b2 = _shuffle_pieces(np.asarray(b, dtype=np.float32), rng.permutation(n_pieces))
    return np.logaddexp(np.log(w) + a2, np.log1p(-w) + b2).astype(np.float32)


class Cutout(nn.Module):
    """Cutout (DeVries & Taylor 2017) on batches of spectrograms (N, C, bands, frames), training mode only.

    Choice: one rectangular hole per example of half the bands x half the frames (20 x 250 on 40 x 501),
    the proportion of their best CIFAR-10 setting (16 x 16 on 32 x 32); as in their code the centre is
    uniform over the whole image and the hole is clipped at the borders. Choice: the hole is filled with the
    example's mean (DeVries fill 0 on zero-mean inputs; the DCASE frontend's band standardisation, applied
    before Cutout, makes that mean near 0, and the fill stays in range with standardisation off). Positions
    are drawn from torch's global CPU RNG, so a run restored with its RNG state repeats them exactly.
    """

    def __init__(self, n_holes: int = 1, freq_fraction: float = 0.5, time_fraction: float = 0.5):
        super().__init__()
        self.n_holes = n_holes
        self.freq_fraction = freq_fraction
        self.time_fraction = time_fraction

    def extra_repr(self) -> str:
        return (f"n_holes={self.n_holes}, freq_fraction={self.freq_fraction}, "
                f"time_fraction={self.time_fraction}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.n_holes == 0:
            return x
        n, _, bands, frames = x.shape
        fh = max(1, int(round(bands * self.freq_fraction)))
        th = max(1, int(round(frames * self.time_fraction)))
        # Drawn on the CPU (the RNG a resume restores); only these few numbers go to x's device, where the
        # mask is built (a CPU mask of the whole batch would be copied there every step).
        cf = torch.randint(0, bands, (n, self.n_holes, 1)).to(x.device)
        ct = torch.randint(0, frames, (n, self.n_holes, 1)).to(x.device)
        f = torch.arange(bands, device=x.device)
        t = torch.arange(frames, device=x.device)
        in_f = (f >= cf - fh // 2) & (f < cf - fh // 2 + fh)  # (n, holes, bands)
        in_t = (t >= ct - th // 2) & (t < ct - th // 2 + th)  # (n, holes, frames)
        mask = (in_f[..., :, None] & in_t[..., None, :]).any(dim=1)[:, None]
        mean = x.mean(dim=(2, 3), keepdim=True)
        return torch.where(mask, mean, x)
