import numpy as np
import pytest
import torch
from oneshot_helpers import TINY_SPACE, tiny_bundle

from audionas.nas.oneshot.evaluator import CandidateEvaluator, cache_features
from audionas.nas.oneshot.space import space_from_dict
from audionas.nas.oneshot.supernet import Supernet


def _setup():
    torch.manual_seed(0)
    net = Supernet(space_from_dict(TINY_SPACE))
    b = tiny_bundle()
    vx, vy = cache_features(b.val, b.frontend, "cpu", batch_size=5)
    calib = list(cache_features(b.train, b.frontend, "cpu")[0].split(8))
    return net, vx, vy, calib


def test_cache_features_keeps_order_and_limit():
    b = tiny_bundle()
    x, y = cache_features(b.val, b.frontend, "cpu", batch_size=3, limit=7)
    picks = [i * len(b.val) // 7 for i in range(7)]
    assert x.shape == (7, 1, 12, 8) and torch.equal(y, b.val.tensors[1][picks])


def test_cache_features_values_and_the_global_rng_are_kept():
    b = tiny_bundle()
    state = torch.get_rng_state()
    x, y = cache_features(b.val, b.frontend, "cpu", batch_size=3)
    assert torch.equal(torch.get_rng_state(), state)  # a loader's iterator draws from it without a generator
    assert torch.equal(x, b.frontend(b.val.tensors[0])) and torch.equal(y, b.val.tensors[1])


def test_batched_candidates_score_like_one_at_a_time():
    net, vx, vy, _ = _setup()
    chroms = [[0, 1, 2], [5, 4, 3], [2, 2, 2], [1, 0, 5], [3, 3, 0]]
    one = CandidateEvaluator(net, vx, vy, candidates_per_pass=1, batch_size=4).evaluate(chroms)
    many = CandidateEvaluator(net, vx, vy, candidates_per_pass=4, batch_size=16).evaluate(chroms)
    assert [r["score"] for r in one] == [r["score"] for r in many]
    assert [r["macs"] for r in one] == [net.space.cost(c)[1] for c in chroms]


def test_channels_last_scores_like_the_default_layout():
    net, vx, vy, calib = _setup()
    chroms = [[0, 1, 2], [5, 4, 3], [2, 2, 2]]
    plain = CandidateEvaluator(net, vx, vy, channels_last=False)
    assert not plain.net.head.freq_conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    logits_plain = plain.net(vx, chroms[0])
    a = plain.evaluate(chroms)
    fast = CandidateEvaluator(net, vx, vy, channels_last=True)
    assert fast.net.head.freq_conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast.net(fast.val_x, chroms[0]), logits_plain, atol=1e-5, rtol=1e-5)
    assert [r["score"] for r in fast.evaluate(chroms)] == [r["score"] for r in a]


def test_recalibration_is_independent_of_evaluation_order():
    net, vx, vy, calib = _setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ev = CandidateEvaluator(net, vx, vy, metric="macro_f1", bn="recalibrate", calib=calib)
    a = ev.evaluate([[0, 1, 2], [5, 4, 3]])
    b = ev.evaluate([[5, 4, 3], [0, 1, 2]])
    assert [r["score"] for r in a] == [r["score"] for r in b][::-1]
    # weights untouched; only BN statistics changed
    after = net.state_dict()
    weights = [k for k in before if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(before[k], after[k]) for k in weights)
    assert any(not torch.equal(before[k], after[k]) for k in before if "running_mean" in k)
    assert ev.candidates_per_second > 0


def test_val_limit_keeps_every_class_of_a_class_sorted_split():
    from torch.utils.data import TensorDataset

    labels = torch.arange(4).repeat_interleave(25)  # 100 items grouped by class, like the split lists
    data = TensorDataset(torch.randn(100, 1, 2, 3), labels)
    _, y = cache_features(data, torch.nn.Identity(), "cpu", limit=20)
    assert len(y) == 20 and torch.bincount(y).tolist() == [5, 5, 5, 5]


def test_paper_f1_scores_each_channel_then_averages():
    import numpy as np
    import pytest

    from audionas.train import metrics as M

    net, vx, vy, _ = _setup()
    channels = np.arange(len(vy)) % 4
    ev = CandidateEvaluator(net, vx, vy, metric="paper_f1", channel_ids=channels)
    chrom = [0, 1, 2]
    preds = ev.predict([chrom])[0]
    assert ev.evaluate([chrom])[0]["score"] == pytest.approx(M.paper_f1(preds, vy.numpy(), channels))
    with pytest.raises(ValueError, match="channel id"):
        CandidateEvaluator(net, vx, vy, metric="paper_f1")


def test_recalibrated_bn_statistics_are_the_plain_average_over_the_calibration_batches():
    """SPOS recalibration: reset, then a cumulative average (momentum None) over the calibration batches, so
    no trace of the supernet's statistics or of the BN's initial mean 0 / var 1 is left."""
    from torch.nn.modules.batchnorm import _BatchNorm

    net, vx, vy, calib = _setup()
    ev = CandidateEvaluator(net, vx, vy, bn="recalibrate", calib=calib, channels_last=False)
    path = [5, 4, 3]
    bns = [m for mod in net.path_modules(path) for m in mod.modules() if isinstance(m, _BatchNorm)]
    seen = {id(bn): [] for bn in bns}
    hooks = [bn.register_forward_pre_hook(lambda m, inp: seen[id(m)].append(inp[0].detach().double()))
             for bn in bns]
    try:
        ev.recalibrate(path)
    finally:
        for h in hooks:
            h.remove()
    assert len(bns) >= 5
    for bn in bns:
        xs = seen[id(bn)]
        assert len(xs) == len(calib) == 3
        dims = [d for d in range(xs[0].dim()) if d != 1]
        mean = torch.stack([x.mean(dims) for x in xs]).mean(0)
        var = torch.stack([x.var(dims, correction=1) for x in xs]).mean(0)
        torch.testing.assert_close(bn.running_mean.double(), mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_var.double(), var, rtol=1e-4, atol=1e-5)
        assert bn.momentum == 0.1 and not bn.training  # restored


def test_accuracy_and_macro_f1_metrics_score_with_their_own_formula():
    import numpy as np
    import pytest
    from sklearn.metrics import f1_score

    net, vx, vy, _ = _setup()
    chrom, y = [5, 4, 3], vy.numpy()
    preds = CandidateEvaluator(net, vx, vy).predict([chrom])[0]
    acc = float(np.mean(preds == y))
    f1 = f1_score(y, preds, average="macro", labels=np.union1d(y, preds), zero_division=0)
    assert acc != pytest.approx(f1)  # the two metrics tell apart on this untrained net's predictions
    for metric, want in (("accuracy", acc), ("macro_f1", f1)):
        ev = CandidateEvaluator(net, vx, vy, metric=metric)
        assert ev.evaluate([chrom])[0]["score"] == pytest.approx(want), metric


def test_an_unknown_metric_or_bn_mode_is_refused():
    # Before (API QA 2): metric="f1" was accepted and scored accuracy.
    net, vx, vy, _ = _setup()
    with pytest.raises(ValueError, match="metric 'f1': expected one of accuracy, macro_f1, paper_f1"):
        CandidateEvaluator(net, vx, vy, metric="f1")
    with pytest.raises(ValueError, match="bn 'recal': expected 'none' or 'recalibrate'"):
        CandidateEvaluator(net, vx, vy, bn="recal")
    with pytest.raises(ValueError, match="candidates_per_pass 0: expected an integer >= 1"):
        CandidateEvaluator(net, vx, vy, candidates_per_pass=0)  # before: a range() error in evaluate
    with pytest.raises(ValueError, match="batch_size 0: expected an integer >= 1"):
        CandidateEvaluator(net, vx, vy, batch_size=0)


def test_folded_batchnorms_compute_the_supernet_and_score_alike():
    from audionas.nas.oneshot.evaluator import fold_batchnorms

    net, vx, vy, calib = _setup()
    net.train()
    with torch.no_grad():  # running statistics away from their initial 0 / 1
        for xb in calib:
            net(xb, [1, 2, 3])
    net.eval()
    folded = fold_batchnorms(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.blocks.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.blocks.modules())  # the supernet is kept
    for chrom in ([0, 1, 2], [5, 4, 3]):
        with torch.no_grad():
            torch.testing.assert_close(folded(vx, chrom), net(vx, chrom), rtol=1e-5, atol=1e-6)
    chroms = [[0, 1, 2], [5, 4, 3], [2, 2, 2], [1, 0, 5]]
    on = CandidateEvaluator(net, vx, vy).evaluate(chroms)
    off = CandidateEvaluator(net, vx, vy, fold_bn=False).evaluate(chroms)
    assert [r["score"] for r in on] == [r["score"] for r in off]


def test_paper_f1_with_a_channel_id_list_of_another_length_is_refused():
    # one channel id short would pair every item after the gap with its neighbour's channel
    net, vx, vy, _ = _setup()
    with pytest.raises(ValueError, match="channel id of every validation item"):
        CandidateEvaluator(net, vx, vy, metric="paper_f1", channel_ids=np.zeros(len(vy) - 1, dtype=np.int64))


def test_candidates_per_second_counts_every_candidate_scored():
    # the rate written to search.json is candidates, not evaluate() calls
    net, vx, vy, _ = _setup()
    ev = CandidateEvaluator(net, vx, vy, candidates_per_pass=2)
    ev.evaluate([[0, 1, 2], [5, 4, 3], [2, 2, 2]])
    ev.evaluate([[1, 0, 5]])
    assert ev.count == 4
    assert ev.candidates_per_second == pytest.approx(4 / ev.seconds)
