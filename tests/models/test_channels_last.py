import torch

from audionas.models.asc import MBNet, mbnet_cost
from audionas.models.channels_last import FastBatchNorm2d, optimize_for_training
from audionas.profile import count_macs, count_params


def test_fast_batchnorm_matches_native():
    torch.manual_seed(0)
    x = (torch.randn(3, 6, 5, 7) * 2 + 1).contiguous(memory_format=torch.channels_last)
    g = torch.randn(3, 6, 5, 7)
    ref, fast = torch.nn.BatchNorm2d(6), FastBatchNorm2d(6)
    torch.nn.init.uniform_(ref.weight, 0.5, 1.5)
    fast.load_state_dict(ref.state_dict())
    outs = []
    for bn in (ref, fast):
        xx = x.detach().clone().requires_grad_()
        y = bn(xx)
        y.backward(g)
        outs.append((y.detach(), xx.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var))
    for a, b in zip(*outs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert fast.num_batches_tracked.item() == 1
    fast.eval()
    assert torch.allclose(fast(x), ref.eval()(x), atol=1e-6)


def test_optimize_for_training_keeps_model():
    torch.manual_seed(0)
    m = MBNet(["ir_e3_k3t_s2x2_c8", "ir_e6_k5f_s1x1_c8"], 4, (1, 16, 30), stem_channels=8, head_channels=16,
              gru_hidden=8, fc_hidden=8)
    x = torch.randn(3, 1, 16, 30)
    before = m(x)
    keys = list(m.state_dict())
    assert optimize_for_training(m) is m
    assert list(m.state_dict()) == keys
    assert isinstance(m.stem[1], FastBatchNorm2d)
    assert m.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(m(x), before, atol=1e-5)
    p, macs = count_params(m), count_macs(m, (1, 16, 30))
    assert (p, macs) == mbnet_cost(m.arch, 4, (1, 16, 30), stem_channels=8, head_channels=16, gru_hidden=8,
                                   fc_hidden=8)


def test_darts_network_in_channels_last_keeps_its_macs_and_outputs():
    # Its 1x1 convs run as one GEMM on channels_last input; count_macs must still see every one of them.
    from audionas.models import create_model

    torch.manual_seed(0)
    m = create_model("darts", num_classes=12, genotype="DARTS_V2").eval()
    x = torch.randn(2, 1, 101, 40)
    before, macs = m(x), count_macs(m, (1, 101, 40))
    optimize_for_training(m)
    assert m(x.contiguous(memory_format=torch.channels_last)).sub(before).abs().max() < 1e-4
    assert count_macs(m, (1, 101, 40)) == macs


def _train_steps(bn, steps=3):
    torch.manual_seed(0)
    for _ in range(steps):
        x = (torch.randn(3, 6, 5, 7) * 2 + 1).contiguous(memory_format=torch.channels_last).requires_grad_()
        y = bn(x)
        y.sum().backward()
    return y.detach()


def test_fast_batchnorm_with_a_cumulative_average_matches_native():
    # momentum=None: running statistics are the cumulative average 1 / num_batches_tracked
    ref, fast = torch.nn.BatchNorm2d(6, momentum=None), FastBatchNorm2d(6, momentum=None)
    _train_steps(ref), _train_steps(fast)
    assert fast.num_batches_tracked.item() == 3
    assert torch.allclose(fast.running_mean, ref.running_mean, rtol=1e-4, atol=1e-5)
    assert torch.allclose(fast.running_var, ref.running_var, rtol=1e-4, atol=1e-5)


def test_fast_batchnorm_without_affine_or_running_stats_falls_back_to_native():
    for kw in ({"affine": False}, {"track_running_stats": False}):
        ref, fast = torch.nn.BatchNorm2d(6, **kw), FastBatchNorm2d(6, **kw)
        assert torch.allclose(_train_steps(fast), _train_steps(ref), atol=1e-5)


def test_optimize_for_training_keeps_native_batch_norms_without_accurate_bn_and_compiles_only_when_asked():
    calls = []
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    m.compile = lambda *a, **k: calls.append(1)
    assert optimize_for_training(m, accurate_bn=False) is m
    assert type(m[1]) is torch.nn.BatchNorm2d and calls == []
    optimize_for_training(m, compile=True)
    assert type(m[1]) is FastBatchNorm2d and calls == [1]
