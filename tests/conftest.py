"""Shared pytest fixtures (add new ones additively)."""

from __future__ import annotations

import os

import pytest
from fixture_names import SHORT_DCASE

from audionas.utils.allocator import tune_allocator

# The suite runs on CPU on any machine: its exact-resume checks hold on CPU, and its torchrun / spawn tests
# ask for device=cpu, which a process group on GPUs refuses. AUDIONAS_TEST_GPU=1 keeps the GPUs visible (to
# the GPU tests, which skip without one). Read when CUDA starts, so set before any test touches it.
if os.environ.get("AUDIONAS_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

# The test process trains small models, like the CLI: reuse freed memory instead of re-faulting it.
tune_allocator()


@pytest.fixture(scope="session")
def speech_commands_root(tmp_path_factory):
    """A tiny Speech Commands v0.01 dataset (30 words x 5 speakers, tones + noise) in the official layout."""
    from audionas.data.fixtures import make_speech_commands_fixture

    return make_speech_commands_fixture(tmp_path_factory.mktemp("speech_commands"))


@pytest.fixture(scope="session")
def short_dcase_preset():
    """dcase-logmel on 0.5 s clips (40 x 26): the same recipe, 20x cheaper, for fast DCASE tests."""
    import dataclasses

    from audionas.features import FEATURE_PRESETS

    FEATURE_PRESETS[SHORT_DCASE] = dataclasses.replace(FEATURE_PRESETS["dcase-logmel"], name=SHORT_DCASE,
                                                       clip_samples=8000)
    yield SHORT_DCASE
    del FEATURE_PRESETS[SHORT_DCASE]


@pytest.fixture(scope="session")
def dcase_root(tmp_path_factory):
    """A tiny DCASE2018 dev set in the official layout: 9 classes x 4 sessions, one node, 0.5 s clips."""
    from audionas.data.dcase_fixtures import make_dcase2018_fixture

    return make_dcase2018_fixture(tmp_path_factory.mktemp("dcase"), sessions_per_class=4,
                                  segments_per_session=1, seconds=0.5, nodes=1)


@pytest.fixture(scope="session")
def dcase_cache(dcase_root, short_dcase_preset, tmp_path_factory):
    """The feature cache (short preset) of `dcase_root`."""
    from audionas.data.dcase_cache import prepare_cache

    out = tmp_path_factory.mktemp("dcase_cache") / "cache"
    prepare_cache(dcase_root, out, feature=short_dcase_preset, seconds=0.5, progress=False)
    return out


@pytest.fixture(scope="session")
def kws_run(speech_commands_root, tmp_path_factory):
    """A tc-resnet8 run trained for one epoch on the Speech Commands fixture (for export / predict tests)."""
    from audionas.cli import main

    run = tmp_path_factory.mktemp("kws_run") / "run"
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root), "--out",
                 str(run), "model=tc-resnet8", "epochs=1", "data.batch_size=16"]) == 0
    return run


@pytest.fixture
def held_elsewhere():
    """`with held_elsewhere(folder):` another Python process holds the folder's run lock meanwhile."""
    import contextlib
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from audionas.utils.rundir import lock_run_dir; "
            "lock_run_dir(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)")

    @contextlib.contextmanager
    def hold(folder):
        other = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout.readline() == "locked\n"
            yield
        finally:
            other.kill()
            other.wait()

    return hold


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(kib)`: an empty folder on a file system of `kib` KiB (a tmpfs; skipped where mounting one
    is not allowed), to run out of space for real."""
    import subprocess

    mounts = []

    def make(kib: int):
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                                  capture_output=True)
        except OSError:  # no mount command
            done = None
        if done is None or done.returncode:
            pytest.skip("mounting a small tmpfs is not allowed here")
        mounts.append(folder)
        return folder

    yield make
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
