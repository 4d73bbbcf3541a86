"""Atomic checkpoints (write then rename) and safe loading (weights_only, never unpickle user data)."""

from __future__ import annotations

import fcntl
import functools
import glob
import json
import math
import numbers
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from audionas.errors import UserError


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def open_mode(folder: bool = False) -> int:
    """The permissions open()/mkdir() would give a new file or folder under this process's umask: temporary
    files from tempfile are owner-only (0600 / 0700), and renamed into place they would stay so."""
    return (0o777 if folder else 0o666) & ~_umask()


def tempfile_leftovers(folder: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Entries of `folder` named as tempfile names its files and folders with `prefix` and `suffix` (8
    random characters between them): what a killed process that made them left behind."""
    return list(folder.glob(glob.escape(prefix) + "?" * 8 + glob.escape(suffix)))


def _remove_unless_locked(path: Path) -> None:
    """Unlink a temporary file unless a live write holds its lock (a dead process holds none)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # gone already
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # another process is writing it
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call `write(binary_file)` on a temporary file beside `path`, fsync, then rename over `path`.

    Temporary files of `path` left by a killed earlier write (a kill -9 skips the cleanup below) are removed
    first, so a rerun does not leave them behind. A write holds a lock on its temporary file, so the temporary
    file of another live write of the same path (two commands on one run folder) is left alone."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory (expected a file path)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in tempfile_leftovers(path.parent, f".{path.name}.", ".tmp"):
            _remove_unless_locked(stale)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists()), None)
        why = f"{blocker} is a file, expected a folder" if blocker and not blocker.is_dir() else e.strerror
        raise UserError(f"{path}: cannot write ({why})") from None
    try:  # from here on, however it stops (Ctrl-C included), the temporary file is removed
        with os.fdopen(fd, "wb") as f:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is closed, or the process ends
            os.fchmod(fd, open_mode())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside `path`, then rename over it."""
    atomic_write(Path(path), lambda f: torch.save(obj, f))


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    write_text_atomic(json.dumps(obj, indent=2) + "\n", path)


_JSON_TYPES = {dict: "object", list: "array"}


def is_json_int(value: Any) -> bool:
    """An integer as JSON gives it (Python's bool is an int, JSON's true is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) a float holds: not NaN, not infinite, not an integer beyond float range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer of 309 digits or more (JSON and YAML read any length)
        return False


def is_fraction(value: Any) -> bool:
    """A finite number in [0, 1] (an accuracy or F1 score as audionas writes them)."""
    return is_finite_number(value) and 0 <= value <= 1


def accuracy_field(where: str, key: str, value: Any) -> float:
    """`value` of field `key` read at `where` (a file, or a record in one) as an accuracy in [0, 1]; anything
    else is a UserError naming both."""
    if not is_fraction(value):
        raise UserError(f"{where}: field '{key}': expected an accuracy in [0, 1], got {value!r}")
    return float(value)


def _json_type(value: Any) -> str:
    for t, name in _JSON_TYPES.items():
        if isinstance(value, t):
            return name
    return {str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def read_json(path: str | os.PathLike, what: str, kind: type | None = dict) -> Any:
    """Parse a JSON file a user may have edited; a missing, unreadable, non-UTF-8 or invalid file, or a top
    level that is not `kind` (dict: an object, list: an array, None: anything) is a UserError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (expected {what})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder (expected {what})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (expected {what})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno} (expected {what})") from None
    if kind is not None and not isinstance(data, kind):
        raise UserError(f"{path}: expected {what} (a JSON {_JSON_TYPES.get(kind, kind.__name__)}), "
                        f"got a JSON {_json_type(data)}")
    return data


def read_json_lines(path: str | os.PathLike, what: str, drop_partial_last: bool = False) -> list[dict]:
    """The JSON objects of a `.jsonl` file, one per non-blank line; anything else is a UserError naming the
    file and line. With `drop_partial_last`, an unparsable last line without its newline (a kill mid-write)
    is ignored."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (expected {what})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    lines = raw.split(b"\n")
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if drop_partial_last and n == len(lines):  # no newline after it: cut by a kill
                break
            raise UserError(f"{path} line {n}: not a JSON line (expected {what})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path} line {n}: expected a JSON object ({what}), got a JSON {_json_type(rec)}")
        out.append(rec)
    return out


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with weights_only=True; a missing or foreign file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle protocol before failing on it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt, truncated, or holds arbitrary objects
        if isinstance(e, pickle.UnpicklingError):
            why = "not a torch checkpoint, or one holding objects other than tensors and plain data"
        elif "zip archive" in str(e):
            why = "truncated, or not a torch checkpoint"
        elif isinstance(e, (PermissionError, IsADirectoryError)):
            why = f"cannot be read: {e.strerror or e}"
        elif isinstance(e, OSError):  # torch's zip reader on a file cut past its first few KB: EINVAL
            why = "truncated, or not a torch checkpoint"
        else:  # e.g. a text file: torch's legacy loader fails with a bare KeyError
            why = "not a torch checkpoint (expected a torch.save file of tensors and plain data)"
        if path.suffix == ".pt2":  # what `audionas export` writes: a program, not a training checkpoint
            why = "an exported program: give the run folder or its final.pt"
        raise UserError(f"{path}: not a readable audionas checkpoint ({why})") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not an audionas checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


NOT_THIS_RUN = "does not fit this run: it holds another network's weights"


def load_weights(module: torch.nn.Module, ck: dict, key: str, path: str | os.PathLike,
                 what: str = NOT_THIS_RUN) -> None:
    """`module.load_state_dict(ck[key])`; weights that are missing or of another network are a UserError
    `{path}: {what} (the first mismatch)`. The default `what` is for a resumed run's checkpoint."""
    state = ck.get(key)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{path}: field '{key}': expected the network weights (a state dict of tensors)")
    # Training stops when it diverges, so such weights come from a damaged or edited file: they would
    # predict NaN (evaluate's argmax still gives an accuracy) and export a NaN program without a word.
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())),
               None)
    if bad is not None:
        raise UserError(f"{path}: field '{key}': weight '{bad}' holds NaN or infinite values (a damaged or "
                        f"edited checkpoint)")
    try:
        module.load_state_dict(state)
    except RuntimeError as e:  # torch's first line names only the class; the next one the first mismatch
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__
        raise UserError(f"{path}: {what} ({detail[:160]})") from None


def load_resume_checkpoint(path: str | os.PathLike, steps_per_epoch: int, world_size: int,
                           required: tuple[str, ...] = (), data: dict | None = None) -> dict | None:
    """The checkpoint to resume from, or None when there is none yet. Exact resume replays the same batches,
    so one saved with another number of steps per epoch or of processes is a UserError; so is one without
    the `required` entries (optimizer, RNG states, ...) the run restores, and one whose `data` entries
    (classes, split sizes, ...; compared when the checkpoint has them) differ: the dataset changed."""
    path = Path(path)
    if not path.is_file():
        return None
    # Read on the CPU: RNG and sampler states must be CPU tensors, and optimizer steps stay where they load
    # (on a GPU, Adam would sync on every step); load_state_dict moves weights and moments to the device.
    ck = load_checkpoint(path, map_location="cpu")
    missing = [k for k in required if k not in ck]
    if missing:
        raise UserError(f"{path}: no {', '.join(repr(k) for k in missing)} entry (not a checkpoint this kind "
                        f"of run writes); choose another --out")
    for key, now in (data or {}).items():
        if key in ck and ck[key] != now:
            # band statistics are 2 x bands numbers: named, not printed
            what = ("other band statistics" if key == "band_statistics"
                    else "other clips in its train or val split" if key == "split_fingerprint"
                    else f"{key} {ck[key]}, the data now has {now}")
            raise UserError(f"{path}: the run started on data with {what} (the dataset changed); restore it "
                            f"or choose another --out")
    saved = (ck.get("steps_per_epoch"), ck.get("world_size", world_size))
    if saved[1] != world_size:  # each process's batches follow from the process count
        how = ("in one process (without torchrun)" if saved[1] == 1
               else f"with {saved[1]} processes (torchrun)")
        raise UserError(f"{path}: saved on {saved[1]} process(es), now {world_size}: resume it {how}, or "
                        f"choose another --out")
    if saved[0] != steps_per_epoch:
        raise UserError(f"{path}: saved with {saved[0]} steps per epoch, now {steps_per_epoch} (dataset or "
                        f"batch size changed); choose another --out")
    return ck
