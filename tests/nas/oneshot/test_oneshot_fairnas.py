import json
import socket
import sys
import warnings

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from oneshot_helpers import TINY_SPACE, tiny_bundle
from tensorboard_events import Killed, killed_after_epoch_log, tb_scalars

from audionas.config import from_dict
from audionas.errors import UserError
from audionas.nas.oneshot.config import SupernetConfig
from audionas.nas.oneshot.fairnas import fairnas_step, load_supernet, train_supernet
from audionas.nas.oneshot.space import space_from_dict
from audionas.nas.oneshot.supernet import Supernet
from audionas.utils.checkpoint import load_checkpoint
from audionas.utils.rng import seed_everything


def _cfg(**kw) -> SupernetConfig:
    d = {"space": TINY_SPACE, "epochs": 2, "data": {"root": "mem", "batch_size": 8, "eval_batch_size": 8},
         "optim": {"name": "adam", "lr": 0.003, "warmup_epochs": 1, "schedule": "constant"}}
    d.update(kw)
    return from_dict(SupernetConfig, d)


def test_the_trained_paths_give_every_choice_block_the_same_number_of_updates(tmp_path):
    # counts: how often the sampled paths of the steps taken used each choice (gradients: see below)
    out = train_supernet(_cfg(), tmp_path, bundle=tiny_bundle())
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ck["step"] == 6 and out["step"] == 6  # 24 items / batch 8 = 3 steps x 2 epochs
    assert ck["counts"].shape == (3, 6) and (ck["counts"] == 6).all()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and "val_acc_mean" in lines[0]
    net, cfg, _ = load_supernet(tmp_path)
    assert net.space.n_choices == [6, 6, 6] and cfg.epochs == 2


def test_the_supernet_optimizer_follows_weight_decay_on(tmp_path):
    # weight_decay_on=weights: the BN scales and shifts and the biases (1-D) are a group without decay.
    optim = {"name": "adam", "lr": 0.003, "weight_decay": 1e-4, "weight_decay_on": "weights"}
    train_supernet(_cfg(epochs=1, optim=optim), tmp_path, bundle=tiny_bundle())
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    groups = ck["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0] and len(groups[1]["params"]) > 0


def test_the_supernet_health_check_keeps_the_global_rng(tmp_path):
    """Rank 0 alone scores it: a draw from the global RNG there would part the ranks' Cutout holes."""
    from audionas.nas.oneshot.fairnas import _val_paths

    cfg = _cfg()
    bundle = tiny_bundle()
    space = space_from_dict(TINY_SPACE)
    net = Supernet(space)
    state = torch.get_rng_state()
    scores = _val_paths(net, bundle.frontend, bundle, space, cfg, "cpu")
    assert torch.equal(torch.get_rng_state(), state) and 0 <= scores["val_acc_mean"] <= 1


def test_uniform_sampler_counts_are_unequal(tmp_path):
    train_supernet(_cfg(sampler="uniform", epochs=3), tmp_path, bundle=tiny_bundle())
    counts = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["counts"]
    assert (counts.sum(1) == 9).all() and counts.min() < counts.max()


def test_resume_after_kill_equals_uninterrupted(tmp_path, capfd):
    full = train_supernet(_cfg(checkpoint_every_steps=2, log_every=1), tmp_path / "a", bundle=tiny_bundle())
    train_supernet(_cfg(checkpoint_every_steps=2, log_every=1), tmp_path / "b", bundle=tiny_bundle(),
                   _stop_after_steps=5)
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 4  # mid-epoch 2
    capfd.readouterr()
    # another checkpoint interval on resume (a free field: the weights do not depend on it)
    resumed = train_supernet(_cfg(checkpoint_every_steps=1, log_every=1), tmp_path / "b",
                             bundle=tiny_bundle())
    assert f"resuming {tmp_path / 'b'} at epoch 2/2, step 1/3" in capfd.readouterr().err
    assert train_supernet(_cfg(checkpoint_every_steps=2), tmp_path / "b", bundle=tiny_bundle())["step"] == 6
    assert f"{tmp_path / 'b'}: already complete (2 epochs); nothing to do" in capfd.readouterr().err
    a, b = full["supernet"].state_dict(), resumed["supernet"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["counts"] == full["counts"]
    # TensorBoard hides step 5, logged past the checkpoint by the killed start, not showing it twice
    assert [x for x, _ in tb_scalars(tmp_path / "b")["supernet/loss"]] == [1, 2, 3, 4, 5, 6]
    assert tb_scalars(tmp_path / "b") == tb_scalars(tmp_path / "a")


@pytest.mark.parametrize("kill_epoch", [1, 2])
def test_tensorboard_shows_an_epoch_once_after_a_kill_between_its_log_and_its_checkpoint(
        tmp_path, monkeypatch, kill_epoch):
    from audionas.nas.oneshot import fairnas

    train_supernet(_cfg(), tmp_path / "a", bundle=tiny_bundle())
    monkeypatch.setattr(fairnas, "log_epoch", killed_after_epoch_log(fairnas.log_epoch, kill_epoch))
    with pytest.raises(Killed):
        train_supernet(_cfg(), tmp_path / "b", bundle=tiny_bundle())
    monkeypatch.undo()
    train_supernet(_cfg(), tmp_path / "b", bundle=tiny_bundle())
    assert [x for x, _ in tb_scalars(tmp_path / "b")["epoch/train_loss"]] == [3, 6]
    assert tb_scalars(tmp_path / "b") == tb_scalars(tmp_path / "a")


def test_a_diverging_supernet_stops_with_the_epoch_and_what_to_lower(tmp_path):
    bundle = tiny_bundle()
    bundle.train.tensors[0][0, 0, 0, 0] = float("nan")
    with pytest.raises(UserError, match=r"training diverged in epoch 1 \(train_loss nan\); lower optim.lr"):
        train_supernet(_cfg(), tmp_path, bundle=bundle)


def test_absurd_epochs_are_refused():
    with pytest.raises(UserError, match="'epochs': expected an integer in 1..100,000, got 10000000"):
        _cfg(epochs=10**7).validate()


def test_other_config_in_run_dir_is_a_user_error(tmp_path):
    train_supernet(_cfg(epochs=1), tmp_path, bundle=tiny_bundle())
    with pytest.raises(UserError, match="seed"):
        train_supernet(_cfg(epochs=1, seed=3), tmp_path, bundle=tiny_bundle())


def test_space_must_fit_the_data(tmp_path):
    bad = dict(TINY_SPACE, num_classes=7)
    with pytest.raises(UserError, match="num_classes 7"):
        train_supernet(_cfg(space=bad), tmp_path, bundle=tiny_bundle())


def test_a_space_reading_time_along_the_other_axis_than_the_data_is_refused(tmp_path):
    """TINY_SPACE reads (C, time, freq), as MFCCs are; log-mel bands x time of the same size would train with
    kernels and the GRU on swapped axes (before: silently)."""
    import dataclasses

    mfcc, logmel = (dataclasses.replace(tiny_bundle(), time_axis=axis) for axis in "hw")
    train_supernet(_cfg(epochs=1), tmp_path / "mfcc", bundle=mfcc)
    with pytest.raises(UserError, match=r"'space.model_args.time_axis': 'h' reads the input as C x time x "
                                        r"freq, but this data's features are C x freq x time; set "
                                        r"time_axis: w in the space's model_args "
                                        r"\(space.model_args.time_axis=w for a space given inline\)"):
        train_supernet(_cfg(epochs=1), tmp_path / "logmel", bundle=logmel)


def _ddp_worker(rank: int, port: int, out: str, batched: bool) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from audionas.utils.dist import cleanup

    # SGD, not Adam: Adam's first step is ~lr * sign(grad), which float noise flips on near-zero gradients.
    sgd = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "warmup_epochs": 0, "schedule": "constant"}
    res = train_supernet(_cfg(epochs=1, batched=batched, optim=sgd), out, bundle=tiny_bundle(n_train=32))
    torch.save({"state": res["supernet"].state_dict(), "counts": torch.tensor(res["counts"])},
               f"{out}/rank{rank}.pt")
    cleanup()


def _two_process_run(out, same_buffers: bool) -> dict:
    """Both ranks' final supernet states and update counts; asserts they agree and that the run trained."""
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    # 32 items over 2 ranks, batch 8 per rank -> 2 fair steps; every choice updated twice on both ranks
    assert (r0["counts"] == 2).all() and torch.equal(r0["counts"], r1["counts"])
    # DDP broadcasts rank 0's BN buffers before each forward, so only params agree after the last step.
    keys = [k for k in r0["state"] if same_buffers or ("running" not in k and "num_batches" not in k)]
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in keys)
    seed_everything(0)
    init = Supernet(space_from_dict(TINY_SPACE)).state_dict()
    assert any(not torch.equal(init[k], r0["state"][k]) for k in init)  # it trained
    return r0["state"]


def _spawn(tmp_path, name: str, batched: bool):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / name
    out.mkdir()
    mp.spawn(_ddp_worker, args=(port, str(out), batched), nprocs=2, join=True)
    return out


@pytest.mark.slow
def test_two_process_ddp_supernet_batched_and_sequential_agree(tmp_path):
    batched = _two_process_run(_spawn(tmp_path, "batched", True), same_buffers=False)
    # Sequential under torchrun: gradients averaged by hand after the C passes, buffers from rank 0.
    sequential = _two_process_run(_spawn(tmp_path, "sequential", False), same_buffers=True)
    # Same updates up to float32 summation order.
    worst = max((float((sequential[k].double() - batched[k].double()).abs().max()), k) for k in batched)
    assert worst[0] < 1e-5, worst


def _uniform_worker(rank: int, port: int, out: str, batched: bool) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from audionas.utils.dist import cleanup

    # Momentum and weight decay: a block the step's one path left out must not move (zero-gradient updates).
    sgd = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "warmup_epochs": 0,
           "schedule": "constant"}
    res = train_supernet(_cfg(epochs=1, batched=batched, sampler="uniform", optim=sgd), out,
                         bundle=tiny_bundle(n_train=32))
    torch.save({"state": res["supernet"].state_dict(), "counts": torch.tensor(res["counts"])},
               f"{out}/rank{rank}.pt")
    cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("batched", [True, False])
def test_two_process_uniform_sampler_trains_its_paths_only(tmp_path, batched):
    """SPOS's one path per step leaves most blocks without a gradient: DDP must allow unused parameters
    (before: both ranks failed at the second step) and the hand-averaged path must not move them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_uniform_worker, args=(port, str(tmp_path), batched), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert torch.equal(r0["counts"], r1["counts"]) and r0["counts"].sum(1).eq(2).all()  # 2 steps, 1 path
    seed_everything(0)
    init = Supernet(space_from_dict(TINY_SPACE)).state_dict()
    untouched = [(layer, c) for layer, row in enumerate(r0["counts"].tolist()) for c, n in enumerate(row)
                 if n == 0]
    assert untouched
    for layer, c in untouched:
        keys = [k for k in init if k.startswith(f"blocks.{layer}.{c}.") and "running" not in k
                and "num_batches" not in k]
        assert keys and all(torch.equal(init[k], r0["state"][k]) for k in keys), (layer, c)
    trained = [k for k in init if "running" not in k and "num_batches" not in k]
    assert any(not torch.equal(init[k], r0["state"][k]) for k in trained)
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in trained)


def _cutout_resume_worker(rank: int, port: int, out: str) -> None:
    import dataclasses
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from audionas.data.augment import Cutout
    from audionas.utils.dist import cleanup

    sgd = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "warmup_epochs": 0, "schedule": "constant"}
    cfg = _cfg(epochs=2, optim=sgd)
    bundle = dataclasses.replace(tiny_bundle(n_train=32), train_augment=Cutout())
    full = train_supernet(cfg, f"{out}/full", bundle=bundle)["supernet"].state_dict()
    train_supernet(cfg, f"{out}/killed", bundle=bundle, _stop_after_steps=3)  # in epoch 2, after the check
    resumed = train_supernet(cfg, f"{out}/killed", bundle=bundle)["supernet"].state_dict()
    torch.save({"same": all(torch.equal(full[k], resumed[k]) for k in full)}, f"{out}/rank{rank}.pt")
    cleanup()


@pytest.mark.slow
def test_two_process_resume_with_cutout_equals_the_uninterrupted_run(tmp_path):
    """Rank 0 alone scores the validation check after each epoch; its loader drew from the global RNG, so rank
    1's Cutout holes came from another state than the rank-0 state a resume gives every rank (before: the
    resumed run's weights differed from the uninterrupted run's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_cutout_resume_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    assert [torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["same"] for r in range(2)] == [True, True]


def _ddp_resume_worker(rank: int, port: int, out: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from audionas.utils.dist import cleanup

    sgd = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "warmup_epochs": 0, "schedule": "constant"}
    cfg = _cfg(epochs=1, optim=sgd, checkpoint_every_steps=1)
    train_supernet(cfg, f"{out}/full", bundle=tiny_bundle(n_train=48))
    train_supernet(cfg, f"{out}/killed", bundle=tiny_bundle(n_train=48), _stop_after_steps=2)
    train_supernet(cfg, f"{out}/killed", bundle=tiny_bundle(n_train=48))
    cleanup()


@pytest.mark.slow
def test_two_process_resume_mid_epoch_logs_the_uninterrupted_train_loss(tmp_path):
    """Both ranks resume with the partial epoch totals of the checkpoint; they must be the ranks' mean, so the
    epoch's reduced loss is that of the uninterrupted run (before: rank 0's totals, counted on every rank)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_resume_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    full, killed = ([json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                    for run in ("full", "killed"))
    assert len(full) == len(killed) == 1  # 48 items, 2 ranks, batch 8: 3 steps; killed after 2, resumed at 1
    assert killed[0]["train_loss"] == pytest.approx(full[0]["train_loss"], rel=1e-12, abs=0)


@pytest.mark.parametrize("batched", [True, False])
def test_every_choice_block_receives_a_gradient_in_every_step(tmp_path, batched):
    """Algorithm 1: the C paths of a step together train every choice block of every layer. Read from the
    gradients the optimizer steps with, not from the sampler's paths (which the update counts come from)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    names = [n for n, _ in Supernet(space_from_dict(TINY_SPACE)).named_parameters()]
    blocks = sorted({tuple(int(i) for i in n.split(".")[1:3]) for n in names if n.startswith("blocks.")})
    assert len(blocks) == 3 * 6
    steps: list[set] = []

    def hook(opt, args, kwargs):
        params = [p for g in opt.param_groups for p in g["params"]]
        assert len(params) == len(names)
        got = set()
        for n, p in zip(names, params):
            if n.startswith("blocks.") and p.grad is not None and p.grad.abs().sum() > 0:
                got.add(tuple(int(i) for i in n.split(".")[1:3]))
        steps.append(got)

    handle = register_optimizer_step_pre_hook(hook)
    try:
        train_supernet(_cfg(epochs=1, batched=batched), tmp_path, bundle=tiny_bundle())
    finally:
        handle.remove()
    assert len(steps) == 3 and all(s == set(blocks) for s in steps), [sorted(set(blocks) - s) for s in steps]


def test_logged_train_loss_is_the_mean_path_loss_and_lr_reaches_optim_lr_after_warmup(tmp_path, monkeypatch):
    from audionas.nas.oneshot import fairnas

    seen = []
    real = fairnas.fairnas_step

    def spy(model, feats, y, paths, batched=True):
        loss = real(model, feats, y, paths, batched)
        seen.append((float(loss), len(paths), len(y)))
        return loss

    monkeypatch.setattr(fairnas, "fairnas_step", spy)
    train_supernet(_cfg(epochs=2), tmp_path, bundle=tiny_bundle())
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(seen) == 6 and all(p == 6 for _, p, _ in seen)
    for e in range(2):  # the sum of the 6 path losses / 6, weighted by batch size
        part = seen[3 * e:3 * e + 3]
        want = sum(l / p * n for l, p, n in part) / sum(n for _, _, n in part)
        assert lines[e]["train_loss"] == pytest.approx(want, rel=1e-6)
    # the scheduler steps per batch: after the 1-epoch warmup, the constant lr 0.003
    assert lines[1]["lr"] == pytest.approx(0.003)


def test_a_supernet_of_few_steps_warns_as_training_does(tmp_path):
    with pytest.warns(UserWarning, match=r"only 6 optimiser steps \(24 training clips, data.batch_size=8, "
                                         r"epochs=2\): batch-norm statistics need about 50") as rec:
        train_supernet(_cfg(), tmp_path / "a", bundle=tiny_bundle())
    assert {(w.filename, w.lineno) for w in rec} == {(__file__, sys._getframe().f_lineno - 1)}
    with pytest.warns(UserWarning, match=r"only 2 optimiser steps .*max_steps_per_epoch=1\).*raise "
                                         r"max_steps_per_epoch"):
        train_supernet(_cfg(max_steps_per_epoch=1), tmp_path / "b", bundle=tiny_bundle())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_supernet(_cfg(), tmp_path / "a", bundle=tiny_bundle())  # complete: nothing left to train


def test_supernet_grad_clip_bounds_the_update(tmp_path, monkeypatch):
    # Mutation audit: dropping clip_grad_norm_ passed every test, while the divergence error advises
    # optim.grad_clip. One SGD step at lr 1 moves the weights by exactly the clip norm.
    import audionas.nas.oneshot.fairnas as fairnas

    created = []

    class Recording(Supernet):
        def __init__(self, space):
            super().__init__(space)
            created.append({k: v.detach().clone() for k, v in self.named_parameters()})

    monkeypatch.setattr(fairnas, "Supernet", Recording)
    cfg = from_dict(SupernetConfig, {
        "space": TINY_SPACE, "epochs": 1, "max_steps_per_epoch": 1,
        "data": {"root": "mem", "batch_size": 8, "eval_batch_size": 8},
        "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
                  "warmup_epochs": 0, "schedule": "constant", "grad_clip": 1e-3}})
    train_supernet(cfg, tmp_path, bundle=tiny_bundle())
    init = created[0]
    after = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    moved = torch.sqrt(sum(((after[n] - init[n]).double() ** 2).sum() for n in init))
    assert float(moved) == pytest.approx(1e-3, rel=1e-3)


def test_the_supernet_health_check_scores_in_eval_mode_and_leaves_bn_statistics_alone():
    # Mutation audit: dropping its eval() was caught only by the 2-process DDP test.
    from audionas.nas.oneshot.fairnas import _val_paths

    cfg = from_dict(SupernetConfig, {"space": TINY_SPACE, "epochs": 1,
                                     "data": {"root": "mem", "batch_size": 8, "eval_batch_size": 8}})
    bundle = tiny_bundle()
    net = Supernet(space_from_dict(TINY_SPACE))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _val_paths(net, bundle.frontend, bundle, net.space, cfg, "cpu")
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running_mean/var, num_batches_tracked
    assert net.training  # handed back in training mode


def test_a_search_space_object_given_from_python_trains_and_resumes(tmp_path):
    # Before (review): SupernetConfig.space took a SearchSpace (load_space accepts one), but the config's
    # check turned it into its raw fields, which no space reader takes.
    import dataclasses

    space = space_from_dict(TINY_SPACE)
    cfg = dataclasses.replace(_cfg(), space=space)
    train_supernet(cfg, tmp_path, bundle=tiny_bundle(), _stop_after_steps=4)
    out = train_supernet(cfg, tmp_path, bundle=tiny_bundle())  # the same config again: resumed, not refused
    assert out["step"] == 6 and space_from_dict(json.loads((tmp_path / "space.json").read_text())) == space


def test_a_space_of_another_input_shape_than_the_data_names_the_override(tiny_space):
    # Before: "(check the space's input_shape / data.feature)"; with honk-mfcc@2s a user needs the shape.
    from types import SimpleNamespace

    from audionas.nas.oneshot.fairnas import check_space_data

    data = SimpleNamespace(input_shape=(1, 24, 8), time_axis="h", classes=list("abcde"))
    said = (r"^space 'tiny': input_shape \[1, 12, 8\] but the data gives \[1, 24, 8\]; set the space's "
            r"input_shape to \[1, 24, 8\] \(space.input_shape=\[1, 24, 8\] for a space given inline\), or "
            r"another data.feature$")
    with pytest.raises(UserError, match=said):
        check_space_data(tiny_space, data)
    data.input_shape = (1, 12, 8)
    check_space_data(tiny_space, data)


def test_a_fairnas_step_returns_and_backpropagates_the_sum_of_the_path_losses():
    """Algorithm 1: the gradient of a step is the sum of the C single-path gradients, batched or not; the loss
    returned is the sum of the path losses (the callers divide by C). Adam hides a 1/C scale of the gradient
    from every training test, and the batched/sequential agreement is checked only by a slow DDP test."""
    torch.manual_seed(0)
    net = Supernet(space_from_dict(TINY_SPACE))
    x, y = tiny_bundle().train.tensors
    x, y = x[:8], y[:8]
    paths = [[0, 1, 2], [5, 4, 3], [2, 0, 1]]
    want = sum(float(F.cross_entropy(net(x, p), y)) for p in paths)
    grads = {}
    for batched in (True, False):
        net.zero_grad()
        loss = fairnas_step(net, x, y, paths, batched)
        assert float(loss) == pytest.approx(want, rel=1e-5), batched
        grads[batched] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    assert grads[True].keys() == grads[False].keys()
    for n in grads[True]:
        torch.testing.assert_close(grads[True][n], grads[False][n], rtol=1e-4, atol=1e-6)


def test_the_step_loss_tensorboard_shows_is_the_mean_path_loss(tmp_path, monkeypatch):
    # supernet/loss per step, like the epoch's train_loss, is the sum of the C path losses / C
    from audionas.nas.oneshot import fairnas

    seen = []
    real = fairnas.fairnas_step

    def spy(model, feats, y, paths, batched=True):
        loss = real(model, feats, y, paths, batched)
        seen.append(float(loss) / len(paths))
        return loss

    monkeypatch.setattr(fairnas, "fairnas_step", spy)
    train_supernet(_cfg(epochs=1, log_every=1), tmp_path, bundle=tiny_bundle())
    logged = tb_scalars(tmp_path)["supernet/loss"]
    assert [s for s, _ in logged] == [1, 2, 3]
    assert [v for _, v in logged] == pytest.approx(seen, abs=1e-5)


def test_metrics_jsonl_shows_an_epoch_once_after_a_kill_between_its_log_and_checkpoint(tmp_path, monkeypatch):
    # the TensorBoard test does not read metrics.jsonl, where the resumed epoch 2 was logged twice
    from audionas.nas.oneshot import fairnas

    monkeypatch.setattr(fairnas, "log_epoch", killed_after_epoch_log(fairnas.log_epoch, 2))
    with pytest.raises(Killed):
        train_supernet(_cfg(), tmp_path, bundle=tiny_bundle())
    monkeypatch.undo()
    train_supernet(_cfg(), tmp_path, bundle=tiny_bundle())
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in lines] == [(1, 3), (2, 6)]
