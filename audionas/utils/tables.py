"""Tables as Markdown and CSV text (the reports' tables), written side by side."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from audionas.utils.atomic import write_text_atomic


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown pipe table; each cell through str()."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """The same table as CSV (quoted where needed, "\\n" line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_table(markdown: str, csv_text: str, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write a table as STEM.md and STEM.csv in `out_dir` (atomically); returns both paths."""
    out = Path(out_dir)
    paths = [out / f"{stem}.md", out / f"{stem}.csv"]
    write_text_atomic(markdown, paths[0])
    write_text_atomic(csv_text, paths[1])
    return paths
