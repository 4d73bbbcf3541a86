"""`audionas report`: the KWS paper's Table 2 from training runs; corrupt result files give one-line
UserErrors naming the file."""

import json
import re
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
import yaml

from audionas.cli import main
from audionas.errors import UserError
from audionas.report import run_row, write_report
from audionas.utils.checkpoint import save_atomic


def _run(path, **files):
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump({"model": "tc-resnet8", "model_args": {}}))
    torch.save({}, path / "final.pt")  # a finished run (its network comes from config.yaml here)
    for name, text in files.items():
        (path / name.replace("_json", ".json").replace("_jsonl", ".jsonl")).write_text(text)
    return path


@pytest.mark.parametrize("text, msg", [
    ("[1]", "test_metrics.json: expected a run's test metrics .a JSON object., got a JSON array"),
    ("{bad", "test_metrics.json: invalid JSON"),
])
def test_bad_test_metrics(tmp_path, capsys, text, msg):
    run = _run(tmp_path / "r", test_metrics_json=text)
    with pytest.raises(UserError, match=msg):
        run_row(run)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("field, value", [("accuracy", '"0.9"'), ("accuracy", "95.1"), ("accuracy", "-0.1"),
                                          ("accuracy", "true"), ("accuracy", "null"), ("test_acc", "1.5")])
def test_an_accuracy_that_is_not_a_fraction_is_refused(tmp_path, capsys, field, value):
    # Before: a string showed as '-', 95.1 was taken for a percentage and true for 100%.
    files = ({"test_metrics_json": f'{{"accuracy": {value}, "n": 10}}'} if field == "accuracy"
             else {"metrics_jsonl": f'{{"epoch": 1, "test_acc": {value}}}\n'})
    run = _run(tmp_path / "r", **files)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"field '{field}': expected an accuracy in [0, 1], got " in err
    assert not (tmp_path / "rep").exists()


def test_metrics_jsonl_cut_last_line_is_ignored_and_a_list_line_refused(tmp_path):
    ok = json.dumps({"epoch": 1, "test_acc": 0.5})
    assert run_row(_run(tmp_path / "a", metrics_jsonl=ok + '\n{"epoch": 2, "te'))["accuracy_pct"] == 50.0
    with pytest.raises(UserError, match="metrics.jsonl line 2: expected a JSON object"):
        run_row(_run(tmp_path / "b", metrics_jsonl=ok + "\n[1]\n"))


def test_hand_edited_checkpoint_shape(tmp_path):
    run = _run(tmp_path / "r")
    ck = {"classes": ["a", "b"], "input_shape": [1, 2], "model": {"w": torch.zeros(1)}}
    save_atomic(ck, run / "final.pt")
    with pytest.raises(UserError, match="final.pt: field 'input_shape'"):
        run_row(run)


@pytest.mark.parametrize("text", ["- a\n- b\n", "a: [1,\n"])
def test_report_on_a_damaged_run_config_is_one_line(tmp_path, capsys, text):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(text)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.yaml" in err and not (tmp_path / "rep").exists()


def test_darts_rows_sort_numerically_and_name_their_op_set(tmp_path):
    from audionas.models import freeze_model_args
    from audionas.nas.darts.genotype import DARTS_V1
    from audionas.report import build_table

    runs = []
    for ops in ("nas1", "nas2"):
        search = tmp_path / f"search-{ops}"
        search.mkdir()
        DARTS_V1.save(search / "genotype.json")
        (search / "config.yaml").write_text(yaml.safe_dump({"ops": ops}))
        for cells, channels in ((12, 16), (6, 36), (6, 16), (6, 8), (6, 24)):  # as text: 16 < 24 < 36 < 8
            args = freeze_model_args("darts", {"genotype": str(search / "genotype.json"), "cells": cells,
                                               "channels": channels})
            run = tmp_path / f"{ops}-{cells}-{channels}"
            run.mkdir()
            (run / "config.yaml").write_text(yaml.safe_dump({"model": "darts", "model_args": args}))
            runs.append(run)
    rows = build_table(runs)
    assert [(r["model"], r["cells"], r["channels"]) for r in rows] == [
        (f"DARTS {ops} (search-{ops.lower()}/genotype)", c, ch) for ops in ("NAS1", "NAS2")
        for c, ch in ((6, 8), (6, 16), (6, 24), (6, 36), (12, 16))]
    # a hand-written genotype given by a bare file name (before, QA: "DARTS (/g)")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "config.yaml").write_text(yaml.safe_dump({"model": "darts", "model_args": {
        "genotype": {**DARTS_V1.to_dict(), "source": "g.json"}}}))
    assert build_table([tmp_path / "own"])[0]["model"] == "DARTS (g)"


@pytest.mark.parametrize("file, says", [
    ("genotype.json", "a search run, not a trained network; retrain its cell: audionas train --genotype"),
    ("space.json", "a search run, not a trained network; search it, then retrain a front member"),
])
def test_a_search_run_is_named_as_every_other_command_names_it(tmp_path, capsys, file, says):
    """Before: "config.yaml: no 'model' field (is this a training run?)"."""
    run = tmp_path / "search"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"epochs": 2}))
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    (run / file).write_text("{}")
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"audionas: error: {run}: {says}") and err.count("\n") == 1
    assert not (tmp_path / "rep").exists()


def test_a_run_given_twice_is_refused(tmp_path, capsys):
    run = _run(tmp_path / "r")
    assert main(["report", str(run), str(tmp_path / "." / "r"), "--out", str(tmp_path / "rep")]) == 2
    assert capsys.readouterr().err.endswith("r: given twice; each run is one row\n")
    assert not (tmp_path / "rep").exists()


def test_accuracy_is_the_last_epoch_scored_on_test_and_test_metrics_json_comes_first(tmp_path):
    epochs = [{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.7}, {"epoch": 3, "train_loss": 0.1}]
    text = "".join(json.dumps(d) + "\n" for d in epochs)
    assert run_row(_run(tmp_path / "a", metrics_jsonl=text))["accuracy_pct"] == 70.0
    both = _run(tmp_path / "b", metrics_jsonl=text, test_metrics_json='{"accuracy": 0.9, "n": 10}')
    assert run_row(both)["accuracy_pct"] == 90.0 and run_row(both)["test_n"] == 10
    (tmp_path / "a" / "final.pt").unlink()  # stopped mid-training: an epoch's test_acc is no result
    with pytest.warns(UserWarning, match=r"\(unfinished\? its train command resumes it\): shown as '-'$"):
        assert write_report([tmp_path / "a"], tmp_path / "table")[0]["accuracy_pct"] is None


def test_parameters_are_counted_for_the_runs_classes(tmp_path):
    from audionas.models import create_model
    from audionas.profile import count_params

    run = _run(tmp_path / "r")
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tc-resnet8", "model_args": {},
                                                     "data": {"words": ["up", "down", "left", "right"]}}))
    # four words + _silence_ + _unknown_ = 6 classes (the head has one row per class)
    want = count_params(create_model("tc-resnet8", num_classes=6, input_shape=(1, 101, 40)))
    five = count_params(create_model("tc-resnet8", num_classes=5, input_shape=(1, 101, 40)))
    assert round(want / 1000, 1) != round(five / 1000, 1)
    assert run_row(run)["params_k"] == round(want / 1000, 1)


def test_a_folder_dataset_without_list_files_is_labelled_by_the_hash_split_it_used(tmp_path):
    # before: "mine lists", though audionas.data.folder splits a folder without list files by the hash rule
    data = tmp_path / "mine"
    data.mkdir()
    config = {"model": "tc-resnet8", "model_args": {}, "data": {"kind": "folder", "root": str(data)}}
    run = _run(tmp_path / "r", test_metrics_json='{"accuracy": 0.5, "n": 4}')
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert run_row(run)["test_set"] == "mine hash"
    (data / "testing_list.txt").write_text("")
    assert run_row(run)["test_set"] == "mine lists"
    # a run that recorded the rule it split by keeps it once the folder's list files are gone
    (data / "testing_list.txt").unlink()
    recorded = _run(tmp_path / "r2", test_metrics_json='{"accuracy": 0.5, "n": 4, "split_rule": "lists"}')
    (recorded / "config.yaml").write_text(yaml.safe_dump(config))
    assert run_row(recorded)["test_set"] == "mine lists"


def test_a_folder_run_keeps_the_split_rule_it_was_trained_with_after_list_files_appear(tmp_path):
    # before: the label was worked out from the folder as it is now, so adding list files relabelled the run
    from audionas.data.fixtures import make_folder_fixture

    data = make_folder_fixture(tmp_path / "mine")
    run = tmp_path / "r"
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(data), "--out", str(run),
            "data.kind=folder", "model=tc-resnet8", "epochs=1", "data.num_workers=0"]
    with pytest.warns(UserWarning, match="using the hash split"):
        assert main(argv) == 0
    assert run_row(run)["test_set"] == "mine hash"
    (data / "testing_list.txt").write_text("")
    assert run_row(run)["test_set"] == "mine hash"


@pytest.mark.parametrize("data, label", [
    ({"kind": "dcase2018", "root": "/c/cache", "fold": 3}, "cache fold 3 test list"),
    ({"kind": "dcase2018", "root": "/c/cache", "fold": 3, "split_seed": 2},
     "cache fold 3 test list split_seed 2"),
    # before: "cache fold 0", though single mode tests on the evaluation set
    ({"kind": "dcase2018", "root": "/c/cache", "fold": 0}, "cache evaluation set"),
    ({"root": "/d/sc", "split": "lists", "split_seed": 0}, "sc lists"),  # the default seed is not shown
    ({"root": "/d/sc", "split": "speaker_ratio", "ratios": [0.8, 0.1, 0.1], "split_seed": 5},
     "sc speaker_ratio 0.8/0.1/0.1 split_seed 5"),
])
def test_the_test_set_names_the_dcase_fold_and_a_split_seed(tmp_path, data, label):
    run = _run(tmp_path / "r", test_metrics_json='{"accuracy": 0.5}')
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tc-resnet8", "model_args": {}, "data": data}))
    assert run_row(run)["test_set"] == label


@pytest.mark.slow
def test_report_reads_the_trained_config_and_refuses_an_out_inside_the_dataset(kws_run, speech_commands_root,
                                                                               tmp_path, capsys):
    # Before, a config.yaml edited to `model: res15` gave a "Res15 237.9 K" row for a TC-ResNet8 run, and
    # --out inside the dataset wrote a folder every later run read as a class without audio.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(kws_run, run)
    text = (run / "config.yaml").read_text()
    assert text.startswith("model: tc-resnet8\n")
    (run / "config.yaml").write_text(text.replace("model: tc-resnet8\n", "model: res15\n", 1))
    row = run_row(run)
    assert row["model"] == "tc-resnet8" and row["params_k"] == run_row(kws_run)["params_k"]
    out = speech_commands_root / "table"
    assert main(["report", str(run), "--out", str(out)]) == 2
    assert f"--out {out}: inside the dataset folder" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_row_counts_the_trained_model_not_a_hand_edited_config_yaml(kws_run, tmp_path):
    # config.yaml edited to another model (and its arguments) since training: the row is still the network
    # final.pt holds (its recorded config), not one built from the edited file.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"] == "tc-resnet8"
    cfg["model"] = "res15"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    row, want = run_row(run), run_row(kws_run)
    assert row["model"] == want["model"] and row["params_k"] == want["params_k"]


def test_an_unfinished_run_counts_the_params_its_checkpoint_records(tmp_path):
    # Before: without final.pt the row counted a 12-class network from config.yaml whatever the data (a QA
    # run's 4-class folder model, 302,424 params, showed 303); a run with no checkpoint of a user's folder
    # now shows "-" instead of a guess.
    import shutil

    from audionas.data.fixtures import make_folder_fixture
    from audionas.models import create_model
    from audionas.profile import count_params
    from audionas.report import to_markdown

    data = make_folder_fixture(tmp_path / "mine", per_class=4)
    run = tmp_path / "run"
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(data), "--out", str(run),
                 "data.kind=folder", "model=tc-resnet8", "epochs=1", "data.batch_size=8", "data.split=ratio",
                 "data.ratios=[0.5,0.25,0.25]"]) == 0
    done = tmp_path / "done"  # a finished run without a test result (a user's folder with no test clips)
    shutil.copytree(run, done)
    (done / "test_metrics.json").unlink()
    lines = (done / "metrics.jsonl").read_text().splitlines(keepends=True)
    (done / "metrics.jsonl").write_text("".join(x for x in lines if "test_acc" not in x))
    # before (QA): "finished without test clips", also for a run stopped while scoring them
    said = (r"trained but not scored: no test clips, or stopped while scoring them; `audionas evaluate RUN` "
            r"scores it")
    with pytest.warns(UserWarning, match=rf"^report: no test result in {re.escape(str(done))} \({said}\): "
                                         r"shown as '-'$"):
        assert write_report([done], tmp_path / "table")[0]["accuracy_pct"] is None
    (run / "final.pt").unlink()  # as a run stopped after its first checkpoint
    assert (run / "checkpoints" / "last.pt").is_file()
    want = count_params(create_model("tc-resnet8", num_classes=3, input_shape=(1, 101, 40)))
    assert run_row(run)["params_k"] == round(want / 1000, 1)
    (run / "checkpoints" / "last.pt").unlink()
    row = run_row(run)
    cells = [c.strip() for c in to_markdown([row]).splitlines()[2].strip("|").split("|")]
    assert row["params_k"] is None and cells[4] == "-" and cells[5] == "-"  # Par. (K), MACs (M)


def test_the_dagger_of_the_papers_rows_is_explained_below_the_table():
    from audionas.report import PAPER_ROWS, paper_row, to_markdown

    paper = [paper_row(r) for r in PAPER_ROWS]
    with_paper = to_markdown(paper)
    assert "Res15 (paper†)" in with_paper
    assert with_paper.splitlines()[-1] == ("† As in the KWS paper's Table 2: a baseline's figures from its "
                                           "own paper, not measured here.")
    assert "†" not in to_markdown([r for r in paper if "†" not in r["model"]])


def test_runs_tested_on_the_same_clips_under_two_split_rules_are_comparable(tmp_path):
    # Before: runs of one folder split 0.5/0.25/0.25 and 0.25/0.5/0.25 (the same test clips) were warned
    # about as "tested on different sets"; runs now record a sha1 of their test clips, compared first.
    import warnings

    from audionas.data.fixtures import make_folder_fixture
    from audionas.report import build_table

    data = make_folder_fixture(tmp_path / "mine", per_class=8)
    runs = {}
    for ratios in ("[0.5,0.25,0.25]", "[0.25,0.5,0.25]", "[0.5,0.125,0.375]"):
        run = runs[ratios] = tmp_path / f"run{len(runs)}"
        assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(data), "--out", str(run),
                     "data.kind=folder", "model=tc-resnet8", "epochs=1", "data.batch_size=8",
                     "data.split=ratio", f"data.ratios={ratios}"]) == 0
    same, other = list(runs.values())[:2], list(runs.values())[2]
    sha1s = [json.loads((r / "test_metrics.json").read_text())["test_clips_sha1"] for r in runs.values()]
    assert sha1s[0] == sha1s[1] != sha1s[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = build_table(same)
    assert rows[0]["test_set"] != rows[1]["test_set"]  # the labels still say how each run was split
    with pytest.warns(UserWarning, match="tested on different sets"):
        build_table([*same, other])
    (same[1] / "test_metrics.json").write_text(json.dumps(  # an older run, without the sha1: labels decide
        {k: v for k, v in json.loads((same[1] / "test_metrics.json").read_text()).items()
         if k != "test_clips_sha1"}))
    with pytest.warns(UserWarning, match="tested on different sets"):
        build_table(same)
    # Before (review): one label (a copy of the folder, the same split) hid different recorded clips.
    copy = tmp_path / "copy"
    shutil.copytree(other, copy)
    metrics = json.loads((copy / "test_metrics.json").read_text())
    (copy / "test_metrics.json").write_text(json.dumps({**metrics, "test_clips_sha1": "0" * 40}))
    label = build_table([other])[0]["test_set"]
    with pytest.warns(UserWarning, match=rf"different sets \({re.escape(label)}.*, but other clips\)"):
        build_table([other, copy])


def test_the_markdown_table_writes_the_figures_the_csv_holds():
    # Before (review): `:g` kept 6 significant digits (13639.42 -> 13639.4) and wrote 1234567.8 as 1.2e+06.
    from audionas.report import to_csv, to_markdown

    row = {"model": "DARTS", "cells": 16, "channels": 100, "accuracy_pct": 90.0, "params_k": 1234567.8,
           "macs_m": 13639.42, "test_set": "sc lists", "test_n": 10, "run": "r"}
    small = {**row, "params_k": 303.0, "macs_m": 6.85}
    assert "| 1234567.8 | 13639.42 |" in to_markdown([row]) and "1234567.8,13639.42" in to_csv([row])
    assert "| 303 | 6.85 |" in to_markdown([small])


@pytest.mark.parametrize("name", ["table2.md", "table2.CSV"])
def test_an_out_named_like_a_file_is_refused_before_a_folder_of_that_name_is_made(tmp_path, capsys, name):
    # Before: `report --out X/table2.md` made a folder named table2.md holding table2.md and table2.csv.
    run = _run(tmp_path / "r", test_metrics_json='{"accuracy": 0.5}')
    out = tmp_path / "x" / name
    assert main(["report", str(run), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --out {out}: expected a folder (the command writes "
                                       f"its files into it), not a {out.suffix} file name\n")
    assert not (tmp_path / "x").exists()
    out.mkdir(parents=True)  # an existing folder of that name is the user's choice
    assert main(["report", str(run), "--out", str(out)]) == 0 and (out / "table2.md").is_file()


def make_run(path, model, model_args=None, acc=None, jsonl_acc=None):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"model": model, "model_args": model_args or {}}))
    if acc is not None or jsonl_acc is not None:  # finished (with no result: stopped before its end)
        torch.save({}, path / "final.pt")
    if acc is not None:
        (path / "test_metrics.json").write_text(json.dumps({"accuracy": acc, "split": "test"}))
    if jsonl_acc is not None:
        (path / "metrics.jsonl").write_text(
            json.dumps({"epoch": 1, "val_acc": 0.5})
            + "\n"
            + json.dumps({"epoch": 2, "test_acc": jsonl_acc})
            + "\n"
        )
    return path


def test_table2_rows_markdown_csv(tmp_path):
    r1 = make_run(tmp_path / "res15", "res15", acc=0.9512)
    r2 = make_run(tmp_path / "nas", "darts", {"genotype": "EMPTY", "cells": 6, "channels": 16}, jsonl_acc=0.9)
    r3 = make_run(tmp_path / "tc", "tc-resnet14-1.5")
    said = rf"^report: no test result in {re.escape(str(r3))} \(unfinished\? its train command resumes it\)"
    with pytest.warns(UserWarning, match=said + ": shown as '-'$"):
        rows = write_report([r2, r1, r3], tmp_path / "out", paper=True)
    ours = [r for r in rows if "paper" not in r["model"]]
    assert [r["model"] for r in ours] == ["Res15", "TC-ResNet14-1.5", "DARTS (EMPTY)"]
    assert ours[0]["params_k"] == 237.9 and ours[0]["accuracy_pct"] == 95.12
    assert ours[0]["macs_m"] == 958.81 and ours[1]["macs_m"] == 6.85  # `audionas profile` (README)
    assert ours[1]["params_k"] == 303.0 and ours[1]["accuracy_pct"] is None
    assert ours[2]["params_k"] == 59.0 and ours[2]["accuracy_pct"] == 90.0 and ours[2]["cells"] == 6
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "| Res15 | - | - | 95.12 | 237.9 | 958.81 |" in md
    assert "| NAS1 (paper) | 12 | 16 | 97.06 | 281 | - |" in md
    csv = (tmp_path / "out" / "table2.csv").read_text().splitlines()
    assert csv[0] == "model,cells,channels,accuracy_pct,params_k,macs_m,test_set,test_n,run"
    assert len(csv) == 1 + 3 + 12
    assert [r["test_set"] for r in ours] == ["? lists", "-", "? lists"]


def test_table2_md_and_csv_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    # Before (QA): table2.md was replaced, then table2.csv failed: two rows in one, one in the other.
    r1 = make_run(tmp_path / "a", "res15", acc=0.9)
    write_report([r1], tmp_path / "out")
    old = (tmp_path / "out" / "table2.md").read_text()
    (tmp_path / "out" / "table2.csv").unlink()
    (tmp_path / "out" / "table2.csv").mkdir()
    with pytest.raises(UserError, match="table2.csv: is a directory"):
        write_report([r1, make_run(tmp_path / "b", "res15", acc=0.8)], tmp_path / "out")
    assert (tmp_path / "out" / "table2.md").read_text() == old
    (tmp_path / "out" / "table2.csv").rmdir()
    write_report([r1], tmp_path / "out")

    class FullDisk(str):  # the CSV's write fails once the Markdown's is done
        def encode(self, *args):
            raise OSError(28, "No space left on device")

    import audionas.report as report

    monkeypatch.setattr(report, "to_csv", lambda rows: FullDisk("x"))
    with pytest.raises(UserError, match=r"table2.csv: cannot write \(No space left on device\)"):
        write_report([r1, tmp_path / "b"], tmp_path / "out")
    assert (tmp_path / "out" / "table2.md").read_text() == old


def test_runs_tested_on_different_sets_are_named_and_warned_about(tmp_path):
    a = make_run(tmp_path / "a", "res15", acc=0.9)
    b = make_run(tmp_path / "b", "res15", acc=0.8)
    for run, data in ((a, {"root": "/x/sc", "split": "lists"}), (b, {"root": "sc", "split": "ratio"})):
        (run / "config.yaml").write_text(yaml.safe_dump({"model": "res15", "data": data}))
    (a / "test_metrics.json").write_text(json.dumps({"accuracy": 0.9, "n": 51}))
    with pytest.warns(UserWarning, match=r"different sets \(sc lists, n=51; sc ratio 0.4/0.4/0.2\)"):
        rows = write_report([a, b], tmp_path / "out")
    assert [(r["test_set"], r["test_n"]) for r in rows] == [("sc lists", 51), ("sc ratio 0.4/0.4/0.2", None)]
    assert "| 90.00 | 237.9 | 958.81 | sc lists, n=51 |" in (tmp_path / "out" / "table2.md").read_text()


def test_same_split_rule_with_fewer_clips_is_another_set(tmp_path):
    a = make_run(tmp_path / "a", "res15", acc=0.9)
    b = make_run(tmp_path / "b", "res15", acc=0.8)
    c = make_run(tmp_path / "c", "res15", acc=0.8)
    for run, limit, n in ((a, 0, 128), (b, 8, 96), (c, 500, 128)):
        (run / "config.yaml").write_text(yaml.safe_dump(
            {"model": "res15", "data": {"root": "sc", "split": "ratio", "limit_per_class": limit}}))
        (run / "test_metrics.json").write_text(json.dumps({"accuracy": 0.9, "n": n}))
    with pytest.warns(UserWarning, match=r"different sets \(sc ratio 0.4/0.4/0.2, n=128; "
                                         r"sc ratio 0.4/0.4/0.2, n=96\)"):
        write_report([a, b], tmp_path / "out")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cap that did not bite (same clips): comparable, no warning
        write_report([a, c], tmp_path / "out2")


def test_report_errors_and_cli(tmp_path):
    with pytest.raises(UserError, match="no config.yaml"):
        write_report([tmp_path], tmp_path / "o")
    run = make_run(
        tmp_path / "r", "darts", {"genotype": "DARTS_V2", "cells": 3, "channels": 8, "layout": "NRN"}, acc=0.5
    )
    r = subprocess.run(
        [sys.executable, "-m", "audionas", "report", str(run), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "DARTS (DARTS_V2) | 3 | 8 | 50.00" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "audionas", "report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "no config.yaml" in r.stderr



def test_folder_names_that_are_not_utf8_are_written_escaped(tmp_path):
    # Before (review): training on such a data folder worked, then the report's write raised
    # UnicodeEncodeError (surrogates); the same for a run folder so named.
    import os

    run = _run(tmp_path / "r", test_metrics_json='{"accuracy": 0.5, "n": 4}')
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tc-resnet8", "model_args": {},
                                                     "data": {"root": "/data/d\udce9ta", "split": "lists"}}))
    odd = tmp_path / os.fsdecode(b"r\xe94")
    run.rename(odd)
    rows = write_report([odd], tmp_path / "rep")
    assert rows[0]["test_set"] == "d\udce9ta lists" and rows[0]["run"] == str(odd)  # as Python reads them
    for name in ("table2.md", "table2.csv"):
        text = (tmp_path / "rep" / name).read_text()
        assert "d\\udce9ta lists" in text and "r\\udce94" in text, name
