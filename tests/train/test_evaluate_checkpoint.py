"""Hand-edited checkpoint fields (input_shape, model, config, classes) for evaluate / predict / export."""

import warnings

import pytest
import torch
from cache_split import CacheSplit, dev_and_mixed

from audionas.cli import main
from audionas.config import load_config
from audionas.errors import UserError
from audionas.train.config import TrainConfig
from audionas.train.trained_run import checkpoint_path, load_model
from audionas.train.trainer import train
from audionas.utils.checkpoint import load_checkpoint, save_atomic


@pytest.fixture
def final(tmp_path, tiny_bundle):
    run = tmp_path / "run"
    cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "data.batch_size=8", "device=cpu",
                                          "data.root=unused"])
    train(cfg, run, bundle=tiny_bundle())
    return load_checkpoint(run / "final.pt")


@pytest.mark.parametrize("key, value, msg", [
    ("input_shape", [1, 2], "field 'input_shape': expected three positive integers"),
    ("input_shape", "abc", "field 'input_shape'"),
    # Before (QA): export allocated 320 GB and died in a traceback; predict read it without a word.
    ("input_shape", [1, 100_000, 50], r"field 'input_shape': expected a sample of at most 4,194,304 values "
                                      r"\(C x H x W\), got \[1, 100000, 50\] \(5,000,000\)"),
    ("model", "abc", "field 'model': expected the network weights"),
    ("model", {"fc.weight": 3}, "field 'model': expected the network weights"),
    ("config", "hello", "field 'config': expected the run's config as a mapping"),
    ("classes", "abc", "field 'classes'"),
])
def test_hand_edited_field_is_a_user_error(final, tmp_path, capsys, key, value, msg):
    ck = tmp_path / "edited.pt"
    save_atomic({**final, key: value}, ck)
    with pytest.raises(UserError, match=f"edited.pt: {msg}"):
        load_model(ck)
    assert main(["evaluate", str(ck)]) == 2
    assert main(["export", str(ck), "--out", str(tmp_path / "m.pt2")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith(f"audionas: error: {ck}: field '{key}'") for line in err)


@pytest.mark.parametrize("edit, msg", [
    # Before (QA): predict printed `yes 1.000  yes 0.000` and export wrote a program of 12 classes named yes.
    (lambda ck: {"classes": [ck["classes"][0]] * len(ck["classes"])},
     r"field 'classes': class '.*' given twice"),
    (lambda ck: {"classes": ["x" * 300, *ck["classes"][1:]]}, r"field 'classes': expected names of 1 to 255 "
                                                               r"characters, got one of 300"),
    # Before (QA): load_state_dict cast them without a word; predict then scored every class alike.
    (lambda ck: {"model": {k: v.long() for k, v in ck["model"].items()}, "ema": None},
     r"field 'model': weight '.*' is int64, expected float32 \(a damaged or edited checkpoint\)"),
    (lambda ck: {"model": {k: v.to(torch.complex64) if v.is_floating_point() else v
                           for k, v in ck["model"].items()}, "ema": None},
     r"field 'model': weight '.*' is complex64, expected float32"),
])
def test_edited_classes_or_weight_types_are_refused(final, tmp_path, capsys, edit, msg):
    ck = tmp_path / "edited.pt"
    save_atomic({**final, **edit(final)}, ck)
    with pytest.raises(UserError, match=f"^{ck}: {msg}"):
        load_model(ck)
    assert main(["export", str(ck), "--out", str(tmp_path / "m.pt2")]) == 2
    assert capsys.readouterr().err.startswith(f"audionas: error: {ck}: field ")
    assert not (tmp_path / "m.pt2").exists()


def test_weights_of_another_float_precision_still_load(final, tmp_path):
    ck = tmp_path / "half.pt"
    save_atomic({**final, "model": {k: v.half() if v.is_floating_point() else v
                                    for k, v in final["model"].items()}, "ema": None}, ck)
    assert load_model(ck).model.fc.weight.dtype == torch.float32


def test_unedited_checkpoint_still_loads(final, tmp_path):
    save_atomic(final, tmp_path / "ok.pt")
    assert load_model(tmp_path / "ok.pt").input_shape == (1, 8, 8)
    assert isinstance(final["model"]["fc.weight"], torch.Tensor)


@pytest.mark.parametrize("edit, msg", [
    ({"epochs": "many"}, r"config field 'epochs'"),
    ({"model": "no-such-net"}, r"no-such-net"),
])
def test_a_hand_edited_saved_config_is_named_with_its_checkpoint(final, tmp_path, capsys, edit, msg):
    ck = tmp_path / "edited.pt"
    save_atomic({**final, "config": {**final["config"], **edit}}, ck)
    with pytest.raises(UserError, match=rf"^{ck}: saved config: .*{msg}"):
        load_model(ck)
    assert main(["evaluate", str(ck)]) == 2
    assert capsys.readouterr().err.startswith(f"audionas: error: {ck}: saved config: ")


def test_a_run_folder_gives_its_final_checkpoint_before_its_last_one(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    (tmp_path / "final.pt").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finished run: no "has not finished" warning
        assert checkpoint_path(tmp_path) == tmp_path / "final.pt"
    (tmp_path / "final.pt").unlink()
    with pytest.warns(UserWarning, match=r"no final\.pt \(the run has not finished\)"):
        assert checkpoint_path(tmp_path) == tmp_path / "checkpoints" / "last.pt"


def test_a_search_run_folder_is_refused_with_what_to_do_instead(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    (tmp_path / "genotype.json").write_text("{}")
    with pytest.raises(UserError, match=r"a search run, not a trained network; retrain its cell: audionas "
                                        r"train --genotype RUN/genotype\.json$"):
        checkpoint_path(tmp_path)


def test_a_checkpoint_that_kept_an_ema_is_evaluated_with_its_ema_weights(tmp_path):
    # The ASC recipe evaluates the EMA of the weights: load_model loads "ema", not "model", when it was kept.
    from audionas.config import to_dict
    from audionas.models import create_model

    cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "device=cpu", "data.root=unused"])
    weights = create_model("tiny-test", num_classes=3, input_shape=(1, 8, 8)).state_dict()
    ema = {k: v + 0.5 if v.is_floating_point() else v for k, v in weights.items()}
    ck, base = tmp_path / "ema.pt", {"config": to_dict(cfg), "classes": ["a", "b", "c"],
                                      "input_shape": [1, 8, 8], "model": weights}
    save_atomic({**base, "ema": ema}, ck)
    got = load_model(ck).model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ema.items())
    save_atomic({**base, "ema": None}, ck)
    got = load_model(ck).model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in weights.items())


def test_trained_on_a_cache_without_its_mix_rows_is_the_same_training_split():
    from types import SimpleNamespace

    from audionas.data import clips_digest
    from audionas.train.trained_run import warn_other_split

    dev, mixed = dev_and_mixed()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # shuffle-and-mix rows added after training: the same clips
        warn_other_split(SimpleNamespace(train=mixed), {"train": clips_digest(dev)}, "c", "run")
    other = CacheSplit(["c/dev/x.npy"], [0, 0], [0, 2], [0, 1])
    with pytest.warns(UserWarning, match=r"^c: its training split holds other clips than the one run was "):
        warn_other_split(SimpleNamespace(train=mixed), {"train": clips_digest(other)}, "c", "run")


def test_a_dcase_split_of_another_size_is_refused_without_recorded_band_statistics():
    from types import SimpleNamespace

    from audionas.train.trained_run import trained_frontend

    data_cfg = SimpleNamespace(kind="dcase2018", normalize=True)
    bundle = SimpleNamespace(train=[0] * 5, frontend=torch.nn.Identity())
    assert trained_frontend(data_cfg, bundle, "c", None, {"train": 5}, "run") is bundle.frontend
    with pytest.raises(UserError, match=r"^c: its training split holds 5 items, run was trained on 6 \(the "
                                        r"band statistics come from them\)"):
        trained_frontend(data_cfg, bundle, "c", None, {"train": 6}, "run")
