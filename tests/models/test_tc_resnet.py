"""TC-ResNet: exact parameter counts, MFCC-as-channels input, TF SAME padding, block structure."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.errors import UserError
from audionas.models import create_model
from audionas.models.tc_resnet import SameConv
from audionas.profile import count_macs, count_params


def _bn_stats(m):
    return sum(b.numel() for n, b in m.named_buffers() if n.endswith(("running_mean", "running_var")))


def _hand_count(widths: list[int], classes: int = 12, mfcc: int = 40) -> int:
    """TC-ResNet's trainable parameters by hand (Choi et al. Fig. 3): conv0 3x1 over the MFCCs as channels,
    then per block two 9x1 convs and, where the width changes, a 1x1 shortcut conv; every conv bias-free
    with BN (scale, shift); a bias-free 1x1 classifier."""
    def conv_bn(cin, cout, k):
        return cin * cout * k + 2 * cout

    n = conv_bn(mfcc, widths[0], 3)
    for a, b in zip(widths[:-1], widths[1:]):
        n += conv_bn(a, b, 9) + conv_bn(b, b, 9) + (conv_bn(a, b, 1) if a != b else 0)
    return n + widths[-1] * classes


TC14, TC8 = [16, 24, 24, 32, 32, 48, 48], [16, 24, 32, 48]  # the paper's widths before the multiplier k


def test_tc_resnet14_15_has_exactly_303000_trainable_params():
    m = create_model("tc-resnet14-1.5", num_classes=12, input_shape=(1, 101, 40))
    assert count_params(m) == _hand_count([int(1.5 * w) for w in TC14]) == 303_000


def test_tc_resnet14_15_tf_variable_count_is_304752():
    m = create_model("tc-resnet14-1.5")
    # The paper's 305K: TF variables = trainable + BN moving mean/variance + the reference code's unused
    # 2-output `fc2` ("ranges") 1x1 conv on the 72-channel pooled features (not built here).
    assert _bn_stats(m) == 1_608
    assert count_params(m) + _bn_stats(m) + 72 * 2 == 304_752


@pytest.mark.parametrize("name,widths", [("tc-resnet8", TC8), ("tc-resnet14", TC14),
                                         ("tc-resnet8-1.5", [int(1.5 * w) for w in TC8])])
def test_other_widths(name, widths):
    assert count_params(create_model(name)) == _hand_count(widths)


def test_channels_blocks_and_shortcuts():
    m = create_model("tc-resnet14-1.5")
    assert m.conv0[0].in_channels == 40 and m.conv0[0].out_channels == 24 and m.conv0[0].kernel_size == (3, 1)
    assert [b.conv1[0].out_channels for b in m.blocks] == [36, 36, 48, 48, 72, 72]
    for b in m.blocks:
        changes = b.conv0[0].in_channels != b.conv0[0].out_channels
        assert b.conv0[0].kernel_size == (9, 1) and b.conv1[0].kernel_size == (9, 1)
        assert b.conv0[0].stride == ((2, 1) if changes else (1, 1))
        assert (b.down is not None) == changes
        if changes:
            assert b.down[0].kernel_size == (1, 1) and b.down[0].stride == (2, 1)
            assert isinstance(b.down[1], nn.BatchNorm2d)
        assert not isinstance(b.conv1[-1], nn.ReLU)  # ReLU only after the residual add
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    assert m.fc.kernel_size == (1, 1) and m.fc.out_channels == 12 and m.dropout.p == 0.5


def test_mfccs_become_channels_and_time_is_halved_three_times():
    m = create_model("tc-resnet14-1.5").eval()
    seen = {}
    m.conv0[0].register_forward_hook(lambda mod, i, o: seen.update({"in": i[0]}))
    for k, b in enumerate(m.blocks):
        b.register_forward_hook(lambda mod, i, o, k=k: seen.update({k: o.shape}))
    x = torch.randn(2, 1, 101, 40)
    assert m(x).shape == (2, 12)
    torch.testing.assert_close(seen["in"], x[:, 0].transpose(1, 2).unsqueeze(-1))  # (N, 40, T, 1)
    assert [seen[k][2] for k in range(6)] == [51, 51, 26, 26, 13, 13]
    assert [seen[k][3] for k in range(6)] == [1] * 6


@pytest.mark.parametrize("t,before,after", [(101, 4, 4), (51, 4, 4), (26, 3, 4)])
def test_same_conv_pads_like_tensorflow(t, before, after):
    torch.manual_seed(0)
    conv = SameConv(3, 5, 9, stride=2)
    x = torch.randn(1, 3, t, 1)
    expected = F.conv2d(F.pad(x, (0, 0, before, after)), conv.weight, stride=(2, 1))
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[2] == -(-t // 2)


def test_macs_by_hand():
    m = create_model("tc-resnet14-1.5")
    t = [101, 51, 51, 26, 26, 13, 13]
    ch = [24, 36, 36, 48, 48, 72, 72]
    macs = t[0] * 40 * 24 * 3
    for i in range(6):
        macs += t[i + 1] * ch[i] * ch[i + 1] * 9 + t[i + 1] * ch[i + 1] * ch[i + 1] * 9
        if ch[i] != ch[i + 1]:
            macs += t[i + 1] * ch[i] * ch[i + 1]
    macs += 72 * 12
    assert count_macs(m, (1, 101, 40)) == macs == 6_852_528


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="dropout"):
        create_model("tc-resnet14-1.5", dropout=1.5)
    with pytest.raises(UserError, match="time_axis.*expected 'h'"):
        create_model("tc-resnet14-1.5", time_axis="t")
    with pytest.raises(UserError, match="width"):
        create_model("tc-resnet14-1.5", width=2)


@torch.no_grad()
def test_time_along_w_is_the_same_network_on_transposed_input():
    """Log-mel bands x time (DCASE) in, with time_axis='w': the bands become the channels, as MFCCs do."""
    torch.manual_seed(0)
    h = create_model("tc-resnet8", input_shape=(1, 101, 40)).eval()
    w = create_model("tc-resnet8", input_shape=(1, 40, 101), time_axis="w").eval()
    w.load_state_dict(h.state_dict())
    x = torch.randn(2, 1, 101, 40)
    assert h.time_axis == "h" and w.time_axis == "w"
    assert torch.equal(h(x), w(x.transpose(2, 3)))


@torch.no_grad()
def test_forward_matches_the_reference_block_written_out():
    # hyperconnect/TC-ResNet tc_resnet(): every slim.conv2d is conv -> BN -> ReLU (the `down` shortcut too)
    # except conv{i}_1 (no activation); then add, ReLU; average pool, dropout, 1x1 conv.
    torch.manual_seed(0)
    m = create_model("tc-resnet14-1.5").eval()
    for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)

    def conv_bn(seq, x, relu=True):
        y = seq[1](seq[0](x))
        return F.relu(y) if relu else y

    x = torch.randn(2, 1, 101, 40)
    h = conv_bn(m.conv0, x[:, 0].transpose(1, 2).unsqueeze(-1))
    for b in m.blocks:
        shortcut = h if b.down is None else conv_bn(b.down, h)
        h = F.relu(conv_bn(b.conv1, conv_bn(b.conv0, h), relu=False) + shortcut)
    expected = m.fc(h.mean((2, 3), keepdim=True)).flatten(1)
    torch.testing.assert_close(m(x), expected)
    m.train()  # dropout 0.5 before the classifier in training
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, m(x))


def test_convs_get_the_reference_xavier_uniform_init():
    # slim's xavier_initializer: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); PyTorch's default is narrower
    torch.manual_seed(0)
    m = create_model("tc-resnet14-1.5")
    for conv in (c for c in m.modules() if isinstance(c, nn.Conv2d)):
        w = conv.weight
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert float(w.abs().max()) <= bound
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.15)


@pytest.mark.parametrize("kwargs, said", [
    ({"dropout": 1.0}, r"argument 'dropout': expected a number in \[0, 1\), got 1.0"),
    ({"bn_eps": 0}, r"argument 'bn_eps': expected a number > 0, got 0"),
])
def test_a_dropout_of_1_and_a_bn_eps_of_0_are_refused(kwargs, said):
    with pytest.raises(UserError, match=rf"^model 'tc-resnet8': {said}$"):
        create_model("tc-resnet8", **kwargs)


@torch.no_grad()
def test_every_channel_of_every_mfcc_becomes_an_input_channel():
    m = create_model("tc-resnet8", 12, (2, 101, 40)).eval()
    assert m.conv0[0].weight.shape == (16, 80, 3, 1)
    assert m(torch.randn(3, 2, 101, 40)).shape == (3, 12)
