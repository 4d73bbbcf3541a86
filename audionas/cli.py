"""The `audionas` command: subcommands discovered from `audionas.commands.*` modules."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import signal
import sys
import threading
import warnings

import audionas.commands as commands_pkg
from audionas import __version__
from audionas.commands import Command, field_as_flag_hint
from audionas.console import out, say, say_stopped, stop_signal
from audionas.errors import ReadWarning, UserError
from audionas.plugins import import_plugin
from audionas.utils.allocator import tune_allocator
from audionas.utils.text import escape_controls


def _discover() -> list[Command]:
    found: list[Command] = []
    for mod in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_pkg.__name__}.{mod.name}")
        found.extend(getattr(module, "COMMANDS", []))
    return found


DESCRIPTION = ("Neural architecture search for audio classification: keyword spotting, acoustic scenes, "
               "your own sounds.")

EPILOG = """typical runs:
  audionas train --preset kws-tc-resnet-cpu --data DIR --out RUN      train a baseline
  audionas search darts --preset kws-nas1-cpu --data DIR --out RUN    DARTS cell search
  audionas search supernet ... ; audionas search nsga2 ...            FairNAS + NSGA-II
  audionas evaluate RUN --data DIR --json                             score a trained run
`audionas COMMAND --help` gives each command's options; README.md has the workflows."""

GROUP_HELP = {
    "data": "datasets: synthetic Speech Commands, DCASE2018 fixtures and log-mel caches",
    "search": "architecture search: darts, supernet (FairNAS), nsga2, random",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage block is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _print_message(self, message, file=None):
        """argparse's, but help or version text that cannot be written to stdout (a full disk) is said, as a
        command's output is (argparse drops the error and exits 0)."""
        if message and (file or sys.stderr) is sys.stdout:
            out(message, end="")
        else:
            super()._print_message(message, file)


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless it names one itself (the README leans on them)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and not action.required and "default" not in text
                and not any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            text += " (default: %(default)s)" if text else "default: %(default)s"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="audionas", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"audionas {__version__}")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE (a module name or a .py file) before the command, so the models "
                             "and DARTS operations it registers are known to it; repeatable")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in sorted(_discover(), key=lambda c: c.path):
        if len(cmd.path) == 1:
            sub = top.add_parser(cmd.path[0], help=cmd.help, description=cmd.help,
                                 formatter_class=_HelpFormatter)
        else:
            group, name = cmd.path
            if group not in groups:
                text = GROUP_HELP.get(group, f"{group} subcommands")
                gp = top.add_parser(group, help=text, description=text)
                groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
                gp.set_defaults(_group_parser=gp)
            sub = groups[group].add_parser(name, help=cmd.help, description=cmd.help,
                                           formatter_class=_HelpFormatter)
        cmd.add_arguments(sub)
        sub.set_defaults(_run=cmd.run, _parser=sub, _path=cmd.path)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, except that key=value overrides may also follow the options (`k=v --out RUN k2=v2`)."""
    args, extra = parser.parse_known_args(argv)
    sub = getattr(args, "_parser", parser)
    if extra:
        if not hasattr(args, "overrides") or not all(_OVERRIDE.match(e) for e in extra):
            where = ("; --import goes before the command (audionas --import MODULE COMMAND ...)"
                     if any(e == "--import" or e.startswith("--import=") for e in extra)
                     else field_as_flag_hint(sub, extra, sys.argv[1:] if argv is None else argv))
            sub.error(f"unrecognized arguments: {' '.join(extra)}{where}")
        args.overrides = [*args.overrides, *extra]
    _refuse_empty_values(sub, args)
    _expand_home(sub, args)
    return args


def _expand_home(sub: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`~` and `~user` at the start of an argument (paths the shell left alone: quoted, or after `=`) name
    the home folder, as in the shell. Every argument that can start with one is a path."""
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if isinstance(value, str) and value.startswith("~"):
            setattr(args, action.dest, os.path.expanduser(value))
        elif isinstance(value, list) and action.dest != "overrides":
            setattr(args, action.dest, [os.path.expanduser(v) if isinstance(v, str) and v.startswith("~")
                                        else v for v in value])


def _refuse_empty_values(sub: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An empty argument (`--out "$RUN"` with RUN unset) is an error: as a path it would silently mean the
    default folder, or the current one."""
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if value == "" or (isinstance(value, list) and "" in value):
            name = "/".join(action.option_strings) or action.metavar or action.dest
            sub.error(f"argument {name}: expected a non-empty value, got ''")


_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


_SHOWN: set[str] = set()


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning as one line, once per command; after that, and on torchrun's other ranks (every rank builds
    the same data and model) unless a ReadWarning, nothing to print. Python's own once-per-place memory is
    reset whenever a filter changes (each `warnings.catch_warnings`), so torch's DataLoader warnings came
    again every epoch."""
    text = f"audionas: warning: {escape_controls(str(message))}\n"  # a file name's newline: still one line
    if text in _SHOWN or (_under_torchrun() and os.environ.get("RANK", "0").strip() not in ("0", "")
                          and not issubclass(category, ReadWarning)):
        return ""
    _SHOWN.add(text)
    return text


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (the BrokenPipeError was ours, not a worker's); if so,
    stdout is pointed at /dev/null so the flush at exit does not fail again."""
    import select

    try:
        fd = sys.stdout.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        if not any(ev & select.POLLERR for _, ev in poll.poll(0)):  # a pipe without a reader: POLLERR
            return False
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    except (OSError, ValueError, AttributeError):  # no real stdout (redirected in tests): not ours
        return False
    return True


# The commands that split their work over torchrun's processes; every other one runs in one process.
DISTRIBUTED_COMMANDS = (("train",), ("search", "darts"), ("search", "supernet"))


def _under_torchrun() -> bool:
    """Whether torchrun started this process as one of several (read here, not in utils.dist, so that
    every command does not import torch for it)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def check_process_count(path: tuple[str, ...]) -> None:
    """UserError for a one-process command started by torchrun: each rank would write the same files."""
    if path not in DISTRIBUTED_COMMANDS and _under_torchrun():
        raise UserError(f"{' '.join(path)}: runs in one process; start it without torchrun (torchrun runs "
                        f"{', '.join(' '.join(p) for p in DISTRIBUTED_COMMANDS)})")


def _peer_stopped(e: RuntimeError) -> bool:
    """Whether `e` is a collective that failed because another torchrun process exited (gloo or NCCL)."""
    text = str(e)
    # gloo's socket errors; NCCL's ncclRemoteError ("remote process exited or there was a network error"),
    # not its watchdog's aborts (this rank's own timeout or CUDA error, which keep their traceback).
    gone = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "remote process exit",
            "ncclRemoteError")
    return (_under_torchrun() and any(g in text for g in gone)
            and any(b in text for b in ("gloo", "NCCL", "nccl")))


def _interrupted(e: BaseException) -> bool:
    """Whether `e` was raised while a Ctrl-C unwound: torch.save's zip writer, closed after a
    KeyboardInterrupt in the middle of a checkpoint, raises "unexpected pos" in its place."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one `audionas` command; its exit code. A user mistake, an interrupt or SIGTERM (with the handlers
    of audionas.console) is one line on stderr, never a traceback."""
    try:
        return _main(argv)
    except (Exception, KeyboardInterrupt) as e:
        code = _stopped(e)
        if code is None:
            code = _failed(e)
        if code is None:
            raise
        return code


def _main(argv: list[str] | None) -> int:
    parser = build_parser()  # imports every command module (torch too: about a second)
    args = _parse(parser, argv)
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group_parser", None) or parser).print_help(sys.stderr)  # a usage error: not output
        return 2
    for spec in args.imports:
        import_plugin(spec)
    tune_allocator()  # before any model exists: CPU steps reuse freed memory (~3x faster steps measured)
    _SHOWN.clear()  # once per command, should a program run several
    warnings.formatwarning = _warning_line  # user-facing warnings (resampling, ...) in one line, once
    threading.excepthook = _side_thread_failed
    check_process_count(args._path)
    return int(run(args) or 0)


_THREAD_HOOK = threading.excepthook


def _side_thread_failed(args) -> None:
    """A write failing in a side thread (TensorBoard's event writer on a full disk) is one warning line;
    before, its traceback followed the command's own one-line error. Anything else keeps its traceback."""
    if isinstance(args.exc_value, OSError) and not os.environ.get("AUDIONAS_DEBUG"):
        say(f"audionas: warning: a background writer stopped: {_os_error_text(args.exc_value)}")
    else:
        _THREAD_HOOK(args)


def _os_error_text(e: OSError) -> str:
    """`FILE: reason` of a file-system error, as text on one line (TensorBoard's writer names files in
    bytes)."""
    where = f"{os.fsdecode(e.filename)}: " if e.filename else ""
    return escape_controls(f"{where}{e.strerror or e}")


def _stopped(e: BaseException) -> int | None:
    """Exit code after printing its one line when `e` ends a command stopped by Ctrl-C or SIGTERM (whatever
    it is: an interrupt in the middle of an import or a checkpoint write surfaces as other errors); else
    None."""
    if os.environ.get("AUDIONAS_DEBUG") and not isinstance(e, KeyboardInterrupt):
        return None
    signum = stop_signal()
    if signum is None and not _interrupted(e):
        return None
    return say_stopped(signal.SIGINT if signum is None else signum)


def _failed(e: Exception) -> int | None:
    """Exit code after printing the one-line error of a user mistake or a torchrun peer's exit; None for a
    bug (its traceback is kept)."""
    if isinstance(e, UserError):
        say(f"audionas: error: {escape_controls(str(e))}")  # a path or value with a newline: still one line
        return e.exit_code
    if isinstance(e, OSError):  # an output path that cannot be written (parent is a file, read-only, ...)
        if isinstance(e, BrokenPipeError) and _stdout_closed():
            return 141  # as a Unix tool killed by SIGPIPE: `audionas predict RUN DIR | head` is no error
        if os.environ.get("AUDIONAS_DEBUG"):
            return None
        say(f"audionas: error: {_os_error_text(e)} (set AUDIONAS_DEBUG=1 for a traceback)")
        return 2
    loop = "Symlink loop from "  # pathlib's resolve() before Python 3.13 (then an OSError, ELOOP)
    if isinstance(e, RuntimeError) and str(e).startswith(loop) and not os.environ.get("AUDIONAS_DEBUG"):
        path = str(e)[len(loop):].strip("'")
        say(f"audionas: error: {escape_controls(path)}: its path runs through a loop of links")
        return 2
    if isinstance(e, RuntimeError) and _peer_stopped(e) and not os.environ.get("AUDIONAS_DEBUG"):
        # One line instead of a traceback: the cause is the other process's own error, printed above.
        say(f"audionas: error: process {os.environ.get('RANK', '?')} of this torchrun job stops: another one "
            f"stopped first (its error is above, unless it was killed)")
        return 2
    return None


if __name__ == "__main__":
    from audionas.console import run

    run()
