"""The confusion-matrix PNG that training and evaluation write (a matplotlib Figure without pyplot: the
caller's backend is left alone)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audionas.errors import UserError, warn
from audionas.utils.atomic import atomic_write

MAX_INCHES = 24.0  # the figure's side: 2,400 px at its 100 dpi (40 classes at the 0.55 in per class below)
NUMBERED_CLASSES = 40  # above, cells are coloured but not numbered: numbers would not fit the capped figure


def save_confusion_png(cm, classes: list[str], path: str | Path, title: str = "") -> Path:
    """Confusion matrix (rows true, columns predicted) with class names, written atomically as PNG."""
    atomic_write(path, confusion_png(cm, classes, path, title))
    return Path(path)


def confusion_png(cm, classes: list[str], path: str | Path, title: str = "") -> Callable[[object], object]:
    """The confusion PNG drawn now, in memory, as the `write` of atomic_write_all: written together with the
    report it belongs to. `path` names the file in errors and warnings."""
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    if cm.shape != (len(classes), len(classes)):
        raise UserError(f"{path}: confusion matrix {cm.shape} does not match {len(classes)} classes")
    k = len(classes)
    # QA: 200 classes made an 11,200 px square image with 40,000 numbers (4.8 GB, 94 s to draw). The side is
    # capped at MAX_INCHES; the class names shrink to fit; cells are numbered up to NUMBERED_CLASSES only
    # (the counts are in the JSON report).
    size = min(MAX_INCHES, max(4.0, 0.55 * k + 2))
    fontsize = min(8.0, 0.8 * 72 * (size - 2) / max(k, 1))  # points: at most 80% of a cell's height
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=fontsize)
    ax.set_yticks(range(k), classes, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    thresh = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0] if k <= NUMBERED_CLASSES else 0):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > thresh else "black")
    png = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.tight_layout()
        fig.savefig(png, format="png", dpi=100)
    # matplotlib warns once per character its font lacks (CJK class names: dozens of lines): one line here.
    missing = [w for w in caught if "missing from font" in str(w.message)]
    for w in caught:
        if w not in missing:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:  # counted once per character, though each draw warns again
        chars = len({str(w.message) for w in missing})
        warn(f"{path}: the plot's font has no glyph for {chars} character(s) of the class names; "
             f"they are drawn as boxes")
    return lambda f: f.write(png.getvalue())
