import json

import numpy as np
import pytest
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding as PymooRankAndCrowding

from audionas.errors import UserError
from audionas.nas.oneshot.nsga2 import (
    NSGA2,
    BinaryTournament,
    GeneMutation,
    RankAndCrowding,
    TwoPointSwap,
    exploitation_ratio,
    run_search,
)
from audionas.nas.oneshot.random_search import RandomSearch


def test_exploitation_ratio_eq1():
    assert [exploitation_ratio(i) for i in (1, 14)] == [0.0, 0.0]
    assert exploitation_ratio(15) == 0.0
    assert exploitation_ratio(16) == pytest.approx(1 / 68.75)
    assert exploitation_ratio(70) == pytest.approx(0.8)
    assert exploitation_ratio(42) == pytest.approx(27 / 68.75)


def test_generation_mix_follows_alpha():
    alg = NSGA2([6] * 20, population=64)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, (64, 20))
    F = rng.random((64, 2))
    for g, n_off in [(1, 0), (14, 0), (15, 0), (42, 25), (70, 51)]:
        cands = alg.propose(g, X, F, rng)
        assert len(cands) == 64
        assert sum(o == "offspring" for _, o in cands) == n_off == round(exploitation_ratio(g) * 64)



def test_the_two_champions_are_distinct_parents():
    alg = NSGA2([6] * 5, population=3)
    pairs = []

    class Recorder(TwoPointSwap):
        def do(self, a, b, rng):
            pairs.append((a.copy(), b.copy()))
            return super().do(a, b, rng)

    alg.crossover = Recorder()
    rng = np.random.default_rng(0)
    X = np.array([[0] * 5, [1] * 5, [2] * 5])
    F = np.array([[0.1, 3.0], [0.2, 2.0], [0.3, 1.0]])  # one front: every tournament is a crowding tie-break
    for _ in range(20):
        alg.propose(70, X, F, rng)
    assert len(pairs) >= 20 and all(not np.array_equal(a, b) for a, b in pairs)

def test_two_point_swap():
    rng = np.random.default_rng(0)
    a, b = np.zeros(20, dtype=int), np.ones(20, dtype=int)
    for _ in range(10):
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


def test_binary_tournament_prefers_rank_then_crowding():
    rng = np.random.default_rng(0)
    rank = np.array([0, 1, 0])
    crowd = np.array([1.0, 5.0, np.inf])
    winners = BinaryTournament().do(rank, crowd, 2000, rng)
    assert (winners == 1).mean() < 0.2  # index 1 only wins against itself (prob 1/9)
    assert (winners == 2).mean() > (winners == 0).mean()


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


# ----------------------------------------------------------------------------- discretised ZDT benchmarks
def _zdt(name: str, n_var: int, levels: int):
    from pymoo.problems import get_problem

    prob = get_problem(name, n_var=n_var)
    return lambda X: prob.evaluate(np.asarray(X, dtype=float) / (levels - 1))


def _ours_hv(alg, f, generations, seed, hv):
    res = run_search(alg, lambda cs: [{"score": -a, "macs": b} for a, b in f(cs)], generations, seed=seed)
    return hv(np.array([[-r["score"], r["macs"]] for r in res.front()])), res


def _pymoo_hv(f, n_var, levels, P, I, seed, hv):
    from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    class Discrete(Problem):
        def __init__(self):
            super().__init__(n_var=n_var, n_obj=2, xl=0, xu=levels - 1, vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            out["F"] = f(X)

    alg = PymooNSGA2(pop_size=P, sampling=IntegerRandomSampling(),
                     crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
                     mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
                     eliminate_duplicates=True)
    res = minimize(Discrete(), alg, ("n_gen", I), seed=seed, verbose=False)
    return hv(res.F)


@pytest.mark.slow
@pytest.mark.parametrize("name, levels, P", [("zdt1", 6, 32), ("zdt2", 6, 32), ("zdt3", 7, 64)])
def test_engine_matches_pymoo_nsga2_on_discretised_zdt(name, levels, P):
    """10 integer genes mapped to [0, 1], I = 70 generations of P (P x 70 evaluations for every method);
    hypervolume with the reference point (1.1, 1.1), averaged over 3 seeds.

    The engine run as a plain generational NSGA-II (alpha = 1 from the first generation) is within 5% of
    pymoo's NSGA-II; with the paper's Eq. 1 schedule (14 random generations, alpha <= 0.8) it trails pymoo
    but still beats random search with the same budget."""
    from pymoo.indicators.hv import HV

    hv = HV(ref_point=np.array([1.1, 1.1]))
    f, n_var, I = _zdt(name, 10, levels), 10, 70
    ours, paper, rand, ref = [], [], [], []
    for seed in range(3):
        ours.append(_ours_hv(NSGA2([levels] * n_var, population=P, ratio=lambda i: 1.0), f, I, seed, hv)[0])
        paper.append(_ours_hv(NSGA2([levels] * n_var, population=P), f, I, seed, hv)[0])
        rand.append(_ours_hv(RandomSearch([levels] * n_var, population=P), f, I, seed, hv)[0])
        ref.append(_pymoo_hv(f, n_var, levels, P, I, seed, hv))
    assert np.mean(ours) >= 0.95 * np.mean(ref), (ours, ref)
    assert np.mean(ours) > np.mean(rand) and np.mean(paper) > np.mean(rand), (ours, paper, rand)


def test_evaluations_are_counted_and_cached():
    calls = []

    def evaluate(cs):
        calls.extend(map(tuple, cs))
        return [{"score": -sum(c), "macs": float(c[0])} for c in cs]

    res = run_search(NSGA2([2, 2], population=4, ratio=lambda i: 1.0), evaluate, 5, seed=0)
    assert res.evaluations == 20 == len(res.records)
    assert res.unique_evaluations == len(calls) == len(set(calls)) <= 4  # 4 chromosomes in the space
    assert sum(r["cached"] for r in res.records) == 20 - len(calls)


# ----------------------------------------------------------------------------------------------- resume
def _toy_eval(cs):
    return [{"score": float(np.sin(np.dot(c, np.arange(1, len(c) + 1)))), "macs": float(sum(c)),
             "params": 1} for c in cs]


class _Killed(Exception):
    pass


def _alg():
    return NSGA2([6] * 8, population=8, ratio=lambda i: 0.0 if i < 2 else 0.75)


def _killed_after_19(tmp_path):
    """A 4-generation search run whole into tmp_path/a, and killed in generation 3 after 19 candidates into
    tmp_path/b: (the whole run's result, b's history file)."""
    full = run_search(_alg(), _toy_eval, 4, seed=5, out=tmp_path / "a")
    n = 0

    def dying(cs):
        nonlocal n
        n += len(cs)
        if n > 19:
            raise _Killed
        return _toy_eval(cs)

    with pytest.raises(_Killed):
        run_search(_alg(), dying, 4, seed=5, out=tmp_path / "b")
    return full, tmp_path / "b" / "history.jsonl"


def test_history_resume_after_kill_equals_uninterrupted(tmp_path):
    full, hist = _killed_after_19(tmp_path)
    assert len(hist.read_text().splitlines()) == 19
    with open(hist, "a") as fh:
        fh.write('{"generation": 3, "ind')  # a line cut by the kill
    calls = []

    def counting(cs):
        calls.extend(cs)
        return _toy_eval(cs)

    resumed = run_search(_alg(), counting, 4, seed=5, out=tmp_path / "b")
    assert len(calls) == 32 - 19 - sum(r["cached"] for r in full.records[19:])
    a = [json.loads(x) for x in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in hist.read_text().splitlines()]
    assert a == b
    assert np.array_equal(full.best_X, resumed.best_X)
    assert json.loads((tmp_path / "b" / "state.json").read_text())["generation"] == 4


def test_a_crash_while_a_resume_rewrites_the_history_loses_no_line(tmp_path, monkeypatch):
    full, hist = _killed_after_19(tmp_path)
    before = hist.read_text()
    dumps, calls = json.dumps, 0

    def dies_on_the_6th_line(obj, *a, **k):
        nonlocal calls
        calls += 1
        if calls == 6:  # the resume rewrites the kept lines: die midway, as a kill would
            raise _Killed
        return dumps(obj, *a, **k)

    monkeypatch.setattr(json, "dumps", dies_on_the_6th_line)
    with pytest.raises(_Killed):
        run_search(_alg(), _toy_eval, 4, seed=5, out=tmp_path / "b")
    monkeypatch.undo()
    assert hist.read_text() == before
    run_search(_alg(), _toy_eval, 4, seed=5, out=tmp_path / "b")
    assert hist.read_text() == (tmp_path / "a" / "history.jsonl").read_text()
    assert len(full.records) == 32


def test_resume_with_other_settings_is_a_user_error(tmp_path):
    run_search(NSGA2([3] * 3, population=4), _toy_eval, 1, seed=0, out=tmp_path, meta={"bn": "none"})
    with pytest.raises(UserError, match="bn"):
        run_search(NSGA2([3] * 3, population=4), _toy_eval, 2, seed=0, out=tmp_path,
                   meta={"bn": "recalibrate"})


def test_exploitation_ratio_stays_at_0_8_after_generation_70():
    # Choice documented in exploitation_ratio: a search longer than the paper's I = 70 keeps alpha at 0.8
    assert [exploitation_ratio(i) for i in (70, 71, 100, 1000)] == pytest.approx([0.8] * 4)


def test_offspring_count_is_alpha_times_p_rounded_not_truncated():
    alg = NSGA2([6] * 20, population=64)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, (64, 20))
    F = rng.random((64, 2))
    # generation 20: 5 / 68.75 * 64 = 4.65 -> 5 (int() would give 4); 69: 54 / 68.75 * 64 = 50.27 -> 50
    for g, n_off in [(20, 5), (69, 50), (33, 17)]:
        assert sum(o == "offspring" for _, o in alg.propose(g, X, F, rng)) == n_off


def test_random_chromosomes_reach_every_choice_of_every_layer(tiny_space):
    from audionas.nas.oneshot.nsga2 import RandomSampling

    n_choices = [6, 2, 3, 6]
    X = RandomSampling(n_choices).do(600, np.random.default_rng(0))
    assert [sorted(set(X[:, l].tolist())) for l in range(4)] == [list(range(n)) for n in n_choices]
    rng = np.random.default_rng(0)
    genes = np.array([tiny_space.random(rng) for _ in range(300)])
    assert [sorted(set(genes[:, l].tolist())) for l in range(3)] == [list(range(6))] * 3


def _dominates(a, b) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


@pytest.mark.parametrize("ratio", [0.0, 0.75])
def test_each_generation_merges_with_the_best_population_elitism(tmp_path, ratio):
    """Algorithm 2: merge the new candidates with the best population, keep the top P. A member of
    generation 1's best population may leave only for a candidate that dominates it or shares its front."""
    alg = NSGA2([6] * 8, population=8, ratio=lambda i: ratio)
    one = run_search(alg, _toy_eval, 1, seed=2)
    two = run_search(NSGA2([6] * 8, population=8, ratio=lambda i: ratio), _toy_eval, 2, seed=2)
    F1 = one.best_F[RankAndCrowding().rank_crowding(one.best_F)[0] == 0]  # generation 1's front
    full_front = (RankAndCrowding().rank_crowding(two.best_F)[0] == 0).all()  # crowding may cut it
    # every point of generation 1's front is still in generation 2's population or dominated by one of it
    for f in F1:
        assert full_front or any(np.array_equal(f, g) or _dominates(g, f) for g in two.best_F), f
    assert len(two.records) == 16 and len(two.best_X) == 8


def test_binary_tournament_picks_the_larger_crowding_whichever_side_it_is_drawn_on():
    # one front, crowding 1 < 2 < 3: i wins when it meets a worse one (either side) or itself, ties by coin:
    # P(win) = (2 * #worse + 1) / 9 -> 1/9, 3/9, 5/9
    winners = BinaryTournament().do(np.zeros(3, dtype=int), np.array([1.0, 2.0, 3.0]), 9000,
                                    np.random.default_rng(0))
    share = np.bincount(winners, minlength=3) / 9000
    assert share == pytest.approx([1 / 9, 3 / 9, 5 / 9], abs=0.02)


def _params_eval(cs):  # macs and params disagree: macs rises with gene 0, params falls with it
    return [{"score": float(np.sin(np.dot(c, np.arange(1, len(c) + 1)))), "macs": float(sum(c)),
             "params": float(10 * (5 - c[0]) + c[1])} for c in cs]


def test_the_cost_objective_is_the_named_record_key_and_the_front_is_sorted_by_it():
    alg = NSGA2([6] * 4, population=8, ratio=lambda i: 0.5)
    res = run_search(alg, _params_eval, 3, seed=1, cost="params")
    front = res.front()
    F_all = np.array([[-r["score"], r["params"]] for r in res.records])
    F_front = np.array([[-r["score"], r["params"]] for r in front])
    # non-dominated in (score, params), and nothing scored dominates a front member
    assert not any(_dominates(g, f) for f in F_front for g in F_all)
    want = [[-r["score"], r["params"]] for r in _params_eval(res.best_X.tolist())]
    assert np.array_equal(res.best_F, np.array(want))
    costs = [r["params"] for r in front]
    assert len(front) >= 3 and costs == sorted(costs)
    recs = [{"chromosome": [i], "score": s, "macs": m} for i, (s, m) in enumerate([(0.2, 5), (0.9, 1),
                                                                                    (0.5, 3)])]
    from audionas.nas.oneshot.nsga2 import SearchResult

    fr = SearchResult(recs, np.zeros((0, 1)), np.zeros((0, 2)), 3, 3).front()
    assert [r["macs"] for r in fr] == [1]  # (0.9, 1) dominates both others
    recs = [{"chromosome": [i], "score": s, "macs": m} for i, (s, m) in enumerate([(0.9, 5), (0.2, 1),
                                                                                    (0.5, 3)])]
    fr = SearchResult(recs, np.zeros((0, 1)), np.zeros((0, 2)), 3, 3).front()
    assert [r["macs"] for r in fr] == [1, 3, 5]  # by increasing cost, not by score


def test_random_search_keeps_only_its_non_dominated_archive():
    rs = RandomSearch([6] * 4, population=8)
    F = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [2.0, 2.0]])
    assert sorted(rs.survive(np.zeros((5, 4)), F).tolist()) == [0, 1, 3]
