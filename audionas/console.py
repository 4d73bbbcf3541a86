"""The `audionas` console command: Ctrl-C (SIGINT) and a scheduler's SIGTERM stop it with one line, from its
first instruction to its last, and unwind as Ctrl-C does (checkpoints stay whole; the same command resumes).

Only the standard library (and audionas.errors, which needs no more) is imported here, so the handlers are
in place before the command's modules load.
An interrupt inside an import is raised once the import is over: raised in the middle, it can leave numpy half
made or cross torch's C++ code, which aborts. `audionas.cli.main` reports any error after a stop signal as
the stop it was.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import sys
import threading

from audionas.errors import UserError

STOPS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}  # 128 + signal number

_received: list[int] = []  # signals this process received while the command ran
_said = False  # whether say_stopped printed the stop's line
_holding = 0  # open `stops_held` blocks


@contextlib.contextmanager
def stops_held():
    """Hold a stop's interrupt until the block is over. torch.save calls the file's write from C++; an
    interrupt raised inside that call can reach a C++ destructor, which aborts the process (SIGABRT, a core
    and no word; seen in CI). As inside an import, a second signal ends the process at once.

    A Python caller (a notebook: no console handlers, Python's own SIGINT one) gets its Ctrl-C as the
    KeyboardInterrupt it expects once the block is over (not torch's RuntimeError "unexpected pos", or an
    abort); a second Ctrl-C meanwhile raises at once, as Python would."""
    global _holding
    # Not when nested: the outer block's handler is in place then (a side thread's block holds nothing here).
    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if own:
        _python_held.clear()
        signal.signal(signal.SIGINT, _hold_python_interrupt)
    _holding += 1
    raised = False
    try:
        yield
    except KeyboardInterrupt:
        raised = True  # the second Ctrl-C's, on its way already
        raise
    finally:
        _holding -= 1
        if own:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if _python_held and not raised:
                raise KeyboardInterrupt


_python_held: list[int] = []  # a Python caller's Ctrl-Cs held by the open stops_held block


def _hold_python_interrupt(signum: int, frame) -> None:
    """A Python caller's Ctrl-C inside a stops_held block: kept for the block's end; the second one raises."""
    _python_held.append(signum)
    if len(_python_held) > 1:
        raise KeyboardInterrupt


def _python_handler_in_child() -> None:
    """A worker forked in a held block (a DataLoader's, as its iterator is made) gets Python's own Ctrl-C."""
    if signal.getsignal(signal.SIGINT) is _hold_python_interrupt:
        signal.signal(signal.SIGINT, signal.default_int_handler)


os.register_at_fork(after_in_child=_python_handler_in_child)


def stop_signal() -> int | None:
    """The first SIGINT / SIGTERM the command received (None: none, or the handlers are not installed)."""
    return _received[0] if _received else None


def _in_import(frame) -> bool:
    """Whether `frame` runs inside an import (importlib's frames are below it)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _stop_here(frame) -> None:
    """Raise the interrupt now, or, inside an import, retry in 20 ms: an exception in the middle of one can
    leave a module half made (numpy's AttributeErrors later) or cross C++ code that aborts on it (torch). A
    `stops_held` block holds it the same way. A second signal there ends the process at once, with the
    stop's line: an import that hangs must not make the command unstoppable, and raising would risk that
    abort (Ctrl-C twice while torch is imported: SIGABRT and a stack dump)."""
    if _holding or _in_import(frame):
        if len(_received) == 1:
            _retry_soon()
            return
        code = STOPS[_received[0]][1]
        with contextlib.suppress(Exception):  # a closed pipe, or a write this signal interrupted
            say_stopped(_received[0])
            sys.stdout.flush()
        os._exit(code)  # as a kill: a checkpoint's temporary file is removed by the next write of it
    raise KeyboardInterrupt  # unwinds as Ctrl-C does: checkpoints stay whole, temporary files go


def _retry_soon() -> None:
    """Raise the stop in 20 ms (SIGALRM), where the code then running allows."""
    signal.signal(signal.SIGALRM, lambda _, f: _stop_here(f))
    signal.setitimer(signal.ITIMER_REAL, 0.02)


_running = False  # whether the command runs (an interrupt dropped meanwhile is raised again)


def _dropped(args) -> None:
    """sys.unraisablehook: an interrupt raised where Python drops exceptions (an at-fork hook while DataLoader
    workers start, a __del__) is raised again in 20 ms. Else its traceback says "Exception ignored" and the
    command runs on to its end, stopping only then (22 of 46 stops of `evaluate --workers 2` in a test)."""
    if (_running and _received and issubclass(args.exc_type, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()):
        _retry_soon()
    else:
        _UNRAISABLE_HOOK(args)


_UNRAISABLE_HOOK = sys.unraisablehook


def _on_signal(signum: int, frame) -> None:
    _received.append(signum)
    # The workers stop with this process (a process group's signal): torch's SIGCHLD check would report
    # each as "killed by signal", with a traceback, while this one unwinds.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _stop_here(frame)


def _in_forked_child() -> None:
    """A forked worker (DataLoader) gets Python's own handling of the stop signals it inherited ours for:
    Ctrl-C raises KeyboardInterrupt, on which a DataLoader worker exits quietly; SIGTERM ends it.

    A connection error in one of its side threads is its parent leaving in the middle of a handover
    (multiprocessing's resource sharer passing a batch's file descriptor): a stop, which the parent reports.
    Before, its traceback came cut short before the parent's one line."""
    global _running
    _running = False  # an interrupt the worker drops is not its parent's to raise again
    for signum in STOPS:
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    inherited = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        if not (issubclass(exc_type, (ConnectionError, EOFError))
                and threading.current_thread() is not threading.main_thread()):
            inherited(exc_type, exc, tb)

    sys.excepthook = hook


def _record(signum: int, frame) -> None:
    _received.append(signum)


def _hold_standard_descriptors() -> None:
    """A standard descriptor the shell closed (`2>&-`) is held open on /dev/null: else the next file opened
    (a checkpoint, a wav) takes its number, and a subprocess's or C library's output would be written into
    that file. Python made no stream for it; a closed stderr gets one to /dev/null, so an error still exits
    with its code (before: say() raised AttributeError, exit 1). A closed stdout stays None (print drops)."""
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            mode = None
        # Open only for reading counts as closed for output: pyenv's shim leaves its own script there.
        if mode is None or (fd > 0 and mode == os.O_RDONLY):
            held = os.open(os.devnull, flags)
            if held != fd:
                os.dup2(held, fd)
                os.close(held)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)


def run() -> None:
    """Entry point: install the handlers, run `audionas.cli.main`, exit with its code (that of the stop when a
    signal came, said in one line). Once it has returned, a signal during the exit ends the process at once,
    quietly, with that code."""
    _hold_standard_descriptors()
    # A signal the parent ignores stays ignored (a background job of a shell without job control), as Python
    # itself leaves SIGINT.
    handled = [signum for signum in STOPS if signal.getsignal(signum) != signal.SIG_IGN]
    for signum in handled:
        signal.signal(signum, _on_signal)
    os.register_at_fork(after_in_child=_in_forked_child)
    global _running
    _running = True
    sys.unraisablehook = _dropped
    code = 1
    try:
        from audionas.cli import main

        code = main()
    except SystemExit as e:  # argparse's --help, --version and usage errors: their text is flushed below
        if stop_signal() is None and not (e.code is None or isinstance(e.code, int)):
            raise
        code = e.code if isinstance(e.code, int) else 0
    except BaseException:  # noqa: BLE001  (interrupted outside main's own handling: one line, no traceback)
        if stop_signal() is None:
            raise
    finally:  # from here on a signal is only recorded, and no deferred interrupt is retried
        _running = False
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # first: a retry due now would raise in this block
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum in handled:
            signal.signal(signum, _record)
    if stop_signal() is not None and not _said:  # stopped before main could say so, or deferred past its end
        code = say_stopped(stop_signal())
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed (`>&-`): Python has no stream for it
            continue
        try:
            stream.flush()
        except OSError as e:  # what is left is dropped
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            if isinstance(e, BrokenPipeError):  # a closed pipe (`audionas predict ... | head`), as SIGPIPE
                code = code or 141
            elif stream is sys.stdout:  # a full disk under `> FILE`: the output is cut short, so say so
                with contextlib.suppress(OSError):
                    say(f"audionas: error: stdout: {e.strerror or e}")
                code = code or 2
    for signum in handled:
        signal.signal(signum, lambda *_: os._exit(code))
    _exit(code)


def _exit(code: int) -> None:
    """End the process as the interpreter does, less its teardown of every module: side threads joined (and
    thread pools shut down), exit functions run (multiprocessing's, weakref finalizers), output flushed, then
    os._exit. That teardown took about 1 s after every command here (torch's alone 0.8 s), and a stop signal
    in it killed the process with no line, the handlers being back at their defaults by then (16 of 16
    signals in a run's last second)."""
    threading._shutdown()  # what the interpreter's own exit calls first: thread pools' hooks, then joins
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a pipe closed meanwhile: what is left is dropped
            stream.flush()
    os._exit(code)


def out(*values, **kwargs) -> None:
    """print() of a command's output to stdout; a write that fails other than on a closed pipe (a full disk
    under `> FILE`) is a UserError naming stdout (a bare OSError would name no file)."""
    try:
        print(*values, **kwargs)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise UserError(f"stdout: {e.strerror or e}") from None


def say(line: str) -> None:
    """`line` and its newline to stderr in one write: torchrun's ranks run unbuffered (`python -u`), where
    print's two writes let two ranks' lines interleave into one (one write to a pipe is whole up to 4 KiB)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def say_stopped(signum: int) -> int:
    """Print the one line of a command stopped by `signum` (SIGINT or SIGTERM); its exit code."""
    global _said
    word, code = STOPS[signum]
    say(f"audionas: {word}")
    _said = True
    return code
