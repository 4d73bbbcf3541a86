"""The console command's signal handling (audionas.console), in child processes: handlers are per process."""

import signal
import subprocess
import sys

import pytest


def _child(code: str, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                          **kw)


def test_an_interrupt_inside_an_import_is_raised_once_the_import_is_over(tmp_path):
    # Before (signals QA): Ctrl-C while numpy or torch were being imported left numpy half made
    # (AttributeErrors later) or crossed torch's C++ code (an abort, exit 134).
    (tmp_path / "slowmod.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                                         "time.sleep(0.2)\ndone = True\n")
    code = """
import os, signal, sys, time
import audionas.console as console
console._main_pid = os.getpid()
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
