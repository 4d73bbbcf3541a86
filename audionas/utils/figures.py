"""Saving matplotlib figures: atomically, and the same bytes for the same figure (an SVG gets no date and
fixed element ids), so two identical runs write identical files."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from audionas.utils.atomic import atomic_write_all


def save_figures(fig, dpis: dict[str | Path, float | None]) -> list[Path]:
    """Write `fig` to each path at its dpi, all or none (atomic_write_all); returns the paths."""
    import matplotlib

    def writer(path: Path, dpi: float | None):
        fmt = path.suffix.lstrip(".").lower()
        metadata = {"Date": None} if fmt in ("svg", "pdf") else None
        return partial(fig.savefig, format=fmt, dpi=dpi, metadata=metadata)

    paths = [Path(p) for p in dpis]
    with matplotlib.rc_context({"svg.hashsalt": "audionas"}):
        atomic_write_all({p: writer(p, dpi) for p, dpi in zip(paths, dpis.values())})
    return paths
