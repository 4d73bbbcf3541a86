"""Atomic file writes: a temporary file beside the target, fsynced, then renamed over it (a kill leaves the
old file or the new one, never half of one)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import glob
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from audionas.console import stops_held
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


# Choice: an empty temporary file younger than this may be a live write's between its mkstemp and its flock
# (a dead write's empty file is removed by a later write); one with data is always locked by a live write.
FRESH_EMPTY_SECONDS = 60


def _remove_unless_locked(path: Path) -> None:
    """Unlink a temporary file unless a live write holds its lock (a dead process holds none) or may be about
    to take it (FRESH_EMPTY_SECONDS)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # gone already
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        st = os.fstat(fd)
        if st.st_size == 0 and time.time() - st.st_mtime < FRESH_EMPTY_SECONDS:
            return
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # another process is writing it
    finally:
        os.close(fd)


# The errors of a write that the user can mend (space, quota, permissions, a read-only or failing disk).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}


def write_failure(e: BaseException, folder: Path) -> str | None:
    """Why a write into `folder` failed, when an OSError of a write says so: `e` itself or one in its chain
    (torch.save and libsndfile wrap it in their own errors); None for anything else (a bug, Ctrl-C, another
    OSError; and everything under AUDIONAS_DEBUG), to be raised as it is. An OSError without an errno (numpy's
    short write) on a full disk reads as the disk being full."""
    if not isinstance(e, Exception) or isinstance(e, UserError) or os.environ.get("AUDIONAS_DEBUG"):
        return None
    seen: BaseException | None = e
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ if seen.__cause__ is not None or seen.__suppress_context__ else seen.__context__
    full = False
    with contextlib.suppress(OSError):
        stat = os.statvfs(folder)
        full = stat.f_bavail == 0 or bool(stat.f_files and stat.f_favail == 0)  # 0 files: not counted there
    if seen is None:
        return os.strerror(errno.ENOSPC) if full and type(e).__name__ == "LibsndfileError" else None
    if seen.errno is None:
        return os.strerror(errno.ENOSPC) if full else str(seen)
    return seen.strerror if seen.errno in _WRITE_ERRNOS else None


@contextlib.contextmanager
def failed_writes_named(message: str, folder: Path, cleanup: Callable[[], object] | None = None):
    """Run the block; when it fails, run `cleanup` and, for a write's failure (write_failure: read before the
    cleanup, which may free a full disk), raise UserError `{message} ({why})` instead of the error."""
    try:
        yield
    except BaseException as e:
        why = write_failure(e, folder)
        if cleanup is not None:
            cleanup()
        if why is None:
            raise
        raise UserError(f"{message} ({why})") from None


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call `write(binary_file)` on a temporary file beside `path`, fsync, then rename over `path`.

    Temporary files of `path` left by a killed earlier write (a kill -9 skips atomic_write_all's clean-up) are
    removed first, so a rerun does not leave them behind. A write holds a lock on its temporary file until it
    is renamed, so the temporary file of another live write of the same path (two commands on one run folder)
    is left alone."""
    atomic_write_all({path: write})


def atomic_write_all(writes: Mapping[str | os.PathLike, Callable[[Any], object]]) -> None:
    """atomic_write for files that belong together (a table's .md and .csv, a figure's .png and .svg): every
    temporary file is written and fsynced before the first is renamed, so a failed write (a full disk, a
    folder that is not writable, a file that cannot be drawn) leaves all the old files, not the first file new
    and the second old. A stop (Ctrl-C, SIGTERM) during the renames is held until they are over; only a
    rename refused between them (an immutable target) still leaves some files new and some old."""
    paths = [Path(p) for p in writes]
    if len({p.resolve() for p in paths}) < len(paths):
        raise ValueError(f"atomic_write_all: a file given twice in {[str(p) for p in paths]}")
    for path in paths:
        if path.is_dir():
            raise UserError(f"{path}: is a directory (expected a file path)")
    made: list[Path] = []  # folders made for the files, deepest first
    temps: list[str] = []
    files: list[Any] = []  # open, so locked, until renamed: another write's clean-up of leftovers skips them

    def clean_up() -> None:  # the temporary files, and the folders made for the files (when left empty)
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for d in made:
            with contextlib.suppress(OSError):  # not empty (a file of its own), or not made after all
                d.rmdir()

    try:
        for path, write in zip(paths, writes.values()):
            try:
                made[:0] = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
                path.parent.mkdir(parents=True, exist_ok=True)
                # The name cut to leave room for ".", ".", 8 random characters and ".tmp" in 255 bytes.
                prefix = "." + os.fsdecode(os.fsencode(path.name)[:241]) + "."
                for stale in tempfile_leftovers(path.parent, prefix, ".tmp"):
                    _remove_unless_locked(stale)
                with stops_held():  # a Ctrl-C between the two would leave the temporary file unnamed here
                    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
                    temps.append(tmp)
                # Locked at once: another write's clean-up of leftovers removes an unlocked one (QA: 1 in 8 of
                # two `features --out` of one file at once lost its temporary file), unless it is still empty
                # and fresh (_remove_unless_locked). Held until it is closed.
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError:
                    os.close(fd)
                    raise
                files.append(os.fdopen(fd, "wb"))
            except OSError as e:
                blocker = next((p for p in path.parents if p.exists()), None)
                why = (f"{blocker} is a file, expected a folder" if blocker and not blocker.is_dir()
                       else e.strerror)
                raise UserError(f"{path}: cannot write ({why})") from None
            # From here on, however it stops (Ctrl-C included), the temporary files are removed.
            with failed_writes_named(f"{path}: cannot write", path.parent):
                f = files[-1]
                os.fchmod(f.fileno(), open_mode())
                write(f)
                f.flush()
                os.fsync(f.fileno())
        with stops_held():  # a stop between the renames would leave some files new, some old
            for path, tmp in zip(paths, temps):
                with failed_writes_named(f"{path}: cannot write", path.parent):
                    os.replace(tmp, path)
    except BaseException:
        clean_up()
        raise
    finally:
        for f in files:
            with contextlib.suppress(OSError):
                f.close()


def text_writer(text: str) -> Callable[[Any], object]:
    """The `write` of atomic_write for `text` as UTF-8."""
    return lambda f: f.write(text.encode())


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """`text` as UTF-8 to `path`, atomically."""
    atomic_write(Path(path), text_writer(text))


def json_writer(obj: Any) -> Callable[[Any], object]:
    """The `write` of atomic_write for `obj` as indented JSON."""
    return text_writer(json.dumps(obj, indent=2) + "\n")


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    """`obj` as indented JSON to `path`, atomically."""
    atomic_write(Path(path), json_writer(obj))
