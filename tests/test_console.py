"""The console command's signal handling (audionas.console), in child processes: handlers are per process."""

import errno
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from audionas import console
from audionas.errors import UserError


def _child(code: str, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                          **kw)


def _command(main: str, head: str = "") -> str:
    """A child script whose console command is `main` (the source of a `def main():`), after `head`."""
    return ("import os, signal, sys, time\nimport audionas.cli as cli\nimport audionas.console as console\n"
            f"{head}\n{main}\ncli.main = main\nconsole.run()\n")


def test_an_interrupt_inside_an_import_is_raised_once_the_import_is_over(tmp_path):
    # Before (signals QA): Ctrl-C while numpy or torch were being imported left numpy half made
    # (AttributeErrors later) or crossed torch's C++ code (an abort, exit 134).
    (tmp_path / "slowmod.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                                         "time.sleep(0.2)\ndone = True\n")
    code = """
import os, signal, sys, time
import audionas.console as console
signal.signal(signal.SIGINT, console._on_signal)
try:
    import slowmod
    time.sleep(5)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted after the import:", getattr(sys.modules.get("slowmod"), "done", False))
"""
    out = _child(code, tmp_path)
    assert out.stdout == "interrupted after the import: True\n", out.stderr


# A command that signals itself, then would run on for 5 s.
_RUN = """
import os, signal, sys, time
import audionas.cli as cli
import audionas.console as console
{before}
def main():
    os.kill(os.getpid(), signal.{sig})
    time.sleep(5)
    print("ran on")
    return 0
cli.main = main
console.run()
"""


@pytest.mark.parametrize(("sig", "code", "said"), [("SIGINT", 130, "audionas: interrupted\n"),
                                                   ("SIGTERM", 143, "audionas: terminated\n")])
def test_the_console_command_stops_on_sigint_and_sigterm_with_one_line(tmp_path, sig, code, said):
    out = _child(_RUN.format(before="", sig=sig), tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (code, "", said)


def test_a_sigint_the_parent_ignores_stays_ignored(tmp_path):
    # A background job of a shell without job control ignores Ctrl-C: Python leaves it so, as audionas does.
    before = "signal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep = lambda s: None"
    out = _child(_RUN.format(before=before, sig="SIGINT"), tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (0, "ran on\n", "")


def test_main_reports_any_error_after_a_stop_signal_as_the_stop(monkeypatch, capsys):
    # An interrupt in the middle of a lazy import can surface later as another error (numpy's AttributeError).
    import audionas.cli as cli
    import audionas.console as console

    def half_imported():
        raise AttributeError("module 'numpy._core' has no attribute '_multiarray_umath'")

    monkeypatch.setattr(cli, "build_parser", half_imported)
    monkeypatch.setattr(console, "_received", [signal.SIGTERM])
    assert cli.main(["--help"]) == 143
    assert capsys.readouterr().err == "audionas: terminated\n"
    monkeypatch.setattr(console, "_received", [])
    with pytest.raises(AttributeError):  # without a signal, a bug keeps its traceback
        cli.main(["--help"])


_LOADER = """
import os, sys, time, warnings
warnings.simplefilter("ignore")  # torch's note on 2 workers for 1 allowed core
import torch
from torch.utils.data import DataLoader, Dataset
import audionas.cli as cli
import audionas.console as console

class Slow(Dataset):
    def __len__(self):
        return 10 ** 6

    def __getitem__(self, i):
        time.sleep(0.01)
        return torch.zeros(4)

def main():
    for i, _ in enumerate(DataLoader(Slow(), batch_size=4, num_workers=2)):
        if i == 2:
            print("ready", flush=True)
    return 0

cli.main = main
console.run()
"""


@pytest.mark.parametrize(("sig", "said"), [(signal.SIGINT, "audionas: interrupted\n"),
                                           (signal.SIGTERM, "audionas: terminated\n")])
def test_a_process_group_stop_with_dataloader_workers_is_one_line(tmp_path, sig, said):
    # Ctrl-C, and a scheduler's SIGTERM (Slurm's scancel), reach the workers too. Before (diff review): the
    # workers died by the signal and torch's SIGCHLD check printed "DataLoader worker ... is killed by
    # signal" with a traceback while the command unwound.
    proc = subprocess.Popen([sys.executable, "-c", _LOADER], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (proc.returncode, err) == (128 + sig, said)


def test_an_error_line_is_one_write(monkeypatch, capsys):
    # torchrun runs its ranks unbuffered: print's two writes (message, newline) let two ranks' lines glue.
    import io

    from audionas.cli import main

    writes = []

    class Stderr(io.StringIO):
        def write(self, text):
            writes.append(text)
            return super().write(text)

    monkeypatch.setattr(sys, "stderr", Stderr())
    assert main(["profile", "no-such-model"]) == 2
    assert len(writes) == 1 and writes[0].startswith("audionas: error: ") and writes[0].count("\n") == 1


def test_a_forked_workers_side_thread_losing_its_parent_is_quiet(tmp_path):
    # Before (1 in ~25 process-group stops, CI): a DataLoader worker's resource-sharer thread, handing a batch
    # to the stopping parent, printed a BrokenPipeError traceback, cut short, before "audionas: interrupted".
    # Other errors, and any in the worker's main thread, still print.
    code = """
import os, sys, threading
import audionas.cli as cli
import audionas.console as console

def fail(exc):
    sys.excepthook(type(exc), exc, None)  # as multiprocessing's resource sharer reports its thread's errors

def main():
    pid = os.fork()
    if pid == 0:
        for exc in (BrokenPipeError(32, "Broken pipe"), EOFError(), ValueError("side thread")):
            t = threading.Thread(target=fail, args=(exc,))
            t.start()
            t.join()
        fail(ConnectionResetError("main thread"))
        os._exit(0)
    os.waitpid(pid, 0)
    fail(BrokenPipeError("parent"))
    return 0

cli.main = main
console.run()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    assert [line for line in out.stderr.splitlines() if "Error" in line] == [
        "ValueError: side thread", "ConnectionResetError: main thread", "BrokenPipeError: parent"]


def test_output_to_a_closed_pipe_ends_quietly_with_sigpipes_code(tmp_path):
    # `audionas predict RUN DIR | head`: a few buffered lines whose reader has gone. Before: "Exception
    # ignored ... BrokenPipeError" at the interpreter's last flush, exit 120.
    code = """
import audionas.cli as cli
import audionas.console as console

def main():
    for i in range(3):
        print(f"line {i}")
    return 0

cli.main = main
console.run()
"""
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, stdout=write, stderr=subprocess.PIPE,
                             text=True, env=env, timeout=60)
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (141, "")


def test_a_command_started_with_stdout_closed_ends_with_its_own_code(tmp_path):
    # Before (QA): `audionas features ... >&-` wrote its file, then "AttributeError: 'NoneType' object has
    # no attribute 'flush'" (exit 1): Python has no sys.stdout when descriptor 1 is closed.
    code = _command("def main():\n    print('wrote x')\n    return 0")
    out = subprocess.run(["bash", "-c", 'exec "$0" -c "$1" >&-', sys.executable, code], cwd=tmp_path,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    assert (out.returncode, out.stderr) == (0, "")


@pytest.mark.parametrize("closed", ["2>&-", "2</dev/null"])
def test_a_command_started_with_stderr_closed_exits_with_its_errors_code(tmp_path, closed):
    # Before: the error's line was written to no stream (AttributeError on sys.stderr None; EBADF on one
    # open only for reading, as pyenv's shim leaves it), exit 1.
    out = subprocess.run(["bash", "-c", f'exec "$0" -m audionas profile nosuch {closed}', sys.executable],
                         cwd=tmp_path, stdout=subprocess.PIPE, text=True, timeout=120)
    assert (out.returncode, out.stdout) == (2, "")


@pytest.mark.parametrize("closed", ["<&-", ">&-", "2>&-", "<&- >&- 2>&-"])
def test_a_closed_standard_descriptor_is_not_taken_by_a_file_the_command_opens(tmp_path, closed):
    # Else a file opened later gets its number, and output meant for that stream would go into the file.
    code = _command("def main():\n    with open('opened', 'w') as f:\n        n = f.fileno()\n"
                    "    with open('number', 'w') as f:\n        f.write(str(n))\n    return 0")
    out = subprocess.run(["bash", "-c", f'exec "$0" -c "$1" {closed}', sys.executable, code], cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0
    assert int((tmp_path / "number").read_text()) > 2


def test_a_second_signal_stops_a_command_stuck_in_an_import(tmp_path):
    # The first interrupt inside an import waits for its end; a second one must not (a hung import).
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(60)\n")
    code = """
import sys
import audionas.cli as cli
import audionas.console as console

def main():
    print("importing", flush=True)
    import hangs
    return 0

cli.main = main
console.run()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "importing\n"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # the first one waits for the import
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, err) == (130, "audionas: interrupted\n")


def test_a_stop_deferred_past_the_commands_end_still_gives_the_stops_code(tmp_path):
    # The command's last act is an import that a signal lands in: main returns before the interrupt is
    # raised. Before: exit 0 without a word.
    (tmp_path / "lastmod.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\n"
                                         "time.sleep(0.1)\n")
    code = """
import audionas.cli as cli
import audionas.console as console

def main():
    import lastmod
    return 0

cli.main = main
console.run()
"""
    out = _child(code, tmp_path)
    assert (out.returncode, out.stderr) == (143, "audionas: terminated\n")


_SIGNALLING_SAVE = """
import os, signal, time
import torch
import audionas.console as console
from audionas.utils.checkpoint import load_checkpoint, save_atomic

real = torch.save

def save(obj, f):
    class Signalling:
        sent = 0

        def write(self, b):
            if self.sent < SIGNALS:
                self.sent += 1
                os.kill(os.getpid(), signal.SIGINT)
            return f.write(b)

        def flush(self):
            f.flush()
    real(obj, Signalling())

torch.save = save
"""


def test_a_stop_during_a_checkpoint_write_waits_for_its_end(tmp_path):
    # Before (CI): Ctrl-C landing in torch.save's write, called from C++, could abort the process (SIGABRT,
    # exit -6, no word); otherwise it failed the write ("unexpected pos"). Here the write signals itself.
    code = "SIGNALS = 1" + _SIGNALLING_SAVE + """
signal.signal(signal.SIGINT, console._on_signal)
try:
    save_atomic({"w": torch.arange(100000.0)}, "ck.pt")
    print("saved", flush=True)
    time.sleep(5)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted after the write:", torch.equal(load_checkpoint("ck.pt")["w"], torch.arange(100000.0)))
"""
    out = _child(code, tmp_path)
    assert out.stdout == "saved\ninterrupted after the write: True\n", out.stderr


@pytest.mark.parametrize("signals", [1, 2])
def test_a_python_callers_ctrl_c_during_a_checkpoint_write_is_a_keyboard_interrupt(tmp_path, signals):
    # Before (Python API QA): with no console handlers (a notebook), the interrupt crossed torch's C++ write:
    # RuntimeError "[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0", or the abort. Now
    # one Ctrl-C is raised as KeyboardInterrupt once the checkpoint is whole; a second one at once, as Python
    # would; Python's own handler is back afterwards.
    code = f"SIGNALS = {signals}" + _SIGNALLING_SAVE + """
try:
    save_atomic({"w": torch.arange(100000.0)}, "ck.pt")
    print("saved")
except KeyboardInterrupt as e:
    print("KeyboardInterrupt", e.__context__ is None, os.path.exists("ck.pt") and
          torch.equal(load_checkpoint("ck.pt")["w"], torch.arange(100000.0)), os.listdir("."))
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""
    out = _child(code, tmp_path)
    # One: raised after the write, the checkpoint whole. Two: the write failed (torch's error is the
    # interrupt's context), no checkpoint and no temporary file left.
    after = "True True ['ck.pt']" if signals == 1 else "False False []"
    assert out.stdout == f"KeyboardInterrupt {after}\nTrue\n", out.stderr


def test_a_worker_forked_in_a_python_callers_held_block_gets_pythons_own_ctrl_c(tmp_path):
    # A DataLoader's workers are forked as its iterator is made, in a held block: without the reset, they
    # would keep the block's holding handler, and a Ctrl-C to the process group would not stop them.
    code = """
import os, signal
import audionas.console as console
with console.stops_held():
    pid = os.fork()
    if pid == 0:
        os._exit(0 if signal.getsignal(signal.SIGINT) is signal.default_int_handler else 1)
    print("parent holds:", signal.getsignal(signal.SIGINT) is console._hold_python_interrupt)
print("child:", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""
    out = _child(code, tmp_path)
    assert out.stdout == "parent holds: True\nchild: 0\n", out.stderr


def test_a_python_callers_ctrl_c_is_held_while_a_side_thread_is_in_a_held_block_too(tmp_path):
    # Before (review): the main thread held nothing while a side thread was inside a block of its own.
    code = """
import os, signal, threading, time
import audionas.console as console
inside, leave = threading.Event(), threading.Event()

def side():
    with console.stops_held():
        inside.set()
        leave.wait()

t = threading.Thread(target=side)
t.start()
inside.wait()
try:
    with console.stops_held():
        with console.stops_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            print("held", flush=True)
        print("still held", flush=True)
except KeyboardInterrupt:
    print("raised at the end")
leave.set()
t.join()
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""
    out = _child(code, tmp_path)
    assert out.stdout == "held\nstill held\nraised at the end\nTrue\n", out.stderr


def test_a_second_signal_during_a_held_write_ends_the_process_at_once(tmp_path):
    # Raising there, inside torch's C++ (an import of torch, torch.save's write), can abort: Ctrl-C twice
    # while torch was imported gave SIGABRT and a stack dump (signals QA). The second one now ends the
    # process with the stop's line and no unwinding, as a kill would.
    code = _command("""
def main():
    with console.stops_held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        print("held", flush=True)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:
            print("unwound", flush=True)
    return 0
""")
    out = _child(code, tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (143, "held\n", "audionas: terminated\n")


def test_an_interrupt_python_drops_is_raised_again(tmp_path):
    # Before (signals QA): a stop landing in an at-fork hook while DataLoader workers started was printed as
    # "Exception ignored ... KeyboardInterrupt" and the command ran to its end (22 of 46 `evaluate --workers
    # 2` stops). Here the hook signals itself, as that stop did.
    code = _command("""
def main():
    def hook():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
    os.register_at_fork(after_in_parent=hook)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(5)
    print("ran on")
    return 0
""")
    out = _child(code, tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (130, "", "audionas: interrupted\n")


def test_the_command_exits_after_threads_and_exit_functions_without_the_teardown(tmp_path):
    # The interpreter's teardown of every module took about 1 s after each command (torch's 0.8 s), and a
    # stop signal in it killed the process with no line (signals QA). It is skipped; what the interpreter's
    # exit does first still happens: side threads joined, thread pools shut down, exit functions run.
    head = """
import atexit, threading
from concurrent.futures import ThreadPoolExecutor

class TornDown:
    def __del__(self):
        print("torn down", flush=True)

kept = TornDown()
"""
    code = _command("""
def main():
    atexit.register(print, "exit function ran")
    threading.Thread(target=lambda: (time.sleep(0.2), print("thread joined", flush=True))).start()
    ThreadPoolExecutor(1).submit(lambda: (time.sleep(0.1), print("pool task done", flush=True)))
    print("main returns", flush=True)
    return 3
""", head)
    out = _child(code, tmp_path)
    assert (out.returncode, out.stderr) == (3, "")
    assert out.stdout == "main returns\npool task done\nthread joined\nexit function ran\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [["profile", "res8", "--repeats", "1", "--json"], ["--version"],
                                  ["train", "--help"]])
def test_output_that_cannot_be_written_names_stdout(tmp_path, unbuffered, args):
    # Before (QA): `audionas profile res8 --json > /dev/full` said "error: No space left on device" (no file
    # named) when its print failed, and exited 141 with no word when the write failed at exit (buffered);
    # before (review), --help and --version exited 0 without a word (argparse drops the write's error).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
    with open("/dev/full", "w") as full:
        argv = [sys.executable, "-m", "audionas", *args]
        done = subprocess.run(argv, cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=120)
    assert (done.returncode, done.stderr) == (2, "audionas: error: stdout: No space left on device\n")


def test_console_out_names_stdout_and_leaves_a_closed_pipe_to_the_exit(monkeypatch):
    class Failing(io.StringIO):
        def __init__(self, error):
            super().__init__()
            self.error = error

        def write(self, text):
            raise self.error

    monkeypatch.setattr(sys, "stdout", Failing(OSError(errno.EIO, os.strerror(errno.EIO))))
    with pytest.raises(UserError, match=r"^stdout: Input/output error$"):
        console.out("x")
    monkeypatch.setattr(sys, "stdout", Failing(BrokenPipeError(errno.EPIPE, "pipe")))
    with pytest.raises(BrokenPipeError):
        console.out("x")
    monkeypatch.setattr(sys, "stdout", None)  # started with `>&-`: nothing to write to, as print
    console.out("x")
