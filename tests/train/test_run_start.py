"""The start the trainer, the supernet and the DARTS search share (audionas.train.run_start)."""

import warnings
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from audionas.config import read_yaml
from audionas.data import DataBundle
from audionas.errors import UserError
from audionas.train.config import RESUME_FREE_FIELDS, TrainConfig
from audionas.train.run_start import MIN_BN_STEPS, start_run, warn_if_too_few_steps


def _bundle(n_train: int) -> DataBundle:
    data = [(torch.zeros(1, 4), 0)] * n_train
    return DataBundle(train=data, val=None, test=None, classes=["a", "b"], frontend=nn.Identity(),
                      input_shape=(1, 1, 4), train_augment=nn.Dropout())


def test_start_puts_transforms_on_the_device_and_counts_steps(tmp_path):
    cfg = replace(TrainConfig(), device="cpu", max_steps_per_epoch=0)
    cfg = replace(cfg, data=replace(cfg.data, batch_size=4))
    start = start_run(cfg, tmp_path / "run", RESUME_FREE_FIELDS, "run", _bundle(10))
    assert start.device == torch.device("cpu") and start.info.world_size == 1
    assert not start.frontend.training and start.augment.training
    assert start.steps_per_epoch(cfg) == 2  # 10 clips, batches of 4, the last partial one dropped
    assert start.steps_per_epoch(replace(cfg, max_steps_per_epoch=1)) == 1
    assert not (tmp_path / "run").exists()  # nothing written before write_config
    start.write_config(cfg)
    assert read_yaml(tmp_path / "run" / "config.yaml")["data"]["batch_size"] == 4


def test_an_empty_training_split_is_a_user_error_naming_the_data(tmp_path):
    cfg = replace(TrainConfig(), device="cpu")
    cfg = replace(cfg, data=replace(cfg.data, root=str(tmp_path / "clips"), batch_size=4))
    assert start_run(cfg, tmp_path / "run", RESUME_FREE_FIELDS, "run", _bundle(3)).steps_per_epoch(cfg) == 1
    start = start_run(cfg, tmp_path / "run", RESUME_FREE_FIELDS, "run", _bundle(0))
    with pytest.raises(UserError, match=r"clips: the training split is empty"):
        start.steps_per_epoch(cfg)


def test_a_run_dir_of_another_config_is_refused_before_the_data_is_built(tmp_path, monkeypatch):
    import audionas.train.run_start as rs

    cfg = replace(TrainConfig(), device="cpu", seed=1)
    run = tmp_path / "run"
    start_run(cfg, run, RESUME_FREE_FIELDS, "run", _bundle(8)).write_config(cfg)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")  # the run holds work
    monkeypatch.setattr(rs, "build_data", lambda *a: pytest.fail("data built before the run-dir check"))
    with pytest.raises(UserError, match="seed"):
        start_run(replace(cfg, seed=2), run, RESUME_FREE_FIELDS, "run")


def test_under_torchrun_only_rank_0_writes_the_run_folder_and_steps_count_the_shard(tmp_path):
    from audionas.train.run_start import RunStart
    from audionas.utils.dist import DistInfo

    cfg = replace(TrainConfig(), device="cpu", max_steps_per_epoch=0)
    cfg = replace(cfg, data=replace(cfg.data, batch_size=4))
    for rank in (1, 0):
        start = RunStart(tmp_path / "run", DistInfo(rank=rank, world_size=2), torch.device("cpu"),
                         _bundle(17), nn.Identity(), None)
        assert start.steps_per_epoch(cfg) == 2  # ceil(17 / 2) = 9 clips per rank, batches of 4
        start.write_config(cfg)
        assert (tmp_path / "run" / "config.yaml").exists() == (rank == 0)


@pytest.mark.parametrize("kind", ["folder", "speech_commands"])
def test_a_run_folder_inside_the_dataset_folder_is_refused(tmp_path, kind, monkeypatch):
    # before: trained, and then every later run on the dataset read the run folder as a class without audio
    import audionas.train.run_start as rs

    data = tmp_path / "sounds"
    (data / "dog").mkdir(parents=True)
    cfg = replace(TrainConfig(), device="cpu")
    cfg = replace(cfg, data=replace(cfg.data, kind=kind, root=str(data)))
    monkeypatch.setattr(rs, "build_data", lambda *a: pytest.fail("data built before the --out check"))
    for run in (data / "run1", data / "dog" / "runs" / "r"):
        with pytest.raises(UserError, match=rf"^--out {run}: inside the dataset folder {data}, where it "
                                            rf"would be read as a class folder; use an --out outside it$"):
            start_run(cfg, run, RESUME_FREE_FIELDS, "run")
        assert not run.exists()
    start_run(cfg, tmp_path / "sounds-run", RESUME_FREE_FIELDS, "run", _bundle(4))  # a sibling is fine
    dcase = replace(cfg, data=replace(cfg.data, kind="dcase2018"))
    start_run(dcase, data / "run1", RESUME_FREE_FIELDS, "run", _bundle(4))  # a cache reads only its files


def test_a_run_folder_in_use_by_another_process_is_refused_at_the_start(tmp_path, held_elsewhere):
    run = tmp_path / "run"
    run.mkdir()
    with held_elsewhere(run):
        with pytest.raises(UserError, match=rf"^{run}: in use by another audionas process"):
            start_run(replace(TrainConfig(), device="cpu"), run, RESUME_FREE_FIELDS, "run", _bundle(4))
    start_run(replace(TrainConfig(), device="cpu"), run, RESUME_FREE_FIELDS, "run", _bundle(4))


def test_a_new_run_folder_is_locked_once_write_config_makes_it(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    start = start_run(replace(TrainConfig(), device="cpu"), run, RESUME_FREE_FIELDS, "run", _bundle(4))
    start.write_config(replace(TrainConfig(), device="cpu"))
    probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from audionas.utils."
                            "rundir import lock_run_dir; lock_run_dir(Path(sys.argv[1]))", str(run)],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "in use by another audionas process" in probe.stderr


def test_a_relative_run_folder_inside_the_dataset_folder_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "sounds"
    (data / "dog").mkdir(parents=True)
    monkeypatch.chdir(data)
    cfg = replace(TrainConfig(), device="cpu")
    cfg = replace(cfg, data=replace(cfg.data, kind="folder", root=str(data)))
    with pytest.raises(UserError, match=rf"^--out runs/r: inside the dataset folder {data}, where it"):
        start_run(cfg, "runs/r", RESUME_FREE_FIELDS, "run")


def test_a_non_empty_folder_holding_no_run_is_refused_from_python_too(tmp_path):
    # Before (API QA): `audionas train --out` refused such a folder, train(cfg, folder) wrote into it.
    cfg = replace(TrainConfig(), device="cpu")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"folder is not empty and holds no DARTS search; use another --out"):
        start_run(cfg, tmp_path, RESUME_FREE_FIELDS, "DARTS search", _bundle(3))
    with pytest.raises(UserError, match=r"holds no training run"):
        start_run(cfg, tmp_path, RESUME_FREE_FIELDS, "run", _bundle(3))
    (tmp_path / ".x.tmp").write_text("")  # a kill during the first atomic write: still an empty run folder
    (tmp_path / "notes.txt").unlink()
    assert start_run(cfg, tmp_path, RESUME_FREE_FIELDS, "run", _bundle(3)).run == tmp_path


def test_an_out_that_is_the_dataset_folder_itself_is_refused(tmp_path):
    # Before (QA): evaluate / report / plot-search --out DATASET wrote their files among its class folders.
    from audionas.utils.rundir import check_outside_data

    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(UserError, match=rf"^--out {data}: is the dataset folder; use an --out outside it$"):
        check_outside_data(data, "folder", str(data))
    check_outside_data(tmp_path / "runs", "folder", str(data))


def test_batch_norm_needs_50_steps_and_warns_only_below():
    # BatchNorm's momentum 0.1: after 50 steps 0.9^50 < 1% of the initial running statistics is left.
    assert MIN_BN_STEPS == 50
    bn = torch.nn.BatchNorm1d(2)
    with pytest.warns(UserWarning, match=r"^only 49 optimiser steps \(392 training clips, "
                                         r"data\.batch_size=8, epochs=1\): batch-norm statistics "
                                         r"need about 50,"):
        warn_if_too_few_steps(bn, 49, 392, 8, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_too_few_steps(bn, 50, 400, 8, 1)  # exactly enough: no warning
