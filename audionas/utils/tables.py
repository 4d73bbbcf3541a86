"""Tables as Markdown and CSV text (the reports' tables), written side by side."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from audionas.utils.atomic import atomic_write_all, text_writer


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown pipe table; each cell through str(), a `|` in it escaped (a run folder named `a|b` would
    otherwise split its cell in two)."""
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]
    return "\n".join(lines) + "\n"


def csv_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """The same table as CSV (quoted where needed, "\\n" line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_table(markdown: str, csv_text: str, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write a table as STEM.md and STEM.csv in `out_dir` (both or neither: atomic_write_all); returns both
    paths."""
    writes = table_writes(markdown, csv_text, out_dir, stem)
    atomic_write_all(writes)
    return list(writes)


def table_writes(markdown: str, csv_text: str, out_dir: str | os.PathLike, stem: str
                 ) -> dict[Path, Callable[[Any], object]]:
    """STEM.md and STEM.csv in `out_dir`, each with the `write` of atomic_write_all that writes it."""
    out = Path(out_dir)
    return {out / f"{stem}.md": text_writer(markdown), out / f"{stem}.csv": text_writer(csv_text)}
