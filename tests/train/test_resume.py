"""Killing a run and running the same command again ends with bit-identical weights (CPU, same seed)."""

import json
import sys
import warnings
from dataclasses import replace

import pytest
import torch
from tensorboard_events import Killed, killed_after_epoch_log, tb_scalars

from audionas.config import load_config
from audionas.errors import UserError
from audionas.train.config import TrainConfig
from audionas.train.run_start import MIN_BN_STEPS, warn_if_too_few_steps
from audionas.train.trainer import train
from audionas.utils.checkpoint import load_checkpoint

BASE = ["model=tiny-test", "model_args={aux: true}", "epochs=3", "data.batch_size=8", "device=cpu",
        "optim.lr=0.05", "optim.schedule=cosine", "optim.warmup_epochs=1", "optim.grad_clip=1.0",
        "optim.ema_decay=0.9", "label_smoothing=0.1", "log_every=2"]


def config(*extra) -> TrainConfig:
    return load_config(TrainConfig, None, BASE + list(extra))


def state(run, name="last"):
    ck = load_checkpoint(run / "checkpoints" / f"{name}.pt")
    return ck


def assert_same_weights(a: dict, b: dict) -> None:
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), f"{key}.{k} differs"
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])


def training_items_read(monkeypatch, tiny_bundle) -> list[int]:
    """The indices of the training items the runs read from now on (a resume reads only the steps it has
    left: restarting from step 0 gives the same weights on CPU, so the weights alone cannot tell)."""
    blobs = type(tiny_bundle().train)
    read, get = [], blobs.__getitem__

    def counted(self, i):
        if self.train:
            read.append(i)
        return get(self, i)

    monkeypatch.setattr(blobs, "__getitem__", counted)
    return read


@pytest.mark.parametrize("stops", [[7], [3, 11]])
def test_resume_equals_uninterrupted(tmp_path, stops, tiny_bundle, monkeypatch):
    ref = tmp_path / "ref"
    train(config(), ref, bundle=tiny_bundle())
    run = tmp_path / "killed"
    cfg = config("checkpoint_every_steps=2")
    read = training_items_read(monkeypatch, tiny_bundle)
    saved = 0
    for k in stops:  # "kill" after k steps: nothing is saved beyond the last periodic checkpoint
        read.clear()
        assert train(cfg, run, bundle=tiny_bundle(), _stop_after_steps=k) == {}
        assert len(read) == (k - saved) * 8  # from the last checkpoint on, batches of 8
        saved = k // 2 * 2
    read.clear()
    train(cfg, run, bundle=tiny_bundle())
    assert len(read) == (15 - saved) * 8
    a, b = state(ref), state(run)
    assert a["step"] == b["step"] == 15  # 40 items / batch 8 = 5 steps x 3 epochs
    assert_same_weights(a, b)
    fa = load_checkpoint(ref / "final.pt")["model"]
    fb = load_checkpoint(run / "final.pt")["model"]
    assert all(torch.equal(fa[k], fb[k]) for k in fa)
    # one metrics line per epoch, equal numbers apart from the wall time
    la = [json.loads(x) for x in (ref / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lb] == [1, 2, 3]
    for x, y in zip(la, lb):
        x.pop("time"), y.pop("time")
        assert x == y


def test_tensorboard_hides_what_a_killed_start_logged_past_its_checkpoint(tmp_path, tiny_bundle):
    # Before: the steps between the checkpoint and the kill were shown twice, zig-zagging the curves.
    ref, run = tmp_path / "ref", tmp_path / "killed"
    train(config("log_every=1", "epochs=2"), ref, bundle=tiny_bundle())
    cfg = config("log_every=1", "epochs=2", "checkpoint_every_steps=3")
    assert train(cfg, run, bundle=tiny_bundle(), _stop_after_steps=8) == {}  # saved at step 6, logged 7, 8
    train(cfg, run, bundle=tiny_bundle())
    shown = tb_scalars(run)
    assert [x for x, _ in shown["train/loss"]] == list(range(1, 11))
    assert shown == tb_scalars(ref)


@pytest.mark.parametrize("kill_epoch", [1, 2])
def test_tensorboard_shows_an_epoch_once_after_a_kill_between_its_log_and_its_checkpoint(
        tmp_path, tiny_bundle, monkeypatch, kill_epoch):
    # Before, epoch records were at x = epoch, below the purge step (or no purge before a first checkpoint):
    # the epoch logged again by the resume was shown twice.
    from audionas.train import trainer

    ref, run = tmp_path / "ref", tmp_path / "killed"
    train(config("epochs=2"), ref, bundle=tiny_bundle())
    monkeypatch.setattr(trainer, "log_epoch", killed_after_epoch_log(trainer.log_epoch, kill_epoch))
    with pytest.raises(Killed):
        train(config("epochs=2"), run, bundle=tiny_bundle())
    monkeypatch.undo()
    train(config("epochs=2"), run, bundle=tiny_bundle())
    shown = tb_scalars(run)
    assert [x for x, _ in shown["epoch/train_loss"]] == [5, 10]
    assert shown == tb_scalars(ref)


def test_a_resume_may_checkpoint_at_another_interval(tmp_path, tiny_bundle, monkeypatch):
    # Before, a resume with another checkpoint_every_steps was refused ("different config"); the weights do
    # not depend on it.
    ref = tmp_path / "ref"
    train(config(), ref, bundle=tiny_bundle())
    run = tmp_path / "killed"
    assert train(config("checkpoint_every_steps=2"), run, bundle=tiny_bundle(), _stop_after_steps=7) == {}
    read = training_items_read(monkeypatch, tiny_bundle)
    train(config("checkpoint_every_steps=3"), run, bundle=tiny_bundle())
    assert len(read) == (15 - 6) * 8  # resumed at the checkpoint of step 6
    assert_same_weights(state(ref), state(run))
    with pytest.raises(UserError, match="different config"):  # a field that changes the weights still is
        train(config("checkpoint_every_steps=3", "optim.lr=0.02"), run, bundle=tiny_bundle())


def test_different_seed_differs(tmp_path, tiny_bundle):
    train(config(), tmp_path / "a", bundle=tiny_bundle())
    train(config("seed=1"), tmp_path / "b", bundle=tiny_bundle())
    a, b = state(tmp_path / "a"), state(tmp_path / "b")
    assert not torch.equal(a["model"]["fc.weight"], b["model"]["fc.weight"])


def test_channels_last_run_trains_the_same_network(tmp_path, tiny_bundle, monkeypatch):
    from audionas.models import channels_last

    seen = []
    real = channels_last.optimize_for_training
    monkeypatch.setattr(channels_last, "optimize_for_training",
                        lambda m, accurate_bn: seen.append(real(m, accurate_bn=accurate_bn)) or seen[-1])
    train(config("epochs=1"), tmp_path / "a", bundle=tiny_bundle())
    assert not seen
    train(config("epochs=1", "channels_last=true"), tmp_path / "b", bundle=tiny_bundle())
    assert isinstance(seen[0].bn, channels_last.FastBatchNorm2d)
    train(config("epochs=1", "channels_last=true", "accurate_bn=false"), tmp_path / "c", bundle=tiny_bundle())
    assert type(seen[1].bn) is torch.nn.BatchNorm2d and seen[1].conv.weight.is_contiguous(
        memory_format=torch.channels_last)
    a, b = state(tmp_path / "a")["model"], state(tmp_path / "b")["model"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


def test_run_dir_with_other_config_is_refused(tmp_path, tiny_bundle):
    train(config("epochs=1"), tmp_path / "r", bundle=tiny_bundle())
    with pytest.raises(UserError, match="optim.lr"):
        train(config("epochs=1", "optim.lr=0.01"), tmp_path / "r", bundle=tiny_bundle())
    # free fields (log_every) may change; a finished run just re-scores the test split
    rep = train(config("epochs=1", "log_every=7"), tmp_path / "r", bundle=tiny_bundle())
    assert set(rep) >= {"accuracy", "macro_f1", "per_class_f1", "confusion"}


def test_run_outputs_and_progress(tmp_path, tiny_bundle):
    bundle = tiny_bundle()
    rep = train(config("epochs=2", "optim.ema_decay=0"), tmp_path / "r", bundle=bundle)
    r = tmp_path / "r"
    for p in ("config.yaml", "final.pt", "metrics.jsonl", "test_metrics.json", "confusion_test.png",
              "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (r / p).is_file(), p
    assert list((r / "tb").iterdir())
    ck = state(r)
    assert ck["classes"] == ["a", "b", "c"] and ck["input_shape"] == [1, 8, 8] and ck["epoch"] == 2
    assert ck["ema"] is None
    lines = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
    assert set(lines[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr", "time"}
    assert 0.0 <= rep["accuracy"] <= 1.0 and rep["n"] == 12


def test_set_progress_called_each_epoch(tmp_path, monkeypatch, tiny_bundle):
    from audionas.models import registry

    seen = []
    real = registry._MODELS["tiny-test"]

    def factory(**kw):
        m = real(**kw)
        seen.append(m)
        return m

    monkeypatch.setitem(registry._MODELS, "tiny-test", factory)
    train(config("epochs=3", "optim.ema_decay=0"), tmp_path / "r", bundle=tiny_bundle())
    assert seen[0].progress == pytest.approx([0, 1 / 3, 2 / 3])


def test_a_run_that_cannot_start_leaves_nothing_and_a_run_without_checkpoint_is_replaceable(tmp_path,
                                                                                               tiny_bundle):
    r = tmp_path / "r"
    with pytest.raises(UserError, match="model"):
        train(config("model=no-such-model"), r, bundle=tiny_bundle())
    assert not r.exists()  # a failed start must not block the corrected command
    train(config("epochs=1"), r, bundle=tiny_bundle(), _stop_after_steps=1)  # killed before a checkpoint
    assert (r / "config.yaml").is_file() and not (r / "checkpoints" / "last.pt").exists()
    train(config("epochs=1", "optim.lr=0.01"), r, bundle=tiny_bundle())  # nothing done yet: may change
    with pytest.raises(UserError, match="optim.lr"):
        train(config("epochs=1"), r, bundle=tiny_bundle())


@pytest.mark.parametrize("bad,field", [("seed=-1", "'seed'"), ("optim.lr=nan", "'optim.lr'"),
                                       ("optim.lr=.inf", "'optim.lr'")])
def test_negative_seed_and_non_finite_numbers_are_refused(bad, field):
    with pytest.raises(UserError, match=field):
        config(bad).validate()


def test_a_start_without_checkpoint_drops_epoch_lines_of_an_earlier_killed_start(tmp_path, tiny_bundle):
    from audionas.config import dump_yaml

    r = tmp_path / "r"
    r.mkdir()
    (r / "config.yaml").write_text(dump_yaml(config("epochs=1")))  # written at the start
    (r / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "stale": True}) + "\n")  # logged, then killed
    train(config("epochs=1"), r, bundle=tiny_bundle())
    lines = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
    assert [d["epoch"] for d in lines] == [1] and "stale" not in lines[0]


def test_too_few_steps_for_batch_norm_is_a_warning(tmp_path, tiny_bundle):
    with pytest.warns(UserWarning, match=r"only 15 optimiser steps \(40 training clips, data.batch_size=8, "
                                         r"epochs=3\): batch-norm statistics") as rec:
        train(config(), tmp_path / "a", bundle=tiny_bundle())
    # attributed to the caller's line (before: rundir.py, the decorator's frame; earlier, contextlib)
    assert {(w.filename, w.lineno) for w in rec} == {(__file__, sys._getframe().f_lineno - 2)}
    model_bn, model_plain = torch.nn.BatchNorm1d(2), torch.nn.Linear(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_too_few_steps(model_bn, MIN_BN_STEPS, 400, 8, 1)  # enough steps
        warn_if_too_few_steps(model_plain, 1, 40, 64, 1)  # no batch norm to settle
        train(config(), tmp_path / "a", bundle=tiny_bundle())  # finished run: nothing to train, no warning


def test_too_few_steps_warning_names_max_steps_per_epoch_when_it_caps(tmp_path, tiny_bundle):
    with pytest.warns(UserWarning, match=r"only 6 optimiser steps \(40 training clips, data.batch_size=8, "
                                         r"epochs=3, max_steps_per_epoch=2\): .*; raise max_steps_per_epoch"):
        train(config("max_steps_per_epoch=2"), tmp_path / "a", bundle=tiny_bundle())
    with pytest.warns(UserWarning, match=r"epochs=3\): .*; lower data.batch_size or raise epochs") as rec:
        train(config("max_steps_per_epoch=9"), tmp_path / "b", bundle=tiny_bundle())  # 5 steps: no cap
    assert not any("max_steps_per_epoch" in str(w.message) for w in rec)
    with pytest.warns(UserWarning, match=r"^only 1 optimiser step \(8 training clips, data.batch_size=8, "
                                         r"epochs=1\)"):
        warn_if_too_few_steps(torch.nn.BatchNorm1d(2), 1, 8, 8, 1)


def test_rerun_messages_name_a_1_based_epoch_or_say_the_run_is_complete(tmp_path, tiny_bundle, capfd):
    run, cfg = tmp_path / "run", config("epochs=2", "checkpoint_every_steps=2")
    assert train(cfg, run, bundle=tiny_bundle(), _stop_after_steps=7) == {}  # saved at step 6 = epoch 2, 1/5
    capfd.readouterr()
    train(cfg, run, bundle=tiny_bundle())
    assert f"resuming {run} at epoch 2/2, step 1/5" in capfd.readouterr().err
    train(cfg, run, bundle=tiny_bundle())
    err = capfd.readouterr().err
    assert f"{run}: already complete (2 epochs); writing its results again" in err and "resuming" not in err


def test_a_resume_on_changed_data_is_refused_naming_what_changed(tmp_path, tiny_bundle):
    run = tmp_path / "r"
    cfg = config("checkpoint_every_steps=2")
    assert train(cfg, run, bundle=tiny_bundle(), _stop_after_steps=3) == {}  # saved at step 2
    # 2 clips more: still 5 steps per epoch, so only the recorded split sizes tell
    with pytest.raises(UserError, match=r"last\.pt: the run started on data with split_sizes "
                                        r"\{'train': 40, 'val': 12\}, the data now has \{'train': 42"):
        train(cfg, run, bundle=tiny_bundle(n_train=42))
    other = tiny_bundle()
    other.classes = ["a", "b", "z"]
    with pytest.raises(UserError, match=r"classes \['a', 'b', 'c'\], the data now has \['a', 'b', 'z'\]"):
        train(cfg, run, bundle=other)
    train(cfg, run, bundle=tiny_bundle())  # the same data resumes
    assert state(run)["split_sizes"] == {"train": 40, "val": 12}


def test_a_resume_on_as_many_but_other_clips_is_refused(tmp_path, tiny_bundle):
    # Before: only the split sizes were compared, so a dataset with a clip swapped for another resumed on it.
    def bundle(swapped: int | None = None):
        b = tiny_bundle()
        b.train.items = [(f"c/{i}.wav", int(y)) for i, y in enumerate(b.train.y)]  # clip keys (clip_keys)
        if swapped is not None:
            b.train.items[swapped] = ("c/new.wav", b.train.items[swapped][1])
        return b

    run, cfg = tmp_path / "r", config("checkpoint_every_steps=2")
    assert train(cfg, run, bundle=bundle(), _stop_after_steps=3) == {}  # saved at step 2
    with pytest.raises(UserError, match=r"last\.pt: the run started on data with other clips in its train or "
                                        r"val split \(the dataset changed\)"):
        train(cfg, run, bundle=bundle(swapped=5))
    train(cfg, run, bundle=bundle())
    assert list(state(run)["split_fingerprint"]) == ["train"]  # the in-memory val split has no clip keys


def test_a_resume_on_other_val_clips_is_refused(tmp_path, tiny_bundle):
    # Pinned: the fingerprint covers the val split too (the clips epochs are scored and best.pt chosen on).
    def bundle(swapped: int | None = None):
        b = tiny_bundle()
        for ds in (b.train, b.val):
            ds.items = [(f"c/{i}.wav", int(y)) for i, y in enumerate(ds.y)]  # clip keys (clip_keys)
        if swapped is not None:
            b.val.items[swapped] = ("c/new.wav", b.val.items[swapped][1])
        return b

    run, cfg = tmp_path / "r", config("checkpoint_every_steps=2")
    assert train(cfg, run, bundle=bundle(), _stop_after_steps=3) == {}  # saved at step 2
    assert list(state(run)["split_fingerprint"]) == ["train", "val"]
    with pytest.raises(UserError, match=r"last\.pt: the run started on data with other clips in its train or "
                                        r"val split"):
        train(cfg, run, bundle=bundle(swapped=5))


@pytest.mark.slow
def test_a_refused_resume_leaves_config_yaml_as_it_was(kws_run, speech_commands_root, tmp_path, capsys):
    # Before, `train --out RUN --data CHANGED` was refused (the dataset changed) after config.yaml already
    # named CHANGED, so the plain `train --out RUN` resumed on CHANGED and was refused too.
    import shutil

    from audionas.cli import main

    run, changed = tmp_path / "run", tmp_path / "changed"
    shutil.copytree(kws_run, run)
    shutil.copytree(speech_commands_root, changed)
    victim = sorted((changed / "yes").glob("*.wav"))[0]
    victim.unlink()
    for lst in ("validation_list.txt", "testing_list.txt"):
        path = changed / lst
        path.write_text("".join(ln for ln in path.read_text().splitlines(keepends=True)
                                if ln.strip() != f"yes/{victim.name}"))
    config = (run / "config.yaml").read_text()
    assert main(["train", "--out", str(run), "--data", str(changed)]) == 2
    assert "(the dataset changed)" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == config


def test_a_genotype_object_in_model_args_resumes(tmp_path, tiny_bundle):
    # Before (review): model_args={"genotype": Genotype} trained, but the same call again was refused
    # ("holds a run with a different config (field 'model_args.genotype.normal')"): its (op, input) tuples
    # against config.yaml's lists.
    from audionas.nas.darts.genotype import GENOTYPES

    cfg = load_config(TrainConfig, None, ["model=darts", "epochs=2", "data.batch_size=8", "device=cpu",
                                          "checkpoint_every_steps=2"])
    cfg = replace(cfg, model_args={"genotype": GENOTYPES["DARTS_V2"], "cells": 2, "channels": 8})
    train(cfg, tmp_path, bundle=tiny_bundle(), _stop_after_steps=2)
    train(cfg, tmp_path, bundle=tiny_bundle())
    assert (tmp_path / "final.pt").is_file()


def test_tensorboard_gets_the_test_scores_once_at_the_final_step(tmp_path, tiny_bundle):
    # Before (QA): the test scores reached test_metrics.json and the console only, not TensorBoard.
    run = tmp_path / "run"
    train(config("epochs=2"), run, bundle=tiny_bundle())
    test = json.loads((run / "test_metrics.json").read_text())
    shown = tb_scalars(run)
    assert shown["final/test_acc"] == [(10, round(test["accuracy"], 5))]
    assert shown["final/test_macro_f1"] == [(10, round(test["macro_f1"], 5))]
    assert shown["final/test_loss"] == [(10, round(test["loss"], 5))]
    train(config("epochs=2"), run, bundle=tiny_bundle())  # the finished run's rerun: no second point
    assert tb_scalars(run) == shown
