"""The generation loop: evaluation counts and cache, the cost objective and the front, resume from history."""

import json

import numpy as np
import pytest
from oneshot_helpers import dominates, toy_eval

from audionas.errors import UserError
from audionas.nas.oneshot.loop import pareto_front, run_search
from audionas.nas.oneshot.nsga2 import NSGA2
from audionas.nas.oneshot.random_search import RandomSearch


def test_evaluations_are_counted_and_cached():
    calls = []

    def evaluate(cs):
        calls.extend(map(tuple, cs))
        return [{"score": -sum(c), "macs": float(c[0])} for c in cs]

    res = run_search(NSGA2([2, 2], population=4, ratio=lambda i: 1.0), evaluate, 5, seed=0)
    assert res.evaluations == 20 == len(res.records)
    assert res.unique_evaluations == len(calls) == len(set(calls)) <= 4  # 4 chromosomes in the space
    assert sum(r["cached"] for r in res.records) == 20 - len(calls)


def test_each_generations_log_line_gives_its_best_score_and_the_best_of_all():
    # Before: only "best score" of the generation's candidates, which read as the best so far (QA: 0.6667 in
    # later lines while the front held 1.0).
    lines = []
    res = run_search(NSGA2([4, 4], population=3, ratio=lambda i: 0.0), toy_eval, 4, seed=0, log=lines.append)
    for g, line in enumerate(lines, 1):
        scores = [r["score"] for r in res.records if r["generation"] == g]
        so_far = max(r["score"] for r in res.records if r["generation"] <= g)
        assert line.startswith(f"generation {g}/4: ")
        assert f"best score {max(scores):.4f} (so far {so_far:.4f})" in line
    assert any(max(r["score"] for r in res.records if r["generation"] == g) < max(
        r["score"] for r in res.records if r["generation"] <= g) for g in (3, 4))  # the two differ somewhere


def test_random_search_logs_batches_not_generations():
    # Nothing evolves in random search: its rounds are batches of candidates (before: "generation 1/3").
    lines = []
    run_search(RandomSearch([4, 4], population=3), toy_eval, 3, seed=0, log=lines.append)
    assert [line.split(":")[0] for line in lines] == ["batch 1/3", "batch 2/3", "batch 3/3"]


def test_a_later_generation_redraws_chromosomes_scored_in_an_earlier_one():
    # 3 x 3 = 9 chromosomes, 4 random ones per generation: generation 2 avoids generation 1's 4 (redrawn up
    # to 20 times, as pymoo's eliminate_duplicates), so 8 distinct architectures are scored, none from cache.
    res = run_search(NSGA2([3, 3], population=4, ratio=lambda i: 0.0), toy_eval, 2, seed=0)
    assert res.evaluations == res.unique_evaluations == 8
    assert len({tuple(r["chromosome"]) for r in res.records}) == 8
    assert not any(r["cached"] for r in res.records)


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
    assert not any(dominates(g, f) for f in F_front for g in F_all)
    want = [[-r["score"], r["params"]] for r in _params_eval(res.best_X.tolist())]
    assert np.array_equal(res.best_F, np.array(want))
    costs = [r["params"] for r in front]
    assert len(front) >= 3 and costs == sorted(costs)
    recs = [{"chromosome": [i], "score": s, "macs": m} for i, (s, m) in enumerate([(0.2, 5), (0.9, 1),
                                                                                    (0.5, 3)])]
    fr = pareto_front(recs)
    assert [r["macs"] for r in fr] == [1]  # (0.9, 1) dominates both others
    recs = [{"chromosome": [i], "score": s, "macs": m} for i, (s, m) in enumerate([(0.9, 5), (0.2, 1),
                                                                                    (0.5, 3)])]
    fr = pareto_front(recs)
    assert [r["macs"] for r in fr] == [1, 3, 5]
    recs.append({"chromosome": [1], "score": 0.99, "macs": 0})  # a repeat: its first record counts
    assert pareto_front(recs) == fr  # by increasing cost, not by score


# ----------------------------------------------------------------------------------------------- resume
class _Killed(Exception):
    pass


def _alg():
    return NSGA2([6] * 8, population=8, ratio=lambda i: 0.0 if i < 2 else 0.75)


def _killed_after_19(tmp_path):
    """A 4-generation search run whole into tmp_path/a, and killed in generation 3 after 19 candidates into
    tmp_path/b: (the whole run's result, b's history file)."""
    full = run_search(_alg(), toy_eval, 4, seed=5, out=tmp_path / "a")
    n = 0

    def dying(cs):
        nonlocal n
        n += len(cs)
        if n > 19:
            raise _Killed
        return toy_eval(cs)

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
        return toy_eval(cs)

    resumed = run_search(_alg(), counting, 4, seed=5, out=tmp_path / "b")
    assert len(calls) == 32 - 19 - sum(r["cached"] for r in full.records[19:])
    a = [json.loads(x) for x in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in hist.read_text().splitlines()]
    assert a == b
    assert np.array_equal(full.best_X, resumed.best_X)
    assert json.loads((tmp_path / "b" / "state.json").read_text())["generation"] == 4


def test_a_whole_last_line_without_its_newline_is_kept_by_the_resume_as_plot_search_reads_it(tmp_path):
    # Before (style review): the resume dropped it and scored that candidate again, where plot-search (one
    # reader of .jsonl files for both now) showed it.
    from audionas.nas.oneshot.loop import check_record
    from audionas.utils.jsonio import read_json_lines

    full, hist = _killed_after_19(tmp_path)
    hist.write_text(hist.read_text()[:-1])
    assert len(read_json_lines(hist, "x", drop_partial_last=True, check=check_record)) == 19
    calls = []

    def counting(cs):
        calls.extend(cs)
        return toy_eval(cs)

    run_search(_alg(), counting, 4, seed=5, out=tmp_path / "b")
    assert len(calls) == 32 - 19 - sum(r["cached"] for r in full.records[19:])
    assert (tmp_path / "a" / "history.jsonl").read_text() == hist.read_text()


def test_each_generations_history_is_on_disk_before_the_state_that_counts_on_it(tmp_path, monkeypatch):
    # Before: history.jsonl was only flushed while state.json was fsynced: after an OS crash a resume could
    # find a generation marked done with a line missing, and silently lose that candidate (QA).
    import os

    import audionas.nas.oneshot.loop as loop

    events = []
    fsync, write_json = os.fsync, loop.write_json_atomic
    hist = tmp_path / "s" / "history.jsonl"

    def recording_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino, os.fstat(fd).st_size))
        fsync(fd)

    def recording_write(obj, path):
        if path.name == "state.json" and obj["generation"] > 0:
            events.append(("state", obj["generation"]))
        write_json(obj, path)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(loop, "write_json_atomic", recording_write)
    run_search(_alg(), toy_eval, 3, seed=5, out=tmp_path / "s")
    states = [i for i, e in enumerate(events) if e[0] == "state"]
    assert len(states) == 3
    lines = hist.read_text().splitlines(keepends=True)
    for g, i in enumerate(states, 1):  # the fsync just before: the history file, holding g generations
        kind, inode, size = events[i - 1]
        done = sum(len(x.encode()) for x in lines if json.loads(x)["generation"] <= g)
        assert (kind, inode, size) == ("fsync", hist.stat().st_ino, done)


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
        run_search(_alg(), toy_eval, 4, seed=5, out=tmp_path / "b")
    monkeypatch.undo()
    assert hist.read_text() == before
    run_search(_alg(), toy_eval, 4, seed=5, out=tmp_path / "b")
    assert hist.read_text() == (tmp_path / "a" / "history.jsonl").read_text()
    assert len(full.records) == 32


def test_a_kill_between_two_candidates_of_a_group_keeps_all_of_the_group_or_none(tmp_path, monkeypatch):
    """A resume re-evaluates whole groups only: the rest of a half-written group would be scored in another
    group size, which moves scores in their last bits (batched evaluation)."""
    dumps, records = json.dumps, 0

    def dies_on_the_5th_record(obj, *a, **k):
        nonlocal records
        if isinstance(obj, dict) and "index" in obj:
            records += 1
            if records == 5:  # the second of the second group of three
                raise _Killed
        return dumps(obj, *a, **k)

    monkeypatch.setattr(json, "dumps", dies_on_the_5th_record)
    with pytest.raises(_Killed):
        run_search(_alg(), toy_eval, 4, seed=5, out=tmp_path / "b", group=3)
    monkeypatch.undo()
    assert len((tmp_path / "b" / "history.jsonl").read_text().splitlines()) == 3


def test_resume_with_other_settings_is_a_user_error(tmp_path):
    run_search(NSGA2([3] * 3, population=4), toy_eval, 1, seed=0, out=tmp_path, meta={"bn": "none"})
    with pytest.raises(UserError, match="bn"):
        run_search(NSGA2([3] * 3, population=4), toy_eval, 2, seed=0, out=tmp_path,
                   meta={"bn": "recalibrate"})


def test_a_search_of_another_space_in_out_is_refused_by_its_settings_not_its_chromosomes(tmp_path):
    # Before, the history was read first: "line 1: field 'chromosome': expected a list of 8 integers".
    run_search(NSGA2([3] * 3, population=4), toy_eval, 1, seed=0, out=tmp_path, meta={"space": "small"})
    said = r"state.json: this search was started with other settings \(space small, now big\)"
    with pytest.raises(UserError, match=said):
        run_search(NSGA2([6] * 8, population=4), toy_eval, 1, seed=0, out=tmp_path, meta={"space": "big"})


def test_a_refused_resume_leaves_the_history_as_it_was(tmp_path):
    run_search(NSGA2([3] * 3, population=4), toy_eval, 1, seed=0, out=tmp_path, meta={"bn": "none"})
    hist = tmp_path / "history.jsonl"
    with open(hist, "a") as f:
        f.write('{"generation": 2, "ind')  # a kill in the middle of a line
    before = hist.read_bytes()
    with pytest.raises(UserError, match="bn"):
        run_search(NSGA2([3] * 3, population=4), toy_eval, 2, seed=0, out=tmp_path,
                   meta={"bn": "recalibrate"})
    assert hist.read_bytes() == before
    res = run_search(NSGA2([3] * 3, population=4), toy_eval, 2, seed=0, out=tmp_path, meta={"bn": "none"})
    assert hist.read_text().endswith("\n") and len(hist.read_text().splitlines()) == len(res.records) == 8


def test_a_smaller_budget_is_refused_and_a_bigger_one_continues_the_search(tmp_path):
    whole = run_search(_alg(), toy_eval, 6, seed=5, out=tmp_path / "a")
    run_search(_alg(), toy_eval, 4, seed=5, out=tmp_path / "b", budget=(32, "--generations 4"))
    before = {p.name: p.read_text() for p in (tmp_path / "b").iterdir()}
    with pytest.raises(UserError, match=r"^--generations 3: .* already holds 32 scored candidates, more "
                                        r"than the 24 asked for; ask for at least as many"):
        run_search(_alg(), toy_eval, 3, seed=5, out=tmp_path / "b", budget=(24, "--generations 3"))
    assert {p.name: p.read_text() for p in (tmp_path / "b").iterdir()} == before  # left as it was
    longer = run_search(_alg(), toy_eval, 6, seed=5, out=tmp_path / "b", budget=(48, "--generations 6"))
    assert longer.records == whole.records  # 4 then 2 more generations = 6 at once
    assert (tmp_path / "b" / "history.jsonl").read_text() == (tmp_path / "a" / "history.jsonl").read_text()


def test_a_search_folder_another_process_holds_is_refused(tmp_path, held_elsewhere):
    # before: the same search started twice wrote one history twice over
    out = tmp_path / "s"
    out.mkdir()
    with held_elsewhere(out):
        with pytest.raises(UserError, match=rf"^{out}: in use by another audionas process"):
            run_search(_alg(), toy_eval, 2, seed=5, out=out)
    assert not (out / "history.jsonl").exists()
    run_search(_alg(), toy_eval, 2, seed=5, out=out)  # its lock ended with it


def test_random_search_draws_nsga2s_candidates_until_its_first_offspring():
    # README: at one seed and batch = population the two searches share their random candidates (common
    # random numbers), so the fronts differ only by what NSGA-II does from its first offspring on.
    from audionas.nas.oneshot.random_search import RandomSearch

    n_choices = [6] * 8
    nsga2 = NSGA2(n_choices, population=8)
    first = nsga2.first_offspring_generation()
    a = run_search(nsga2, toy_eval, first, seed=3).records
    b = run_search(RandomSearch(n_choices, population=8, total=8 * first), toy_eval, first, seed=3).records
    assert [r["chromosome"] for r in a if r["generation"] < first] == \
        [r["chromosome"] for r in b if r["generation"] < first]
    assert "offspring" in {r["origin"] for r in a if r["generation"] == first}


def test_a_history_line_that_cannot_be_written_is_a_user_error_naming_the_file(tmp_path, monkeypatch):
    # Before (QA): a full disk ended the search with "No space left on device", naming no file.
    import errno
    import os

    from audionas.nas.oneshot import loop

    class FullDisk:
        def __init__(self, *args, **kwargs):
            pass

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):  # a buffered file flushes its unwritten lines again: the disk is still full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(loop, "open", FullDisk, raising=False)
    with pytest.raises(UserError) as e:
        run_search(_alg(), toy_eval, 2, seed=5, out=tmp_path / "s")
    assert str(e.value) == f"{tmp_path / 's' / 'history.jsonl'}: cannot write (No space left on device)"
