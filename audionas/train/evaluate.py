"""Evaluate a run or checkpoint (or an ensemble) on a split: accuracy, macro-F1, per-class F1, ASC scores."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from audionas.config import from_dict, to_dict
from audionas.data import clip_keys
from audionas.data.dcase2018 import CLASSES as DCASE_CLASSES
from audionas.errors import UserError, warn
from audionas.papers import ASC_TABLE2
from audionas.train import metrics as M
from audionas.train.metrics import asc_scores, has_asc_ids
from audionas.train.plots import confusion_png
from audionas.train.predict import predict
from audionas.train.trained_run import (
    LoadedModel,
    load_model,
    run_dir_of,
    scored_bundle,
    warn_other_split,
)
from audionas.utils.atomic import atomic_write_all, json_writer
from audionas.utils.jsonio import json_object_or_none
from audionas.utils.rundir import RUN_MARKERS, check_outside_data, refuse_repeats
from audionas.utils.tables import table_writes
from audionas.utils.text import escape_controls


def _member_data(lm: LoadedModel, data: str | None, num_workers: int | None, split: str):
    """The data config and bundle a member was trained with (--data as root): its splits and its frontend;
    only the scored `split`'s clip headers are read up front."""
    dcfg = from_dict(type(lm.config.data), to_dict(lm.config.data))
    if data:
        dcfg.root = str(data)
    if num_workers is not None:
        dcfg.num_workers = num_workers
    moved = "" if data else "pass the dataset's new place with --data DIR"
    return dcfg, scored_bundle(dcfg, lm.config.seed, lm.band_frontend, lm.classes, lm.split_sizes, lm.path,
                               "checkpoint's", moved, checked=(split,))


class ReportFiles(NamedTuple):
    """The files an evaluation of `split` writes in `folder`, each name ending in `suffix` (see _output): the
    report, its confusion PNG, and for ASC data the class-wise F1 table (STEM.md and STEM.csv)."""
    folder: Path
    split: str
    suffix: str

    @property
    def report(self) -> Path:
        return self.folder / f"eval_{self.split}{self.suffix}.json"

    @property
    def confusion(self) -> Path:
        return self.folder / f"confusion_{self.split}{self.suffix}.png"

    @property
    def table_stem(self) -> str:
        return f"classwise_f1_{self.split}{self.suffix}"

    def names(self, asc: bool) -> list[str]:
        names = [self.report.name, self.confusion.name]
        return names + [f"{self.table_stem}{ext}" for ext in (".md", ".csv")] if asc else names


def _output(out: str | None, loaded: list[LoadedModel], data: str | None, cross_val: bool,
            split: str) -> ReportFiles:
    """The report's files: their folder and their names' suffix. --out: that folder ("_crossval" for
    --cross-val); another run's folder is refused. Without it (or naming the first run's folder), the first
    run's folder, and a suffix whenever the evaluation is not that run's own final weights on its own data
    (cross-validation, an ensemble, another checkpoint, another dataset), so that it overwrites neither
    training's confusion_test.png nor the run's own evaluation."""
    kind = "_crossval" if cross_val else ""
    first = loaded[0]
    if out and Path(out).resolve() == run_dir_of(first.path).resolve():
        out = None  # the first run's own folder: named as without --out
    if out and any((Path(out) / m).is_file() for m in RUN_MARKERS):
        raise UserError(f"{out}: the folder of another run (it holds {RUN_MARKERS[0]}), whose training's "
                        f"confusion_test.png and tables this evaluation would overwrite; pass an --out "
                        f"folder of its own")
    if out:
        return ReportFiles(Path(out), split, kind)
    suffix = kind or ("_ensemble" if len(loaded) > 1 else "")
    if first.path.name != "final.pt":
        suffix += f"_{first.path.stem}"
    if data and Path(data).expanduser().resolve() != Path(first.config.data.root).expanduser().resolve():
        suffix += f"_{Path(data).expanduser().resolve().name}"
    return ReportFiles(run_dir_of(first.path), split, suffix)


def check_not_another(path: Path, runs: list[str], data: list[str], out_given: bool = False) -> None:
    """UserError when the report `path` holds an evaluation of other runs or data (absolute paths; an older
    report's relative ones are read from here), which this one would overwrite: the file names (in the run's
    folder, or in the folder --out names) say the kind of evaluation, not its members."""
    if not path.is_file():
        return
    old = json_object_or_none(path)
    if old is None or not all(isinstance(old.get(k, []), list) for k in ("runs", "data")):
        return  # not a report this could lose
    old_runs = old.get("runs", runs)
    # In the first run's own folder (no --out), a first run that is no longer where the report says was
    # moved or renamed with its report: this is it again. Elsewhere, a run moved away still had that report.
    other_runs = len(old_runs) != len(runs) or any(
        str(Path(str(o)).resolve()) != r and not (i == 0 and not out_given and not Path(str(o)).exists())
        for i, (o, r) in enumerate(zip(old_runs, runs)))
    if other_runs or old.get("data", data) != data:
        what = ", ".join(map(str, old_runs)) if other_runs else f"data {', '.join(map(str, old['data']))}"
        another = "another " if out_given else ""
        raise UserError(f"{path}: holds the evaluation of {what}, which this one would overwrite; pass "
                        f"{another}--out DIR to keep both (or delete it)")


def _check_one_set(loaded: list[LoadedModel], sets: list, roots: list[str], split: str) -> None:
    """UserError when an ensemble's members would score different clips as their `split` (`roots`: the
    data folder each reads)."""
    first, keys = loaded[0], [clip_keys(ds) for ds in sets]
    for lm, k, root in zip(loaded[1:], keys[1:], roots[1:]):
        if k != keys[0] and root != roots[0]:  # each run reads the data it was trained on
            raise UserError(f"{lm.path}: its '{split}' split is not the same clips as that of {first.path}: "
                            f"it reads {root}, that run {roots[0]}; an ensemble needs one common set: name "
                            f"it with --data")
        if k != keys[0]:
            raise UserError(f"{lm.path}: its '{split}' split is not the same clips as that of {first.path} "
                            f"(another fold or split); an ensemble needs one common set: use a split all "
                            f"runs share (fold runs: --split val, the evaluation set) or --cross-val to "
                            f"score each run on its own split and average")


def evaluate_runs(runs: list[str] | str | os.PathLike, data: str | None = None, split: str = "test",
                  out: str | None = None, device: str = "auto", batch_size: int | None = None,
                  num_workers: int | None = None, cross_val: bool = False, paper: bool = False) -> dict:
    """Evaluate one run, or an ensemble (posteriors averaged) of several; writes eval_<split>.json and the
    confusion PNG (see _output for where) and returns the report. `paper`: the class-wise table of a
    DCASE2018 evaluation also holds the ASC paper's Table 2 columns (B-s, N-s, N-e).

    Each member sees the data through its own frontend (its training split's band statistics). With
    `cross_val`, each run is scored on its own `split` instead and the scores are averaged: the DCASE2018
    development protocol (one model per fold, each on its fold's test list; official F1 averaged over folds).
    """
    from audionas.utils.dist import select_device

    if isinstance(runs, (str, os.PathLike)):  # one run given from Python, not its characters
        runs = [runs]
    out = str(Path(out).expanduser()) if out else out
    if not runs:
        raise UserError("evaluate: at least one run or checkpoint is required")
    dev = select_device(device, "--device")
    loaded = [load_model(r, dev) for r in runs]
    first = loaded[0]
    refuse_repeats([lm.path for lm in loaded], "each run counts once")
    together = "score them together" if cross_val else "ensemble"
    owner: dict[Path, Path] = {}
    for lm in loaded:
        other = owner.setdefault(run_dir_of(lm.path).resolve(), lm.path)
        if other != lm.path:
            kind = "cross-validation" if cross_val else "ensemble"
            warn(f"{lm.path}: a checkpoint of the same run as {other}; the {kind} counts that run "
                 f"twice")
    for lm in loaded[1:]:
        if lm.classes != first.classes:
            raise UserError(f"{lm.path}: classes differ from {first.path}; cannot {together}")
        if lm.config.data.feature != first.config.data.feature or lm.input_shape != first.input_shape:
            raise UserError(f"{lm.path}: features/input shape differ from {first.path}; cannot {together}")
    if paper and first.classes != DCASE_CLASSES:
        raise UserError(f"--paper: the ASC paper's Table 2 scores the 9 DCASE2018 classes; {first.path} has "
                        f"{len(first.classes)} others")
    for lm in loaded if out else ():
        check_outside_data(out, lm.config.data.kind, data or lm.config.data.root)
    members = [_member_data(lm, data, num_workers, split) for lm in loaded]
    sets = [bundle.split(split) for _, bundle in members]
    for lm, (dcfg, bundle), ds in zip(loaded, members, sets):
        warn_other_split(bundle, lm.split_fingerprint, dcfg.root, lm.path, ds)
    roots = [str(Path(dcfg.root).expanduser().resolve()) for dcfg, _ in members]
    if not cross_val:  # before the report's file is looked at: a set the members do not share comes first
        _check_one_set(loaded, sets, roots, split)
    files = _output(out, loaded, data, cross_val, split)
    if paper and not all(has_asc_ids(ds) for ds in sets):
        raise UserError(f"--paper: the {split} split holds no DCASE2018 segments (a cache's four-channel "
                        f"rows): no class-wise table to add the paper's columns to")
    if paper and not all(getattr(ds, "held_out", False) for ds in sets):
        warn(f"--paper: the paper's columns score the DCASE2018 evaluation set; this evaluation's {split} "
             f"split is development data (a fold's test list), so the columns are not comparable")
    names = files.names(all(has_asc_ids(ds) for ds in sets))
    if max(len(os.fsencode(n)) for n in names) > 255:  # the suffix names a checkpoint and a data folder
        raise UserError(f"{files.folder}: the report's file names would be longer than 255 bytes (they "
                        f"end in the names of the checkpoint and data folder); pass --out DIR for plain "
                        f"names there")
    run_paths = [str(lm.path.resolve()) for lm in loaded]

    def check_free():
        check_not_another(files.report, run_paths, roots, out_given=bool(out))

    # Checked now, to fail before predicting, and again before writing: an evaluation into the same folder
    # may have ended meanwhile (it narrows the race of two at once to the writes).
    check_free()
    classes = first.classes

    def scores(lm, bundle, ds, dcfg):
        return predict(lm.model, bundle.frontend.to(dev).eval(), ds, dev, batch_size or dcfg.eval_batch_size,
                       dcfg.num_workers)

    if cross_val:
        return _cross_val(loaded, members, sets, scores, classes, files, roots, check_free, paper)
    ds = sets[0]
    all_probs, labels = [], None
    for lm, (dcfg, bundle) in zip(loaded, members):
        probs, labels, _ = scores(lm, bundle, ds, dcfg)
        all_probs.append(probs)
    probs = M.ensemble_probs(all_probs)
    report = M.classification_report(probs, labels, classes)
    report.update({"split": split, "runs": run_paths, "classes": classes,
                   "data": roots})
    if len(loaded) > 1:
        report["members"] = [{"run": r, "accuracy": M.accuracy(p, labels), "macro_f1": M.macro_f1(p, labels)}
                             for r, p in zip(run_paths, all_probs)]
    asc = asc_scores(probs, labels, ds)
    check_free()
    tables = {}
    if asc:
        report.update(asc)
        name = "ensemble" if len(loaded) > 1 else first.config.model
        f1s = M.classwise_f1(probs, labels, ds.segment_ids, ds.channel_ids, len(classes))
        tables = _classwise_table(name, *f1s, classes, report, files, paper)
    return _write(report, tables, f"{split}: acc {100 * report['accuracy']:.2f}%", files)


def _write(report: dict, tables: dict, title: str, files: ReportFiles) -> dict:
    """The confusion PNG, the class-wise tables (when any) and the report, all or none (atomic_write_all):
    a failed write leaves no new PNG beside an old report. The report is renamed last."""
    png = confusion_png(np.asarray(report["confusion"]), report["classes"], files.confusion, title=title)
    if tables:
        report["tables"] = [str(p) for p in tables]
    report["confusion_png"] = str(files.confusion)
    atomic_write_all({files.confusion: png, **tables, files.report: json_writer(report)})
    return report


def _classwise_table(name: str, official, paper, classes: list[str], report: dict,
                     files: ReportFiles, with_paper: bool = False) -> dict:
    # Choice: the class-wise table uses the official (segment-level) per-class F1; its last row is the
    # official macro-F1, and a second column holds the paper's per-channel definition.
    off, pap = f"{name} (official)", f"{name} (paper)"
    systems = {off: dict(zip(classes, official)), pap: dict(zip(classes, paper))}
    totals = {off: report["official_f1"], pap: report["paper_f1"]}
    for system, column in ASC_TABLE2.items() if with_paper else ():  # the paper's per-channel F1, in %
        systems[f"{system} (ASC paper)"] = dict(zip(classes, (v / 100 for v in column[:-1])))
        totals[f"{system} (ASC paper)"] = column[-1] / 100
    md, csv_text = M.class_f1_table(systems, classes, totals)
    return table_writes(md, csv_text, files.folder, files.table_stem)


def _cross_val(loaded, members, sets, scores, classes: list[str], files: ReportFiles,
               roots: list[str] | None = None, before_writing=lambda: None, with_paper: bool = False) -> dict:
    """Each run on its own split (`files.split`); accuracy, macro-F1 and the ASC F1s averaged over runs,
    confusions summed."""
    data = [getattr(getattr(lm, "config", None), "data", None) for lm in loaded]
    fold_ids = sorted(d.fold for d in data if d is not None and d.kind == "dcase2018")
    if fold_ids and fold_ids != [1, 2, 3, 4]:
        warn(f"--cross-val over data.fold {', '.join(map(str, fold_ids))}: the DCASE2018 "
             f"development protocol averages folds 1-4, one run each (0 is a single-mode run)")
    keys = [clip_keys(ds) for ds in sets]
    for i, j in itertools.combinations(range(len(sets)), 2):
        if keys[i] is not None and keys[i] == keys[j]:
            warn(f"{loaded[j].path}: scored on the same clips as {loaded[i].path}; --cross-val "
                 f"averages runs over different splits (one per fold)")
    split = files.split
    folds, tables = [], []
    for lm, (dcfg, bundle), ds in zip(loaded, members, sets):
        probs, labels, _ = scores(lm, bundle, ds, dcfg)
        rep = M.classification_report(probs, labels, classes)
        folds.append({"run": str(lm.path), "n": rep["n"], "accuracy": rep["accuracy"],
                      "macro_f1": rep["macro_f1"], **asc_scores(probs, labels, ds),
                      "per_class_f1": rep["per_class_f1"], "confusion": rep["confusion"]})
        if "official_f1" in folds[-1]:
            tables.append(M.classwise_f1(probs, labels, ds.segment_ids, ds.channel_ids, len(classes)))
    report = {"split": split, "cross_val": True, "runs": [str(lm.path.resolve()) for lm in loaded],
              "classes": classes,
              "n": sum(f["n"] for f in folds), **({"data": roots} if roots else {})}
    for key in ("accuracy", "macro_f1", "paper_f1", "official_f1"):
        if all(key in f for f in folds):
            report[key] = float(np.mean([f[key] for f in folds]))
    report["per_class_f1"] = {}
    for c in classes:
        vals = [f["per_class_f1"][c] for f in folds if f["per_class_f1"][c] is not None]
        report["per_class_f1"][c] = float(np.mean(vals)) if vals else None
    report["confusion"] = np.sum([f["confusion"] for f in folds], axis=0).tolist()
    report["folds"] = [{k: v for k, v in f.items() if k not in ("per_class_f1", "confusion")} for f in folds]
    before_writing()
    writes = {}
    if len(tables) == len(folds) and "official_f1" in report:
        official, paper = (M.mean_scored([t[i] for t in tables]) for i in (0, 1))
        writes = _classwise_table("cross-val mean", official, paper, classes, report, files, with_paper)
    return _write(report, writes, f"{split}, {len(folds)} runs: mean acc {100 * report['accuracy']:.2f}%",
                  files)


def format_report(report: dict) -> str:
    """The report as text lines, every path and class name escaped (escape_controls): a run folder not named
    in UTF-8 cannot be printed to a UTF-8 stdout as it is."""
    mean = f"mean of {len(report['folds'])} runs, each on its own split: " if report.get("cross_val") else ""
    lines = [f"split {report['split']}  n={report['n']}  {mean}accuracy {100 * report['accuracy']:.2f}%  "
             f"macro-F1 {100 * report['macro_f1']:.2f}%"]
    for f in report.get("folds", []):
        asc = (f"  paper F1 {100 * f['paper_f1']:.2f}%  official F1 {100 * f['official_f1']:.2f}%"
               if "official_f1" in f else "")
        lines.append(f"  {escape_controls(f['run'])}: n={f['n']}  accuracy {100 * f['accuracy']:.2f}%  "
                     f"macro-F1 {100 * f['macro_f1']:.2f}%{asc}")
    for m in report.get("members", []):
        lines.append(f"  member {escape_controls(m['run'])}: accuracy {100 * m['accuracy']:.2f}%  "
                     f"macro-F1 {100 * m['macro_f1']:.2f}%")
    if "paper_f1" in report:
        lines.append(f"paper F1 (per channel, averaged) {100 * report['paper_f1']:.2f}%  "
                     f"official F1 (segment posteriors averaged) {100 * report['official_f1']:.2f}%")
    names = {escape_controls(c): v for c, v in report["per_class_f1"].items()}
    width = max(len(c) for c in names)
    for c, v in names.items():
        score = f"{100 * v:6.2f}%" if v is not None else "-  (no clips in this split, never predicted)"
        lines.append(f"  {c:<{width}}  F1 {score}")
    lines.append(f"confusion matrix: {escape_controls(report['confusion_png'])}")
    return "\n".join(lines)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)
