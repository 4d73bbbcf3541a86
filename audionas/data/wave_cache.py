"""Decoded clips kept in shared memory across epochs (data.wave_cache_mb).

Decoding a wav costs most of a clip item's loading time, and a training split is read every epoch, by
DataLoader workers that are new processes each epoch: a process-local cache would be lost with them. The
cache is one shared-memory tensor made in the main process before the workers start; a worker that decodes a
clip writes it there, so every later epoch (and every other worker) reads the same float32 samples instead.
The items a run gets are unchanged: the cached clip is the decoded one.
"""

from __future__ import annotations

import os

import numpy as np
import torch

SHM = "/dev/shm"
# A cache takes at most a quarter of /dev/shm's free space beyond SHM_RESERVE, shared by the ranks on a node
# (DARTS caches two splits: together under half of it). The reserve is for the DataLoader workers' batches,
# which pass through /dev/shm too (QA: a cache in a 24 MB /dev/shm left them none and the run failed in its
# first epoch; Docker's default is 64 MB). A small /dev/shm gets no cache.
SHM_SHARE = 0.25
SHM_RESERVE = 512 * 2**20


def shm_free_bytes(path: str = SHM) -> int | None:
    """Free bytes of the shared-memory file system, or None where there is none to measure."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def cache_rows(n: int, clip_samples: int, budget_mb: int, shm_free: int | None, local_processes: int) -> int:
    """How many of a dataset's `n` clips a cache holds: within `budget_mb` and this process's share of
    /dev/shm's free space beyond SHM_RESERVE (`shm_free`; None: not limited by it)."""
    budget = budget_mb * 2**20
    if shm_free is not None:
        budget = min(budget, int((shm_free - SHM_RESERVE) * SHM_SHARE) // max(1, local_processes))
    return max(0, min(n, budget // (4 * clip_samples)))


def _shared_empty(rows: int, cols: int) -> torch.Tensor:
    """An uninitialised float32 (rows, cols) tensor in shared memory. share_memory_() of a new tensor would
    copy it there: 6.9 s against 0.7 s for 2.4 GB (the training split of Speech Commands v0.02) here."""
    try:
        storage = torch.UntypedStorage._new_shared(rows * cols * 4)  # what share_memory_ allocates with
    except AttributeError:  # a torch without it: the copy
        return torch.empty((rows, cols), dtype=torch.float32).share_memory_()
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, (rows, cols), (cols, 1))


class WaveCache:
    """Rows 0..rows-1 of a dataset's fitted clips (float32, `clip_samples` each) and which are filled, both in
    shared memory (allocated at once: tmpfs space is claimed up front, not when a worker first writes)."""

    def __init__(self, rows: int, clip_samples: int):
        self.waves = _shared_empty(rows, clip_samples)
        self.filled = torch.zeros(rows, dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.filled)

    def get(self, i: int) -> np.ndarray | None:
        """Clip i (a copy: augmentation must not change the cached one), or None if not cached."""
        if i < len(self.filled) and bool(self.filled[i]):
            return self.waves[i].numpy().copy()
        return None

    def put(self, i: int, x: np.ndarray) -> None:
        """Keep clip i when it has a row; the flag is set after the samples are written."""
        if i < len(self.filled):
            self.waves[i] = torch.from_numpy(x)
            self.filled[i] = True


def make_wave_cache(n: int, clip_samples: int, budget_mb: int) -> WaveCache | None:
    """A cache for a dataset of `n` clips within `budget_mb` and the shared memory free now; None when no
    row fits or shared memory cannot be had (then every epoch decodes, as without a cache)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    rows = cache_rows(n, clip_samples, budget_mb, shm_free_bytes(), local)
    if rows == 0:
        return None
    try:
        return WaveCache(rows, clip_samples)
    except RuntimeError:  # shared memory refused (another process took it meanwhile): decode every epoch
        return None
