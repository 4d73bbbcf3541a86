"""Seeding and RNG state capture in a form that loads with torch.load(weights_only=True)."""

from __future__ import annotations

import random

import numpy as np
import torch

from audionas.errors import UserError

SEED_LIMIT = 2**32  # NumPy's global seed must be below it (and torch.manual_seed overflows at 2**64)


def check_seed(seed: int, what: str = "config field 'seed'") -> None:
    """UserError unless 0 <= seed < SEED_LIMIT."""
    if not 0 <= seed < SEED_LIMIT:
        raise UserError(f"{what}: expected an integer in 0..{SEED_LIMIT - 1}, got {seed}")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def seed_rank(seed: int, rank: int) -> None:
    """Give torchrun rank `rank` streams of its own, drawn from (seed, rank); rank 0 keeps `seed`'s, so a
    one-process run is unchanged. Called once the model is built (its initial weights come from `seed` on
    every rank): ranks seeded alike would draw the same dropout, drop-path and Cutout masks for their
    different examples."""
    if rank:
        seed_everything(int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0]))


def get_rng_state(device: torch.device | str | None = None) -> dict:
    """Python, NumPy and torch RNG states as tensors and plain lists (weights_only-safe); with a CUDA
    `device` (the run's), that device's CUDA RNG state too."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if device is not None and torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | str | None = None) -> None:
    """Restore get_rng_state's states; the CUDA one to the run's `device` (when it is a CUDA device; a list
    of every device's states, saved before this, is ignored)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if isinstance(cuda, torch.Tensor) and device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(cuda, device)
