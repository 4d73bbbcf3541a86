"""Per-epoch records of a run (`metrics.jsonl` / `epochs.jsonl`), shared by the trainer and both searches."""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import time
from pathlib import Path

from audionas.errors import UserError, warn
from audionas.utils.atomic import failed_writes_named, write_text_atomic
from audionas.utils.jsonio import read_json_lines
from audionas.utils.text import escape_controls


def trim_epoch_lines(path: Path, done_epochs: int) -> list[dict]:
    """Keep the lines of epochs the checkpoint has finished (a kill may have left a later one); returns them.
    Dropped epochs are said in one warning: the run logged them, then stopped before checkpointing them, so
    they run again.

    Choice: a cut-off last line (no newline; a crash mid-write, or a copy) is dropped like a later epoch; an
    unreadable earlier line, or a record without an integer `epoch`, is a UserError naming the file.
    """
    if not path.is_file():
        return []
    keep, dropped = [], []
    for n, rec in enumerate(read_json_lines(path, "one JSON object per epoch", drop_partial_last=True), 1):
        epoch = rec.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise UserError(f"{path}: record {n} has no integer 'epoch' (got {epoch!r})")
        (keep if epoch <= done_epochs else dropped).append(rec)
    if dropped:
        numbers = ", ".join(str(r["epoch"]) for r in dropped)
        if len(dropped) == 1:
            what, again = f"epoch {numbers} was", "it runs"
        else:
            what, again = f"epochs {numbers} were", "they run"
        warn(f"{path}: {what} logged, then the run stopped before saving its checkpoint: {again} again")
    write_text_atomic("".join(json.dumps(r) + "\n" for r in keep), path)
    return keep


def append_line(path: Path, record: dict) -> None:
    """Add one JSON line by rewriting the (small) file atomically: a kill never leaves half a line."""
    prev = path.read_text() if path.is_file() else ""
    write_text_atomic(prev + json.dumps(record) + "\n", path)


def format_record(record: dict, skip: tuple[str, ...] = ()) -> str:
    """One `key=value` line for the console, floats to 4 significant digits."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in record.items() if k not in skip)


class NullWriter:
    """The TensorBoard writer of a process that logs nothing (every rank but the main one)."""

    def add_scalar(self, *a, **k):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def _tb_call(folder: Path, call, *args, **kwargs):
    """`call(*args, **kwargs)` of TensorBoard's writer into `folder`; its write failure as a UserError naming
    the folder. Its writer thread's OSError (a full disk) comes back in the main thread at the next call,
    with no file name."""
    with failed_writes_named(f"{folder}: cannot write TensorBoard events", folder):
        return call(*args, **kwargs)


class NamedWriter:
    """A SummaryWriter whose write failures are one line naming its folder."""

    def __init__(self, writer, folder: Path):
        self._writer, self._folder = writer, folder

    def add_scalar(self, *args, **kwargs):
        return _tb_call(self._folder, self._writer.add_scalar, *args, **kwargs)

    def flush(self):
        return _tb_call(self._folder, self._writer.flush)

    def close(self):
        return _tb_call(self._folder, self._writer.close)


def check_tensorboard_path(run: Path) -> None:
    """UserError when TensorBoard cannot write into `run`/tb: its writer encodes the path as UTF-8, so a
    name with bytes that are not UTF-8 (which the rest of audionas handles) fails only after the data scan."""
    try:
        str(run).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"--out {escape_controls(str(run))}: not UTF-8 text, and TensorBoard writes only "
                        f"under UTF-8 paths; choose another --out") from None


@contextlib.contextmanager
def tensorboard_writer(run: Path, is_main: bool, first_new: int):
    """A SummaryWriter into `run/tb` on the main process, a NullWriter on the others, closed when the block
    ends however it ends (a writer left open keeps a thread and an event file until the process ends, and
    the scalars since its last flush unwritten). TensorBoard hides what an earlier start logged at
    x >= `first_new` (the first x this start logs): the steps and epochs a killed start logged past its last
    checkpoint, or everything when it saved none."""
    if not is_main:
        yield NullWriter()
        return
    from torch.utils.tensorboard import SummaryWriter

    folder = run / "tb"
    if folder.exists() and not folder.is_dir():  # else SummaryWriter's makedirs says only "File exists"
        raise UserError(f"{folder}: is a file, expected the run's TensorBoard folder; move the file away")
    _after_earlier_event_files(folder)
    writer = NamedWriter(_tb_call(folder, SummaryWriter, str(folder), purge_step=first_new), folder)
    try:
        yield writer
    except BaseException:
        with contextlib.suppress(Exception):  # the block's own error is the one to report
            writer.close()
        raise
    writer.close()


def log_step(writer, bar, tag: str, loss: float, lr: float, step: int) -> None:
    """A training step's loss and learning rate: TensorBoard's `tag/loss` and `tag/lr` at x = step, and the
    progress bar's postfix."""
    writer.add_scalar(f"{tag}/loss", loss, step)
    writer.add_scalar(f"{tag}/lr", lr, step)
    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")


def _after_earlier_event_files(tb: Path) -> None:
    """Wait, if needed, until this start's event file sorts after the earlier starts' ones: TensorBoard reads
    them in name order, `events.out.tfevents.<seconds>.<host>.<pid>.<counter>`, so a start in the same second
    as an earlier one could sort first ('...100' < '...99'), and the earlier start's events then hide this
    one's behind its own (a resume within a second of the first start, as in a test)."""
    stamps = [int(m[1]) for p in tb.glob("events.out.tfevents.*")
              if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", p.name))]
    wait = max(stamps, default=0) + 1 - time.time()
    if wait > 0:
        time.sleep(wait)


def log_epoch(path: Path, record: dict, writer) -> None:
    """An epoch's record (it holds `epoch`) to `path`; its numbers to TensorBoard as `epoch/<key>` and to the
    console (other values, such as a DARTS genotype, only to `path`).

    The TensorBoard x is the record's `step` when it has one (train, supernet: its per-step scalars share
    that axis, so one purge step hides both), else its epoch (DARTS, which logs per epoch only)."""
    other = tuple(k for k, v in record.items() if isinstance(v, bool) or not isinstance(v, (int, float)))
    x = record.get("step", record["epoch"])
    for k, v in record.items():
        if k not in ("epoch", "step") + other:
            writer.add_scalar(f"epoch/{k}", v, x)
    writer.flush()
    append_line(path, record)
    print(format_record(record, skip=other), file=sys.stderr)


def resume_line(run: Path, step: int, spe: int, epochs: int, when_done: str) -> str:
    """What a rerun does: continue at a 1-based epoch and the step within it, or `when_done` if finished."""
    if step >= spe * epochs:
        return f"{run}: already complete ({epochs} epoch{'s' if epochs != 1 else ''}); {when_done}"
    epoch = step // spe
    return f"resuming {run} at epoch {epoch + 1}/{epochs}, step {step - epoch * spe}/{spe}"


def check_diverged(run: Path, epoch: int, record: dict, remedy: str) -> None:
    """A UserError if an epoch's loss (`*_loss` in its record) is NaN or infinite: training on would only
    waste the run. Call it with totals reduced over ranks, so every rank stops together."""
    for name, value in record.items():
        if name.endswith("_loss") and not math.isfinite(value):
            raise UserError(f"{run}: training diverged in epoch {epoch} ({name} {value}); {remedy} (with "
                            f"another --out), or check the data for NaN or infinite values")
