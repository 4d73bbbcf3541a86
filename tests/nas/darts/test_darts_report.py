"""The KWS Table 2 report from training run directories."""

import json
import subprocess
import sys
import warnings

import pytest
import yaml

from audionas.errors import UserError
from audionas.report import write_report


def make_run(path, model, model_args=None, acc=None, jsonl_acc=None):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"model": model, "model_args": model_args or {}}))
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
    rows = write_report([r2, r1, r3], tmp_path / "out", paper=True)
    ours = [r for r in rows if "paper" not in r["model"]]
    assert [r["model"] for r in ours] == ["Res15", "TC-ResNet14-1.5", "DARTS (EMPTY)"]
    assert ours[0]["params_k"] == 237.9 and ours[0]["accuracy_pct"] == 95.12
    assert ours[1]["params_k"] == 303.0 and ours[1]["accuracy_pct"] is None
    assert ours[2]["params_k"] == 59.0 and ours[2]["accuracy_pct"] == 90.0 and ours[2]["cells"] == 6
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "| Res15 | - | - | 95.12 | 237.9 |" in md and "| NAS1 (paper) | 12 | 16 | 97.06 | 281 |" in md
    csv = (tmp_path / "out" / "table2.csv").read_text().splitlines()
    assert csv[0] == "model,cells,channels,accuracy_pct,params_k,test_set,test_n,run"
    assert len(csv) == 1 + 3 + 12
    assert [r["test_set"] for r in ours] == ["? lists", "-", "? lists"]


def test_runs_tested_on_different_sets_are_named_and_warned_about(tmp_path):
    a = make_run(tmp_path / "a", "res15", acc=0.9)
    b = make_run(tmp_path / "b", "res15", acc=0.8)
    for run, data in ((a, {"root": "/x/sc", "split": "lists"}), (b, {"root": "sc", "split": "ratio"})):
        (run / "config.yaml").write_text(yaml.safe_dump({"model": "res15", "data": data}))
    (a / "test_metrics.json").write_text(json.dumps({"accuracy": 0.9, "n": 51}))
    with pytest.warns(UserWarning, match=r"different sets \(sc lists, n=51; sc ratio 0.4/0.4/0.2\)"):
        rows = write_report([a, b], tmp_path / "out")
    assert [(r["test_set"], r["test_n"]) for r in rows] == [("sc lists", 51), ("sc ratio 0.4/0.4/0.2", None)]
    assert "| 90.00 | 237.9 | sc lists, n=51 |" in (tmp_path / "out" / "table2.md").read_text()


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
