"""Evaluate a run or checkpoint (or an ensemble) on a split: accuracy, macro-F1, per-class F1, ASC scores."""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from audionas.config import from_dict, to_dict
from audionas.data import clip_keys, split_fingerprint
from audionas.data.speech_commands import nfc
from audionas.errors import UserError
from audionas.train import metrics as M
from audionas.utils.atomic import write_json_atomic
from audionas.utils.checkpoint import load_checkpoint, load_weights
from audionas.utils.jsonio import is_json_int
from audionas.utils.rundir import check_outside_data, refuse_repeats


def unwrap_logits(out):
    """Models may return (logits, aux_logits) in training mode; the first element is the prediction."""
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def predict(model: nn.Module, frontend: nn.Module, dataset: Dataset, device: torch.device | str,
            batch_size: int = 256, num_workers: int = 0, channels_last: bool = False
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Softmax posteriors (N, classes), labels (N,) and mean cross-entropy over a dataset, in order."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    frontend.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
    probs, labels, loss_sum = [], [], 0.0
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = torch.as_tensor(y).to(device, non_blocking=True)
        feats = frontend(x)
        if channels_last:
            feats = feats.contiguous(memory_format=torch.channels_last)
        logits = unwrap_logits(model(feats)).float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        probs.append(torch.softmax(logits, dim=1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), 0.0
    n = sum(len(p) for p in probs)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy().astype(np.int64), loss_sum / n


_SEARCH_HINTS = {"darts": "retrain its cell: audionas train --genotype RUN/genotype.json",
                 "supernet": "search it, then retrain a front member: audionas train --chromosome "
                             "SEARCH/pareto.json#k"}


def refuse_search_run(p: Path) -> None:
    """UserError when folder `p` is a search's (DARTS, supernet, NSGA-II / random), saying what to do."""
    for kind, file in (("darts", "genotype.json"), ("supernet", "space.json")):
        if (p / file).is_file() and (p / "checkpoints" / "last.pt").is_file():
            raise UserError(f"{p}: a search run, not a trained network; {_SEARCH_HINTS[kind]}")
    if (p / "search.json").is_file():
        raise UserError(f"{p}: a search folder, not a trained run; train a front member first "
                        f"(`audionas train --chromosome {p}/pareto.json#k ...`)")


def checkpoint_path(run_or_ckpt: str | Path) -> Path:
    """A checkpoint file, or a run directory's final.pt (else checkpoints/last.pt)."""
    p = Path(run_or_ckpt)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / "final.pt").is_file():
            return p / "final.pt"
        # A search run has no final.pt by design: said before the (false) "not finished" warning.
        refuse_search_run(p)
        if (p / "checkpoints" / "last.pt").is_file():
            warnings.warn(f"{p}: no final.pt (the run has not finished); using its last checkpoint, "
                          f"{p / 'checkpoints' / 'last.pt'}", stacklevel=2)
            return p / "checkpoints" / "last.pt"
        raise UserError(f"{p}: no final.pt or checkpoints/last.pt in this run directory")
    raise UserError(f"{p}: no such run directory or checkpoint file")


@dataclass
class LoadedModel:
    path: Path
    config: object  # TrainConfig
    classes: list[str]
    input_shape: tuple[int, int, int]
    model: nn.Module
    split_sizes: dict | None = None  # items per split when trained (checkpoint entry); None: not recorded
    band_frontend: nn.Module | None = None  # the recorded band standardisation (cached features); None: none
    split_fingerprint: dict | None = None  # checkpoint entry; None: not recorded


def checkpoint_fields(path: Path, ckpt: dict) -> tuple[list[str], tuple[int, int, int]]:
    """The `classes` and `input_shape` of a training checkpoint, checked: a hand edit is a UserError."""
    classes, shape = ckpt.get("classes"), ckpt.get("input_shape")
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
        raise UserError(f"{path}: field 'classes': expected a non-empty list of class names, "
                        f"got {str(classes)[:60]}")
    if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise UserError(f"{path}: field 'input_shape': expected three positive integers [C, H, W], "
                        f"got {str(shape)[:60]}")
    return list(classes), tuple(shape)


def load_model(run_or_ckpt: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the model from a checkpoint's saved config and load its evaluation weights (EMA if kept)."""
    from audionas.models import create_model
    from audionas.train.config import TrainConfig

    path = checkpoint_path(run_or_ckpt)
    ckpt = load_checkpoint(path)
    if "primitives" in ckpt or "sampler" in ckpt:  # a DARTS search or a FairNAS supernet checkpoint
        hint = _SEARCH_HINTS["darts" if "primitives" in ckpt else "supernet"]
        raise UserError(f"{path}: a search run, not a trained network; {hint}")
    for key in ("config", "classes", "input_shape", "model"):
        if key not in ckpt:
            raise UserError(f"{path}: not an audionas training checkpoint (no '{key}')")
    if not isinstance(ckpt["config"], dict):
        raise UserError(f"{path}: field 'config': expected the run's config as a mapping, "
                        f"got {type(ckpt['config']).__name__}")
    from audionas.data import upgrade_run_config

    classes, shape = checkpoint_fields(path, ckpt)
    try:  # a hand-edited config is named with the checkpoint it is in
        cfg = from_dict(TrainConfig, upgrade_run_config(dict(ckpt["config"])))
        model = create_model(cfg.model, num_classes=len(classes), input_shape=shape, **cfg.model_args)
    except UserError as e:
        raise UserError(f"{path}: saved config: {e}") from None
    load_weights(model, ckpt, "ema" if ckpt.get("ema") else "model", path,
                 f"weights do not fit model '{cfg.model}'")
    return LoadedModel(path, cfg, classes, shape, model.to(device).eval(), ckpt.get("split_sizes"),
                       recorded_band_frontend(ckpt, shape, path), ckpt.get("split_fingerprint"))


def recorded_band_frontend(ckpt: dict, input_shape, path) -> nn.Module | None:
    """The band standardisation a checkpoint records (BandStandardize over input_shape[1] bands), or None
    when it records none (features without it, or a checkpoint from before it was recorded)."""
    from audionas.features.normalize import BandStandardize

    entry = ckpt.get("band_statistics")
    return None if entry is None else BandStandardize.from_statistics(entry, int(input_shape[1]), path)


def check_classes(bundle, trained: list[str] | None, root, whose: str, run) -> None:
    """UserError when the data's classes differ from the `trained` ones (scores would match them by index);
    `whose` names the owner in the message ("checkpoint's", "supernet's"). None: not recorded."""
    # A run trained on a folder a Mac named in NFD recorded those names: compared in NFC, as folders are read.
    if isinstance(trained, list) and [nfc(str(c)) for c in bundle.classes] != [nfc(str(c)) for c in trained]:
        raise UserError(f"{root}: dataset classes {list(bundle.classes)} differ from the {whose} {trained} "
                        f"({run})")


def warn_other_split(bundle, recorded, root, run, scored=None) -> None:
    """A warning when the training split of `bundle` holds other clips than the one `run` was trained on
    (`recorded`: its split_fingerprint; None: not recorded): the clips it is scored on may include ones it
    learned from, unless the `scored` dataset is `held_out` (DCASE's evaluation set: no training split has
    its clips)."""
    if getattr(scored, "held_out", False):
        return
    trained = recorded.get("train") if isinstance(recorded, dict) else None
    now = split_fingerprint(bundle).get("train")
    if trained is not None and now is not None and now != trained:
        warnings.warn(f"{root}: its training split holds other clips than the one {run} was trained on "
                      f"(another dataset, cache or split setting): the clips scored here may include ones "
                      f"it learned from", stacklevel=2)


def trained_frontend(data_cfg, bundle, root, recorded: nn.Module | None, split_sizes, run) -> nn.Module:
    """The frontend a run (or supernet) was trained with, for data `bundle`: its `recorded` band
    standardisation, whatever cache `root` is; else the bundle's own. Without a record (checkpoints from
    before it was kept), a DCASE bundle whose training split differs in size from the recorded `split_sizes`
    is refused: its band statistics would not be the run's."""
    if recorded is not None:
        return recorded
    trained_items = split_sizes.get("train") if isinstance(split_sizes, dict) else None
    if data_cfg.kind != "dcase2018" or not data_cfg.normalize or not is_json_int(trained_items):
        return bundle.frontend
    if len(bundle.train) != trained_items:
        raise UserError(f"{root}: its training split holds {len(bundle.train)} items, {run} was trained "
                        f"on {trained_items} (the band statistics come from them): another cache, or its "
                        f"shuffle-and-mix rows are missing; pass the run's own feature cache")
    return bundle.frontend


def _member_data(lm: LoadedModel, data: str | None, num_workers: int | None):
    """The data config and bundle a member was trained with (--data as root): its splits and its frontend."""
    from audionas.data import build_data

    dcfg = from_dict(type(lm.config.data), to_dict(lm.config.data))
    if data:
        dcfg.root = str(data)
    if num_workers is not None:
        dcfg.num_workers = num_workers
    # A recorded standardisation replaces the bundle's: skip computing the cache's own statistics.
    built = replace(dcfg, normalize=False) if lm.band_frontend is not None else dcfg
    try:
        bundle = build_data(built, lm.config.seed, training=False)
    except UserError:
        if data or not dcfg.root or Path(dcfg.root).expanduser().exists():
            raise
        # a run moved or copied without its data
        raise UserError(f"{dcfg.root}: no such folder; it is the data.root of {lm.path}: pass the dataset's "
                        f"new place with --data DIR") from None
    frontend = trained_frontend(lm.config.data, bundle, dcfg.root, lm.band_frontend, lm.split_sizes, lm.path)
    check_classes(bundle, lm.classes, dcfg.root, "checkpoint's", lm.path)
    return dcfg, replace(bundle, frontend=frontend)


def asc_scores(probs, labels, ds) -> dict:
    """The ASC paper's and the official F1 when the items carry segment and channel ids, else {}."""
    seg, ch = getattr(ds, "segment_ids", None), getattr(ds, "channel_ids", None)
    if seg is None or ch is None:
        return {}
    return {"paper_f1": M.paper_f1(probs, labels, ch), "official_f1": M.official_f1(probs, labels, seg)}


def run_dir_of(checkpoint: Path) -> Path:
    """The run a checkpoint belongs to (RUN/final.pt, RUN/best.pt, RUN/checkpoints/*.pt)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def _output(out: str | None, loaded: list[LoadedModel], data: str | None,
            cross_val: bool) -> tuple[Path, str]:
    """The report's folder and its file names' suffix. --out: that folder ("_crossval" for --cross-val).
    Without it, the first run's folder, and a suffix whenever the evaluation is not that run's own final
    weights on its own data (cross-validation, an ensemble, another checkpoint, another dataset), so that it
    overwrites neither training's confusion_test.png nor the run's own evaluation."""
    kind = "_crossval" if cross_val else ""
    if out:
        return Path(out), kind
    first = loaded[0]
    suffix = kind or ("_ensemble" if len(loaded) > 1 else "")
    if first.path.name != "final.pt":
        suffix += f"_{first.path.stem}"
    if data and Path(data).expanduser().resolve() != Path(first.config.data.root).expanduser().resolve():
        suffix += f"_{Path(data).expanduser().resolve().name}"
    return run_dir_of(first.path), suffix


def check_not_another(path: Path, runs: list[str], data: list[str]) -> None:
    """UserError when the report `path` (a default name: no --out) holds an evaluation of other runs or data
    (absolute paths; an older report's relative ones are read from here), which this one would overwrite: its
    suffix names the kind of evaluation, not its members."""
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # not a report this could lose
    if not isinstance(old, dict) or not all(isinstance(old.get(k, []), list) for k in ("runs", "data")):
        return
    old_runs = old.get("runs", runs)
    other_runs = [str(Path(str(r)).resolve()) for r in old_runs] != runs
    if other_runs or old.get("data", data) != data:
        what = ", ".join(map(str, old_runs)) if other_runs else f"data {', '.join(map(str, old['data']))}"
        raise UserError(f"{path}: holds the evaluation of {what}, which this one would overwrite; pass --out "
                        f"DIR to keep both (or delete it)")


def evaluate_runs(runs: list[str], data: str | None = None, split: str = "test", out: str | None = None,
                  device: str = "auto", batch_size: int | None = None, num_workers: int | None = None,
                  cross_val: bool = False) -> dict:
    """Evaluate one run, or an ensemble (posteriors averaged) of several, and write the confusion PNG.

    Each member sees the data through its own frontend (its training split's band statistics). With
    `cross_val`, each run is scored on its own `split` instead and the scores are averaged: the DCASE2018
    development protocol (one model per fold, each on its fold's test list; official F1 averaged over folds).
    """
    from audionas.utils.dist import select_device

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
            warnings.warn(f"{lm.path}: a checkpoint of the same run as {other}; the {kind} counts that run "
                          f"twice", stacklevel=2)
    for lm in loaded[1:]:
        if lm.classes != first.classes:
            raise UserError(f"{lm.path}: classes differ from {first.path}; cannot {together}")
        if lm.config.data.feature != first.config.data.feature or lm.input_shape != first.input_shape:
            raise UserError(f"{lm.path}: features/input shape differ from {first.path}; cannot {together}")
    for lm in loaded if out else ():
        check_outside_data(out, lm.config.data.kind, data or lm.config.data.root)
    members = [_member_data(lm, data, num_workers) for lm in loaded]
    sets = [bundle.split(split) for _, bundle in members]
    for lm, (dcfg, bundle), ds in zip(loaded, members, sets):
        warn_other_split(bundle, lm.split_fingerprint, dcfg.root, lm.path, ds)
    out_dir, suffix = _output(out, loaded, data, cross_val)
    roots = [str(Path(dcfg.root).expanduser().resolve()) for dcfg, _ in members]
    run_paths = [str(lm.path.resolve()) for lm in loaded]
    if not out:
        check_not_another(out_dir / f"eval_{split}{suffix}.json", run_paths, roots)
    classes = first.classes

    def scores(lm, bundle, ds, dcfg):
        return predict(lm.model, bundle.frontend.to(dev).eval(), ds, dev, batch_size or dcfg.eval_batch_size,
                       dcfg.num_workers)

    if cross_val:
        return _cross_val(loaded, members, sets, scores, split, classes, out_dir, suffix, roots)
    keys = [clip_keys(ds) for ds in sets]
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
    ds = sets[0]
    all_probs, labels = [], None
    for lm, (dcfg, bundle) in zip(loaded, members):
        probs, labels, _ = scores(lm, bundle, ds, dcfg)
        all_probs.append(probs)
    # Choice: an ensemble averages its members' softmax posteriors (the papers do not say what is averaged).
    probs = np.mean(all_probs, axis=0)
    report = M.classification_report(probs, labels, classes)
    report.update({"split": split, "runs": run_paths, "classes": classes,
                   "data": roots})
    if len(loaded) > 1:
        report["members"] = [{"run": r, "accuracy": M.accuracy(p, labels), "macro_f1": M.macro_f1(p, labels)}
                             for r, p in zip(run_paths, all_probs)]
    asc = asc_scores(probs, labels, ds)
    if asc:
        report.update(asc)
        name = "ensemble" if len(loaded) > 1 else first.config.model
        f1s = M.classwise_f1(probs, labels, ds.segment_ids, ds.channel_ids, len(classes))
        report["tables"] = _classwise_table(name, *f1s, classes, report, out_dir,
                                            f"classwise_f1_{split}{suffix}")
    png = M.save_confusion_png(np.asarray(report["confusion"]), classes,
                               out_dir / f"confusion_{split}{suffix}.png",
                               title=f"{split}: acc {100 * report['accuracy']:.2f}%")
    report["confusion_png"] = str(png)
    write_json_atomic(report, out_dir / f"eval_{split}{suffix}.json")
    return report


def _classwise_table(name: str, official, paper, classes: list[str], report: dict, out_dir: Path,
                     stem: str) -> list[str]:
    # Choice: the class-wise table uses the official (segment-level) per-class F1; its last row is the
    # official macro-F1, and a second column holds the paper's per-channel definition.
    off, pap = f"{name} (official)", f"{name} (paper)"
    md, csv_text = M.class_f1_table({off: dict(zip(classes, official)), pap: dict(zip(classes, paper))},
                                    classes, {off: report["official_f1"], pap: report["paper_f1"]})
    return [str(p) for p in M.write_table(md, csv_text, out_dir, stem)]


def _cross_val(loaded, members, sets, scores, split: str, classes: list[str], out_dir: Path,
               suffix: str = "_crossval", roots: list[str] | None = None) -> dict:
    """Each run on its own split; accuracy, macro-F1 and the ASC F1s averaged over runs, confusions summed."""
    data = [getattr(getattr(lm, "config", None), "data", None) for lm in loaded]
    fold_ids = sorted(d.fold for d in data if d is not None and d.kind == "dcase2018")
    if fold_ids and fold_ids != [1, 2, 3, 4]:
        warnings.warn(f"--cross-val over data.fold {', '.join(map(str, fold_ids))}: the DCASE2018 "
                      f"development protocol averages folds 1-4, one run each (0 is a single-mode run)",
                      stacklevel=3)
    keys = [clip_keys(ds) for ds in sets]
    for i, j in itertools.combinations(range(len(sets)), 2):
        if keys[i] is not None and keys[i] == keys[j]:
            warnings.warn(f"{loaded[j].path}: scored on the same clips as {loaded[i].path}; --cross-val "
                          f"averages runs over different splits (one per fold)", stacklevel=3)
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
    if len(tables) == len(folds) and "official_f1" in report:
        official, paper = (np.mean([t[i] for t in tables], axis=0) for i in (0, 1))
        report["tables"] = _classwise_table("cross-val mean", official, paper, classes, report, out_dir,
                                            f"classwise_f1_{split}{suffix}")
    png = M.save_confusion_png(np.asarray(report["confusion"]), classes,
                               out_dir / f"confusion_{split}{suffix}.png",
                               title=f"{split}, {len(folds)} runs: mean acc {100 * report['accuracy']:.2f}%")
    report["confusion_png"] = str(png)
    write_json_atomic(report, out_dir / f"eval_{split}{suffix}.json")
    return report


def format_report(report: dict) -> str:
    mean = f"mean of {len(report['folds'])} runs, each on its own split: " if report.get("cross_val") else ""
    lines = [f"split {report['split']}  n={report['n']}  {mean}accuracy {100 * report['accuracy']:.2f}%  "
             f"macro-F1 {100 * report['macro_f1']:.2f}%"]
    for f in report.get("folds", []):
        asc = (f"  paper F1 {100 * f['paper_f1']:.2f}%  official F1 {100 * f['official_f1']:.2f}%"
               if "official_f1" in f else "")
        lines.append(f"  {f['run']}: n={f['n']}  accuracy {100 * f['accuracy']:.2f}%  "
                     f"macro-F1 {100 * f['macro_f1']:.2f}%{asc}")
    for m in report.get("members", []):
        lines.append(f"  member {m['run']}: accuracy {100 * m['accuracy']:.2f}%  "
                     f"macro-F1 {100 * m['macro_f1']:.2f}%")
    if "paper_f1" in report:
        lines.append(f"paper F1 (per channel, averaged) {100 * report['paper_f1']:.2f}%  "
                     f"official F1 (segment posteriors averaged) {100 * report['official_f1']:.2f}%")
    width = max(len(c) for c in report["per_class_f1"])
    for c, v in report["per_class_f1"].items():
        score = f"{100 * v:6.2f}%" if v is not None else "-  (no clips in this split, never predicted)"
        lines.append(f"  {c:<{width}}  F1 {score}")
    lines.append(f"confusion matrix: {report['confusion_png']}")
    return "\n".join(lines)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)
