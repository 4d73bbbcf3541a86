"""NSGA-II as adapted by the ASC paper (Algorithm 2, Eq. 1), built pymoo-style from small operator objects.

Each generation i (1-based) makes `round(alpha * P)` children of the best population (binary tournament on
rank then crowding, two-point gene swap, 1-4 gene mutation) and `P - round(alpha * P)` random ones, evaluates
them, merges them with the best population and keeps the top P by non-dominated sorting and crowding distance
(pymoo's implementations). Objectives are minimised internally as F = (-score, cost), the cost being a
record's `macs` (the paper) or another key such as `params`.

The operators are in operators.py; the generation loop that runs the algorithm (and resumes it) is loop.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from audionas.nas.oneshot.operators import (
    BinaryTournament,
    GeneMutation,
    RandomSampling,
    RankAndCrowding,
    TwoPointSwap,
)
from audionas.utils.jsonio import is_integer

# Eq. 1's constants: no children before generation 15, and the ramp's divisor: alpha(70) = 55 / 68.75 = 0.8.
EXPLORE_UNTIL, RAMP, LAST_GENERATION = 15, 68.75, 70


def exploitation_ratio(i: int) -> float:
    """Eq. 1: share of a generation made by crossover + mutation; i is the 1-based generation."""
    if i < EXPLORE_UNTIL:
        return 0.0
    # Choice: Eq. 1 stops at i = 70 (the paper's I); a longer search keeps alpha at its final 0.8, not above.
    return (min(i, LAST_GENERATION) - EXPLORE_UNTIL) / RAMP


@dataclass
class PopulationSearch:
    """What NSGA-II and random search share (run by loop.run_search): generations of `population`
    candidates over a space of `n_choices` per layer, `propose`d without repeats, then `survive` to the
    population kept for the next generation (ranked by `survival`: non-dominated sorting and crowding)."""

    n_choices: Sequence[int]
    population: int = 64
    name: str = ""
    step: str = "generation"  # what the log calls one round of `propose` + `survive`
    min_population: ClassVar[int] = 1
    sampling: RandomSampling = field(init=False)
    survival: RankAndCrowding = field(init=False)

    def __post_init__(self):
        if not is_integer(self.population) or self.population < self.min_population:
            raise ValueError(f"{type(self).__name__}: population {self.population!r}: expected an integer "
                             f">= {self.min_population}")
        self.population = int(self.population)
        self.sampling = RandomSampling(self.n_choices)
        self.survival = RankAndCrowding()

    def propose(self, generation: int, best_X: np.ndarray, best_F: np.ndarray, rng: np.random.Generator,
                seen: set | None = None) -> list[tuple[np.ndarray, str]]:
        """A generation's candidates with their origin, avoiding chromosomes in `seen`."""
        raise NotImplementedError

    def survive(self, X: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Indices of the candidates kept among the merged (deduplicated) ones."""
        raise NotImplementedError

    def _random(self, rng: np.random.Generator, taken: set) -> np.ndarray:
        return self._fresh(lambda: self.sampling.do(1, rng)[0], taken)

    def _fresh(self, make: Callable[[], np.ndarray], taken: set, tries: int = 20) -> np.ndarray:
        # Choice: a chromosome already evaluated (or already in this generation) is redrawn up to `tries`
        # times, as pymoo's eliminate_duplicates does, so the budget goes to new architectures; after that
        # it is kept and its score comes from the cache (still counted as an evaluation).
        for _ in range(tries):
            x = make()
            if tuple(int(v) for v in x) not in taken:
                break
        taken.add(tuple(int(v) for v in x))
        return x


@dataclass
class NSGA2(PopulationSearch):
    """The ASC paper's NSGA-II: `propose` a generation, `survive` to the next best population."""

    ratio: Callable[[int], float] = exploitation_ratio
    min_mutations: int = 1
    max_mutations: int = 4
    name: str = "nsga2"
    min_population: ClassVar[int] = 2  # its binary tournament needs two
    selection: BinaryTournament = field(init=False)
    crossover: TwoPointSwap = field(init=False)
    mutation: GeneMutation = field(init=False)

    def __post_init__(self):
        super().__post_init__()
        self.selection = BinaryTournament()
        self.crossover = TwoPointSwap()
        self.mutation = GeneMutation(self.n_choices, self.min_mutations, self.max_mutations)

    def n_offspring(self, generation: int) -> int:
        """Children of the best population in `generation` (1-based); the other P - n are random."""
        # Choice: alpha is the share made by crossover and mutation, as in the text and Eq. 1; Algorithm 2's
        # listing swaps the two roles.
        return int(round(self.ratio(generation) * self.population))

    def first_offspring_generation(self) -> int | None:
        """The first generation with children (Eq. 1 makes none before i = 15; fewer for a small P)."""
        # alpha is constant after LAST_GENERATION
        return next((g for g in range(1, LAST_GENERATION + 1) if self.n_offspring(g)), None)

    def propose(self, generation: int, best_X: np.ndarray, best_F: np.ndarray, rng: np.random.Generator,
                seen: set | None = None) -> list[tuple[np.ndarray, str]]:
        """P candidates with their origin ("random" or "offspring"), avoiding chromosomes in `seen`."""
        P = self.population
        n_off = self.n_offspring(generation) if len(best_X) else 0
        taken = set(seen or ())
        out: list[tuple[np.ndarray, str]] = []
        for _ in range(P - n_off):
            out.append((self._random(rng, taken), "random"))
        if n_off:
            rank, crowd = self.survival.rank_crowding(best_F)
            children: list[np.ndarray] = []

            def child():
                if not children:
                    i, j = self.selection.do(rank, crowd, 2, rng)
                    for _ in range(10):  # two champions: distinct parents when the population allows
                        if i != j or len(best_X) < 2:
                            break
                        j = self.selection.do(rank, crowd, 1, rng)[0]
                    pair = self.crossover.do(best_X[i], best_X[j], rng)
                    children.extend(self.mutation.do(c, rng) for c in pair)
                return children.pop(0)

            while len(out) < P:
                out.append((self._fresh(child, taken), "offspring"))
        return out

    def survive(self, X: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Indices of the next best population among the merged (deduplicated) candidates."""
        return self.survival.do(F, self.population)
