"""Corrupt or hand-edited search files (pareto.json, search.json, history.jsonl, state.json): UserErrors."""

import json
import warnings

import numpy as np
import pytest
from oneshot_helpers import TINY_SPACE

from audionas.cli import main
from audionas.errors import UserError
from audionas.nas.oneshot.loop import run_search
from audionas.nas.oneshot.nsga2 import NSGA2
from audionas.nas.oneshot.plot import hypervolume, load_search
from audionas.nas.oneshot.space import resolve_chromosome


def _toy_eval(cs):  # scores in [0, 1], as a supernet search's accuracy or F1
    return [{"score": 0.5 + 0.5 * float(np.sin(np.dot(c, np.arange(1, len(c) + 1)))), "macs": float(sum(c)),
             "params": 1} for c in cs]


def _alg():
    return NSGA2([3, 3, 3], population=4)


def _search(folder, cost="macs", algorithm="nsga2"):
    res = run_search(_alg(), _toy_eval, 2, seed=0, out=folder, cost=cost)
    (folder / "search.json").write_text(json.dumps({"algorithm": algorithm, "cost": cost,
                                                    "cost_range": [0, 6], "evaluations": res.evaluations}))
    (folder / "pareto.json").write_text(json.dumps({"front": res.front()}))  # as a finished search
    return folder


# ------------------------------------------------------------------------------------------ pareto.json
@pytest.mark.parametrize("front, msg", [
    ([{"arch": []}], r"field 'front\[0\].chromosome': expected an object"),
    ([3], r"field 'front\[0\].chromosome': expected an object"),
    ([{"chromosome": "abc"}], r"field 'front\[0\].chromosome': chromosome 'abc'"),
    ("abc", "field 'front': expected a list"),
])
def test_bad_front_member_is_a_user_error(tmp_path, capsys, front, msg):
    p = tmp_path / "pareto.json"
    p.write_text(json.dumps({"space": TINY_SPACE, "front": front}))
    with pytest.raises(UserError, match=msg):
        resolve_chromosome(f"{p}#0")
    assert main(["profile", f"{p}#0", "--repeats", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(p) in err


@pytest.mark.parametrize("arch", [["ir_e6_k3t_s1x1_c4", "ir_e6_k3f_s2x2_c8", "ir_e3_k5t_s1x1_c8"],  # 3, 3, 0
                                  ["ir_e6_k3t_s1x1_c4"], "ir_e6_k3t_s1x1_c4", [1, 2, 3], ["x", "y", "z"]])
def test_front_member_whose_arch_disagrees_with_its_chromosome(tmp_path, capsys, arch):
    # before: accepted silently, and the chromosome's network trained, not the one the file's reader picked
    p = tmp_path / "pareto.json"
    p.write_text(json.dumps({"space": TINY_SPACE, "front": [{"chromosome": [3, 3, 1], "arch": arch}]}))
    with pytest.raises(UserError, match=r"'front\[0\].arch': disagrees with its chromosome \[3, 3, 1\]"):
        resolve_chromosome(f"{p}#0")
    assert main(["profile", f"{p}#0", "--repeats", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_front_member_arch_agrees_in_another_spelling(tmp_path):
    p = tmp_path / "pareto.json"
    arch = [" ir_e6_k3t_s1x1_c4", "ir_e06_k3f_s2x2_c8", "ir_e3_k7t_s1x1_c8"]  # as parse_block reads them
    p.write_text(json.dumps({"space": TINY_SPACE, "front": [{"chromosome": [3, 3, 1], "arch": arch}]}))
    assert resolve_chromosome(f"{p}#0")["model_args"]["arch"] == ["ir_e6_k3t_s1x1_c4", "ir_e6_k3f_s2x2_c8",
                                                                  "ir_e3_k7t_s1x1_c8"]
    p.write_text(json.dumps({"space": TINY_SPACE, "front": [{"chromosome": [3, 3, 1]}]}))  # no arch: fine
    assert resolve_chromosome(f"{p}#0")["chromosome"] == [3, 3, 1]


def test_pareto_json_that_is_not_an_object(tmp_path):
    p = tmp_path / "pareto.json"
    p.write_text("[]")
    with pytest.raises(UserError, match="pareto.json: expected a search's pareto.json .a JSON object."):
        resolve_chromosome(f"{p}#0")


# ------------------------------------------------------------------------------------------ plot-search
@pytest.mark.parametrize("name, text, msg", [
    ("search.json", "[]", "search.json: expected a search's settings .a JSON object., got a JSON array"),
    ("search.json", "{bad", "search.json: invalid JSON"),
    # before: a TypeError traceback (a list is no dict key), and a figure without the search's candidates
    ("search.json", '{"algorithm": "nsga2", "cost": ["macs"]}', "search.json: field 'cost': expected one of"),
    ("search.json", '{"algorithm": "nsga3"}', "field 'algorithm': expected one of nsga2, random"),
    ("search.json", '{"cost": "macs"}', "search.json: field 'algorithm': expected one of nsga2, random"),
    ("history.jsonl", "[1]\n", "history.jsonl line 9: expected a JSON object"),
    ("history.jsonl", "{}\n", "history.jsonl line 9: field 'generation'"),
    ("history.jsonl", "\n{}\n", "history.jsonl line 10: field 'generation'"),  # was: record 9
    ("history.jsonl", '{"generation": 1, "index": 0, "chromosome": [0], "score": "x"}\n', "field 'score'"),
    # NaN, Infinity and a 401-digit integer: before, an Infinity hypervolume or an OverflowError traceback
    ("history.jsonl", '{"generation": 1, "index": 0, "chromosome": [0], "score": NaN, "macs": 1}\n',
     "field 'score': expected a fraction in .0, 1., got nan"),
    ("history.jsonl", '{"generation": 1, "index": 0, "chromosome": [0], "score": Infinity, "macs": 1}\n',
     "field 'score': expected a fraction in"),
    # before: a score of 2 made the hypervolume's f1 = 1 - score negative (a hypervolume above 1)
    ("history.jsonl", '{"generation": 1, "index": 0, "chromosome": [0], "score": 2, "macs": 1}\n',
     r"field 'score': expected a fraction in \[0, 1\], got 2"),
    ("history.jsonl", '{"generation": 1, "index": 0, "chromosome": [0], "score": 0.5, "macs": 1%s}\n'
     % ("0" * 400), "field 'macs': expected a finite number"),
    # before (QA): a negative cost passed and moved the hypervolume (0.0713 -> 0.1824)
    ("history.jsonl", '{"generation": 1, "index": 0, "chromosome": [0], "score": 0.5, "macs": -1}\n',
     "field 'macs': expected a finite number >= 0, got -1"),
])
def test_plot_search_on_bad_files(tmp_path, capsys, name, text, msg):
    s = _search(tmp_path / "s")
    if name == "history.jsonl":
        with open(s / name, "a") as f:
            f.write(text)
    else:
        (s / name).write_text(text)
    with pytest.raises(UserError, match=msg):
        load_search(s)
    assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "pl").exists()


def test_hypervolume_of_a_front_by_hand():
    # f1 = 1 - score, f2 = (cost - 1000) / (5000 - 1000), reference (1, 1): A = (0.2, 0.5), B = (0.4, 0.25);
    # their boxes to the reference are 0.8 x 0.5 and 0.6 x 0.75, overlapping in 0.6 x 0.5: 0.4 + 0.45 - 0.3
    front = [{"score": 0.8, "macs": 3000, "params": 0}, {"score": 0.6, "macs": 2000, "params": 4200}]
    assert hypervolume(front, (1000, 5000)) == pytest.approx(0.55)
    assert hypervolume(front[:1], (1000, 5000)) == pytest.approx(0.4)
    assert hypervolume([{"score": 1.0, "macs": 1000}], (1000, 5000)) == pytest.approx(1.0)
    # cost="params" reads that key: A at 0 (the space's minimum) and B at 4200 > max, outside the box
    assert hypervolume(front, (0, 4000), cost="params") == pytest.approx(0.8)
    assert hypervolume([], (1000, 5000)) == 0.0
    # a latency range under 1 ms is a span like any other: (0.5 - 0.25) / 0.5 = 0.5, box 0.5 x 0.5
    fast = [{"score": 0.5, "latency_ms": 0.5}]
    assert hypervolume(fast, (0.25, 0.75), cost="latency_ms") == pytest.approx(0.25)


def test_a_params_search_is_plotted_by_its_params_front_on_the_union_of_the_cost_ranges(tmp_path):
    from audionas.nas.oneshot.loop import pareto_front
    from audionas.nas.oneshot.plot import load_search, plot_searches

    a, b = _search(tmp_path / "a", cost="params"), _search(tmp_path / "b", cost="params")
    records = [json.loads(line) for line in (a / "history.jsonl").read_text().splitlines()]
    front = load_search(a)["front"]  # params are all 1: one member, the best score (the MACs front has more)
    assert front == pareto_front(records, "params") and len(front) == 1 < len(pareto_front(records, "macs"))
    meta = json.loads((b / "search.json").read_text())
    (b / "search.json").write_text(json.dumps({**meta, "cost_range": [0.5, 10]}))
    got = plot_searches([a, b], tmp_path / "plot")
    assert got["cost_range"] == [0, 10]  # both searches normalised by one range: [0, 6] and [0.5, 10]
    assert list(got["hypervolume"].values())[0] == pytest.approx(hypervolume(front, (0, 10), "params"))


def test_plot_search_of_a_missing_folder_says_not_found(tmp_path, capsys):
    assert main(["plot-search", str(tmp_path / "nope"), "--out", str(tmp_path / "pl")]) == 2
    expected = f"{tmp_path / 'nope'}: not found (expected the --out folder of `audionas search nsga2|random`)"
    assert capsys.readouterr().err == f"audionas: error: {expected}\n"


def test_plot_search_of_a_search_killed_mid_line(tmp_path):
    """A kill in the middle of a history line: plot-search shows the complete lines (a resume keeps them)."""
    s = _search(tmp_path / "s")
    (s / "pareto.json").unlink()  # killed in its first session
    n = len((s / "history.jsonl").read_text().splitlines())
    with open(s / "history.jsonl", "a") as f:
        f.write('{"generation": 3, "index": 0, "chrom')
    assert len(load_search(s)["records"]) == n == 8
    said = r"s: the search is unfinished \(running, or stopped; a rerun resumes it\): plotting the 8 cand"
    with pytest.warns(UserWarning, match=said):
        assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 0


def test_plot_search_of_a_search_resumed_for_more_candidates(tmp_path):
    """A rerun asking for more rewrites search.json without `evaluations`; the last session's pareto.json
    stays until it ends: still unfinished."""
    s = _search(tmp_path / "s")
    meta = json.loads((s / "search.json").read_text())
    del meta["evaluations"]
    (s / "search.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"s: the search is unfinished \(running, or stopped; a rerun"):
        assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 0


@pytest.mark.parametrize("cost_range", [[5e6, 1e3], [-1, 5], [0, float("inf")], [0], [0, 10**400]])
def test_plot_search_with_a_bad_cost_range(tmp_path, capsys, cost_range):
    s = _search(tmp_path / "s")
    (s / "search.json").write_text(json.dumps({"algorithm": "nsga2", "cost_range": cost_range}))
    assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'cost_range': expected [min, max] numbers with 0 <= min <= max" in err
    assert not (tmp_path / "pl").exists()


def test_plot_search_of_a_space_of_one_cost_divides_by_one(tmp_path, capsys):
    # Before (QA): a cost range [c, c] printed the normalisation as "/ (c - c)"; hypervolume() divides by 1.
    s = _search(tmp_path / "s")
    meta = json.loads((s / "search.json").read_text())
    (s / "search.json").write_text(json.dumps({**meta, "cost_range": [7, 7]}))
    assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 0
    assert "objectives 1 - score and (MACs - 7) / 1, reference point" in capsys.readouterr().out


def test_plot_search_of_an_empty_history(tmp_path, capsys):
    s = _search(tmp_path / "s")
    (s / "history.jsonl").write_text("")
    assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {s / 'history.jsonl'}: no candidates scored yet "
                                       f"(nothing to plot; run or resume the search)\n")
    assert not (tmp_path / "pl").exists()


def test_plot_search_of_one_search_given_twice(tmp_path, capsys):
    s = _search(tmp_path / "s")
    assert main(["plot-search", str(s), str(tmp_path / "." / "s"), "--out", str(tmp_path / "pl")]) == 2
    assert "s: given twice; plot-search compares two different searches\n" in capsys.readouterr().err
    assert not (tmp_path / "pl").exists()


def test_plot_search_mixed_costs_and_three_folders_leave_no_output(tmp_path, capsys):
    a, b = _search(tmp_path / "a"), _search(tmp_path / "b", cost="params", algorithm="random")
    assert main(["plot-search", str(a), str(b), "--out", str(tmp_path / "mix")]) == 2
    assert "different costs" in capsys.readouterr().err
    assert not (tmp_path / "mix").exists()
    meta = json.loads((b / "search.json").read_text())
    (b / "search.json").write_text(json.dumps({**meta, "cost": "macs", "metric": "paper_f1"}))
    (a / "search.json").write_text(json.dumps({**json.loads((a / "search.json").read_text()),
                                               "metric": "accuracy"}))
    assert main(["plot-search", str(a), str(b), "--out", str(tmp_path / "mix")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: plot-search: the searches score different metrics "
                                       f"({a}: accuracy, {b}: paper_f1)\n")
    assert not (tmp_path / "mix").exists()
    assert main(["plot-search", str(a), str(a), str(a), "--out", str(tmp_path / "three")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected one or two search folders" in err
    assert not (tmp_path / "three").exists()



def test_plot_search_of_a_folder_not_named_in_utf8_draws_and_prints_it_escaped(tmp_path, capsys):
    # Before (QA): matplotlib's TypeError traceback on the legend's surrogate, and an empty --out folder left.
    import os

    s = _search(tmp_path / "s").rename(tmp_path / os.fsdecode(b"s\xff\n"))
    assert main(["plot-search", str(s), "--out", str(tmp_path / os.fsdecode(b"fig\xff"))]) == 0
    out = capsys.readouterr().out
    assert "  nsga2 (s\\udcff\\n): " in out and f"wrote {tmp_path}/fig\\udcff/figure4.svg\n" in out
    assert sorted(p.name for p in (tmp_path / os.fsdecode(b"fig\xff")).iterdir()) == ["figure4.png",
                                                                                      "figure4.svg"]


def test_plot_search_writes_both_figures_or_neither(tmp_path, capsys):
    # Before (QA): figure4.png was replaced, and then figure4.svg's failure kept the old SVG beside it.
    s = _search(tmp_path / "s")
    (tmp_path / "pl" / "figure4.svg").mkdir(parents=True)
    assert main(["plot-search", str(s), "--out", str(tmp_path / "pl")]) == 2
    assert capsys.readouterr().err.endswith("figure4.svg: is a directory (expected a file path)\n")
    assert [p.name for p in (tmp_path / "pl").iterdir()] == ["figure4.svg"]


@pytest.mark.parametrize("algorithms", [("nsga2", "nsga2"), ("random", "random"), ("random", "nsga2"),
                                        ("nsga2",), ("random",)])
def test_plot_search_gives_each_search_its_own_candidate_panel(tmp_path, monkeypatch, algorithms):
    # Before (QA): two NSGA-II searches (two seeds) were drawn on top of each other in panel (a), with two
    # colour bars, and panel (b) said "no random search given"; two random ones shared panel (b).
    from audionas.nas.oneshot import plot

    figures = []
    monkeypatch.setattr(plot, "save_figures", lambda fig, dpis: figures.append(fig) or list(dpis))
    folders = [_search(tmp_path / f"{k}" / "s", algorithm=a) for k, a in enumerate(algorithms)]
    if algorithms == ("random", "random"):  # folders of other names are named by them alone
        folders = [f.rename(f.parent / f"s{k}") for k, f in enumerate(folders)]
    assert main(["plot-search", *map(str, folders), "--out", str(tmp_path / "pl")]) == 0
    a, b, c = figures[0].axes[:3]
    drawn = {ax.get_title(): len(ax.collections) for ax in (a, b)}
    name = {"nsga2": "NSGA-II search", "random": "random search"}
    if algorithms == ("nsga2",):
        assert drawn == {"(a) NSGA-II search candidates": 1, "(b) no random search given": 0}
    elif algorithms == ("random",):
        assert drawn == {"(a) no NSGA-II search given": 0, "(b) random search candidates": 1}
    elif len(set(algorithms)) == 1:
        named = [f.name for f in folders] if folders[0].name != folders[1].name else folders
        assert drawn == {f"({p}) {name[algorithms[0]]} candidates ({named[k]})": 1
                         for k, p in enumerate("ab")}
    else:
        assert drawn == {"(a) NSGA-II search candidates": 1, "(b) random search candidates": 1}
    generations = figures[0].axes[3:]  # one colour bar per NSGA-II panel, ticked at whole generations
    assert len(generations) == algorithms.count("nsga2")
    for bar in generations:
        figures[0].canvas.draw()
        assert all(float(t).is_integer() for t in bar.get_yticks())
    assert len(c.get_lines()) == len(algorithms)


def test_plot_search_draws_two_equal_fronts_so_both_show(tmp_path, monkeypatch):
    # Before (QA): an NSGA-II search that bred no offspring had the random front, drawn exactly over it
    from audionas.nas.oneshot import plot

    figures = []
    monkeypatch.setattr(plot, "save_figures", lambda fig, dpis: figures.append(fig) or list(dpis))
    a, b = _search(tmp_path / "a"), _search(tmp_path / "b", algorithm="random")
    assert main(["plot-search", str(a), str(b), "--out", str(tmp_path / "pl")]) == 0
    first, second = figures[0].axes[2].get_lines()
    assert first.get_xydata().tolist() == second.get_xydata().tolist()
    assert first.get_linestyle() != second.get_linestyle() and first.get_marker() != second.get_marker()
    assert second.get_markerfacecolor() == "none"


def test_plot_search_warns_when_the_searches_used_other_supernets(tmp_path):
    a, b = _search(tmp_path / "a"), _search(tmp_path / "b", algorithm="random")
    for folder, supernet in ((a, "/runs/sn1"), (b, "/runs/sn2")):
        meta = json.loads((folder / "search.json").read_text())
        (folder / "search.json").write_text(json.dumps({**meta, "supernet": supernet, "val_items": 12}))
    with pytest.warns(UserWarning, match=r"scored their candidates differently \(supernet differ\): their "
                      r"hypervolumes are not comparable"):
        assert main(["plot-search", str(a), str(b), "--out", str(tmp_path / "pl")]) == 0
    meta = json.loads((b / "search.json").read_text())
    (b / "search.json").write_text(json.dumps({**meta, "supernet": "/runs/sn1"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["plot-search", str(a), str(b), "--out", str(tmp_path / "pl")]) == 0


# ------------------------------------------------------------------------------------------ nsga2 resume
@pytest.mark.parametrize("state, msg", [
    ("{bad", "state.json: invalid JSON"),
    ("[]", "state.json: expected a search state .a JSON object."),
    ('{"generation": 1}', "state.json: field 'meta'"),
])
def test_resume_with_a_bad_state_file(tmp_path, state, msg):
    run_search(_alg(), _toy_eval, 1, seed=0, out=tmp_path)
    (tmp_path / "state.json").write_text(state)
    with pytest.raises(UserError, match=msg):
        run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)


def test_resume_with_hand_edited_state_fields(tmp_path):
    run_search(_alg(), _toy_eval, 1, seed=0, out=tmp_path)
    good = json.loads((tmp_path / "state.json").read_text())
    for key, value in [("generation", "1"), ("best", [[0, 1]]), ("rng", "x")]:
        (tmp_path / "state.json").write_text(json.dumps({**good, key: value}))
        with pytest.raises(UserError, match=f"state.json: field '{key}'"):
            run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)
    for value in (-1, 10**50):  # before: an OverflowError traceback from numpy's PCG64 state setter
        rng = {**good["rng"], "state": {**good["rng"]["state"], "state": value}}
        (tmp_path / "state.json").write_text(json.dumps({**good, "rng": rng}))
        with pytest.raises(UserError, match="state.json: field 'rng'"):
            run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)


def _searched_with_score(folder, index: int, score) -> None:
    """One generation searched into `folder`, then candidate `index`'s score edited in history.jsonl."""
    run_search(_alg(), _toy_eval, 1, seed=0, out=folder)
    hist = folder / "history.jsonl"
    recs = [json.loads(line) for line in hist.read_text().splitlines()]
    recs[index]["score"] = score
    hist.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_resume_with_a_score_that_is_not_finite(tmp_path):
    _searched_with_score(tmp_path, 0, float("nan"))  # before: resumed, with the NaN candidate in the front
    with pytest.raises(UserError, match="history.jsonl line 1: field 'score': expected a finite number"):
        run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)


def test_resume_scores_outside_0_1_only_where_scores_are_fractions(tmp_path):
    _searched_with_score(tmp_path, 1, 2.0)  # an edited accuracy: before, a supernet search resumed with it
    with pytest.raises(UserError, match=r"line 2: field 'score': expected a fraction in \[0, 1"):
        run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path, fraction_scores=True)
    assert run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path).evaluations == 8  # any score by default


def test_resume_with_a_state_past_its_history_or_without_survivors(tmp_path):
    run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)
    state = tmp_path / "state.json"
    good = json.loads(state.read_text())
    # before: exit 0, having skipped generations nobody evaluated
    state.write_text(json.dumps({**good, "generation": 5}))
    with pytest.raises(UserError, match=r"state.json: field 'generation': 5 is past the last generation in "
                                        r".*history.jsonl \(2\)"):
        run_search(_alg(), _toy_eval, 8, seed=0, out=tmp_path)
    state.write_text(json.dumps({**good, "best": []}))  # before: generation 3 bred from nothing
    with pytest.raises(UserError, match="state.json: field 'best': empty after generation 2"):
        run_search(_alg(), _toy_eval, 3, seed=0, out=tmp_path)
    state.write_text(json.dumps(good))
    assert run_search(_alg(), _toy_eval, 3, seed=0, out=tmp_path).evaluations == 12


def test_resume_with_an_emptied_or_edited_history(tmp_path):
    run_search(_alg(), _toy_eval, 1, seed=0, out=tmp_path)
    hist = tmp_path / "history.jsonl"
    lines = hist.read_text()
    hist.write_text("")
    with pytest.raises(UserError, match=r"'generation': 1 is past the last generation in .*history.jsonl"):
        run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)
    hist.write_text(lines + "{}\n")
    with pytest.raises(UserError, match="history.jsonl line 5: field 'generation'"):
        run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)
    hist.write_text(lines.replace('"chromosome": [', '"chromosome": [0, ', 1))
    with pytest.raises(UserError, match="history.jsonl line 1: field 'chromosome': expected a list of 3"):
        run_search(_alg(), _toy_eval, 2, seed=0, out=tmp_path)


def test_resume_refuses_genes_outside_the_space_before_any_work(tmp_path):
    run_search(_alg(), _toy_eval, 1, seed=0, out=tmp_path)
    hist, state = tmp_path / "history.jsonl", tmp_path / "state.json"
    lines, saved = hist.read_text(), state.read_text()
    first = json.loads(lines.splitlines()[0])
    edited = {**first, "chromosome": [9, *first["chromosome"][1:]]}
    hist.write_text(json.dumps(edited) + "\n" + "".join(lines.splitlines(True)[1:]))
    edited_text = hist.read_text()
    with pytest.raises(UserError, match=r"history.jsonl line 1: field 'chromosome': expected a list of 3 "
                                        r"integers, gene i in 0..n_i - 1 for n = \[3, 3, 3\], got \[9, "):
        run_search(_alg(), _toy_eval, 3, seed=0, out=tmp_path)
    assert hist.read_text() == edited_text and state.read_text() == saved  # nothing run or rewritten
    hist.write_text(lines)
    state.write_text(json.dumps({**json.loads(saved), "best": [[3, 0, 0]] * 4}))
    with pytest.raises(UserError, match="state.json: field 'best': expected a list of chromosomes, each"):
        run_search(_alg(), _toy_eval, 3, seed=0, out=tmp_path)


def test_profile_names_its_own_argument_for_a_bad_front_index(tmp_path, capsys):
    p = tmp_path / "pareto.json"
    p.write_text(json.dumps({"space": TINY_SPACE, "front": [{"chromosome": [0, 0, 0]}]}))
    assert main(["profile", f"{p}#5", "--repeats", "0"]) == 2
    err = capsys.readouterr().err
    assert f"MODEL {p}#5: index 5 outside 0..0" in err and "--chromosome" not in err


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_search_out_without_state_json_is_refused_before_any_work(tmp_path, capsys, algorithm):
    s = _search(tmp_path / "s", algorithm="random")
    (s / "state.json").unlink()  # a history alone: another search's, or edited
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: res15\n")  # a training run
    for out in (s, run):
        before = sorted(p.name for p in out.iterdir())
        assert main(["search", algorithm, "--supernet", str(tmp_path / "sn"), "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"audionas: error: --out {out}: folder is not empty and holds no "
                                           f"search (state.json); use another --out\n")
        assert sorted(p.name for p in out.iterdir()) == before


def test_an_empty_front_is_named_as_such(tmp_path, capsys):
    # before: "index 0 outside 0..-1 (front size 0)"
    p = tmp_path / "pareto.json"
    p.write_text(json.dumps({"space": TINY_SPACE, "front": []}))
    assert main(["profile", f"{p}#0", "--repeats", "0"]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {p}: field 'front': empty, expected the search's "
                                       f"front members\n")


def test_run_oneshot_search_refuses_a_non_empty_folder_holding_no_search(tmp_path):
    # Before (API QA): `audionas search nsga2 --out` refused such a folder, run_oneshot_search wrote into it.
    from audionas.nas.oneshot.search import SearchConfig, run_oneshot_search

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"out: folder is not empty and holds no search \(state.json\)"):
        run_oneshot_search(tmp_path / "no-supernet", tmp_path / "out", SearchConfig())
    with pytest.raises(UserError, match=r"no-supernet"):  # an empty folder passes on to the next check
        run_oneshot_search(tmp_path / "no-supernet", tmp_path / "empty", SearchConfig())


def test_run_oneshot_search_expands_a_home_relative_path(tmp_path, monkeypatch):
    # As train's run folder and data.root: a Python caller's "~/..." gets no shell to expand it.
    from audionas.nas.oneshot.search import SearchConfig, run_oneshot_search

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=rf"^--out {tmp_path / 'out'}: folder is not empty"):
        run_oneshot_search("~/sn", "~/out", SearchConfig())
    with pytest.raises(UserError, match=rf"^{tmp_path / 'sn'}"):
        run_oneshot_search("~/sn", "~/empty", SearchConfig())


def test_a_pareto_front_is_drawn_as_a_staircase_in_cost_order():
    from audionas.nas.oneshot.plot import _step_xy

    front = [{"score": 0.8, "macs": 3e6}, {"score": 0.5, "macs": 1e6}, {"score": 0.9, "macs": 4e6}]
    # each better score starts at its own cost: the previous score holds until then (a step, not a slope)
    assert _step_xy(front, "macs") == ([1.0, 3.0, 3.0, 4.0, 4.0], [0.5, 0.5, 0.8, 0.8, 0.9])
    assert _step_xy([{"score": 0.5, "params": 2000}], "params") == ([2.0], [0.5])
