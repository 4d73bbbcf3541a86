"""The numbers a run writes, recomputed by hand: metrics.jsonl (train loss/acc with label smoothing and the
auxiliary loss, lr, eval loss/acc/macro-F1), test_metrics.json, the EMA in final.pt / best.pt, grad
clipping."""

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from audionas.config import load_config
from audionas.models import registry
from audionas.train.batches import epoch_batches
from audionas.train.config import TrainConfig
from audionas.train.optim import LRSchedule
from audionas.train.trained_run import load_model
from audionas.train.trainer import train
from audionas.utils.checkpoint import load_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:only .* optimiser step")


@pytest.fixture
def created(monkeypatch):
    """Models the runs build, with their initial weights; dropout off so a train-mode pass is repeatable."""
    seen = []
    real = registry._MODELS["tiny-test"]

    def factory(**kw):
        m = real(**kw)
        m.drop.p = 0.0
        seen.append((m, {k: v.clone() for k, v in m.state_dict().items()}))
        return m

    monkeypatch.setitem(registry._MODELS, "tiny-test", factory)
    return seen


def config(*extra) -> TrainConfig:
    return load_config(TrainConfig, None, ["model=tiny-test", "data.batch_size=8", "device=cpu", *extra])


def lines(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def hand_scores(model, ds):
    """(mean cross-entropy, accuracy, macro-F1) of the eval-mode model over a dataset, item by item."""
    model.eval()
    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    ys = torch.tensor([ds[i][1] for i in range(len(ds))])
    with torch.no_grad():
        logits = model(xs)
    preds = logits.argmax(1).numpy()
    return (float(F.cross_entropy(logits, ys)), float((preds == ys.numpy()).mean()),
            float(f1_score(ys.numpy(), preds, average="macro")))


def test_metrics_file_holds_the_hand_computed_numbers(tmp_path, tiny_bundle, created):
    """An lr so small that the weights stay put (to 1e-9): each epoch's train loss is then the initial model's
    mean loss over that epoch's batches (cross-entropy with label smoothing + aux_weight x the aux head's)."""
    run = tmp_path / "r"
    cfg = config("model_args={aux: true}", "epochs=2", "optim.lr=1e-9", "optim.schedule=cosine",
                 "optim.warmup_epochs=1", "label_smoothing=0.2", "aux_weight=0.5", "optim.ema_decay=0")
    bundle = tiny_bundle()
    rep = train(cfg, run, bundle=bundle)
    model, init = created[0]
    recs = lines(run)
    spe = 5  # 40 clips / batch 8
    net = type(model)(3, (1, 8, 8), aux=True)
    net.drop.p = 0.0
    net.load_state_dict(init)
    net.train()
    sched = LRSchedule(cfg.optim, spe, 2)
    for epoch, rec in enumerate(recs):
        bundle.train.set_epoch(epoch)
        losses, correct = [], 0
        for b in epoch_batches(40, 8, cfg.seed, epoch):
            x = torch.stack([bundle.train[i][0] for i in b])
            y = torch.tensor([bundle.train[i][1] for i in b])
            with torch.no_grad():
                logits, aux = net(x)
            losses.append(float(F.cross_entropy(logits, y, label_smoothing=0.2)
                                + 0.5 * F.cross_entropy(aux, y, label_smoothing=0.2)))
            correct += int((logits.argmax(1) == y).sum())
        assert rec["train_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
        assert rec["train_acc"] == correct / 40
        # lr = the rate of the epoch's last update (step (epoch + 1) * spe - 1), not the next one's
        assert rec["lr"] == pytest.approx(sched.lr((epoch + 1) * spe - 1), rel=1e-9, abs=0)
        assert rec["step"] == (epoch + 1) * spe
    assert recs[1]["lr"] != pytest.approx(sched.lr(2 * spe), rel=1e-3, abs=0)  # so the check above can fail
    # the last epoch's val numbers and the test report are those of final.pt's network
    final = type(model)(3, (1, 8, 8), aux=True)
    final.load_state_dict(load_checkpoint(run / "final.pt")["model"])
    loss, acc, f1 = hand_scores(final, bundle.val)
    last_epoch = (recs[1]["val_loss"], recs[1]["val_acc"], recs[1]["val_macro_f1"])
    assert last_epoch == pytest.approx((loss, acc, f1))
    loss, acc, f1 = hand_scores(final, bundle.test)
    assert (rep["loss"], rep["accuracy"], rep["macro_f1"]) == pytest.approx((loss, acc, f1))
    assert json.loads((run / "test_metrics.json").read_text())["loss"] == pytest.approx(loss)


def test_epoch_lines_of_multichannel_data_carry_the_paper_and_official_f1(tmp_path, tiny_bundle, created):
    """DCASE items carry segment and channel ids: each epoch's line then has the ASC paper's F1 (per channel,
    averaged) and the official one (segment posteriors averaged), next to the pooled macro-F1."""
    from audionas.train import metrics as M

    bundle = tiny_bundle()
    bundle.val.segment_ids = np.arange(12) // 4  # 3 segments x 4 microphones, one label per segment
    bundle.val.channel_ids = np.arange(12) % 4
    bundle.val.y = np.repeat(bundle.val.y[::4], 4)
    run = tmp_path / "r"
    train(config("epochs=1", "optim.ema_decay=0"), run, bundle=bundle)
    final = created[0][0]
    final.load_state_dict(load_checkpoint(run / "final.pt")["model"])
    final.eval()
    with torch.no_grad():
        probs = torch.softmax(final(torch.stack([bundle.val[i][0] for i in range(12)])), 1).numpy()
    rec = lines(run)[0]
    assert rec["val_paper_f1"] == pytest.approx(M.paper_f1(probs, bundle.val.y, bundle.val.channel_ids))
    assert rec["val_official_f1"] == pytest.approx(M.official_f1(probs, bundle.val.y, bundle.val.segment_ids))
    train(config("epochs=1"), tmp_path / "plain", bundle=tiny_bundle())  # items without channel ids
    assert "val_paper_f1" not in lines(tmp_path / "plain")[0]


def test_the_paper_and_official_f1_score_the_eval_split_it_names(tmp_path, tiny_bundle):
    """eval_split=test: the per-channel and official F1 are those of the test items (here the only split with
    segment and channel ids), under test_ keys."""
    bundle = tiny_bundle()
    bundle.test.segment_ids = np.arange(12) // 4
    bundle.test.channel_ids = np.arange(12) % 4
    bundle.test.y = np.repeat(bundle.test.y[::4], 4)
    train(config("epochs=1", "eval_split=test"), tmp_path / "r", bundle=bundle)
    rec = lines(tmp_path / "r")[0]
    assert {"test_paper_f1", "test_official_f1"} <= rec.keys() and "val_paper_f1" not in rec


def test_eval_split_train_scores_the_training_items_as_read_for_scoring(tmp_path, tiny_bundle):
    """eval_split=train reads the training split's scoring_view (a clip dataset's: without its augmentation)
    and logs train_eval_*; before (review): the augmented clips, logged over the epoch's running
    train_loss / train_acc."""
    bundle = tiny_bundle()
    bundle.train.scoring_view = lambda: bundle.test  # stands in for the training items, read unaugmented
    train(config("epochs=1", "eval_split=train"), tmp_path / "r", bundle=bundle)
    rec = lines(tmp_path / "r")[0]
    model = load_model(tmp_path / "r").model
    _, acc, _ = hand_scores(model, bundle.test)
    assert rec["train_eval_acc"] == pytest.approx(acc) and {"train_loss", "train_acc"} <= rec.keys()


def test_final_and_best_hold_the_ema_weights(tmp_path, tiny_bundle, created):
    run = tmp_path / "r"
    train(config("epochs=1", "optim.lr=0.05", "optim.ema_decay=0.8"), run, bundle=tiny_bundle())
    _, init = created[0]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    final = load_checkpoint(run / "final.pt")["model"]
    best = load_checkpoint(run / "checkpoints" / "best.pt")["model"]  # after the only epoch
    evaluated = load_model(run / "checkpoints" / "last.pt").model.state_dict()
    for k in last["ema"]:
        assert torch.equal(final[k], last["ema"][k]) and torch.equal(best[k], last["ema"][k]), k
        assert torch.equal(evaluated[k], last["ema"][k]), k
    for k in ("conv.weight", "fc.weight"):
        # the average moved away from the start, and lags the live weights
        assert not torch.allclose(last["ema"][k], init[k], atol=1e-4), k
        assert not torch.allclose(last["ema"][k], last["model"][k], atol=1e-4), k


def test_grad_clip_bounds_the_update(tmp_path, tiny_bundle, created):
    """One plain SGD step at lr 1 with the global grad norm clipped to 1e-3 moves the weights by 1e-3."""
    run = tmp_path / "r"
    train(config("epochs=1", "max_steps_per_epoch=1", "optim.lr=1", "optim.momentum=0",
                 "optim.grad_clip=1e-3"), run, bundle=tiny_bundle())
    model, init = created[0]
    after = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    names = [n for n, _ in model.named_parameters()]
    moved = torch.sqrt(sum(((after[n] - init[n]).double() ** 2).sum() for n in names))
    assert float(moved) == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize("on", ["all", "weights"])
def test_weight_decay_on_weights_spares_bn_and_biases(tmp_path, tiny_bundle, created, on):
    """One plain SGD step at lr 1, with and without weight decay 0.5 (same seed: same gradient): the decay
    moves a parameter by -0.5 * w; with weight_decay_on=weights only the conv and linear weights (the
    TC-ResNet reference's L2 term), with all every parameter."""
    after = {}
    for wd in (0.0, 0.5):
        run = tmp_path / f"wd{wd}"
        train(config("epochs=1", "max_steps_per_epoch=1", "optim.lr=1", "optim.momentum=0",
                     f"optim.weight_decay={wd}", f"optim.weight_decay_on={on}"), run, bundle=tiny_bundle())
        after[wd] = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    model, init = created[0]
    for name, _ in model.named_parameters():
        decayed = on == "all" or name in ("conv.weight", "fc.weight")
        want = -0.5 * init[name] if decayed else torch.zeros_like(init[name])
        torch.testing.assert_close(after[0.5][name] - after[0.0][name], want, atol=1e-6, rtol=1e-5)


def test_a_resumed_run_keeps_the_best_score_so_far(tmp_path, tiny_bundle, monkeypatch):
    """Scripted val accuracies 0.9, 0.5, 0.7: best.pt stays at epoch 1, also when the run is killed in epoch 2
    and resumed (the checkpoint carries the best score; started from -1, epoch 2 would replace it)."""
    from audionas.train import metrics as M

    real = M.accuracy

    def scripted(seq):
        return lambda probs, labels: seq.pop(0) if seq else real(probs, labels)

    cfg = config("epochs=3", "optim.lr=0.05", "checkpoint_every_steps=2")
    for name, stops in (("ref", []), ("killed", [7])):
        monkeypatch.setattr(M, "accuracy", scripted([0.9, 0.5, 0.7]))
        for k in stops:
            assert train(cfg, tmp_path / name, bundle=tiny_bundle(), _stop_after_steps=k) == {}
        train(cfg, tmp_path / name, bundle=tiny_bundle())
        best = load_checkpoint(tmp_path / name / "checkpoints" / "best.pt")
        assert best["step"] == 5 and best["epoch"] == 1, name
        assert load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")["best"] == 0.9, name
        assert [r["val_acc"] for r in lines(tmp_path / name)] == [0.9, 0.5, 0.7], name


class Recorder(torch.nn.Module):
    """A training augmentation that records its mode and the batches it sees, and leaves them unchanged."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, len(x)))
        return x


def test_the_training_augmentation_sees_every_training_batch_in_train_mode_and_nothing_else(tmp_path,
                                                                                            tiny_bundle):
    from dataclasses import replace

    bundle = replace(tiny_bundle(), train_augment=Recorder())
    train(config("epochs=2", "optim.lr=0.05"), tmp_path / "r", bundle=bundle)
    # 2 epochs x 5 batches of 8; the val / test passes (12 clips each) do not augment
    assert bundle.train_augment.calls == [(True, 8)] * 10


def test_a_run_without_a_test_split_says_why_before_training(tmp_path, tiny_bundle, capsys):
    from dataclasses import replace

    bundle = replace(tiny_bundle(), test=None, why_missing={"test": "the cache C holds no evaluation set"})
    cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "data.batch_size=8", "device=cpu",
                                          "data.root=unused"])
    msg = r"^no test split: final.pt will not be scored \(the cache C holds no evaluation set\)$"
    with pytest.warns(UserWarning, match=msg):
        assert train(cfg, tmp_path / "run", bundle=bundle) == {}
    assert (tmp_path / "run" / "final.pt").is_file() and not (tmp_path / "run" / "test_metrics.json").exists()
    assert capsys.readouterr().err.endswith(f"no test clips: {tmp_path / 'run' / 'final.pt'} is not scored\n")


def test_a_run_whose_eval_split_is_missing_says_so_before_training(tmp_path, tiny_bundle):
    # Before: no epoch scores and no best.pt without a word (DCASE single mode has no val split).
    from dataclasses import replace

    why = "single mode (data.fold=0) has no val split"
    bundle = replace(tiny_bundle(), val=None, why_missing={"val": why})
    cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "data.batch_size=8", "device=cpu",
                                          "data.root=unused", "eval_split=val", "save_best=true"])
    msg = (r"^config field 'eval_split': the data has no 'val' split \(single mode \(data.fold=0\) has no "
           r"val split\): epochs are not scored and save_best keeps no best.pt$")
    with pytest.warns(UserWarning, match=msg):
        train(cfg, tmp_path / "run", bundle=bundle)
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # the same run scoring its test split each epoch: nothing to say
        train(replace(cfg, eval_split="test"), tmp_path / "other", bundle=bundle)
    assert not [w for w in record if "eval_split" in str(w.message)]
    assert (tmp_path / "other" / "checkpoints" / "best.pt").is_file()


def test_an_empty_eval_split_is_warned_about_and_save_best_named_only_when_set(tmp_path, tiny_bundle):
    # Pinned: an eval split with no items says so as a missing one does; without save_best, no best.pt word.
    from dataclasses import replace

    b = tiny_bundle()
    bundle = replace(b, val=type(b.val)(0, 2, False))  # a val split of no items
    cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "data.batch_size=8", "device=cpu",
                                          "data.root=unused", "eval_split=val", "save_best=false"])
    msg = r"^config field 'eval_split': the data has no 'val' split \(empty\): epochs are not scored$"
    with pytest.warns(UserWarning, match=msg):
        train(cfg, tmp_path / "run", bundle=bundle)


def test_the_ema_is_the_hand_average_of_the_live_weights_after_each_update(tmp_path, tiny_bundle, created):
    """Two updates with decay d: ema = d^2 w0 + d (1 - d) w1 + (1 - d) w2, buffers = the live model's; the
    epoch's val numbers are those of that average."""
    d = 0.8
    cfg = config("epochs=1", "max_steps_per_epoch=2", "optim.lr=0.05", f"optim.ema_decay={d}")
    train(cfg, tmp_path / "one", bundle=tiny_bundle(), _stop_after_steps=1)  # the live weights w1
    bundle = tiny_bundle()
    train(cfg, tmp_path / "two", bundle=bundle)
    (m1, w0), (m2, w0_again) = created
    assert all(torch.equal(w0[k], w0_again[k]) for k in w0)
    w1, w2 = m1.state_dict(), m2.state_dict()
    ema = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["ema"]
    final = load_checkpoint(tmp_path / "two" / "final.pt")["model"]
    params = {n for n, _ in m2.named_parameters()}
    for k in w2:
        want = d * d * w0[k] + d * (1 - d) * w1[k] + (1 - d) * w2[k] if k in params else w2[k]
        torch.testing.assert_close(ema[k], want, rtol=1e-5, atol=1e-6, msg=k)
        assert torch.equal(final[k], ema[k]), k
    net = type(m2)(3, (1, 8, 8))
    net.load_state_dict(ema)
    rec, = lines(tmp_path / "two")
    got = (rec["val_loss"], rec["val_acc"], rec["val_macro_f1"])
    assert got == pytest.approx(hand_scores(net, bundle.val))


def test_eval_split_test_scores_the_test_split_each_epoch(tmp_path, tiny_bundle, created):
    bundle = tiny_bundle()
    train(config("epochs=1", "optim.lr=0.05", "eval_split=test"), tmp_path / "r", bundle=bundle)
    final = type(created[0][0])(3, (1, 8, 8))
    final.load_state_dict(load_checkpoint(tmp_path / "r" / "final.pt")["model"])
    rec, = lines(tmp_path / "r")
    assert "val_acc" not in rec
    assert (rec["test_loss"], rec["test_acc"], rec["test_macro_f1"]) == pytest.approx(
        hand_scores(final, bundle.test))
    assert rec["test_loss"] != pytest.approx(hand_scores(final, bundle.val)[0])  # the splits differ


def test_train_loss_of_a_capped_epoch_is_the_mean_over_its_clips(tmp_path, tiny_bundle, created):
    """max_steps_per_epoch=2 of 5 batches: the mean is over 16 clips, not the 40 of the split."""
    bundle = tiny_bundle()
    cfg = config("epochs=1", "max_steps_per_epoch=2", "optim.lr=1e-9")
    train(cfg, tmp_path / "r", bundle=bundle)
    net = type(created[0][0])(3, (1, 8, 8))
    net.load_state_dict(created[0][1])
    net.drop.p = 0.0
    net.train()
    losses = []
    for b in epoch_batches(40, 8, cfg.seed, 0)[:2]:
        x = torch.stack([bundle.train[i][0] for i in b])
        y = torch.tensor([bundle.train[i][1] for i in b])
        with torch.no_grad():
            losses.append(float(F.cross_entropy(net(x), y)))
    rec, = lines(tmp_path / "r")
    assert rec["train_loss"] == pytest.approx(np.mean(losses), rel=1e-5)


def test_best_keeps_the_first_epoch_that_reached_the_best_score(tmp_path, tiny_bundle, monkeypatch):
    from audionas.train import metrics as M

    real, scores = M.accuracy, [0.5, 0.5]
    monkeypatch.setattr(M, "accuracy", lambda probs, labels: scores.pop(0) if scores else real(probs, labels))
    train(config("epochs=2", "optim.lr=0.05"), tmp_path / "r", bundle=tiny_bundle())
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["step"] == 5  # epoch 2 only tied


def test_test_weights_best_delivers_and_scores_the_best_epoch(tmp_path, tiny_bundle, monkeypatch):
    """TC-ResNet's recipe: the test split scores the weights of the best dev accuracy; final.pt holds them."""
    from audionas.train import metrics as M

    real, scores = M.accuracy, [0.9, 0.5, 0.6]  # the val accuracy of epochs 1-3: epoch 1 is the best
    monkeypatch.setattr(M, "accuracy", lambda probs, labels: scores.pop(0) if scores else real(probs, labels))
    run = tmp_path / "r"
    train(config("epochs=3", "optim.lr=0.05", "test_weights=best"), run, bundle=tiny_bundle())
    final, best = load_checkpoint(run / "final.pt"), load_checkpoint(run / "checkpoints" / "best.pt")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert best["step"] == final["step"] == 5 and final["weights"] == "best"  # 40 clips / batch 8: epoch 1
    assert all(torch.equal(final["model"][k], best["model"][k]) for k in best["model"])
    assert not all(torch.equal(final["model"][k], last["model"][k]) for k in best["model"])
    report = json.loads((run / "test_metrics.json").read_text())
    assert report["weights"] == "best" and report["epoch"] == 1
    model = load_model(run).model
    assert report["accuracy"] == pytest.approx(hand_scores(model, tiny_bundle().test)[1])


def test_test_weights_best_keeps_the_config_of_the_start_that_finished(tmp_path, tiny_bundle, monkeypatch):
    """best.pt was written by an earlier start: final.pt takes its weights, not its (older) config."""
    from audionas.train import metrics as M

    real, scores = M.accuracy, [0.9, 0.5, 0.6]
    monkeypatch.setattr(M, "accuracy", lambda probs, labels: scores.pop(0) if scores else real(probs, labels))
    run = tmp_path / "r"
    train(config("epochs=3", "optim.lr=0.05", "test_weights=best"), run, bundle=tiny_bundle(),
          _stop_after_steps=10)  # killed in epoch 3, after best.pt (epoch 1) and last.pt (epoch 2)
    train(config("epochs=3", "optim.lr=0.05", "test_weights=best", "log_every=7"), run, bundle=tiny_bundle())
    final, best = load_checkpoint(run / "final.pt"), load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["config"]["log_every"] == 50 and final["config"]["log_every"] == 7
    assert final["step"] == best["step"] == 5 and final["weights"] == "best"
    assert all(torch.equal(final["model"][k], best["model"][k]) for k in best["model"])


@pytest.mark.parametrize("extra, message", [
    (["test_weights=first"], "expected last or best, got 'first'"),
    (["test_weights=best", "save_best=false"], "best needs save_best=true"),
    (["test_weights=best", "eval_split=test"], "the test score would be chosen on the test split"),
])
def test_test_weights_that_cannot_be_honoured_are_config_errors(extra, message):
    from audionas.errors import UserError

    with pytest.raises(UserError, match=f"config field 'test_weights': .*{message}"):
        config(*extra)


def test_the_test_report_names_each_class_in_the_bundles_order(tmp_path, tiny_bundle, created):
    """Classes not in alphabetical order (as the 12-class KWS list: _silence_, _unknown_, yes, no, ...)."""
    from dataclasses import replace

    bundle = replace(tiny_bundle(), classes=["c", "a", "b"])
    rep = train(config("epochs=1", "optim.lr=0.05"), tmp_path / "r", bundle=bundle)
    final = type(created[0][0])(3, (1, 8, 8))
    final.load_state_dict(load_checkpoint(tmp_path / "r" / "final.pt")["model"])
    final.eval()
    xs = torch.stack([bundle.test[i][0] for i in range(len(bundle.test))])
    ys = [bundle.test[i][1] for i in range(len(bundle.test))]
    with torch.no_grad():
        preds = final(xs).argmax(1).numpy()
    f1 = f1_score(ys, preds, average=None, labels=[0, 1, 2], zero_division=0)
    scored = set(ys) | set(preds.tolist())
    want = {name: float(f1[i]) if i in scored else None for i, name in enumerate(["c", "a", "b"])}
    assert rep["per_class_f1"] == pytest.approx(want)
    assert list(rep["per_class_f1"]) == ["c", "a", "b"]


def test_tqdm_disable_hides_the_epoch_bar(tmp_path, tiny_bundle, capsys, monkeypatch):
    # Before: the trainer passed disable= itself, which overrides tqdm's own TQDM_DISABLE switch, so batch
    # jobs' logs filled with bars.
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # too few steps for batch norm
        train(config("epochs=1"), tmp_path / "a", bundle=tiny_bundle())
        assert "epoch 1/1:" in capsys.readouterr().err
        monkeypatch.setenv("TQDM_DISABLE", "1")
        train(config("epochs=1"), tmp_path / "b", bundle=tiny_bundle())
    assert "epoch 1/1:" not in capsys.readouterr().err


def test_a_rerun_scoring_another_test_split_than_the_earlier_report_says_so(tmp_path):
    # Before (own-sounds QA): a clip added to the data landed in test; the rerun of the finished run wrote a
    # new score (12.00% -> 11.54%, n 25 -> 26) without a word.
    import json
    import warnings

    from audionas.train.trainer import _warn_if_test_split_changed

    path = tmp_path / "test_metrics.json"

    def said(digest, n):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            _warn_if_test_split_changed(path, digest, n)
        return [str(w.message) for w in record]

    assert said("b", 26) == []  # no earlier report
    path.write_text(json.dumps({"test_clips_sha1": "a", "n": 25}))
    assert said("a", 25) == []
    assert said("b", 26) == [f"{path}: the test split differs from the one it scored (25 -> 26 clips): the "
                             f"data changed since; the score written now is of the new split"]
    path.write_text("{cut")
    assert said("b", 26) == []  # unreadable: replaced without a word


def test_a_test_report_that_cannot_be_written_leaves_no_new_confusion_png(tmp_path, tiny_bundle, monkeypatch):
    # Before: confusion_test.png was written, then test_metrics.json on its own.
    import errno

    from audionas.errors import UserError
    from audionas.train import trainer

    def full_disk(obj):
        def write(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write

    monkeypatch.setattr(trainer, "json_writer", full_disk)
    cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "data.batch_size=8", "device=cpu",
                                          "data.root=unused"])
    with pytest.raises(UserError, match="test_metrics.json: cannot write .No space left on device"):
        train(cfg, tmp_path / "run", bundle=tiny_bundle())
    assert (tmp_path / "run" / "final.pt").is_file()
    assert not list((tmp_path / "run").glob("*.png")) and not list((tmp_path / "run").glob(".*.tmp"))


def test_a_run_scored_on_test_each_epoch_scores_it_once_at_the_end(tmp_path, tiny_bundle, monkeypatch):
    # Before (ASC walkthrough QA): eval_split=test (every asc-* preset) scored the test split twice at the
    # end, the last epoch's record and test_metrics.json, with the same weights.
    from audionas.train import trainer

    calls, predict = [], trainer.predict
    monkeypatch.setattr(trainer, "predict", lambda *a, **k: calls.append(a[2]) or predict(*a, **k))

    def run(name, *extra):
        calls.clear()
        cfg = load_config(TrainConfig, None, ["model=tiny-test", "epochs=2", "data.batch_size=8",
                                              "device=cpu", "data.root=unused", "eval_split=test", *extra])
        bundle = tiny_bundle()
        rep = train(cfg, tmp_path / name, bundle=bundle)
        return rep, [ds is bundle.test for ds in calls], tmp_path / name

    rep, scored, path = run("last")
    assert scored == [True, True]  # one per epoch; test_metrics.json reuses the last
    last = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()][-1]
    assert (rep["loss"], rep["accuracy"], rep["macro_f1"]) == (last["test_loss"], last["test_acc"],
                                                                last["test_macro_f1"])
    again, scored, _ = run("last")  # a rerun of the finished run trains no epoch: test_metrics scores anew
    assert scored == [True] and again["accuracy"] == rep["accuracy"]
