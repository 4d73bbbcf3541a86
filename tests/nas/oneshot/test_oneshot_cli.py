"""End to end: supernet (1 epoch, SC fixture, tiny space) -> nsga2 -> random -> plot -> --chromosome."""

import json
import warnings

import numpy as np
import pytest
from oneshot_helpers import TINY_SPACE

from audionas.cli import main
from audionas.errors import UserError
from audionas.models import create_model
from audionas.nas.oneshot.config import SearchConfig
from audionas.nas.oneshot.search import _algorithm
from audionas.nas.oneshot.space import resolve_chromosome, space_from_dict

TINY_YAML = """name: kws-tiny
task: kws
num_classes: 12
input_shape: [1, 101, 40]
preset_hint: kws-res15-cpu
model_args: {time_axis: h, stem_channels: 4, head_channels: 8, gru_hidden: 8, gru_layers: 1, fc_hidden: 8}
layers:
  - ir_e6_k3t_s4x4_c4
  - ir_e6_k3f_s2x2_c8
  - {block: ir_e6_k5t_s1x1_c8, expansions: [3, 6, 8], kernels: [5, 7]}
"""


@pytest.fixture(scope="module")
def searched(speech_commands_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oneshot")
    space = tmp / "tiny.yaml"
    space.write_text(TINY_YAML)
    run, s1, s2 = tmp / "run", tmp / "nsga", tmp / "rand"
    assert main(["search", "supernet", "--preset", "kws-fairnas-cpu", "--data", str(speech_commands_root),
                 "--out", str(run), "epochs=1", f"space={space}", "data.eval_batch_size=64"]) == 0
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s1), "--population", "4",
                 "--generations", "2"]) == 0
    assert main(["search", "random", "--supernet", str(run), "--out", str(s2), "--evaluations", "6",
                 "--batch", "4"]) == 0
    return tmp, run, s1, s2


@pytest.mark.slow
def test_search_outputs(searched):
    _, run, s1, s2 = searched
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "space.json").is_file()
    hist = [json.loads(x) for x in (s1 / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 8 and [h["generation"] for h in hist] == [1] * 4 + [2] * 4
    for h in hist:
        assert {"origin", "chromosome", "score", "macs", "params", "arch"} <= set(h)
        assert h["origin"] == "random"  # alpha = 0 before generation 15
    rand = [json.loads(x) for x in (s2 / "history.jsonl").read_text().splitlines()]
    assert len(rand) == 6
    pareto = json.loads((s1 / "pareto.json").read_text())
    macs = [m["macs"] for m in pareto["front"]]
    assert macs == sorted(macs) and pareto["task"] == "kws" and pareto["bn"] == "none"
    meta = json.loads((s1 / "search.json").read_text())
    assert meta["evaluations"] == 8 and meta["candidates_per_second"] > 0
    assert "evaluations" not in meta["config"]  # the random search's budget is not an NSGA-II setting
    assert json.loads((s2 / "search.json").read_text())["config"]["evaluations"] == 6
    # without --eval-batch-size, the supernet run's data.eval_batch_size (before: always 256, 18 GB on ASC)
    assert meta["config"]["eval_batch_size"] == 64


def test_a_budget_larger_than_the_space_warns(searched, tmp_path, recwarn):
    _, run, _, _ = searched
    # before: silent; the 9e18 candidates of `--evaluations 9223372036854775807` repeated 216 architectures
    said = (r"^220 candidates for the 216 architectures of space 'kws-tiny': once all are scored, the rest "
            r"are repeats \(scored from the cache\)$")
    with pytest.warns(UserWarning, match=said):
        assert main(["search", "random", "--supernet", str(run), "--out", str(tmp_path / "r"),
                     "--evaluations", "220", "--batch", "20", "--val-limit", "8"]) == 0
    meta = json.loads((tmp_path / "r" / "search.json").read_text())
    assert meta["evaluations"] == 220 and meta["unique_evaluations"] <= 216
    recwarn.clear()
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "n"), "--population", "4",
                 "--generations", "54", "--val-limit", "8"]) == 0  # 216 = the space: no warning
    assert not [w for w in recwarn if "architectures of space" in str(w.message)]
    assert not [w for w in recwarn if "no offspring" in str(w.message)]  # generation 24 has the first


def test_an_nsga2_search_too_short_for_offspring_says_it_is_a_random_search(searched, tmp_path):
    # Eq. 1's alpha is 0 up to generation 14 and round(alpha * 4) first reaches 1 at generation 24: before,
    # a short trial gave the history (and hypervolume) of a random search at the same seed without a word.
    _, run, _, _ = searched
    said = (r"^--generations 23 with --population 4: Eq. 1 makes no offspring before generation 24, so every "
            r"candidate is drawn at random \(a random search\); ask for more generations$")
    with pytest.warns(UserWarning, match=said):
        assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "n"), "--population",
                     "4", "--generations", "23", "--val-limit", "8"]) == 0
    origins = {json.loads(x)["origin"] for x in (tmp_path / "n" / "history.jsonl").read_text().splitlines()}
    assert origins == {"random"}


@pytest.mark.slow
def test_search_resume_is_a_no_op_when_done(searched, capsys):
    _, run, s1, _ = searched
    before = (s1 / "history.jsonl").read_text()
    rate = json.loads((s1 / "search.json").read_text())["candidates_per_second"]
    config = json.loads((s1 / "search.json").read_text())["config"]
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s1), "--population", "4",
                 "--generations", "2", "--eval-batch-size", "7", "--candidates-per-pass", "3",
                 "--no-channels-last"]) == 0
    assert (s1 / "history.jsonl").read_text() == before
    # before: "0.00 candidates/s this session", and search.json's measured rate overwritten with 0
    assert "8 candidates (8 unique evaluated, none left to score)" in capsys.readouterr().err
    assert json.loads((s1 / "search.json").read_text())["candidates_per_second"] == rate > 0
    # before: the execution settings of a session that scored nothing replaced those the search ran with
    assert json.loads((s1 / "search.json").read_text())["config"] == config
    assert [config[k] for k in ("eval_batch_size", "candidates_per_pass", "channels_last")] == [64, 4, True]
    # other settings in the same folder: exit code 2
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s1), "--population", "4",
                 "--generations", "2", "--bn", "recalibrate"]) == 2
    # a smaller budget: before, exit 0 and search.json said 1 generation over a history of 2
    meta = (s1 / "search.json").read_text()
    capsys.readouterr()
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s1), "--population", "4",
                 "--generations", "1"]) == 2
    # refused before the validation features are cached (before: after, QA)
    assert capsys.readouterr().err == (f"audionas: error: --generations 1: {s1} already holds 8 scored "
                                            f"candidates, more than the 4 asked for; ask for at least as "
                                            f"many (more continue the search) or use a new --out folder\n")
    assert (s1 / "search.json").read_text() == meta and (s1 / "history.jsonl").read_text() == before


@pytest.mark.slow
def test_an_interrupted_search_is_refused_fewer_generations_and_a_busy_folder_in_one_line(
        searched, capsys, held_elsewhere):
    import shutil

    tmp, run, s1, _ = searched
    s = tmp / "interrupted"
    shutil.copytree(s1, s)
    meta = json.loads((s / "search.json").read_text())
    del meta["evaluations"]  # as search.json is while a continuation to 5 generations runs
    (s / "search.json").write_text(json.dumps({**meta, "generations": 5}))
    argv = ["search", "nsga2", "--supernet", str(run), "--out", str(s), "--population", "4"]
    capsys.readouterr()
    # before (QA): accepted, and the search's budget silently shrank to 3 generations
    assert main([*argv, "--generations", "3"]) == 2
    said = (f"audionas: error: --generations 3: {s} is an unfinished NSGA-II search of 5 generations, fixed "
            f"when it started; ask for 5 or more, or use a new --out folder\n")
    assert capsys.readouterr().err == said
    # before (QA): the validation warning and the "cached ..." line came first, then the error
    with held_elsewhere(s):
        assert main([*argv, "--generations", "5", "--val-limit", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"audionas: error: {s}: in use by another audionas")


def test_a_continued_search_killed_before_its_end_keeps_the_measured_rate(searched, capsys, monkeypatch):
    # Before: search.json was rewritten without candidates_per_second when the continuation started; killed
    # before its end, a later rerun with nothing left to score wrote null (QA).
    import shutil

    from audionas.nas.oneshot.evaluator import CandidateEvaluator

    tmp, run, s1, _ = searched
    s = tmp / "continued"
    shutil.copytree(s1, s)
    rate = json.loads((s / "search.json").read_text())["candidates_per_second"]

    def killed(self, chromosomes):
        raise KeyboardInterrupt

    monkeypatch.setattr(CandidateEvaluator, "evaluate", killed)
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s), "--population", "4",
                 "--generations", "3", "--eval-batch-size", "7"]) == 130
    meta = json.loads((s / "search.json").read_text())
    assert meta["candidates_per_second"] == rate > 0
    assert meta["config"]["eval_batch_size"] == 64  # nothing scored with 7 yet
    capsys.readouterr()
    # a session that scores, then is killed: its settings are recorded with its first scores (review: before,
    # only at a normal end, so a resume without the flag went back to the settings that had failed)
    monkeypatch.undo()
    scored = CandidateEvaluator.evaluate

    def once(self, chromosomes):
        if self.count:
            raise KeyboardInterrupt
        return scored(self, chromosomes)

    monkeypatch.setattr(CandidateEvaluator, "evaluate", once)
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s), "--population", "4",
                 "--generations", "3", "--eval-batch-size", "7", "--candidates-per-pass", "1"]) == 130
    assert json.loads((s / "search.json").read_text())["config"]["eval_batch_size"] == 7
    monkeypatch.undo()
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s), "--population", "4",
                 "--generations", "3"]) == 0
    assert json.loads((s / "search.json").read_text())["config"]["eval_batch_size"] == 7  # the default now


def test_a_read_only_supernet_without_its_latency_table_is_refused_before_any_work(searched, capsys,
                                                                                   monkeypatch):
    # Before: the table was measured, then its write failed (as root here, a read-only folder is mimicked).
    import os

    import audionas.nas.oneshot.search as search
    from audionas.nas.oneshot.latency import LATENCY_FILE

    tmp, run, _, _ = searched
    assert not (run / LATENCY_FILE).exists()
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(run) else access(p, mode))
    monkeypatch.setattr(search, "cache_features", lambda *a, **k: pytest.fail("features cached first"))
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp / "ro"), "--cost", "latency_ms",
                 "--population", "4", "--generations", "1"]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {run}: read-only, and its latency table "
                                       f"({LATENCY_FILE}) is not measured yet; copy the supernet run to a "
                                       f"folder you can write, or run one --cost latency_ms search as its "
                                       f"owner\n")
    assert not (run / LATENCY_FILE).exists() and not (tmp / "ro").exists()


def test_a_random_search_keeps_its_budget(searched, capsys):
    # 6 evaluations in batches of 4 end on a partial batch: a new total would not add up (before: exit 0,
    # search.json said 10 over a history of 8)
    _, run, _, s2 = searched
    before = {p.name: p.read_text() for p in s2.iterdir()}
    assert main(["search", "random", "--supernet", str(run), "--out", str(s2), "--evaluations", "10",
                 "--batch", "4"]) == 2
    assert capsys.readouterr().err.endswith(f"audionas: error: --evaluations 10: {s2} is a random search of "
                                            f"6 evaluations, fixed when it started; ask for 6 or use a new "
                                            f"--out folder\n")
    assert main(["search", "random", "--supernet", str(run), "--out", str(s2), "--evaluations", "6",
                 "--batch", "2"]) == 2
    # the flag typed, not population, with the values saved and asked (QA: they were not said)
    assert "started with other settings (batch 4, now 2); use a new" in capsys.readouterr().err
    assert "generations" not in json.loads((s2 / "search.json").read_text())["config"]  # NSGA-II's only
    assert {p.name: p.read_text() for p in s2.iterdir()} == before


def test_a_resume_with_other_settings_is_refused_before_caching_or_measuring(searched, capsys, monkeypatch):
    # Before, a resume with another seed or cost first cached every validation feature (minutes on DCASE) and
    # measured the latency table, and only then was refused.
    import audionas.nas.oneshot.search as search

    def costly(*args, **kwargs):
        raise AssertionError("set-up ran before the settings were checked")

    monkeypatch.setattr(search, "cache_features", costly)
    monkeypatch.setattr(search, "latency_table", costly)
    _, run, s1, _ = searched
    before = {p.name: p.read_text() for p in s1.iterdir()}
    for other, named in ((["--seed", "1"], "seed 0, now 1"),
                         (["--cost", "latency_ms"], "cost"),
                         (["--val-limit", "3"], "val_items"), (["--metric", "macro_f1"], "metric")):
        assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s1), "--population", "4",
                     "--generations", "2", *other]) == 2
        err = capsys.readouterr().err
        assert f"this search was started with other settings ({named}" in err and "); use a new" in err
    assert {p.name: p.read_text() for p in s1.iterdir()} == before


@pytest.mark.slow
def test_a_population_larger_than_the_space_is_refused(searched, capsys):
    tmp, run, _, _ = searched
    for algorithm, flag in (("nsga2", "--population"), ("random", "--batch")):
        big = tmp / "big"
        assert main(["search", algorithm, "--supernet", str(run), "--out", str(big), flag, "217"]) == 2
        assert capsys.readouterr().err == (f"audionas: error: {flag} 217: the supernet's space 'kws-tiny' "
                                           f"holds only 216 architectures; expected at most 216\n")
        assert not (tmp / "big").exists()


def _edited_supernet(run, copy, edit):
    """A copy of supernet `run` at `copy` whose last.pt is `edit(checkpoint dict)`; returns (last.pt, ck)."""
    import shutil

    import torch

    from audionas.utils.checkpoint import save_atomic

    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.pt"
    ck = torch.load(last, weights_only=True)
    save_atomic(edit(dict(ck)), last)
    return last, ck


@pytest.mark.slow
def test_a_supernet_checkpoint_without_its_space_is_refused(searched, capsys):
    tmp, run, _, _ = searched
    edited = tmp / "edited"
    last, _ = _edited_supernet(run, edited, lambda ck: {k: v for k, v in ck.items() if k != "space"})
    assert main(["search", "nsga2", "--supernet", str(edited), "--out", str(tmp / "s_edited")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {last}: not a supernet checkpoint (expected its "
                                       f"'space' mapping and 'step'; replaced or edited?)\n")


@pytest.mark.slow
def test_recalibrate_search(searched, monkeypatch):
    tmp, run, _, _ = searched
    made = []  # QA: its one pass over calibration batches claimed a cache for the whole training split
    monkeypatch.setattr("audionas.data.clips.make_wave_cache", lambda *a: made.append(a))
    import audionas.nas.oneshot.search as oneshot_search

    calibrated = []  # on training items: never the val items the candidates are scored on
    real = oneshot_search.calibration_batches
    monkeypatch.setattr(oneshot_search, "calibration_batches",
                        lambda ds, *a: calibrated.append(ds.train) or real(ds, *a))
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp / "rc"), "--population", "2",
                 "--generations", "1", "--bn", "recalibrate", "--calib-batches", "2",
                 "--calib-batch-size", "4"]) == 0
    assert json.loads((tmp / "rc" / "pareto.json").read_text())["bn"] == "recalibrate"
    assert made == [] and calibrated == [True]


@pytest.mark.slow
def test_a_continued_recalibrate_search_keeps_its_calibration_batch_size(searched, capsys):
    # Before, more --generations with another --calib-batch-size was accepted: one history, two scorings.
    tmp, run, _, _ = searched
    args = ["search", "nsga2", "--supernet", str(run), "--out", str(tmp / "rc4"), "--population", "2",
            "--bn", "recalibrate", "--calib-batches", "1"]
    assert main([*args, "--generations", "1", "--calib-batch-size", "4"]) == 0
    capsys.readouterr()
    for other in ("8", "64"):  # 64, the default, is not recorded: the search must still see the change
        assert main([*args, "--generations", "2", "--calib-batch-size", other]) == 2
        assert "started with other settings (calib_batch_size" in capsys.readouterr().err
    assert main([*args, "--generations", "2", "--calib-batch-size", "4"]) == 0
    searched_on = json.loads((tmp / "rc4" / "search.json").read_text())["data"]
    assert searched_on == {"kind": "speech_commands", "root": str(speech_root(run))}


def speech_root(run):
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())["data"]["root"]


@pytest.mark.slow
def test_search_and_plot_outputs_inside_the_dataset_are_refused(searched, capsys):
    # Before, `search nsga2 --out DATA/s` and `plot-search --out DATA/fig` wrote folders every later run on
    # the dataset read as classes without audio.
    import shutil
    from pathlib import Path

    tmp, run, s1, _ = searched
    root = Path(speech_root(run))
    old = tmp / "before_data_was_recorded"  # plot-search finds its data through the supernet's config
    shutil.copytree(s1, old)
    info = json.loads((old / "search.json").read_text())
    del info["data"]
    (old / "search.json").write_text(json.dumps(info))
    for cmd in (["search", "nsga2", "--supernet", str(run), "--population", "2", "--generations", "1"],
                ["search", "random", "--supernet", str(run), "--evaluations", "2", "--batch", "2"],
                ["plot-search", str(s1)], ["plot-search", str(old)]):
        assert main([*cmd, "--out", str(root / "out")]) == 2
        assert capsys.readouterr().err == (f"audionas: error: --out {root / 'out'}: inside the dataset "
                                           f"folder {root}, where it would be read as a class folder; use an "
                                           f"--out outside it\n")
        assert not (root / "out").exists()


@pytest.mark.slow
def test_plot_search_names_two_searches_of_one_folder_name_apart(searched, capsys):
    # Before, A/s and B/s were both "nsga2 (s)": one hypervolume was dropped from the printout and the JSON.
    import shutil

    tmp, _, s1, _ = searched
    for parent in ("A", "B"):
        shutil.copytree(s1, tmp / parent / "s")
    assert main(["plot-search", str(tmp / "A" / "s"), str(tmp / "B" / "s"), "--out", str(tmp / "AB"),
                 "--json"]) == 0
    hv = json.loads(capsys.readouterr().out)["hypervolume"]
    assert sorted(hv) == [f"nsga2 ({tmp / 'A' / 's'})", f"nsga2 ({tmp / 'B' / 's'})"]


@pytest.mark.slow
def test_plot_search(searched, capsys):
    tmp, _, s1, s2 = searched
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # finished searches: no "unfinished" warning
        assert main(["plot-search", str(s1), str(s2), "--out", str(tmp / "plots")]) == 0
    for ext in ("png", "svg"):
        assert (tmp / "plots" / f"figure4.{ext}").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "nsga2 (nsga)" in out and "random (rand)" in out and "hypervolume" in out


@pytest.mark.slow
def test_resolve_chromosome(searched):
    _, _, s1, _ = searched
    spec = resolve_chromosome(f"{s1}/pareto.json#0")
    pareto = json.loads((s1 / "pareto.json").read_text())
    assert spec["model"] == "mbnet" and spec["model_args"]["arch"] == pareto["front"][0]["arch"]
    assert spec["model_args"]["time_axis"] == "h" and spec["preset_hint"] == "kws-res15-cpu"
    model = create_model(spec["model"], num_classes=12, input_shape=(1, 101, 40), **spec["model_args"])
    assert model.arch == spec["model_args"]["arch"]
    assert resolve_chromosome(f"{s1}#0") == spec  # the folder works too
    for bad, msg in [(f"{s1}/pareto.json", "expected SEARCH"), (f"{s1}/pareto.json#x", "not an integer"),
                     (f"{s1}/pareto.json#99", "outside"), (f"{s1}/nope.json#0", "not found"),
                     (f"{s1}/search.json#0", "not a pareto.json"),
                     # before (QA): int() read '#1_0' as 10 and '# 0' as 0
                     (f"{s1}/pareto.json#0_0", "'#0_0' is not an integer index"),
                     (f"{s1}/pareto.json# 0", "'# 0' is not an integer index")]:
        with pytest.raises(UserError, match=msg):
            resolve_chromosome(bad)


@pytest.mark.slow
def test_a_chromosome_trained_on_other_inputs_than_its_search_warns(searched, tmp_path):
    """Before: a KWS front member trained with an ASC preset gave no sign that its scores do not apply."""
    import warnings

    from audionas.cli import build_parser
    from audionas.commands.train import resolve_config

    _, _, s1, _ = searched

    def resolve(preset):
        argv = ["train", "--preset", preset, "--chromosome", f"{s1}#0", "--out", str(tmp_path / preset)]
        return resolve_config(build_parser().parse_args(argv))

    with pytest.warns(UserWarning) as rec:
        cfg, _ = resolve("asc-cpu")
    assert cfg.model == "mbnet" and [str(w.message) for w in rec] == [
        f"--chromosome {s1}#0: searched on kws inputs [1, 101, 40], but this run's data.feature "
        f"'dcase-logmel' gives [1, 40, 501]; its space's retraining preset is 'kws-res15-cpu'"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve("kws-res15-cpu")


def test_bad_supernet_run_is_exit_2(tmp_path):
    assert main(["search", "nsga2", "--supernet", str(tmp_path), "--out", str(tmp_path / "s")]) == 2


@pytest.mark.slow
def test_an_unfinished_supernet_is_refused_before_any_output(searched, capsys):
    """Before: a supernet killed in its first epoch failed with "checkpoints/last.pt: checkpoint not found",
    and one killed after epoch 1 of 3 was searched as if trained."""
    import re
    import shutil

    import torch

    tmp, run, _, _ = searched
    part = tmp / "unfinished"
    shutil.copytree(run, part)
    last = part / "checkpoints" / "last.pt"
    ck = torch.load(last, weights_only=True)
    assert ck["step"] == ck["steps_per_epoch"]  # 1 of 1 epochs
    config = part / "config.yaml"
    config.write_text(re.sub(r"(?m)^epochs: 1$", "epochs: 3", config.read_text()))
    # a run of 3 epochs stopped after 1: its checkpoint records the 3 too (else config.yaml is an edit)
    torch.save({**ck, "config": {**ck["config"], "epochs": 3}}, last)
    out = tmp / "s_unfinished"
    for algorithm in ("nsga2", "random"):
        assert main(["search", algorithm, "--supernet", str(part), "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"audionas: error: {part}: the supernet is unfinished (1 of 3 "
                                           f"epochs done); finish it first: `audionas search supernet --out "
                                           f"{part}` resumes it\n")
    last.unlink()
    assert main(["search", "nsga2", "--supernet", str(part), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {part}: the supernet run has no checkpoint yet "
                                       f"(stopped in its first epoch); finish it first: `audionas search "
                                       f"supernet --out {part}` resumes it\n")
    assert not out.exists()
    # one step short of the last: still unfinished
    from audionas.utils.checkpoint import save_atomic

    config.write_text(re.sub(r"(?m)^epochs: 3$", "epochs: 1", config.read_text()))
    save_atomic({**ck, "step": ck["steps_per_epoch"] - 1}, last)
    assert main(["search", "nsga2", "--supernet", str(part), "--out", str(out)]) == 2
    assert "the supernet is unfinished (0 of 1 epochs done)" in capsys.readouterr().err  # was "epoch 0 of 1"
    assert not out.exists()


@pytest.mark.slow
def test_paper_f1_on_data_without_microphone_channels_is_refused(searched, capsys):
    tmp, run, _, _ = searched
    out = tmp / "s_paper_f1"
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(out), "--metric", "paper_f1",
                 "--population", "4", "--generations", "1"]) == 2
    err = capsys.readouterr().err
    assert "--metric paper_f1: the validation items of " in err and "carry no microphone channel" in err
    assert not out.exists()


@pytest.mark.slow
def test_data_of_other_classes_than_the_supernets_is_refused(searched, capsys):
    tmp, run, _, _ = searched
    other = tmp / "other_classes"
    # as if trained on a folder of other names
    _, ck = _edited_supernet(run, other, lambda ck: {**ck, "classes": ck["classes"][::-1]})
    out = tmp / "s_other_classes"
    assert main(["search", "nsga2", "--supernet", str(other), "--out", str(out), "--population", "4",
                 "--generations", "1"]) == 2
    err = capsys.readouterr().err
    assert f"differ from the supernet's {ck['classes'][::-1]} ({other})" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_supernet_moved_without_its_data_is_told_to_name_it_with_data(searched, capsys):
    # Before: "DIR: dataset folder not found", not saying whose data.root it is nor what to do.
    import shutil

    import yaml

    tmp, run, _, _ = searched
    moved = tmp / "moved_supernet"
    shutil.copytree(run, moved)
    cfg = yaml.safe_load((moved / "config.yaml").read_text())
    data, cfg["data"]["root"] = cfg["data"]["root"], str(tmp / "gone")
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp / "s_moved"
    assert main(["search", "random", "--supernet", str(moved), "--out", str(out), "--evaluations", "2"]) == 2
    said = f"{tmp / 'gone'}: no such folder; it is the data.root of {moved}: pass the dataset's new place"
    assert capsys.readouterr().err == f"audionas: error: {said} with --data DIR\n"
    assert main(["search", "random", "--supernet", str(moved), "--out", str(out), "--evaluations", "2",
                 "--data", data]) == 0


@pytest.mark.slow
def test_more_calibration_batches_than_the_training_split_holds_warns_and_records_those_used(searched):
    tmp, run, _, _ = searched
    out = tmp / "s_calib"
    with pytest.warns(UserWarning, match=r"--calib-batches 1000: the training split of .* holds \d+ items, "
                                         r"\d+ batch\(es\) of 64; recalibrating on those"):
        assert main(["search", "random", "--supernet", str(run), "--out", str(out), "--evaluations", "2",
                     "--bn", "recalibrate", "--calib-batches", "1000", "--calib-batch-size", "64"]) == 0
    assert 1 <= json.loads((out / "search.json").read_text())["calib_batches"] < 1000


@pytest.mark.parametrize("kind", ["DARTS search", "training"])
def test_a_darts_or_training_run_as_supernet_names_what_it_is(tmp_path, kind, capsys):
    from audionas.config import dump_yaml
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.train.config import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    cfg = DartsSearchConfig() if kind == "DARTS search" else TrainConfig()
    (run / "config.yaml").write_text(dump_yaml(cfg))
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"{run}: a {kind} run, not a supernet run;" in err and "audionas search supernet` first" in err
    assert "unknown" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_params_as_the_cost_objective(searched, capsys):
    tmp, run, s1, _ = searched
    s3 = tmp / "params"
    args = ["search", "nsga2", "--supernet", str(run), "--out", str(s3), "--population", "4",
            "--generations", "2", "--cost", "params"]
    assert main(args) == 0
    pareto = json.loads((s3 / "pareto.json").read_text())
    front = pareto["front"]
    assert pareto["cost"] == "params" and [m["params"] for m in front] == sorted(m["params"] for m in front)
    from audionas.nas.oneshot.fairnas import load_supernet
    from audionas.nas.oneshot.space import load_space

    space = load_space(load_supernet(run)[2]["space"])  # the plot normalises by the params range, not MACs'
    assert json.loads((s3 / "search.json").read_text())["cost_range"] == list(space.cost_range("params"))
    hist = [json.loads(x) for x in (s3 / "history.jsonl").read_text().splitlines()]
    for a in front:  # no candidate is at least as good in both score and params and better in one
        assert not any(h["score"] >= a["score"] and h["params"] <= a["params"]
                       and (h["score"], h["params"]) != (a["score"], a["params"]) for h in hist)
    before = (s3 / "search.json").read_text()
    assert main(args[:-2] + ["--cost", "macs"]) == 2  # the same folder with another objective...
    assert (s3 / "search.json").read_text() == before  # ...is refused and leaves it as it was
    capsys.readouterr()
    assert main(["plot-search", str(s3), "--out", str(tmp / "plot-params")]) == 0
    assert "and (params - " in capsys.readouterr().out
    assert main(["plot-search", str(s1), str(s3), "--out", str(tmp / "plot-mixed")]) == 2


@pytest.mark.slow
def test_latency_as_the_cost_objective_from_the_supernets_lookup_table(searched, capsys):
    # REFERENCE.md section 4: latency as an objective is a repeated user request. Each candidate's latency_ms
    # is the supernet's table summed over its blocks; the table is measured once and shared by every search.
    from audionas.nas.oneshot.latency import LATENCY_FILE, chromosome_latency, latency_range

    tmp, run, _, _ = searched
    lat, rnd = tmp / "latency", tmp / "latency-random"
    common = ["--supernet", str(run), "--cost", "latency_ms", "--val-limit", "8"]
    small = ["--population", "4", "--generations", "2"]
    assert main(["search", "nsga2", *common, "--out", str(lat), *small]) == 0
    table = json.loads((run / LATENCY_FILE).read_text())
    assert [len(r) for r in table["blocks"]] == [6, 6, 6]  # the space: 3 layers of 6 choices
    assert table["threads"] == 1 and table["fixed"] > 0 and min(min(r) for r in table["blocks"]) > 0
    hist = [json.loads(x) for x in (lat / "history.jsonl").read_text().splitlines()]
    assert hist and all(h["latency_ms"] == chromosome_latency(table, h["chromosome"]) for h in hist)
    pareto = json.loads((lat / "pareto.json").read_text())
    assert pareto["cost"] == "latency_ms" and all("latency_ms" in m for m in pareto["front"])
    meta = json.loads((lat / "search.json").read_text())
    assert tuple(meta["cost_range"]) == latency_range(table) and "latency" in meta["objectives"][1]
    before = (run / LATENCY_FILE).read_bytes()
    assert main(["search", "random", *common, "--out", str(rnd), "--evaluations", "6", "--batch", "4"]) == 0
    assert (run / LATENCY_FILE).read_bytes() == before  # the same table: the two fronts are comparable
    capsys.readouterr()
    assert main(["plot-search", str(lat), str(rnd), "--out", str(tmp / "plot-latency")]) == 0
    assert "and (latency_ms - " in capsys.readouterr().out
    table["fixed"] += 1.0  # remeasured: continuing the search would mix two tables' latencies in one history
    (run / LATENCY_FILE).write_text(json.dumps(table))
    assert main(["search", "nsga2", *common, "--out", str(lat), *small[:-1], "3"]) == 2
    err = capsys.readouterr().err
    assert "state.json: the supernet's latency_cpu.json changed since this search started" in err
    assert main(["search", "nsga2", "--supernet", str(run), "--cost", "macs", "--val-limit", "8", "--out",
                 str(lat), *small]) == 2  # only the cost was changed: only the cost is named
    assert "this search was started with other settings (cost); use a new" in capsys.readouterr().err
    table["blocks"] = [[1e308] * len(r) for r in table["blocks"]]  # finite entries, an infinite sum
    (run / LATENCY_FILE).write_text(json.dumps(table))
    assert main(["search", "nsga2", *common, "--out", str(tmp / "latency-inf"), *small]) == 2
    assert "not the latency table of space" in capsys.readouterr().err
    assert not (tmp / "latency-inf" / "history.jsonl").exists()
    (run / LATENCY_FILE).write_text('{"fixed": ')
    assert main(["search", "nsga2", *common, "--out", str(tmp / "latency-cut"), *small]) == 2
    assert "delete it to measure again" in capsys.readouterr().err
    table["blocks"] = table["blocks"][:2]  # a table of another space (or a hand edit) is refused
    (run / LATENCY_FILE).write_text(json.dumps(table))
    assert main(["search", "nsga2", *common, "--out", str(tmp / "latency-bad"), "--population", "4",
                 "--generations", "1"]) == 2
    assert f"{run / LATENCY_FILE}: not the latency table of space 'kws-tiny'" in capsys.readouterr().err
    (run / LATENCY_FILE).unlink()


@pytest.mark.parametrize("algorithm,data,needle", [
    ("random", {"population": 0}, r"population \(--batch\): "),
    ("nsga2", {"population": 0}, r"population \(--population\): "),
    ("nsga2", {"seed": -1}, r"seed \(--seed\)"),
])
def test_search_flags_are_named_as_typed(algorithm, data, needle):
    from audionas.config import from_dict
    from audionas.nas.oneshot.config import SearchConfig

    with pytest.raises(UserError, match=needle):
        from_dict(SearchConfig, {"algorithm": algorithm, **data})


def test_pareto_json_is_the_front_of_the_history_with_each_candidates_own_numbers(searched):
    from audionas.nas.oneshot.space import space_from_dict

    _, _, s1, s2 = searched
    for s in (s1, s2):
        hist = [json.loads(x) for x in (s / "history.jsonl").read_text().splitlines()]
        pareto = json.loads((s / "pareto.json").read_text())
        space = space_from_dict(pareto["space"])
        for h in hist:  # exact costs of the candidate itself, from the space's table
            assert [h["params"], h["macs"]] == list(space.cost(h["chromosome"]))
            assert h["arch"] == " ".join(space.decode(h["chromosome"])) and 0 <= h["score"] <= 1
        first = {}
        for h in hist:
            first.setdefault(tuple(h["chromosome"]), h)
        for m in pareto["front"]:
            h = first[tuple(m["chromosome"])]
            assert [m["score"], m["macs"], m["params"]] == [h["score"], h["macs"], h["params"]]
            assert m["arch"] == space.decode(m["chromosome"])
        F = {c: (-h["score"], h["macs"]) for c, h in first.items()}
        nd = {c for c, f in F.items()
              if not any(g[0] <= f[0] and g[1] <= f[1] and g != f for g in F.values())}
        assert {tuple(m["chromosome"]) for m in pareto["front"]} == nd
        meta = json.loads((s / "search.json").read_text())
        assert meta["front_size"] == len(pareto["front"]) and meta["evaluations"] == len(hist)
        assert meta["cost_range"] == list(space.cost_range("macs"))


@pytest.mark.slow
def test_plot_search_checks_the_data_the_search_recorded_before_its_supernets(searched, capsys):
    # search.json's `data` (a search run with --data on another dataset) wins over the supernet's data.root;
    # an older search (no `data`) whose supernet config.yaml is unreadable is plotted without the check.
    import shutil

    tmp, _, s1, _ = searched
    other = tmp / "other_words"
    (other / "yes").mkdir(parents=True)
    moved = tmp / "searched_other_data"
    shutil.copytree(s1, moved)
    info = json.loads((moved / "search.json").read_text())
    info["data"] = {"kind": "folder", "root": str(other)}
    (moved / "search.json").write_text(json.dumps(info))
    assert main(["plot-search", str(moved), "--out", str(other / "fig")]) == 2
    assert f"--out {other / 'fig'}: inside the dataset folder {other}" in capsys.readouterr().err
    assert not (other / "fig").exists()

    broken = tmp / "broken_supernet"
    broken.mkdir()
    (broken / "config.yaml").write_text("data: [unclosed\n")
    old = tmp / "old_search_of_a_broken_supernet"
    shutil.copytree(s1, old)
    del info["data"]
    info["supernet"] = str(broken)
    (old / "search.json").write_text(json.dumps(info))
    assert main(["plot-search", str(old), "--out", str(tmp / "old_fig")]) == 0


@pytest.mark.slow
def test_the_calibration_batch_size_is_recorded_only_when_it_scores(searched, speech_commands_root, capsys,
                                                                     monkeypatch):
    # --calib-batch-size matters with --bn recalibrate only, and its default is not recorded (searches from
    # before it was recorded continue); search.json records the data as an absolute path.
    tmp, run, _, _ = searched
    monkeypatch.chdir(speech_commands_root.parent)
    args = ["search", "nsga2", "--supernet", str(run), "--population", "2", "--calib-batches", "1",
            "--data", speech_commands_root.name]
    none = tmp / "bn_none"
    assert main([*args, "--out", str(none), "--generations", "1", "--calib-batch-size", "4"]) == 0
    assert main([*args, "--out", str(none), "--generations", "2"]) == 0  # unused: another size is fine
    searched_on = json.loads((none / "search.json").read_text())["data"]
    assert searched_on == {"kind": "speech_commands", "root": str(speech_commands_root.resolve())}
    rc = tmp / "rc_default"
    assert main([*args, "--out", str(rc), "--generations", "1", "--bn", "recalibrate"]) == 0
    state = json.loads((rc / "state.json").read_text())
    state["meta"].pop("calib_batch_size", None)  # as a search from before the size was recorded
    (rc / "state.json").write_text(json.dumps(state))
    assert main([*args, "--out", str(rc), "--generations", "2", "--bn", "recalibrate"]) == 0
    capsys.readouterr()


def test_the_search_defaults_are_the_papers_budget_and_the_supernet_preset_its_setting():
    # REFERENCE.md section 3 / Algorithm 2: P=64, I=70, random search with the same 64 x 70 = 4480
    # candidates; the supernet: FairNAS, 10 epochs, batch 192, on the 70/30 split of the development set.
    from audionas.cli import build_parser
    from audionas.commands.search_oneshot import search_config
    from audionas.config import load_config
    from audionas.nas.oneshot.config import SearchConfig, SupernetConfig

    c = SearchConfig()
    assert (c.population, c.generations, c.evaluations) == (64, 70, 4480)
    parse = build_parser().parse_args
    n = search_config(parse(["search", "nsga2", "--supernet", "s", "--out", "o"]), "nsga2")
    r = search_config(parse(["search", "random", "--supernet", "s", "--out", "o"]), "random")
    assert (n.population, n.generations, r.population, r.evaluations) == (64, 70, 64, 4480)
    for name in ("asc-nsga2", "asc-random"):  # the presets named after the paper's runs say the same
        p = search_config(parse(["search", name[4:], "--supernet", "s", "--out", "o", "--preset", name]),
                          name[4:])
        assert (p.population, p.generations if name == "asc-nsga2" else p.evaluations) == (
            (64, 70) if name == "asc-nsga2" else (64, 4480))
    f = load_config(SupernetConfig, "asc-fairnas")
    assert (f.epochs, f.data.batch_size, f.data.search_split, f.sampler, f.space) == (10, 192, True, "fair",
                                                                                      "asc")


def _config(*argv: str, out="o"):
    from audionas.cli import _parse, build_parser
    from audionas.commands.search_oneshot import search_config

    args = _parse(build_parser(), ["search", *argv, "--supernet", "s", "--out", str(out)])
    return search_config(args, argv[0])


def test_a_search_preset_then_the_flags_given_then_key_value_overrides():
    """Before: the search's settings were flags only (no preset, no key=value), unlike every other command."""
    cpu = _config("nsga2", "--preset", "asc-nsga2-cpu")
    assert (cpu.population, cpu.generations, cpu.val_limit, cpu.metric) == (8, 3, 256, "auto")
    mixed = _config("nsga2", "--preset", "asc-nsga2-cpu", "--population", "10", "generations=5",
                    "--no-channels-last", "bn=recalibrate")
    assert (mixed.population, mixed.generations, mixed.val_limit, mixed.channels_last, mixed.bn) == (
        10, 5, 256, False, "recalibrate")
    rand = _config("random", "--preset", "asc-random-cpu", "--batch", "4")
    assert (rand.algorithm, rand.population, rand.evaluations, rand.val_limit) == ("random", 4, 24, 256)
    assert _config("nsga2", "--population", "8", "population=8").population == 8  # the flag's own value


@pytest.mark.parametrize("argv, message", [
    (["nsga2", "--preset", "asc-random"], "--preset asc-random: a preset of the random search "
                                          "(`audionas search random`), not of nsga2"),
    (["random", "--preset", "asc-nsga2-cpu"], "a preset of the nsga2 search"),
    (["nsga2", "--preset", "asc-fairnas"], "--preset asc-fairnas: a supernet run preset (`audionas search "
                                           "supernet`), not a one-shot search one"),
    (["nsga2", "--population", "8", "population=9"], "override 'population=9': population is set by "
                                                     "--population too"),
    (["random", "--batch", "8", "population=9"], "population is set by --batch too"),
    (["nsga2", "algorithm=random"], "algorithm is set by `search nsga2` too"),
    (["nsga2", "populaton=3"], "config field 'populaton': unknown; did you mean population?"),
    (["nsga2", "population=1"], "population (--population): expected at least 2, got 1"),
    (["nsga2", "val_limit=-1"], r"val_limit (--val-limit): expected an integer >= 0 (0 = all), got -1"),
    (["nsga2", "calib_batches=0"], "calib_batches (--calib-batches): expected a positive integer, got 0"),
    (["nsga2", "cost=flops"], "cost (--cost): expected macs, params or latency_ms, got 'flops'"),
    (["random", "generations=4"], "override 'generations=4': a random search has no use for generations"),
    (["nsga2", "evaluations=9"], "a nsga2 search has no use for evaluations (population x generations"),
])
def test_search_presets_and_overrides_refuse_what_cannot_be_meant(argv, message):
    with pytest.raises(UserError) as e:
        _config(*argv)
    assert message in str(e.value)


@pytest.mark.parametrize("algorithm, flag", [("nsga2", "--population"), ("random", "--batch")])
@pytest.mark.parametrize("value", ["0", "1"])
def test_a_population_under_two_is_refused_by_its_flag_as_by_the_config(algorithm, flag, value, tmp_path,
                                                                         capsys):
    # Before (QA): the flag took 1 ("an integer >= 1"), then the config refused it ("expected at least 2").
    with pytest.raises(SystemExit) as e:
        main(["search", algorithm, "--supernet", str(tmp_path), "--out", str(tmp_path / "o"), flag, value])
    assert e.value.code == 2
    assert capsys.readouterr().err == (f"audionas search {algorithm}: error: argument {flag}: expected an "
                                       f"integer >= 2, got '{value}' (see audionas search {algorithm} "
                                       f"--help)\n")


def test_a_search_preset_given_to_train_names_its_command(tmp_path, capsys):
    assert main(["train", "--preset", "asc-nsga2", "--out", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err.strip() == (
        "audionas: error: --preset asc-nsga2: a one-shot search preset (`audionas search nsga2|random`), not "
        "a training run one")
    assert not (tmp_path / "t").exists()


def test_a_search_resumed_without_its_preset_keeps_the_settings_it_started_with(tmp_path):
    # Before (review): `search nsga2 --supernet S --out X` after `--preset asc-nsga2-cpu` fell back to the
    # defaults (64 x 70): a false "4,480 candidates" warning, then "started with other settings".
    out = tmp_path / "s"
    out.mkdir()
    (out / "state.json").write_text("{}")
    (out / "search.json").write_text(json.dumps({"algorithm": "nsga2", "config": {
        "algorithm": "nsga2", "population": 8, "generations": 3, "val_limit": 256, "bn": "recalibrate"}}))
    again = _config("nsga2", out=out)
    assert (again.population, again.generations, again.val_limit, again.bn) == (8, 3, 256, "recalibrate")
    longer = _config("nsga2", "--generations", "5", "val_limit=128", out=out)  # extends it: flags still win
    assert (longer.population, longer.generations, longer.val_limit) == (8, 5, 128)
    assert _config("nsga2", "--preset", "asc-nsga2", out=out).population == 64  # a preset given wins
    (out / "state.json").unlink()  # no search to resume: the defaults
    assert _config("nsga2", out=out).population == 64


def test_each_search_command_names_its_own_presets():
    from audionas.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["search"]
    helps = {name: " ".join(p.format_help().split()) for name, p in
             sub._subparsers._group_actions[0].choices.items() if name in ("nsga2", "random")}
    assert "search preset (asc-nsga2, asc-nsga2-cpu)" in helps["nsga2"]
    assert "search preset (asc-random, asc-random-cpu)" in helps["random"]
    assert "e.g. evaluations=24 population=8" in helps["random"]


def test_a_search_scoring_on_few_validation_items_says_its_scores_are_coarse(searched, tmp_path):
    # Before (own-sounds QA): NSGA-II ranked candidates on 22 validation clips (steps of 1/22) without a word.
    _, run, _, _ = searched
    said = (r"^8 validation items score the candidates: a score moves in steps of about 1/8, so many tie; "
            r"more of them \(--val-limit 0")
    with pytest.warns(UserWarning, match=said):
        assert main(["search", "random", "--supernet", str(run), "--out", str(tmp_path / "r"),
                     "--evaluations", "2", "--batch", "2", "--val-limit", "8"]) == 0


def test_a_space_file_beside_a_preset_is_found_from_anywhere_and_saved_as_its_space(speech_commands_root,
                                                                                    tmp_path, monkeypatch,
                                                                                    capsys):
    from audionas import config

    # Before (API QA): a preset's relative `space:` was read from the working folder, and the run saved only
    # that relative name, so a resume from another folder said "myspace.yaml: file not found".
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tiny.yaml").write_text(TINY_YAML)
    (mine / "sn.yaml").write_text("base: kws-fairnas-cpu\nspace: tiny.yaml\nepochs: 1\n"
                                  "max_steps_per_epoch: 2\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = tmp_path / "run"
    args = ["search", "supernet", "--preset", str(mine / "sn.yaml"), "--data", str(speech_commands_root),
            "--out", str(run)]
    assert main(args) == 0
    assert config.read_yaml(run / "config.yaml")["space"]["name"] == "kws-tiny"
    monkeypatch.chdir(tmp_path)
    assert main(["search", "supernet", "--out", str(run)]) == 0  # finished: nothing to do, from anywhere
    (mine / "tiny.yaml").write_text(TINY_YAML.replace("num_classes: 12", "num_classes: 11"))
    capsys.readouterr()
    assert main(args) == 2  # before: "does not fit this run: ... size mismatch" from the checkpoint
    err = capsys.readouterr().err
    assert "holds a supernet run with a different config (field 'space.num_classes')" in err


def test_a_search_resumes_and_extends_with_its_supernet_moved_but_not_with_another(searched, capsys):
    # Before (QA): state.json kept the supernet's path as its identity: after a move, "started with other
    # settings (supernet OLD, now NEW)", and the search could be neither finished nor extended.
    import shutil

    import torch

    tmp, run, s1, _ = searched
    moved, here, there = tmp / "supernet_moved", tmp / "ext_same", tmp / "ext_moved"
    shutil.copytree(run, moved)
    for out in (here, there):
        shutil.copytree(s1, out)
    for supernet, out in ((run, here), (moved, there)):
        assert main(["search", "nsga2", "--supernet", str(supernet), "--out", str(out), "--generations",
                     "3"]) == 0
    assert (there / "history.jsonl").read_text() == (here / "history.jsonl").read_text()
    assert len((there / "history.jsonl").read_text().splitlines()) == 12
    ck = torch.load(moved / "checkpoints" / "last.pt", weights_only=True)
    next(iter(ck["model"].values())).add_(1.0)  # another supernet of the same space and step
    torch.save(ck, moved / "checkpoints" / "last.pt")
    capsys.readouterr()
    assert main(["search", "nsga2", "--supernet", str(moved), "--out", str(there), "--generations", "4"]) == 2
    err = capsys.readouterr().err
    assert "this search was started with other settings (supernet_weights " in err  # its path is the same


def test_a_bad_value_in_search_json_is_named_as_the_files_not_a_flags(searched, capsys):
    # Before (QA): "population (--population): expected a positive integer" for a flag never given.
    import shutil

    tmp, run, s1, _ = searched
    s = tmp / "edited_config"
    shutil.copytree(s1, s)
    meta = json.loads((s / "search.json").read_text())
    meta["config"]["population"] = 0
    (s / "search.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(s), "--generations", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"audionas: error: {s / 'search.json'}: its config: population")
    assert err.count("\n") == 1


def test_a_supernet_whose_config_yaml_was_edited_is_named_so_not_called_unfinished(searched, capsys):
    # Before (QA): epochs 1 -> 2 in config.yaml: "the supernet is unfinished (1 of 2 epochs done); finish it
    # first", and that command was then refused for the edit.
    import shutil

    tmp, run, _, _ = searched
    edited = tmp / "edited_supernet"
    shutil.copytree(run, edited)
    text = (edited / "config.yaml").read_text()
    assert "\nepochs: 1\n" in text
    (edited / "config.yaml").write_text(text.replace("\nepochs: 1\n", "\nepochs: 2\n"))
    capsys.readouterr()
    assert main(["search", "random", "--supernet", str(edited), "--out", str(tmp / "s_edited"),
                 "--evaluations", "2"]) == 2
    assert capsys.readouterr().err == (
        f"audionas: error: {edited / 'config.yaml'}: field 'epochs' differs from the config the supernet run "
        f"was trained with ({edited / 'checkpoints' / 'last.pt'}); undo the edit\n")


def test_a_population_of_exactly_the_space_size_is_taken(tmp_path):
    # "expected at most 216" must hold at 216 (the CLI test asks for 217 only)
    space = space_from_dict(TINY_SPACE)
    assert space.size == 216
    for algorithm, flag in (("nsga2", "--population"), ("random", "--batch")):
        cfg = SearchConfig(algorithm=algorithm, population=216, generations=2, evaluations=432)
        _, generations, budget, _, _ = _algorithm(cfg, space, tmp_path)
        assert (generations, budget) == (2, 432)
        with pytest.raises(UserError, match=rf"^{flag} 217: .* holds only 216 architectures; expected at "):
            _algorithm(SearchConfig(algorithm=algorithm, population=217), space, tmp_path)


def test_a_random_search_runs_the_generations_its_evaluations_need(tmp_path):
    # a last, partial batch is a generation too
    space = space_from_dict(TINY_SPACE)
    cfg = SearchConfig(algorithm="random", population=4, evaluations=6)
    _, generations, budget, asked, _ = _algorithm(cfg, space, tmp_path)
    assert (generations, budget, asked) == (2, 6, "--evaluations 6")


def test_an_unfinished_nsga2_search_refuses_even_one_generation_fewer(tmp_path):
    # the CLI test asks for 3 of 5 generations; 4 of 5 would shrink the budget as silently
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "search.json").write_text(json.dumps({"algorithm": "nsga2", "generations": 5, "config": {}}))
    space = space_from_dict(TINY_SPACE)
    for g in (5, 6):
        assert _algorithm(SearchConfig(population=4, generations=g), space, tmp_path)[1] == g
    with pytest.raises(UserError, match=r"^--generations 4: .* is an unfinished NSGA-II search of 5 gen"):
        _algorithm(SearchConfig(population=4, generations=4), space, tmp_path)


def test_the_auto_metric_is_paper_f1_on_scene_data_and_accuracy_on_keywords():
    from audionas.nas.oneshot.search import search_metric

    channels = np.zeros(4, dtype=np.int64)
    assert search_metric("auto", "asc", channels, "d") == "paper_f1"  # DCASE: microphone channels known
    assert search_metric("auto", "asc", None, "d") == "accuracy"  # an ASC space on a folder of scenes
    assert search_metric("auto", "kws", channels, "d") == "accuracy"
    assert search_metric("macro_f1", "asc", channels, "d") == "macro_f1"
    with pytest.raises(UserError, match=r"^--metric paper_f1: the validation items of d carry no microphone"):
        search_metric("paper_f1", "asc", None, "d")
