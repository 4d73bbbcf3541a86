"""The NSGA-II operators: crossover, mutation, tournament, survival (vs pymoo's), random sampling."""

import numpy as np
import pytest
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding as PymooRankAndCrowding

from audionas.nas.oneshot.operators import (
    BinaryTournament,
    GeneMutation,
    RandomSampling,
    RankAndCrowding,
    TwoPointSwap,
)


def test_two_point_swap():
    rng = np.random.default_rng(0)
    a, b = np.zeros(20, dtype=int), np.ones(20, dtype=int)
    for _ in range(10):
        c1, c2 = TwoPointSwap().do(a, b, rng)
        assert (c1 == 1).sum() == 2 and (c2 == 0).sum() == 2
        assert np.array_equal(c1 == 1, c2 == 0)  # the same two positions swapped
    assert (a == 0).all() and (b == 1).all()  # parents untouched
    a, b = np.zeros(3, dtype=int), np.ones(3, dtype=int)
    for _ in range(200):  # two distinct positions, never one drawn twice (1 in 3 draws with replacement)
        c1, c2 = TwoPointSwap().do(a, b, rng)
        assert (c1 == 1).sum() == 2 and (c2 == 0).sum() == 2
        assert np.array_equal(c1 == 1, c2 == 0)  # the same two positions swapped
    assert (a == 0).all() and (b == 1).all()  # parents untouched


def test_gene_mutation_changes_1_to_4_genes_to_new_values():
    rng = np.random.default_rng(0)
    mut = GeneMutation([6] * 19 + [3])
    seen = set()
    for _ in range(200):
        x = rng.integers(0, 3, 20)
        y = mut.do(x, rng)
        n = int((x != y).sum())
        seen.add(n)
        assert 1 <= n <= 4 and y.min() >= 0 and y[:19].max() <= 5 and y[19] <= 2
    assert seen == {1, 2, 3, 4}


def test_gene_mutation_leaves_single_choice_layers_alone():
    # A layer with one choice has no other value to take: only the multi-choice genes change.
    rng = np.random.default_rng(0)
    mut = GeneMutation([1] * 6 + [3, 3])
    for _ in range(50):
        y = mut.do(np.zeros(8, dtype=np.int64), rng)
        assert (y[:6] == 0).all() and 1 <= (y[6:] != 0).sum() <= 2


def test_binary_tournament_prefers_rank_then_crowding():
    rng = np.random.default_rng(0)
    rank = np.array([0, 1, 0])
    crowd = np.array([1.0, 5.0, np.inf])
    winners = BinaryTournament().do(rank, crowd, 2000, rng)
    assert (winners == 1).mean() < 0.2  # index 1 only wins against itself (prob 1/9)
    assert (winners == 2).mean() > (winners == 0).mean()


def test_binary_tournament_picks_the_larger_crowding_whichever_side_it_is_drawn_on():
    # one front, crowding 1 < 2 < 3: i wins when it meets a worse one (either side) or itself, ties by coin:
    # P(win) = (2 * #worse + 1) / 9 -> 1/9, 3/9, 5/9
    winners = BinaryTournament().do(np.zeros(3, dtype=int), np.array([1.0, 2.0, 3.0]), 9000,
                                    np.random.default_rng(0))
    share = np.bincount(winners, minlength=3) / 9000
    assert share == pytest.approx([1 / 9, 3 / 9, 5 / 9], abs=0.02)


def test_survival_matches_pymoo_rank_and_crowding():
    rng = np.random.default_rng(1)
    F = rng.random((40, 2))
    ours = set(RankAndCrowding().do(F, 16).tolist())
    pop = PymooRankAndCrowding().do(Problem(n_var=1, n_obj=2), Population.new(F=F), n_survive=16,
                                    random_state=np.random.default_rng(0))
    theirs = {int(np.flatnonzero((F == f).all(1))[0]) for f in pop.get("F")}
    assert ours == theirs
    rank, crowd = RankAndCrowding().rank_crowding(F)
    assert rank.min() == 0 and np.isinf(crowd[rank == 0]).sum() == 2


def test_random_chromosomes_reach_every_choice_of_every_layer(tiny_space):
    n_choices = [6, 2, 3, 6]
    X = RandomSampling(n_choices).do(600, np.random.default_rng(0))
    assert [sorted(set(X[:, l].tolist())) for l in range(4)] == [list(range(n)) for n in n_choices]
    rng = np.random.default_rng(0)
    genes = np.array([tiny_space.random(rng) for _ in range(300)])
    assert [sorted(set(genes[:, l].tolist())) for l in range(3)] == [list(range(6))] * 3
