"""Run directories saved before data.split_seed existed keep their splits on resume."""

import dataclasses
import os
import re

import pytest
import yaml

from audionas.config import from_dict, load_preset_dict, to_dict
from audionas.errors import UserError
from audionas.train.config import TrainConfig
from audionas.utils.rundir import check_run_dir


def old_run(tmp_path, seed):
    """A run directory whose config.yaml has no data.split_seed (saved before it existed)."""
    d = to_dict(TrainConfig(seed=seed))
    del d["data"]["split_seed"]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(d))
    return tmp_path


def test_old_run_resumes_only_with_its_own_split_seed(tmp_path):
    run = old_run(tmp_path, seed=3)
    with pytest.raises(UserError, match=r"before data.split_seed existed.*add data.split_seed=3"):
        check_run_dir(run, TrainConfig(seed=3), ())
    fixed = TrainConfig(seed=3)
    fixed.data = dataclasses.replace(fixed.data, split_seed=3)
    check_run_dir(run, fixed, ())
    # resuming from the run's own config (no --preset) keeps the old split
    assert from_dict(TrainConfig, load_preset_dict(str(run / "config.yaml"))).data.split_seed == 3


def test_old_run_with_seed_0_resumes_unchanged(tmp_path):
    check_run_dir(old_run(tmp_path, seed=0), TrainConfig(seed=0), ())


def test_a_retrain_saved_before_the_op_set_label_still_resumes(tmp_path):
    from audionas.nas.darts.genotype import DARTS_V1

    frozen = {**DARTS_V1.to_dict(), "source": "s/genotype.json"}
    cfg = TrainConfig(model="darts", model_args={"genotype": frozen})
    run = old_run(tmp_path, seed=0)
    d = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**d, "model": "darts", "model_args": cfg.model_args}))
    cfg.model_args = {"genotype": {**cfg.model_args["genotype"], "ops": "nas1"}}
    check_run_dir(run, cfg, ())
    cfg.model_args = {"genotype": {**cfg.model_args["genotype"], "normal_concat": [2, 3]}}
    with pytest.raises(UserError, match="model_args.genotype.normal_concat"):
        check_run_dir(run, cfg, ())


def test_a_run_saved_by_an_older_audionas_with_other_unused_values_resumes(tmp_path):
    # Before (QA): a run made before a9b6c07 (other default data.ratios) or 9ed7f3b (model_args saved without
    # their defaults) was "a run with a different config" for the same command: it could not be resumed.
    run = old_run(tmp_path, seed=0)
    d = yaml.safe_load((run / "config.yaml").read_text())
    d["data"].update(split_seed=0, ratios=[0.4, 0.4, 0.2])
    (run / "config.yaml").write_text(yaml.safe_dump({**d, "model": "tc-resnet14-1.5", "model_args": {}}))
    cfg = TrainConfig(model="tc-resnet14-1.5", model_args={"bn_eps": 1e-5, "bn_momentum": 0.1})
    check_run_dir(run, cfg, ())  # the 'lists' split reads no ratios; the model's own defaults
    ratio_split = dataclasses.replace(cfg.data, split="ratio")
    for field, value in (("model_args", {"bn_eps": 1e-3}), ("data", ratio_split)):
        other = dataclasses.replace(cfg, **{field: value})
        with pytest.raises(UserError, match=r"different config \(field '(model_args.bn_eps|data.ratios)'"):
            check_run_dir(run, other, ())


def test_read_run_config_keeps_an_old_runs_split(tmp_path):
    from audionas.utils.rundir import read_run_config

    old = tmp_path / "old.yaml"
    old.write_text("seed: 3\ndata:\n  root: x\n")
    assert read_run_config(old)["data"]["split_seed"] == 3  # saved before split_seed: split with the seed
    new = tmp_path / "new.yaml"
    new.write_text("seed: 3\ndata:\n  root: x\n  split_seed: 0\n")
    assert read_run_config(new)["data"]["split_seed"] == 0


def test_a_failure_before_the_first_checkpoint_leaves_no_run_behind(tmp_path):
    from audionas.utils.rundir import lock_run_dir, no_work_left_behind

    def fail_in_first_epoch(run):
        with pytest.raises(UserError), no_work_left_behind(run):
            run.mkdir(exist_ok=True)
            lock_run_dir(run)  # as write_config does
            (run / "config.yaml").write_text("model: res15\n")
            (run / "tb").mkdir()
            raise UserError("clip.wav: 2 sample(s) are NaN or infinite (expected finite audio)")

    fail_in_first_epoch(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    fail_in_first_epoch(mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "work").mkdir()
    old_run(tmp_path / "work", seed=0)
    with pytest.raises(UserError), no_work_left_behind(tmp_path / "work"):
        (tmp_path / "work" / "metrics.jsonl").write_text("{}\n")
        raise UserError("x")
    assert (tmp_path / "work" / "metrics.jsonl").is_file()  # a run with a checkpoint keeps its files


def test_a_failure_leaves_the_run_folder_another_process_made_meanwhile(tmp_path, held_elsewhere):
    # Before, the same train command started twice: the second, refused ("in use by another audionas
    # process"), removed the folder the first had made while the second built its data, killing the first.
    from audionas.utils.rundir import lock_run_dir, no_work_left_behind

    run = tmp_path / "run"
    with pytest.raises(UserError, match="in use by another"), no_work_left_behind(run):
        run.mkdir()  # the first process's start
        (run / "config.yaml").write_text("model: res15\n")
        with held_elsewhere(run):
            lock_run_dir(run)  # the second's write_config
    assert (run / "config.yaml").read_text() == "model: res15\n"


def test_train_failing_on_a_bad_clip_leaves_no_run_behind(speech_commands_root, tmp_path, capsys):
    import shutil

    import numpy as np
    import soundfile as sf

    from audionas.cli import main

    data = tmp_path / "data"
    shutil.copytree(speech_commands_root, data)
    bad = sorted((data / "yes").glob("*.wav"))[0]
    x = np.zeros(16000, np.float32)
    x[5] = np.nan
    sf.write(bad, x, 16000, subtype="FLOAT")
    run = tmp_path / "run"
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(data), "--out", str(run),
                 "model=tc-resnet8", "epochs=1", "data.batch_size=16"]) == 2
    assert capsys.readouterr().err.endswith(f"audionas: error: {bad}: 1 sample(s) are NaN or infinite "
                                            f"(expected finite audio)\n")
    assert not run.exists()


def test_a_bad_test_clip_stops_train_before_the_first_epoch(speech_commands_root, tmp_path, capsys):
    # The test split is first read after the last epoch; its clips are decoded before training instead.
    import shutil

    import numpy as np
    import soundfile as sf

    from audionas.cli import main

    data = tmp_path / "data"
    shutil.copytree(speech_commands_root, data)
    listed = [r for r in (data / "testing_list.txt").read_text().split() if r.startswith("yes/")]
    bad = data / listed[0]
    x = np.zeros(16000, np.float32)
    x[5] = np.inf
    sf.write(bad, x, 16000, subtype="FLOAT")  # a header check passes it
    run = tmp_path / "run"
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(data), "--out", str(run),
                 "model=tc-resnet8", "epochs=1", "data.batch_size=16"]) == 2
    assert capsys.readouterr().err.endswith(f"audionas: error: {bad}: 1 sample(s) are NaN or infinite "
                                            f"(expected finite audio)\n")
    assert not run.exists()  # after training, final.pt would be there


def test_a_run_folder_without_a_checkpoint_takes_a_new_config(tmp_path):
    # config.yaml but no checkpoint: the run failed before its first epoch and holds no work
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(to_dict(TrainConfig(seed=1))))
    check_run_dir(tmp_path, TrainConfig(seed=2), ())
    (tmp_path / "final.pt").write_bytes(b"")
    with pytest.raises(UserError, match=r"holds a run with a different config \(field 'seed'\); choose "):
        check_run_dir(tmp_path, TrainConfig(seed=2), ())
    # more epochs: why a finished run is not extended (README walkthrough QA)
    with pytest.raises(UserError, match=r"\(field 'epochs'\); a run is not extended to more epochs \(its "
                                        r"learning-rate schedule may be laid out over them\); choose another "
                                        r"--out$"):
        check_run_dir(tmp_path, TrainConfig(seed=1, epochs=TrainConfig().epochs + 1), ())
    with pytest.raises(UserError, match=r"\(field 'epochs'\); choose another --out$"):  # fewer: no such hint
        check_run_dir(tmp_path, TrainConfig(seed=1, epochs=TrainConfig().epochs - 1), ())
    # more epochs and other fields (another preset, QA): the epochs hint would mislead
    with pytest.raises(UserError, match=r"\(field 'epochs' and 1 more\); choose another --out$"):
        check_run_dir(tmp_path, TrainConfig(seed=2, epochs=TrainConfig().epochs + 1), ())


def test_refuse_repeats_compares_resolved_paths(tmp_path, monkeypatch):
    from audionas.utils.rundir import refuse_repeats

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    refuse_repeats([tmp_path / "a", tmp_path / "b"], "why")
    with pytest.raises(UserError, match=r"^a/\.: given twice; why$"):
        refuse_repeats([str(tmp_path / "a"), "a/."], "why")


def test_a_run_folder_another_process_holds_is_refused(tmp_path, held_elsewhere):
    # before: the same train command started twice joined one run (4 epoch lines for 2 epochs)
    import shutil
    import subprocess
    import sys

    from audionas.utils.rundir import lock_run_dir

    run = tmp_path / "run"
    run.mkdir()
    with held_elsewhere(run):
        with pytest.raises(UserError, match=rf"^{run}: in use by another audionas process writing there; "
                                            rf"wait for it to end \(or stop it\), or use another --out$"):
            lock_run_dir(run)
    lock_run_dir(run)  # its lock ended with it
    lock_run_dir(run)  # and this process may take its own lock again
    shutil.rmtree(run)
    run.mkdir()
    lock_run_dir(run)  # a new folder at the same path: locked again, not taken for the old one
    probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from audionas.utils."
                            "rundir import lock_run_dir; lock_run_dir(Path(sys.argv[1]))", str(run)],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "in use by another audionas process" in probe.stderr


@pytest.mark.slow
def test_a_hand_edited_config_yaml_is_refused_on_resume(kws_run, speech_commands_root, tmp_path, capsys):
    # Before, `train --out RUN` read the edited config.yaml, matched it against itself and trained on under
    # the new epochs / lr, with final.pt recording a config the run was not trained with.
    import shutil

    from audionas.cli import main

    run = tmp_path / "run"
    shutil.copytree(kws_run, run)
    text = (run / "config.yaml").read_text()
    assert "\nepochs: 1\n" in text and "\nlog_every: " in text
    (run / "config.yaml").write_text(text.replace("\nepochs: 1\n", "\nepochs: 2\n"))
    final = (run / "final.pt").read_bytes()
    assert main(["train", "--out", str(run)]) == 2
    want = (f"audionas: error: {run / 'config.yaml'}: field 'epochs' differs from the config the run was "
            f"trained with ({run / 'checkpoints' / 'last.pt'}); undo the edit, or choose another --out\n")
    assert capsys.readouterr().err == want
    # before (QA): the run's own command was told the run holds "a different config (field 'epochs')"
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root), "--out",
                 str(run), "model=tc-resnet8", "epochs=1", "data.batch_size=16"]) == 2
    assert capsys.readouterr().err == want
    assert (run / "final.pt").read_bytes() == final
    # a field a resume may change (log_every) is no edit to refuse
    (run / "config.yaml").write_text(re.sub(r"\nlog_every: \d+\n", "\nlog_every: 7\n", text))
    assert main(["train", "--out", str(run)]) == 0


def test_config_kind_names_the_run_a_config_is_for():
    from audionas.utils.rundir import config_kind

    assert config_kind({"model": "res15", "data": {}}) == "training run"
    assert config_kind({"ops": "nas1"}) == "DARTS search"
    assert config_kind({"space": "asc", "kind": "fairnas"}) == "supernet run"
    assert config_kind({"algorithm": "nsga2", "population": 8}) == "one-shot search"
    assert config_kind({"epochs": 3}) is None and config_kind(["model"]) is None
    assert config_kind({"model": "res15", "ops": "nas1"}) is None  # two kinds' fields: none said


def _locked_from_another_process(folder) -> bool:
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from audionas.utils."
                            "rundir import lock_run_dir; lock_run_dir(Path(sys.argv[1]))", str(folder)],
                           capture_output=True, text=True)
    return probe.returncode != 0 and "in use by another audionas process" in probe.stderr


def test_locks_taken_in_a_run_dir_locks_block_end_with_the_outermost_one(tmp_path):
    from audionas.utils.rundir import lock_run_dir, run_dir_locks

    before, inner, outer = (tmp_path / n for n in ("before", "inner", "outer"))
    for d in (before, inner, outer):
        d.mkdir()
    lock_run_dir(before)
    fds = len(os.listdir("/proc/self/fd"))
    with run_dir_locks():
        lock_run_dir(outer)
        with run_dir_locks():
            lock_run_dir(inner)
        assert _locked_from_another_process(inner)  # still held: the outer block has not ended
    assert not _locked_from_another_process(inner) and not _locked_from_another_process(outer)
    assert len(os.listdir("/proc/self/fd")) == fds  # their descriptors closed
    assert _locked_from_another_process(before)  # taken outside the block: kept


def test_a_run_trained_in_process_can_be_resumed_by_another_process(kws_run):
    # Before (resource QA): each in-process train kept its folder locked, and a descriptor open, until the
    # Python process ended: a notebook's runs could not be resumed from a terminal meanwhile.
    assert not _locked_from_another_process(kws_run)


def test_a_forked_child_does_not_keep_its_parents_run_folder_locked(tmp_path):
    # Before (QA): after `kill -9` of a run with data.num_workers=2, the same command run again at once was
    # refused ("in use by another audionas process") for seconds: the orphaned workers' copies of the lock
    # descriptor kept the flock.
    import contextlib
    import subprocess
    import sys
    import time

    from audionas.utils.rundir import locked_elsewhere

    run = tmp_path / "run"
    run.mkdir()
    code = ("import os, sys, time\nfrom pathlib import Path\nfrom audionas.utils.rundir import lock_run_dir\n"
            "lock_run_dir(Path(sys.argv[1]))\n"
            "if os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\n"
            "print('locked', flush=True)\ntime.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert parent.stdout.readline() == "locked\n"
        assert locked_elsewhere(run)
        parent.kill()  # as kill -9: the forked child lives on
        parent.wait()
        time.sleep(0.2)
        assert not locked_elsewhere(run)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, 9)


def test_a_failure_in_a_locked_run_that_holds_a_checkpoint_keeps_what_it_added(tmp_path):
    # The main process holds the lock of a run with work (a resumed run failing mid-epoch): nothing goes.
    from audionas.utils.rundir import lock_run_dir, no_work_left_behind, run_dir_locks

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(TrainConfig())))
    with run_dir_locks(), pytest.raises(UserError), no_work_left_behind(run):
        lock_run_dir(run)
        (run / "metrics.jsonl").write_text("{}\n")
        (run / "tb").mkdir()
        raise UserError("clip.wav: 2 sample(s) are NaN or infinite (expected finite audio)")
    assert (run / "metrics.jsonl").is_file() and (run / "tb").is_dir()
    assert (run / "checkpoints" / "last.pt").is_file()


def test_check_outside_data_refuses_the_dataset_folder_and_folders_inside_it(tmp_path):
    from audionas.utils.rundir import check_outside_data

    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(UserError, match=r"^--out .*data: is the dataset folder; use an --out outside it$"):
        check_outside_data(root, "folder", str(root))
    with pytest.raises(UserError, match=r"^--out .*runs/r1: inside the dataset folder .*data, where"):
        check_outside_data(root / "runs" / "r1", "folder", str(root))
    check_outside_data(tmp_path, "folder", str(root))  # its parent holds the dataset: fine
    check_outside_data(tmp_path / "out", "folder", str(root))  # a sibling: fine
    check_outside_data(root / "run", "dcase2018", str(root))  # a DCASE cache reads only its own files


def test_a_run_that_saved_its_split_seed_is_refused_another_as_any_other_field(tmp_path):
    # Only a run saved before data.split_seed existed gets the "add data.split_seed=N" advice.
    import dataclasses

    from audionas.utils.rundir import check_run_dir

    saved = TrainConfig()
    saved.data = dataclasses.replace(saved.data, split_seed=3)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(to_dict(saved)))
    (tmp_path / "final.pt").write_bytes(b"")
    with pytest.raises(UserError, match=r"holds a run with a different config \(field 'data\.split_seed'\); "
                                        r"choose another --out$"):
        check_run_dir(tmp_path, TrainConfig(), ())
