"""The KWS paper's Table 2 from training runs: model, cells, channels, test accuracy, parameters (and the
MACs of one input, which that table lacks and an on-device choice needs).

A run is a directory written by `audionas train`: `config.yaml` (model, model_args, data), the test result in
`test_metrics.json` (`accuracy`, a fraction), else the last `metrics.jsonl` line with a `test_acc` key
(train with eval_split=test); parameters (trainable only) and MACs are counted on `create_model(model,
**model_args)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from audionas.data import RATIO_SPLITS
from audionas.data.folder import effective_split
from audionas.errors import UserError, warn
from audionas.papers import PAPER_ROWS
from audionas.utils.jsonio import accuracy_field, read_json, read_json_lines
from audionas.utils.rundir import check_outside_data, read_run_config, refuse_repeats
from audionas.utils.tables import csv_table, markdown_table, write_table
from audionas.utils.text import escape_controls

COLUMNS = ["model", "cells", "channels", "accuracy_pct", "params_k", "macs_m", "test_set", "test_n", "run"]
DISPLAY = {"res15": "Res15", "tc-resnet14-1.5": "TC-ResNet14-1.5", "tc-resnet14": "TC-ResNet14"}


def paper_row(row: tuple) -> dict:
    """A row of PAPER_ROWS in the table's columns (the paper gives no MACs)."""
    model, cells, channels, acc, params_k = row
    return {"model": model, "cells": cells, "channels": channels, "accuracy_pct": acc, "params_k": params_k,
            "macs_m": None, "test_set": "Speech Commands (paper)", "test_n": None, "run": "KWS paper Table 2"}


class RecordedResult(NamedTuple):
    """A run's test result as it recorded it; None for what it did not record."""
    accuracy_pct: float | None = None
    n: int | None = None
    split_rule: str | None = None
    clips_sha1: str | None = None


def _test_result(run: Path) -> RecordedResult:
    """The run's test_metrics.json, else, once the run has finished (final.pt), the test accuracy of the last
    metrics.jsonl line that has one (eval_split=test). An unfinished run has no result (a stopped run's
    mid-training accuracy is no result of its recipe)."""
    p = run / "test_metrics.json"
    if p.is_file():
        d = read_json(p, "a run's test metrics")
        n = d.get("n") if isinstance(d.get("n"), int) else None
        rule, sha1 = (d.get(k) if isinstance(d.get(k), str) else None
                      for k in ("split_rule", "test_clips_sha1"))
        return RecordedResult(100.0 * accuracy_field(str(p), "accuracy", d.get("accuracy")), n, rule, sha1)
    p = run / "metrics.jsonl"
    if p.is_file() and (run / "final.pt").is_file():
        for d in reversed(read_json_lines(p, "one JSON object per epoch", drop_partial_last=True)):
            if "test_acc" in d:
                return RecordedResult(100.0 * accuracy_field(str(p), "test_acc", d["test_acc"]))
    return RecordedResult()


def _test_set(cfg: dict, recorded_rule: str | None = None) -> str:
    """Which clips the accuracy is on: dataset folder and split rule (other sets are not comparable).

    The rule the run recorded with its test result wins; older runs' rule is worked out from the config
    (and, for a folder dataset, from whether the folder has list files now)."""
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    root = Path(str(data.get("root") or "?")).name
    if data.get("kind") == "dcase2018":  # fold k: its evaluate list; single mode: the evaluation set
        fold = data.get("fold", 0)
        rule = f"fold {fold} test list" if fold else "evaluation set"
    else:
        rule = recorded_rule or str(data.get("split", "lists"))
        folder = Path(str(data.get("root") or ""))
        if not recorded_rule and data.get("kind") == "folder" and folder.is_dir():
            rule = effective_split(folder, rule)
        if rule in RATIO_SPLITS:
            rule += " " + "/".join(f"{r:g}" for r in data.get("ratios") or [0.4, 0.4, 0.2])
    if data.get("split_seed"):  # Choice: the default split seed 0 is not shown
        rule += f" split_seed {data['split_seed']}"
    return f"{root} {rule}"


def _trained(run: Path, cfg: dict) -> tuple[dict, int | None, tuple[int, int, int]]:
    """(config, classes, input shape) as the run's checkpoint recorded them (final.pt, else an unfinished
    run's checkpoints/last.pt; a hand edit of config.yaml changes no trained network), else from config.yaml:
    Speech Commands' words + 2 classes of 1x101x40; None classes for other data (not known without one)."""
    ck = next((p for p in (run / "final.pt", run / "checkpoints" / "last.pt") if p.is_file()), None)
    if ck is not None:
        from audionas.data import upgrade_run_config
        from audionas.train.trained_run import checkpoint_fields
        from audionas.utils.checkpoint import load_checkpoint

        d = load_checkpoint(ck)
        if isinstance(d.get("config"), dict):
            cfg = upgrade_run_config(dict(d["config"]))
        if d.get("classes") and d.get("input_shape"):
            classes, shape = checkpoint_fields(ck, d)
            return cfg, len(classes), shape
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    if data.get("kind", "speech_commands") != "speech_commands":  # a user's folder, DCASE: not 12 classes
        return cfg, None, (1, 101, 40)
    words = data.get("words")
    return cfg, (len(words) + 2 if isinstance(words, list) else 12), (1, 101, 40)


def run_row(run: str | Path) -> dict:
    """One row of the table: a training run's model, cells, channels, test accuracy, parameters and MACs."""
    from audionas.models import create_model
    from audionas.profile import count_macs, count_params
    from audionas.train.trained_run import refuse_search_run

    run = Path(run)
    cfg_path = run / "config.yaml"
    refuse_search_run(run)
    if not cfg_path.is_file():
        raise UserError(f"{run}: not a training run (no config.yaml)")
    cfg, classes, shape = _trained(run, read_run_config(cfg_path))
    model = cfg.get("model")
    if not isinstance(model, str):
        raise UserError(f"{cfg_path}: no 'model' field (is this a training run?)")
    args = dict(cfg.get("model_args") or {})
    net = create_model(model, num_classes=classes, input_shape=shape, **args) if classes is not None else None
    params, macs = (count_params(net), count_macs(net, shape)) if net is not None else (None, None)
    name = DISPLAY.get(model, model)
    cells = channels = "-"
    if model == "darts":
        g = args.get("genotype", "DARTS_V2")
        ops = g.get("ops") if isinstance(g, dict) else None  # the search's op set, when the run recorded it
        g = str(g.get("source", "genotype") if isinstance(g, dict) else g)  # a run stores its file's genotype
        op_set = (f"{ops.upper()} " if isinstance(ops, str) else "custom ops " if isinstance(ops, list)
                  else "")
        folder = Path(g).parent.name if g.endswith(".json") else ""  # a search's: its run folder's name
        name = f"DARTS {op_set}({folder + '/' if folder else ''}{Path(g).stem})"
        cells, channels = args.get("cells", 6), args.get("channels", 16)
    test = _test_result(run)
    scored = test.accuracy_pct is not None
    return {"model": name, "cells": cells, "channels": channels,
            "accuracy_pct": round(test.accuracy_pct, 2) if scored else None,
            "params_k": round(params / 1000, 1) if params is not None else None,
            "macs_m": round(macs / 1e6, 2) if macs is not None else None,
            "test_set": _test_set(cfg, test.split_rule) if scored else "-",
            "test_n": test.n, "run": str(run), "test_clips_sha1": test.clips_sha1}


def _test_set_label(row: dict) -> str:
    """The row's test set with its clip count: what the table shows and what rows are compared on."""
    return row["test_set"] + (f", n={row['test_n']}" if row["test_n"] is not None else "")


def build_table(runs: list[str | Path], paper: bool = False) -> list[dict]:
    """The runs' rows, baselines first (with `paper`, the paper's own rows after them); warns when the runs
    were tested on different sets."""
    refuse_repeats(runs, "each run is one row")
    rows = [run_row(r) for r in runs]
    def number(v) -> float:
        return float(v) if isinstance(v, (int, float)) else -1.0  # "-" (baselines) first

    # baselines first, then found networks by name, cells, channels (numerically: 6/16, 6/24, 6/36, 12/16)
    rows.sort(key=lambda r: (r["model"].startswith("DARTS"), str(r["model"]), number(r["cells"]),
                             number(r["channels"])))
    # Choice: data.limit_per_class is not part of the test set's name: a cap that bites changes the clip
    # count, which is compared too.
    scored = [r for r in rows if r["accuracy_pct"] is not None]
    unscored = [r["run"] for r in rows if r["accuracy_pct"] is None]
    for finished in (False, True):  # a row of "-" says why it has no accuracy
        runs = [r for r in unscored if (Path(r) / "final.pt").is_file() == finished]
        why = ("trained but not scored: no test clips, or stopped while scoring them; `audionas evaluate "
               "RUN` scores it" if finished else "unfinished? its train command resumes it")
        if runs:
            warn(f"report: no test result in {', '.join(runs)} ({why}): shown as '-'")
    sets = {_test_set_label(r) for r in scored}
    # Runs that recorded their test clips are compared on them: two split rules may give the same test set.
    # Different recorded clips under one label (two copies of a folder, edited) are different sets too.
    digests = {r["test_clips_sha1"] for r in scored}
    if len(digests - {None}) > 1 or (None in digests and len(sets) > 1):
        named = "; ".join(sorted(sets)) if len(sets) > 1 else f"{next(iter(sets))}, but other clips"
        warn(f"report: the runs were tested on different sets ({named}): their accuracies are not comparable")
    if paper:
        rows += [paper_row(r) for r in PAPER_ROWS]
    return rows


def to_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table in the paper's Table 2 columns, with MACs after the parameters."""
    header = ["Model", "Cell (#)", "Channels (#)", "Acc. (%)", "Par. (K)", "MACs (M)", "Test set", "Run"]
    cells = [[_text(r["model"]), r["cells"], r["channels"],
              "-" if r["accuracy_pct"] is None else f"{r['accuracy_pct']:.2f}",
              "-" if r["params_k"] is None else _figure(r["params_k"]),
              "-" if r["macs_m"] is None else _figure(r["macs_m"]), _text(_test_set_label(r)),
              _text(r["run"])]
             for r in rows]
    note = ("\n† As in the KWS paper's Table 2: a baseline's figures from its own paper, not measured here.\n"
            if any("†" in str(r["model"]) for r in rows) else "")
    return markdown_table(header, cells) + note


def to_csv(rows: list[dict]) -> str:
    """The rows as CSV (COLUMNS)."""
    return csv_table(COLUMNS, [["" if r[k] is None else _text(r[k]) for k in COLUMNS] for r in rows])


def _figure(value: float) -> str:
    """A figure as rounded for the row and written to the CSV, without a trailing '.0' (303, 6.85, 13639.42;
    `:g` cut 6 significant digits and wrote 1e+06)."""
    text = str(value)
    return text[:-2] if text.endswith(".0") else text


def _text(value):
    """A table cell: text escaped (a run or genotype folder named in another encoding, with a tab...), as
    the file is UTF-8 and one row a line (review: a run folder not named in UTF-8 failed the write)."""
    return escape_controls(value) if isinstance(value, str) else value


def write_report(runs: list[str | Path], out_dir: str | Path, paper: bool = False) -> list[dict]:
    """Write OUT/table2.md and OUT/table2.csv; returns the rows."""
    if not runs:
        raise UserError("report: give at least one training run directory")
    rows = build_table(runs, paper=paper)
    out = Path(out_dir)
    for r in runs:
        data = read_run_config(Path(r) / "config.yaml").get("data")
        if isinstance(data, dict):
            check_outside_data(out, data.get("kind"), data.get("root"))
    write_table(to_markdown(rows), to_csv(rows), out, "table2")
    return rows
