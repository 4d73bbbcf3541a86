"""Classification scores (scikit-learn) and the ASC paper's two F1 definitions.

- `paper_f1`: macro-F1 computed on each microphone channel's predictions separately, then averaged over
  channels (the ASC paper: "macro-F1 score of each channel signal and then average them").
- `official_f1`: the DCASE2018 Task 5 baseline scoring: the four channel posteriors of a segment are averaged,
  argmax, then macro-F1 over segments (per fold; `audionas evaluate --cross-val` averages folds).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix as _sk_confusion
from sklearn.metrics import f1_score

from audionas.utils.tables import csv_table, markdown_table


def _as_preds(probs_or_preds) -> np.ndarray:
    a = np.asarray(probs_or_preds)
    return a.argmax(axis=1) if a.ndim == 2 else a.astype(np.int64)


def _num_classes(probs_or_preds, labels, num_classes: int | None) -> int:
    if num_classes is not None:
        return int(num_classes)
    a = np.asarray(probs_or_preds)
    if a.ndim == 2:
        return a.shape[1]
    return int(max(a.max(initial=-1), np.asarray(labels).max(initial=-1)) + 1)


def accuracy(probs_or_preds, labels) -> float:
    """Fraction of correct predictions (argmax of posteriors, or class indices); 0 for no items."""
    preds, labels = _as_preds(probs_or_preds), np.asarray(labels)
    return float((preds == labels).mean()) if len(labels) else 0.0


def scored_classes(probs_or_preds, labels) -> list[int]:
    """Classes with F1 defined: those with clips in `labels` or predicted at least once."""
    present = np.union1d(np.asarray(labels, dtype=np.int64), _as_preds(probs_or_preds))
    return [int(c) for c in present]


def macro_f1(probs_or_preds, labels) -> float:
    """Mean F1 over the scored classes.

    Choice: a class with no clips in the split and never predicted has no F1 and is left out of the mean
    (scikit-learn's default), instead of counting as 0: a small split that misses a class would otherwise
    show 100% accuracy as a lower macro-F1. Real Speech Commands / DCASE splits hold every class.
    """
    preds = _as_preds(probs_or_preds)
    scored = scored_classes(preds, labels)
    if not scored:
        return 0.0
    return float(f1_score(labels, preds, average="macro", labels=scored, zero_division=0))


def per_class_f1(probs_or_preds, labels, num_classes: int | None = None) -> np.ndarray:
    """F1 of each class (scikit-learn; 0 where a class is neither predicted nor present)."""
    n = _num_classes(probs_or_preds, labels, num_classes)
    return np.asarray(f1_score(labels, _as_preds(probs_or_preds), average=None, labels=list(range(n)),
                               zero_division=0), dtype=np.float64)


def confusion(probs_or_preds, labels, num_classes: int | None = None) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    n = _num_classes(probs_or_preds, labels, num_classes)
    return _sk_confusion(labels, _as_preds(probs_or_preds), labels=list(range(n)))


def classification_report(probs_or_preds, labels, classes: list[str]) -> dict:
    """accuracy, macro_f1, per-class F1 by name (None: no clips and never predicted), confusion, count."""
    n = len(classes)
    pcf = per_class_f1(probs_or_preds, labels, n)
    scored = set(scored_classes(probs_or_preds, labels))
    return {
        "n": int(len(labels)),
        "accuracy": accuracy(probs_or_preds, labels),
        "macro_f1": macro_f1(probs_or_preds, labels),
        "per_class_f1": {c: float(v) if i in scored else None for i, (c, v) in enumerate(zip(classes, pcf))},
        "confusion": confusion(probs_or_preds, labels, n).tolist(),
    }


def ensemble_probs(member_probs) -> np.ndarray:
    """An ensemble's posteriors: the plain mean of its members' softmax posteriors (N, classes).

    Choice: the papers do not say what is averaged; posteriors, not logits (a geometric mean, near a mean of
    logits, can pick a class no member ranks first)."""
    return np.mean(member_probs, axis=0)


def paper_f1(probs_or_preds, labels, channel_ids) -> float:
    """Macro-F1 over the classes for each channel's predictions separately, averaged over channels."""
    preds, labels, ch = _as_preds(probs_or_preds), np.asarray(labels), np.asarray(channel_ids)
    if not (len(preds) == len(labels) == len(ch)):
        raise ValueError("paper_f1: predictions, labels and channel_ids must have the same length")
    scores = [macro_f1(preds[ch == c], labels[ch == c]) for c in np.unique(ch)]
    return float(np.mean(scores)) if scores else 0.0


def segment_posteriors(probs, labels, segment_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment ids, mean posterior per segment, label per segment); a segment's channels must agree."""
    probs, labels, seg = np.asarray(probs, dtype=np.float64), np.asarray(labels), np.asarray(segment_ids)
    if probs.ndim != 2:
        raise ValueError("official_f1 needs class posteriors (N, classes), not hard predictions")
    uniq, inv = np.unique(seg, return_inverse=True)
    sums = np.zeros((len(uniq), probs.shape[1]))
    np.add.at(sums, inv, probs)
    counts = np.bincount(inv, minlength=len(uniq))[:, None]
    seg_labels = np.full(len(uniq), -1, dtype=np.int64)
    seg_labels[inv] = labels
    if np.any(seg_labels[inv] != labels):
        raise ValueError("official_f1: the channels of one segment carry different labels")
    return uniq, sums / counts, seg_labels


def official_f1(probs, labels, segment_ids) -> float:
    """DCASE2018 Task 5 scoring: average the channel posteriors of each segment, argmax, macro-F1."""
    _, seg_probs, seg_labels = segment_posteriors(probs, labels, segment_ids)
    return macro_f1(seg_probs, seg_labels)


def _scored_f1(probs_or_preds, labels, n_classes: int) -> np.ndarray:
    """per_class_f1 with NaN for the classes that have no F1 (no clips and never predicted)."""
    f1 = per_class_f1(probs_or_preds, labels, n_classes)
    unscored = np.ones(n_classes, dtype=bool)
    unscored[scored_classes(probs_or_preds, labels)] = False
    f1[unscored] = np.nan
    return f1


def mean_scored(tables) -> np.ndarray:
    """Element-wise mean of per-class F1 arrays over the ones that score each class (NaN where none does)."""
    a = np.asarray(tables, dtype=np.float64)
    counts = (~np.isnan(a)).sum(axis=0)
    return np.where(counts > 0, np.nansum(a, axis=0) / np.maximum(counts, 1), np.nan)


def classwise_f1(probs, labels, segment_ids, channel_ids, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 of the official scoring (segment posteriors) and of the paper's (per channel, mean); NaN
    for a class with no F1 (no clips, never predicted), as the JSON's None and the macro-F1s leave it out.
    A class without clips that only some channels predict is averaged over those channels, so the paper
    column's mean can then differ from paper_f1 (a mean over channels of each channel's macro-F1)."""
    seg, ch = np.asarray(segment_ids), np.asarray(channel_ids)
    _, seg_probs, seg_labels = segment_posteriors(probs, labels, seg)
    seg_pcf = _scored_f1(seg_probs, seg_labels, n_classes)
    chan_pcf = mean_scored([_scored_f1(probs[ch == c], labels[ch == c], n_classes) for c in np.unique(ch)])
    return seg_pcf, chan_pcf


def class_f1_table(systems: dict[str, dict[str, float]], classes: list[str],
                   totals: dict[str, float]) -> tuple[str, str]:
    """The ASC paper's Table 2 layout: rows = classes then "F1 score", columns = systems; values in %.

    `systems[name][class]` and `totals[name]` are F1 values in [0, 1]; NaN (a class with no F1) shows as "-".
    Returns (markdown, csv).
    """
    names = list(systems)
    rows = [[c] + [f"{100 * v:.1f}" if not np.isnan(v := systems[s][c]) else "-" for s in names]
            for c in classes]
    rows.append(["F1 score"] + [f"{100 * totals[s]:.1f}" for s in names])
    header = ["Class"] + names
    return markdown_table(header, rows), csv_table(header, rows)


def asc_scores(probs, labels, ds) -> dict:
    """The ASC paper's and the official F1 when the items carry segment and channel ids, else {}."""
    if not has_asc_ids(ds):
        return {}
    return {"paper_f1": paper_f1(probs, labels, ds.channel_ids),
            "official_f1": official_f1(probs, labels, ds.segment_ids)}


def has_asc_ids(ds) -> bool:
    """Whether the items carry the segment and channel ids the ASC F1s (and their class-wise table) need."""
    return getattr(ds, "segment_ids", None) is not None and getattr(ds, "channel_ids", None) is not None
