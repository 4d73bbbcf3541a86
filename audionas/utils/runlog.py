"""Per-epoch records of a run (`metrics.jsonl` / `epochs.jsonl`), shared by the trainer and both searches."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from audionas.utils.checkpoint import write_text_atomic


def trim_epoch_lines(path: Path, done_epochs: int) -> None:
    """Keep the lines of epochs the checkpoint has finished (a kill may have left a later one)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln)["epoch"] <= done_epochs]
    write_text_atomic("".join(ln + "\n" for ln in keep), path)


def append_line(path: Path, record: dict) -> None:
    """Add one JSON line by rewriting the (small) file atomically: a kill never leaves half a line."""
    prev = path.read_text() if path.is_file() else ""
    write_text_atomic(prev + json.dumps(record) + "\n", path)


def format_record(record: dict, skip: tuple[str, ...] = ()) -> str:
    """One `key=value` line for the console, floats to 4 significant digits."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in record.items() if k not in skip)


def log_epoch(path: Path, record: dict, writer) -> None:
    """An epoch's record (it holds `epoch`) to TensorBoard as `epoch/<key>`, to `path` and to the console."""
    for k, v in record.items():
        if k not in ("epoch", "step"):
            writer.add_scalar(f"epoch/{k}", v, record["epoch"])
    writer.flush()
    append_line(path, record)
    print(format_record(record), file=sys.stderr)
