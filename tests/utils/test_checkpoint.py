import random

import numpy as np
import pytest
import torch

from audionas.errors import UserError
from audionas.utils.checkpoint import load_checkpoint, load_resume_checkpoint, load_weights, save_atomic
from audionas.utils.rng import get_rng_state, seed_everything, set_rng_state


def test_save_then_load_weights_only(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_atomic({"w": torch.arange(3), "epoch": 2, "rng": get_rng_state()}, path)
    ck = load_checkpoint(path)
    assert torch.equal(ck["w"], torch.arange(3)) and ck["epoch"] == 2
    assert not list(path.parent.glob(".*.tmp"))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": object()}, path)
    with pytest.raises(UserError, match="evil.pt"):
        load_checkpoint(path)


def test_missing_and_corrupt_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="bad.pt"):
        load_checkpoint(bad)


def test_a_foreign_pickle_or_a_truncated_checkpoint_is_one_reason_and_no_warning(tmp_path):
    import pickle
    import warnings

    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=4))  # torch warns about protocol 4 before refusing
    truncated = tmp_path / "cut.pt"
    torch.save({"model": {"w": torch.zeros(64)}}, truncated)
    whole = truncated.read_bytes()
    truncated.write_bytes(whole[:200])
    cut_late = tmp_path / "cut_late.pt"  # torch's zip reader fails with an OSError (EINVAL) past a few KB
    torch.save({"model": {"w": torch.zeros(100_000)}}, cut_late)
    cut_late.write_bytes(cut_late.read_bytes()[:50_000])
    text = tmp_path / "note.txt"  # before: "(KeyError)", torch's legacy loader's bare error
    text.write_text("hello\n")  # "h" is a pickle opcode (BINGET): a KeyError
    reasons = {plain: "not a torch checkpoint, or one holding objects other than tensors and plain data",
               truncated: "truncated, or not a torch checkpoint",
               cut_late: "truncated, or not a torch checkpoint",
               text: "not a torch checkpoint (expected a torch.save file of tensors and plain data)"}
    for path, why in reasons.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UserError) as e:
                load_checkpoint(path)
        assert str(e.value) == f"{path}: not a readable audionas checkpoint ({why})"


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    seed_everything(3)
    save_atomic({"rng": get_rng_state()}, tmp_path / "r.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(99)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_load_resume_checkpoint_needs_the_same_batches(tmp_path):
    from audionas.utils.checkpoint import load_resume_checkpoint

    path = tmp_path / "last.pt"
    assert load_resume_checkpoint(path, 10, 1) is None  # nothing to resume yet
    save_atomic({"step": 3, "steps_per_epoch": 10, "world_size": 2}, path)
    assert load_resume_checkpoint(path, 10, 2)["step"] == 3
    with pytest.raises(UserError, match=r"last\.pt: saved with 10 steps per epoch, now 12 \(dataset or batch "
                                        r"size changed\); choose another --out$"):
        load_resume_checkpoint(path, 12, 2)
    # before: "(dataset, batch size or process count changed); choose another --out" for either
    said = r"last\.pt: saved on 2 process\(es\), now 1: resume it with 2 processes \(torchrun\), or choose"
    with pytest.raises(UserError, match=said):
        load_resume_checkpoint(path, 20, 1)
    save_atomic({"step": 3, "steps_per_epoch": 10, "world_size": 1}, path)
    with pytest.raises(UserError, match=r"now 2: resume it in one process \(without torchrun\)"):
        load_resume_checkpoint(path, 5, 2)
    with pytest.raises(UserError, match=r"last\.pt: no 'optimizer', 'rng' entry \(not a checkpoint"):
        load_resume_checkpoint(path, 10, 2, required=("step", "optimizer", "rng"))


def test_a_resumed_checkpoint_without_its_optimizer_is_one_line(kws_run, tmp_path, capsys):
    import shutil

    from audionas.cli import main
    from audionas.utils.checkpoint import load_checkpoint

    run = tmp_path / "run"
    shutil.copytree(kws_run, run)
    (run / "final.pt").unlink()
    last = run / "checkpoints" / "last.pt"
    ck = load_checkpoint(last)
    del ck["optimizer"]
    save_atomic(ck, last)
    assert main(["train", "--out", str(run)]) == 2
    expected = f"{last}: no 'optimizer' entry (not a checkpoint this kind of run writes); choose another " \
        "--out"
    assert capsys.readouterr().err == f"audionas: error: {expected}\n"


def test_a_resumed_checkpoint_of_another_network_does_not_fit_this_run(kws_run, tmp_path, capsys):
    import shutil

    import yaml

    from audionas.cli import main

    run = tmp_path / "run"
    shutil.copytree(kws_run, run)
    (run / "final.pt").unlink()
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "model": "tc-resnet14", "epochs": 2}))
    last = run / "checkpoints" / "last.pt"
    ck = torch.load(last, weights_only=True)  # its config says so too: only its weights are another's
    ck["config"].update(model="tc-resnet14", epochs=2)
    torch.save(ck, last)
    assert main(["train", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{last}: does not fit this run: it holds another network's weights (" in err
    assert last.is_file()  # a run with work is left as it was
    from audionas.utils.checkpoint import load_weights

    with pytest.raises(UserError, match=r"x.pt: field 'model': expected the network weights"):
        load_weights(torch.nn.Linear(1, 1), {"model": [1]}, "model", "x.pt")


def test_weights_with_nan_or_inf_are_refused_naming_the_first(tmp_path):
    # Before: predict printed nan for every class, evaluate scored the argmax of NaNs (33% on 3 classes) and
    # export wrote a NaN program, all with exit 0.
    from audionas.utils.checkpoint import load_weights

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    load_weights(net, {"model": state}, "model", "x.pt")  # finite: loads (an integer buffer is skipped)
    for value in (float("nan"), float("inf")):
        state["1.running_var"][1] = value
        with pytest.raises(UserError, match=r"^x\.pt: field 'model': weight '1\.running_var' holds NaN or "
                                            r"infinite values \(a damaged or edited checkpoint\)$"):
            load_weights(net, {"model": state}, "model", "x.pt")


def test_a_checkpoint_that_is_not_a_dict_is_refused(tmp_path):
    p = tmp_path / "list.pt"
    torch.save([1, 2], p)
    with pytest.raises(UserError, match="list.pt: not an audionas checkpoint"):
        load_checkpoint(p)


def test_weights_that_are_not_all_tensors_are_refused_naming_the_field():
    net = torch.nn.Linear(2, 2)
    state = {**net.state_dict(), "bias": 0.5}  # a hand edit: a number where a tensor was
    with pytest.raises(UserError, match=r"^x\.pt: field 'model': expected the network weights \(a state dict "
                                        r"of tensors\)$"):
        load_weights(net, {"model": state}, "model", "x.pt")


def test_complex_weights_are_refused_even_where_an_integer_buffer_goes():
    # A float weight given as complex already differs in is_floating_point; an integer buffer does not.
    net = torch.nn.BatchNorm1d(2)
    state = dict(net.state_dict())
    state["num_batches_tracked"] = state["num_batches_tracked"].to(torch.complex64)
    with pytest.raises(UserError, match=r"^x\.pt: field 'model': weight 'num_batches_tracked' is complex64, "
                                        r"expected int64 \(a damaged or edited checkpoint\)$"):
        load_weights(net, {"model": state}, "model", "x.pt")


def test_a_checkpoint_without_a_process_count_resumes_under_any_count(tmp_path):
    # Checkpoints from before world_size was saved: the process count is not checked (nothing to check).
    path = tmp_path / "last.pt"
    save_atomic({"step": 3, "steps_per_epoch": 10}, path)
    assert load_resume_checkpoint(path, 10, 2)["step"] == 3
    assert load_resume_checkpoint(path, 10, 1)["step"] == 3
