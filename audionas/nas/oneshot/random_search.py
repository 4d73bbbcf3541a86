"""Random search with the NSGA-II budget (the ASC paper's comparison, Figure 4 (b)), on the same loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audionas.nas.oneshot.nsga2 import PopulationSearch


@dataclass
class RandomSearch(PopulationSearch):
    """Every candidate uniformly random; `population` candidates per generation (one state checkpoint each),
    `total` candidates in all (0 = population x generations)."""

    name: str = "random"
    step: str = "batch"  # nothing evolves: a "generation" is a batch of candidates and a state checkpoint
    total: int = 0

    def propose(self, generation, best_X, best_F, rng, seen=None):
        n = self.population
        if self.total:
            n = max(0, min(n, self.total - (generation - 1) * self.population))
        taken = set(seen or ())
        return [(self._random(rng, taken), "random") for _ in range(n)]

    def survive(self, X, F):
        # Choice: random search keeps its whole non-dominated archive (it has no population to bound).
        return np.asarray(self.survival.nds.do(F, only_non_dominated_front=True), dtype=np.int64)
