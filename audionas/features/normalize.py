"""Per-band standardisation of cached features, with statistics of the training split."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset


class BandStandardize(nn.Module):
    """(x - mean[band]) / std[band] on (N, C, bands, time) inputs, as the DCASE2018 task 5 baseline does.

    Raw log-mels sit around -32 with std ~10; unnormalised, the first BatchNorm's running statistics lag the
    fast-moving stem weights in short runs and eval-mode predictions collapse to one class.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, 1, -1, 1).float())
        self.register_buffer("inv_std", 1.0 / std.reshape(1, 1, -1, 1).float().clamp_min(1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


def band_statistics(dataset: Dataset, max_items: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std over up to `max_items` evenly spaced items (deterministic: no RNG)."""
    n = len(dataset)
    idx = np.unique(np.linspace(0, n - 1, num=min(n, max_items)).round().astype(int))
    total = total_sq = None
    count = 0
    for i in idx:
        x = torch.as_tensor(dataset[int(i)][0], dtype=torch.float64)  # (C, bands, time)
        x = x.transpose(0, 1).reshape(x.shape[1], -1)
        s, s2 = x.sum(1), (x * x).sum(1)
        total = s if total is None else total + s
        total_sq = s2 if total_sq is None else total_sq + s2
        count += x.shape[1]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return mean.float(), std.float()
