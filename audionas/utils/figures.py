"""Saving matplotlib figures: atomically, and the same bytes for the same figure (an SVG gets no date and
fixed element ids), so two identical runs write identical files."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from audionas.utils.atomic import atomic_write


def save_figure(fig, path: str | Path, dpi: float | None = None) -> Path:
    """Write `fig` to `path` in the format its suffix names (png, svg, pdf); returns the path."""
    import matplotlib

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    with matplotlib.rc_context({"svg.hashsalt": "audionas"}):
        atomic_write(path, partial(fig.savefig, format=fmt, dpi=dpi, metadata=metadata))
    return path
