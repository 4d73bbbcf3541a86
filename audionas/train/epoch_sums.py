"""Running sums of one training epoch (loss, correct, count, ...) that survive a mid-epoch checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from audionas.utils.dist import all_reduce_mean, all_reduce_sum


class EpochSums:
    """Named float64 sums on the device (adding to them never syncs a GPU step), restored from the values a
    mid-epoch checkpoint saved."""

    def __init__(self, names: Sequence[str], device: torch.device, saved: dict | None = None):
        self.names = tuple(names)
        self.values = torch.zeros(len(self.names), dtype=torch.float64, device=device)
        if saved:
            self.values += torch.tensor([float(saved[n]) for n in self.names], dtype=torch.float64,
                                        device=device)

    def add(self, **amounts) -> None:
        for name, amount in amounts.items():
            self.values[self.names.index(name)] += amount

    def partial(self) -> dict[str, float]:
        """What a mid-epoch checkpoint saves: every rank resumes with these values, so the mean over ranks,
        not rank 0's alone."""
        return dict(zip(self.names, all_reduce_mean(self.values.clone()).tolist(), strict=True))

    def total(self) -> dict[str, float]:
        """The epoch's sums over all ranks."""
        return dict(zip(self.names, all_reduce_sum(self.values.clone()).tolist(), strict=True))
