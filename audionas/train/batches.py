"""Deterministic per-epoch batch order, shared by training and both searches: a permutation seeded from
(seed, epoch), sharded by rank; and the loader / model-input step that turns those batches into features."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from audionas.console import stops_held


class Loader(DataLoader):
    """A DataLoader with its own generator seeded with `seed` (the iterator of one without draws from the
    global RNG), whose iterator (its workers' start) is made with stop signals held: a Ctrl-C in the middle
    left a half-made iterator, whose __del__ printed an AttributeError traceback after the stop's line."""

    def __init__(self, *args, seed: int = 0, **kwargs):
        super().__init__(*args, generator=torch.Generator().manual_seed(seed), **kwargs)

    def __iter__(self):
        with stops_held():
            return super().__iter__()


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for epoch `epoch` of a run seeded with `seed`."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0] >> 1)


def shard_size(n: int, world: int) -> int:
    return math.ceil(n / world)


def steps_in_epoch(n: int, batch_size: int, world: int = 1, max_steps: int = 0) -> int:
    """Optimizer steps per epoch for a training set of n items."""
    per_rank = shard_size(n, world)
    # Choice: drop the last partial batch (as Honk does) unless that would leave no batch at all.
    steps = per_rank // batch_size if per_rank >= batch_size else min(1, per_rank)
    return min(steps, max_steps) if max_steps > 0 else steps


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  max_steps: int = 0) -> list[list[int]]:
    """This rank's batches of item indices for one epoch: a permutation seeded from (seed, epoch), padded by
    wrapping to a multiple of the world size and dealt round-robin to the ranks (as DistributedSampler)."""
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    perm = torch.randperm(n, generator=g).tolist()
    if world > 1:  # wrapped as often as it takes: fewer items than ranks still give every rank some
        pad = (-n) % world
        perm = (perm + (perm * math.ceil(pad / n))[:pad])[rank::world]
    steps = steps_in_epoch(n, batch_size, world, max_steps)
    return [perm[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def batch_loader(dataset, batches: list[list[int]], num_workers: int, device: torch.device,
                 seed: int) -> DataLoader:
    """A DataLoader over the given batches of indices; `seed` fixes the workers' RNG (resume-exact)."""
    return Loader(dataset, batch_sampler=batches, num_workers=num_workers, pin_memory=device.type == "cuda",
                  seed=seed)


def epoch_loader(dataset, batch_size: int, seed: int, epoch: int, info, device: torch.device,
                 num_workers: int, max_steps: int = 0, first: int = 0) -> DataLoader:
    """This rank's loader of `epoch`'s batches from batch `first` on (a resume mid-epoch); the dataset is
    told the epoch first (a clip dataset draws its augmentation from it and makes its wave cache)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    batches = epoch_batches(len(dataset), batch_size, seed, epoch, info.rank, info.world_size, max_steps)
    return batch_loader(dataset, batches[first:], num_workers, device, epoch_seed(seed, epoch))


def model_input(x, y, device: torch.device, frontend: nn.Module, augment: nn.Module | None = None,
                channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader batch -> (features on the device, labels): frontend, training augmentation, memory layout."""
    with torch.no_grad():
        feats = frontend(x.to(device, non_blocking=True))
        if augment is not None:
            feats = augment(feats)
    if channels_last:
        feats = feats.contiguous(memory_format=torch.channels_last)
    return feats, torch.as_tensor(y).to(device, non_blocking=True)
