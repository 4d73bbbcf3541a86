"""atomic_write: a write is whole or absent, whatever stops it (an error, a kill, a Ctrl-C), and leaves no
temporary file behind on a rerun."""

import json
import os
import signal
import subprocess
import sys

import pytest

from audionas.errors import UserError
from audionas.utils.atomic import atomic_write_all, text_writer, write_json_atomic, write_text_atomic
from audionas.utils.checkpoint import load_checkpoint, save_atomic


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"v": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_atomic({"v": Boom()}, path)
    assert load_checkpoint(path)["v"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_files_written_together_are_all_new_or_all_old(tmp_path):
    # Before (QA): report wrote table2.md, then failed on table2.csv: a new .md beside the old .csv.
    a, b = tmp_path / "t.md", tmp_path / "t.csv"
    atomic_write_all({a: text_writer("old md"), b: text_writer("old csv")})

    def fails(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match=r"t.csv: cannot write \(No space left on device\)"):
        atomic_write_all({a: text_writer("new md"), b: fails})
    assert (a.read_text(), b.read_text()) == ("old md", "old csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md"]  # no temporary file left
    b.unlink()
    b.mkdir()
    with pytest.raises(UserError, match="t.csv: is a directory"):
        atomic_write_all({a: text_writer("new md"), b: text_writer("new csv")})
    assert a.read_text() == "old md"
    atomic_write_all({a: text_writer("new md"), tmp_path / "sub" / "x.csv": text_writer("x")})
    assert a.read_text() == "new md" and (tmp_path / "sub" / "x.csv").read_text() == "x"


def test_files_written_together_keep_their_temp_files_until_renamed(tmp_path):
    # Review: names alike in their first 241 bytes share a temporary-file prefix, and the second file's
    # clean-up of leftovers deleted the first's unlocked temporary file: a FileNotFoundError traceback.
    stem = "d" * 240
    md, csv = tmp_path / f"{stem}.md", tmp_path / f"{stem}.csv"
    atomic_write_all({md: text_writer("md"), csv: text_writer("csv")})
    assert (md.read_text(), csv.read_text()) == ("md", "csv")
    with pytest.raises(ValueError, match="given twice"):
        atomic_write_all({str(tmp_path / "a"): text_writer("1"), tmp_path / "a": text_writer("2")})


def test_a_failed_write_of_files_together_removes_every_folder_it_made(tmp_path):
    # Review: the clean-up stopped at the first folder it could not remove, leaving n1/a behind.
    (tmp_path / "blk").write_text("a file")
    with pytest.raises(UserError, match=r"blk/sub/y: cannot write \(.*blk is a file, expected a folder\)"):
        atomic_write_all({tmp_path / "n1" / "a" / "x": text_writer("x"),
                          tmp_path / "blk" / "sub" / "y": text_writer("y")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blk"]


def test_a_write_killed_midway_leaves_a_temp_file_the_next_write_removes(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"v": 1}, path)
    other = tmp_path / ".last.pt.x.abcd1234.tmp"  # another file's temp name: not ours to remove
    other.write_bytes(b"")
    code = ("import os, signal, sys; from audionas.utils.atomic import atomic_write; "
            "atomic_write(sys.argv[1], lambda f: (f.write(b'half'), f.flush(), os.kill(os.getpid(), "
            "signal.SIGKILL)))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)])
    assert proc.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".last.pt.*.tmp"))) == 2  # the killed write's half file is left
    assert load_checkpoint(path)["v"] == 1
    save_atomic({"v": 2}, path)  # the rerun writes the same file again
    assert load_checkpoint(path)["v"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "last.pt"]


def test_the_temp_file_of_a_live_write_of_the_same_path_is_left_alone(tmp_path):
    # before: two commands writing one file (two evaluations of a run) deleted each other's temp file
    import fcntl
    import os

    path = tmp_path / "eval_test.json"
    live = tmp_path / ".eval_test.json.live1234.tmp"
    live.write_bytes(b"half")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the other process's write holds it
    try:
        save_atomic({"v": 1}, path)
        assert live.read_bytes() == b"half" and load_checkpoint(path)["v"] == 1
    finally:
        os.close(fd)
    save_atomic({"v": 2}, path)  # the other write is gone: its file is a leftover now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_test.json"]


def test_a_write_holds_its_temp_file_against_another_write_of_the_same_path(tmp_path):
    # the second write starts while the first is mid-way: the first's temp file is a live write's
    from audionas.utils.atomic import atomic_write

    path = tmp_path / "eval_test.json"

    def write(f):
        f.write(b'{"v": 1}')
        write_json_atomic({"v": 2}, path)

    atomic_write(path, write)  # before: the inner write removed the outer's temp file, whose rename failed
    assert json.loads(path.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_test.json"]


def test_a_temp_file_is_locked_before_another_write_can_clean_it_up(tmp_path, monkeypatch):
    # Before (QA): the lock came after the file was opened for writing; another process's clean-up of
    # leftovers in between removed it (1 in 8 of two `features --out` of one file at once failed).
    from audionas.utils import atomic

    path = tmp_path / "x.npy"
    fdopen = atomic.os.fdopen

    def cleanup_first(fd, *args):  # the other process's clean-up, between the open and the write
        for stale in atomic.tempfile_leftovers(tmp_path, ".x.npy.", ".tmp"):
            atomic._remove_unless_locked(stale)
        return fdopen(fd, *args)

    monkeypatch.setattr(atomic.os, "fdopen", cleanup_first)
    atomic.write_text_atomic("mine", path)
    assert path.read_text() == "mine"


def test_a_temp_file_just_made_and_not_yet_locked_is_not_cleaned_up(tmp_path, monkeypatch):
    # Before (review): between mkstemp and flock another write's clean-up removed the new, still unlocked
    # file; the rename then failed (0.5% of 3 processes writing one file).
    import os

    from audionas.utils import atomic

    path = tmp_path / "x.npy"
    mkstemp = atomic.tempfile.mkstemp

    def cleanup_after(*args, **kwargs):  # the other process's clean-up, before this write locks its file
        made = mkstemp(*args, **kwargs)
        for stale in atomic.tempfile_leftovers(tmp_path, ".x.npy.", ".tmp"):
            atomic._remove_unless_locked(stale)
        return made

    monkeypatch.setattr(atomic.tempfile, "mkstemp", cleanup_after)
    atomic.write_text_atomic("mine", path)
    assert path.read_text() == "mine"
    monkeypatch.undo()
    old = tmp_path / ".x.npy.dead1234.tmp"  # a write killed before it wrote anything, long ago
    old.write_bytes(b"")
    os.utime(old, (0, 0))
    atomic.write_text_atomic("again", path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_write_json_atomic(tmp_path):
    write_json_atomic({"a": 1}, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text().strip().startswith("{")


def test_atomic_write_over_a_directory_is_a_user_error(tmp_path):
    from audionas.utils.atomic import write_text_atomic

    with pytest.raises(UserError, match="is a directory"):
        write_text_atomic("x", tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_atomic_write_below_a_file_names_the_file(tmp_path):
    # Before: 'x/out.pt2: cannot write (File exists)', which did not say that x is a file.
    from audionas.utils.atomic import write_text_atomic

    (tmp_path / "x").write_text("mine")
    with pytest.raises(UserError, match=rf"out\.pt2: cannot write \({tmp_path / 'x'} is a file, expected a "
                                        rf"folder\)$"):
        write_text_atomic("y", tmp_path / "x" / "sub" / "out.pt2")
    assert (tmp_path / "x").read_text() == "mine"


def test_atomic_writes_get_the_permissions_open_would_give(tmp_path):
    # Before: tempfile's owner-only 0600 stayed on every run file (config, checkpoints, metrics).
    save_atomic({"x": 1}, tmp_path / "last.pt")
    write_json_atomic({"x": 1}, tmp_path / "a.json")
    (tmp_path / "plain").write_bytes(b"")
    want = (tmp_path / "plain").stat().st_mode & 0o777
    assert [(tmp_path / n).stat().st_mode & 0o777 for n in ("last.pt", "a.json")] == [want, want]


def test_ctrl_c_right_after_the_temp_file_is_made_removes_it(tmp_path, monkeypatch):
    # Before: locking and chmod-ing the new temporary file ran outside the cleanup (QA: 1 stray of 9 Ctrl-Cs
    # sent as the file appeared).
    import fcntl

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(fcntl, "flock", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"v": 1}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_during_the_renames_lands_after_the_last_one(tmp_path, monkeypatch):
    # Before (QA): a Ctrl-C between the renames of files written together (evaluate's PNG, tables and
    # report) left some new and some old; 3 of 40 stops sent as the files appeared.
    import os

    replace, done = os.replace, []

    def replace_then_ctrl_c(src, dst):
        replace(src, dst)
        done.append(dst)
        if len(done) == 1:
            signal.raise_signal(signal.SIGINT)  # Python's own handler: a KeyboardInterrupt, held here

    for name in ("a.png", "b.json"):
        (tmp_path / name).write_text("old")
    monkeypatch.setattr(os, "replace", replace_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_all({tmp_path / "a.png": text_writer("new"), tmp_path / "b.json": text_writer("new")})
    assert [(tmp_path / n).read_text() for n in ("a.png", "b.json")] == ["new", "new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.json"]


def test_an_atomic_write_fsyncs_the_temp_file_before_renaming_it(tmp_path, monkeypatch):
    # Mutation audit: dropping the fsync passed every test; after a power cut the renamed file could be empty.
    import os

    from audionas.utils.atomic import write_text_atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_text_atomic("hello", tmp_path / "f.txt")
    assert [e[0] for e in events] == ["fsync", "replace"] and events[0][1] == events[1][1]
    assert (tmp_path / "f.txt").read_text() == "hello"


def test_a_full_disk_is_a_user_error_naming_the_file(small_disk):
    # Before (QA): torch.save's "RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos"
    # traceback, or a bare "No space left on device" naming no file.
    import numpy as np
    import torch

    from audionas.utils.atomic import atomic_write, write_text_atomic

    disk = small_disk(64)
    for path, write in ((disk / "last.pt", lambda p: save_atomic({"w": torch.zeros(100_000)}, p)),
                        (disk / "table.md", lambda p: write_text_atomic("x" * 200_000, p)),
                        (disk / "f.npy", lambda p: atomic_write(p, lambda f: np.save(f, np.zeros(100_000))))):
        with pytest.raises(UserError) as e:
            write(path)
        assert str(e.value) == f"{path}: cannot write (No space left on device)"
        assert not list(disk.iterdir())


def test_a_failed_write_removes_the_folders_it_made_for_the_file(small_disk):
    # Before (QA): `features --out full/sub/f.npy` on a full disk left an empty sub/ behind.
    import torch

    disk = small_disk(64)
    (disk / "kept").mkdir()
    for path in (disk / "sub" / "deeper" / "last.pt", disk / "kept" / "new" / "last.pt"):
        with pytest.raises(UserError, match="No space left on device"):
            save_atomic({"w": torch.zeros(100_000)}, path)
    assert [p.name for p in disk.iterdir()] == ["kept"] and not list((disk / "kept").iterdir())


def test_write_failure_reads_an_os_error_in_the_chain_and_leaves_other_errors_alone(tmp_path, monkeypatch):
    import errno
    import os

    from audionas.utils.atomic import write_failure

    try:
        try:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        except OSError:
            raise RuntimeError("enforce fail") from None  # suppressed: torch's wrapper does not do this
    except RuntimeError as e:
        assert write_failure(e, tmp_path) is None
    try:
        try:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        except OSError:
            raise RuntimeError("enforce fail")  # noqa: B904 -- torch's wrapper, chained implicitly
    except RuntimeError as e:
        assert write_failure(e, tmp_path) == "Read-only file system"
    for other in (ValueError("a bug"), UserError("said already"), KeyboardInterrupt(),
                  OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))):  # not a write's: a process limit
        assert write_failure(other, tmp_path) is None
    monkeypatch.setenv("AUDIONAS_DEBUG", "1")  # the traceback asked for
    assert write_failure(OSError(errno.EROFS, os.strerror(errno.EROFS)), tmp_path) is None
    monkeypatch.delenv("AUDIONAS_DEBUG")
    short = OSError("4040 requested and 992 written")  # numpy's short write: no errno
    assert write_failure(short, tmp_path) == "4040 requested and 992 written"
    statvfs = type("S", (), {"f_bavail": 1, "f_files": 0, "f_favail": 0})  # btrfs, vfat: no file count
    monkeypatch.setattr(os, "statvfs", lambda _: statvfs())
    assert write_failure(short, tmp_path) == "4040 requested and 992 written"
    statvfs.f_bavail = 0
    assert write_failure(short, tmp_path) == "No space left on device"


def test_a_file_name_of_up_to_255_bytes_or_not_in_utf8_is_written(tmp_path):
    # Before (QA): a name over 241 bytes failed with "File name too long" (its temporary file's name).
    import os

    names = ["n" * 251 + ".npy", "é" * 125 + "xy.md", os.fsdecode(b"f\xff.npy")]  # 255, 255 bytes; not UTF-8
    for name in names:
        write_json_atomic({"v": 1}, tmp_path / name)
        assert json.loads((tmp_path / name).read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_only_temp_names_of_the_file_itself_are_cleaned_up(tmp_path):
    # A dead temp file of another file whose name starts the same ("last.pt.x"), or a hidden file of the
    # user's, is left alone even when it holds data and is old (the "fresh and empty" grace does not apply).
    others = [tmp_path / ".last.pt.x.abcd1234.tmp", tmp_path / ".last.pt.notes.tmp"]
    for p in others:
        p.write_bytes(b"data")
        os.utime(p, (0, 0))
    stale = tmp_path / ".last.pt.abcd1234.tmp"  # a killed write's temp file of last.pt itself
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))
    write_text_atomic("new", tmp_path / "last.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in others), "last.pt"])
