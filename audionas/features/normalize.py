"""Per-band standardisation of cached features, with statistics of the training split."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from audionas.errors import UserError


class BandStandardize(nn.Module):
    """(x - mean[band]) / std[band] on (N, C, bands, time) inputs, as the DCASE2018 task 5 baseline does.

    Raw log-mels are far from zero mean and unit std (log(x + eps) is -36 in silence); unnormalised, the
    first BatchNorm's running statistics lag the fast-moving stem weights in short runs and eval-mode
    predictions collapse to one class.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, 1, -1, 1).float())
        self.register_buffer("inv_std", 1.0 / std.reshape(1, 1, -1, 1).float().clamp_min(1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std

    def statistics(self) -> dict[str, list[float]]:
        """The buffers as plain lists, the `band_statistics` entry checkpoints record (exact: float32 values
        are exact Python floats)."""
        return {"mean": self.mean.flatten().tolist(), "inv_std": self.inv_std.flatten().tolist()}

    @classmethod
    def from_statistics(cls, entry, bands: int, where) -> BandStandardize:
        """The frontend a recorded `band_statistics` entry describes; a malformed entry is a UserError naming
        `where` (the checkpoint)."""
        def numbers(values) -> bool:
            return (isinstance(values, list) and len(values) == bands
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values))

        if not (isinstance(entry, dict) and numbers(entry.get("mean")) and numbers(entry.get("inv_std"))):
            raise UserError(f"{where}: field 'band_statistics': expected 'mean' and 'inv_std', {bands} "
                            f"finite numbers each (one per band)")
        module = cls(torch.zeros(bands), torch.ones(bands))
        module.mean.copy_(torch.tensor(entry["mean"]).reshape(module.mean.shape))
        module.inv_std.copy_(torch.tensor(entry["inv_std"]).reshape(module.inv_std.shape))
        return module


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
