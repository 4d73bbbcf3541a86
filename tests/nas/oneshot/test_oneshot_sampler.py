"""FairSampler (strict fairness: a permutation per layer), UniformSampler, and the update counts."""

import pytest
import torch

from audionas.errors import UserError
from audionas.nas.oneshot.sampler import FairSampler, UniformSampler, count_updates


def test_fair_sampler_gives_a_permutation_per_layer():
    s = FairSampler([6] * 20, seed=3)
    for _ in range(5):
        paths = s.sample()
        assert len(paths) == 6 and all(len(p) == 20 for p in paths)
        for l in range(20):
            assert sorted(p[l] for p in paths) == list(range(6))
    # not the same permutation in every layer
    assert len({tuple(p[l] for p in paths) for l in range(20)}) > 1


def test_fair_sampler_state_resumes_the_sequence():
    a = FairSampler([6] * 4, seed=1)
    a.sample()
    state = a.state_dict()
    nxt = [a.sample() for _ in range(3)]
    b = FairSampler([6] * 4, seed=99)
    b.load_state_dict(state)
    assert [b.sample() for _ in range(3)] == nxt


def test_fair_sampler_needs_equal_choice_counts():
    with pytest.raises(UserError, match="same number of choices"):
        FairSampler([6, 4])


def test_update_counts_equal_under_fairness_not_uniform():
    fair = torch.zeros(5, 6, dtype=torch.int64)
    s = FairSampler([6] * 5, seed=0)
    for _ in range(7):
        count_updates(fair, s.sample())
    assert (fair == 7).all()
    uni = torch.zeros(5, 6, dtype=torch.int64)
    u = UniformSampler([6] * 5, seed=0)
    for _ in range(7):
        count_updates(uni, u.sample())
    assert uni.sum() == 35 and not (uni == uni[0, 0]).all()


def test_uniform_sampler_reaches_every_choice_of_every_layer():
    # SPOS: one path per step, gene l uniform over 0..n_l - 1 (unequal counts allowed). 300 draws of 2-3
    # choices miss one with probability < 1e-50.
    u = UniformSampler([2, 3, 1], seed=0)
    seen = [set(), set(), set()]
    for _ in range(300):
        (path,) = u.sample()
        for layer, g in enumerate(path):
            seen[layer].add(g)
    assert seen == [{0, 1}, {0, 1, 2}, {0}]


def test_strict_fairness_over_unequal_layers_names_the_field_and_the_way_out():
    with pytest.raises(UserError, match=r"^config field 'sampler': fair \(strict fairness\) needs the same "
                                        r"number of choices in every layer of the space, got \[2, 6, 1\]; "
                                        r"use sampler=uniform or such a space$"):
        FairSampler([2, 6, 1])


def test_a_choice_used_by_two_paths_of_one_step_counts_one_update():
    # count_updates counts optimizer updates: one per (layer, choice) a step trains, however many paths use
    # it.
    counts = torch.zeros(2, 3, dtype=torch.int64)
    count_updates(counts, [[0, 1], [0, 2]])
    assert counts.tolist() == [[1, 0, 0], [0, 1, 1]]


def test_the_seed_picks_the_paths():
    # a run's seed must change the sampled paths (and the same seed repeat them)
    for cls in (FairSampler, UniformSampler):
        runs = {seed: cls([6] * 8, seed=seed).sample() for seed in (0, 1, 2)}
        assert runs[1] != runs[0] and runs[2] != runs[0] and runs[1] != runs[2], cls.__name__
        assert cls([6] * 8, seed=1).sample() == runs[1]
    assert torch.equal(FairSampler([6], seed=5).generator.get_state(),
                       torch.Generator().manual_seed(5).get_state())
