"""Path samplers for supernet training: FairNAS strict fairness (Algorithm 1) and uniform single-path (SPOS).

A sampler returns, per mini-batch, a list of paths (chromosomes). `FairSampler` draws one random permutation
of the C choices per layer and returns C paths, path m taking choice perm_l[m] at layer l, so every choice
block of every layer is used exactly once per step. Its torch.Generator state is part of the checkpoint;
every DDP rank seeds it identically, so all ranks train the same paths.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from audionas.errors import UserError


class PathSampler:
    """A seeded source of supernet paths; its generator state is saved with the run's checkpoint."""

    n_layers: int
    n_paths: int  # paths per step

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(int(seed))

    def sample(self) -> list[list[int]]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class FairSampler(PathSampler):
    """Strict fairness: C paths per step, together covering every choice of every layer exactly once."""

    def __init__(self, n_choices: Sequence[int], seed: int = 0):
        n_choices = [int(n) for n in n_choices]
        if len(set(n_choices)) != 1:
            raise UserError(f"config field 'sampler': fair (strict fairness) needs the same number of "
                            f"choices in every layer of the space, got {n_choices}; use sampler=uniform or "
                            f"such a space")
        super().__init__(seed)
        self.n_layers, self.n_paths = len(n_choices), n_choices[0]

    def sample(self) -> list[list[int]]:
        perms = [torch.randperm(self.n_paths, generator=self.generator) for _ in range(self.n_layers)]
        return [[int(p[m]) for p in perms] for m in range(self.n_paths)]


class UniformSampler(PathSampler):
    """Single-path one-shot (SPOS): one uniformly random path per step (for comparison and tests)."""

    def __init__(self, n_choices: Sequence[int], seed: int = 0):
        super().__init__(seed)
        self.n_choices = [int(n) for n in n_choices]
        self.n_layers, self.n_paths = len(self.n_choices), 1

    def sample(self) -> list[list[int]]:
        return [[int(torch.randint(n, (1,), generator=self.generator)) for n in self.n_choices]]


def count_updates(counts: torch.Tensor, paths: list[list[int]]) -> None:
    """Add one update to counts[l, g] for every (layer, choice) the paths use (a choice used by several paths
    of one step still gets one optimizer update)."""
    used = torch.zeros_like(counts, dtype=torch.bool)
    for p in paths:
        used[torch.arange(len(p)), torch.tensor(p)] = True
    counts += used.to(counts.dtype)
