"""benchmarks/*.py: their entry points (timings are never asserted: the scripts print ratios)."""

import ast
from pathlib import Path

BENCHMARKS = sorted((Path(__file__).parents[1] / "benchmarks").glob("[!_]*.py"))


def test_the_main_block_rebinds_no_name_of_the_script():
    # Before: darts_step.py's `from _cli import run` under __main__ replaced its own run(): a TypeError.
    assert len(BENCHMARKS) >= 5
    for path in BENCHMARKS:
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        mains = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        assert len(mains) == 1, path.name
        bound = {alias.asname or alias.name for n in ast.walk(mains[0])
                 if isinstance(n, (ast.Import, ast.ImportFrom)) for alias in n.names}
        bound |= {t.id for n in ast.walk(mains[0]) if isinstance(n, ast.Assign) for t in n.targets
                  if isinstance(t, ast.Name)}
        assert not bound & defined, (path.name, bound & defined)


def _load(name: str):
    """benchmarks/NAME.py as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS[0].parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli():
    return _load("_cli")


def test_a_stop_or_running_out_of_memory_is_one_line_and_its_exit_code(capsys, monkeypatch):
    # Before (QA): Ctrl-C, SIGTERM and torch's allocation failure printed tracebacks.
    import pytest

    cli = _cli()
    monkeypatch.setattr("sys.argv", ["bench.py"])
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # pytest's own SIGTERM handler stays

    def raises(e):
        def main():
            raise e
        return main

    for error, code, line in ((KeyboardInterrupt(), 130, "bench.py: interrupted"),
                              (cli._Terminated(), 143, "bench.py: terminated"),
                              (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"), 1,
                               "bench.py: error: out of memory (DefaultCPUAllocator: can't allocate memory: "
                               "you tried); try a smaller configuration (see --help)")):
        with pytest.raises(SystemExit) as e:
            cli.run_main(raises(error))
        assert e.value.code == code and capsys.readouterr().err == line + "\n"
    with pytest.raises(RuntimeError, match="a bug"):  # other errors keep their traceback
        cli.run_main(raises(RuntimeError("a bug")))


def test_threads_above_the_usable_cores_are_refused(monkeypatch):
    import pytest

    from audionas.errors import UserError

    cli = _cli()
    monkeypatch.setattr("audionas.utils.dist.available_cores", lambda: 1)
    assert cli.check_threads(0) == 0 and cli.check_threads(1) == 1
    with pytest.raises(UserError, match=r"^--threads 2: expected at most 1 \(the cores this process may use"):
        cli.check_threads(2)


def test_the_setup_scripts_python_is_the_venvs_once_made_and_an_externally_managed_one_is_told(tmp_path):
    # Before (QA): on Debian 12's /usr/bin/python3 pip refused to install (PEP 668) and setup.sh exited 1.
    import subprocess
    import sys

    root = Path(__file__).parents[1]

    def run(python: str, **env) -> list[str]:
        script = (f"cd {tmp_path} && source {root}/scripts/python.sh && echo \"$PY\" && "
                  f"if externally_managed {python}; then echo managed; else echo not-managed; fi")
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", **env})
        return done.stdout.split()

    assert run(sys.executable) == ["python3", "not-managed"]  # pyenv's or a venv's Python
    debian = Path("/usr/bin/python3")
    if debian.is_file() and "EXTERNALLY-MANAGED" in subprocess.run(
            [debian, "-c", "import os, sysconfig; print(*os.listdir(sysconfig.get_path('stdlib')))"],
            capture_output=True, text=True).stdout.split():
        assert run(str(debian))[1] == "managed"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")  # no pip in it
    (tmp_path / ".venv" / "bin" / "python").chmod(0o755)
    assert run(sys.executable)[0] == "python3"  # a half-made .venv (no pip in it: review) is not used
    (tmp_path / ".venv" / "bin" / "python").unlink()
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    assert run(sys.executable)[0] == ".venv/bin/python"
    assert run(sys.executable, PYTHON="/x/python")[0] == "/x/python"


def test_the_demo_reads_relative_data_and_runs_from_where_it_is_called(tmp_path):
    # Before (QA): DATA=d RUNS=r were taken below the repository root the script changes into.
    import subprocess

    root = Path(__file__).parents[1]
    log = tmp_path / "calls.log"
    fake = tmp_path / "python"  # stands for every Python command setup.sh and demo.sh run: logs, succeeds
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n")
    fake.chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "espeak-ng").symlink_to(fake)  # setup.sh then installs no system package
    done = subprocess.run(["bash", str(root / "scripts" / "demo.sh")], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "PYTHON": str(fake),
                                          "DATA": "d",
                                          "RUNS": "r", "DEMO_STAGES": "baseline"})
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert f"-m audionas data synth-speech-commands --out {tmp_path / 'd'}" in calls
    assert (f"-m audionas train --preset kws-tc-resnet-cpu --data {tmp_path / 'd'} --out "
            f"{tmp_path / 'r' / 'tc-resnet14-1.5'}") in calls


def test_the_feature_benchmark_times_librosa_with_one_openblas_thread():
    # Before: torch (imported for the core count) loaded numpy's OpenBLAS before OPENBLAS_NUM_THREADS=1 was
    # set, so it kept one thread per core, spinning beside the timed code (CPU time twice the wall time).
    import json
    import os
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'benchmarks'); import features\n"
            "from threadpoolctl import threadpool_info\n"
            "def bench(*args):\n"
            "    print([p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas'])\n"
            "    return 1.0\n"
            "features.bench = bench; sys.argv = ['features.py', '--threads', '1']; features.main()")
    root = Path(__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    counts = [line for line in out.stdout.splitlines() if line.startswith("[")]
    assert counts and all(set(json.loads(line)) == {1} for line in counts), out.stdout


def test_the_startup_benchmark_writes_the_official_layout_that_the_loader_reads(tmp_path):
    import re

    from audionas.data.class_folders import read_list_files
    from audionas.data.splits import which_set

    counts = _load("data_startup").write_layout(tmp_path, 711)
    wavs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*.wav")
                  if p.parent.name != "_background_noise_")
    assert len(wavs) == counts["clips"] == 711 and len({w.split("/")[0] for w in wavs}) == 35
    assert all(re.fullmatch(r"[a-z]+/[0-9a-f]{8}_nohash_[0-4]\.wav", w) for w in wavs)
    known: dict[str, list[str]] = {}
    for w in wavs:
        known.setdefault(w.split("/")[0], []).append(w)
    val, test = read_list_files(tmp_path, known)
    assert sorted(val) == [w for w in wavs if which_set(w.split("/")[1]) == "validation"]
    assert sorted(test) == [w for w in wavs if which_set(w.split("/")[1]) == "testing"]
    assert len(val) == counts["validation"] > 0 and len(test) == counts["testing"] > 0
    assert len(list((tmp_path / "_background_noise_").glob("*.wav"))) == 6
