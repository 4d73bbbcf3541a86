"""Honk's Res15 family: exact parameter counts, layer settings and Honk's forward ordering."""

import pytest
import torch
import torch.nn.functional as F

from audionas.errors import UserError
from audionas.models import create_model
from audionas.profile import count_macs, count_params


def test_res15_has_exactly_237882_params():
    m = create_model("res15", num_classes=12, input_shape=(1, 101, 40))
    # conv0 9*45 + 13 convs 9*45*45 (no bias) + Linear 45*12 + 12; BN has no affine parameters.
    assert 9 * 45 + 13 * 9 * 45 * 45 + 45 * 12 + 12 == 237_882
    assert count_params(m) == 237_882


@pytest.mark.parametrize("name,params", [("res8", 110_307), ("res15-narrow", 42_648), ("res26", 438_357)])
def test_honk_variants_param_counts(name, params):
    # Honk paper (Tang & Lin 2018): res8 110K, res15-narrow 42K, res26 438K.
    assert count_params(create_model(name)) == params


def test_res15_layers_follow_honk_config():
    m = create_model("res15")
    assert m.conv0.kernel_size == (3, 3) and m.conv0.bias is None and m.conv0.in_channels == 1
    assert len(m.convs) == 13
    for i, conv in enumerate(m.convs):
        d = 2 ** (i // 3)
        assert conv.dilation == (d, d) and conv.padding == (d, d) and conv.bias is None
    assert all(not bn.affine for bn in m.bns)


@torch.no_grad()
def test_res15_forward_matches_honk_embed_loop():
    torch.manual_seed(0)
    m = create_model("res15").eval()
    for bn in m.bns:  # non-trivial running statistics so BN placement matters
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 1, 20, 12)
    # castorini/honk SpeechResModel.embed, written out with its own indexing (conv0 .. conv13, bn1 .. bn13).
    convs = [m.conv0, *m.convs]
    h = x
    for i in range(14):
        y = F.relu(convs[i](h))
        if i == 0:
            old_x = y
        if i > 0 and i % 2 == 0:
            h = y + old_x
            old_x = h
        else:
            h = y
        if i > 0:
            h = m.bns[i - 1](h)
    expected = m.output(h.view(h.size(0), h.size(1), -1).mean(2))
    got = m(x)
    assert got.shape == (2, 12)
    torch.testing.assert_close(got, expected)


def test_res15_output_shape_and_macs():
    m = create_model("res15", num_classes=5)
    with torch.no_grad():
        assert m(torch.randn(1, 1, 101, 40)).shape == (1, 5)
    t, f = 30, 20  # same padding everywhere: every conv outputs 45 x T x F
    assert count_macs(m, (1, t, f)) == t * f * 45 * 9 * (1 + 13 * 45) + 45 * 5


def test_res8_pools_after_conv0():
    m = create_model("res8")
    assert m(torch.randn(1, 1, 101, 40)).shape == (1, 12)
    # 101x40 -> AvgPool(4, 3) -> 25x13
    assert count_macs(m, (1, 101, 40)) == 101 * 40 * 45 * 9 + 25 * 13 * 45 * 45 * 9 * 6 + 45 * 12


def test_res26_pools_2x2_after_conv0():
    # Honk res26: AvgPool2d((2, 2)) after conv0: 101x40 -> 50x20, then 24 undilated 3x3 convs of 45 maps.
    m = create_model("res26")
    assert count_macs(m, (1, 101, 40)) == 101 * 40 * 45 * 9 + 50 * 20 * 45 * 45 * 9 * 24 + 45 * 12


def test_unknown_argument_is_user_error():
    with pytest.raises(UserError, match="res15.*foo"):
        create_model("res15", foo=1)


@pytest.mark.parametrize("shape", [(1, 101, 2), (1, 3, 40)])
def test_res8_refuses_an_input_smaller_than_its_pool_on_either_axis(shape):
    with pytest.raises(UserError, match=r"res8 needs at least 4x3 \(time x frequency\) for its average pool"):
        create_model("res8", 12, shape)


@torch.no_grad()
def test_res8_takes_an_input_exactly_the_size_of_its_pool():
    m = create_model("res8", 12, (1, 4, 3)).eval()
    assert m(torch.randn(2, 1, 4, 3)).shape == (2, 12)


@torch.no_grad()
def test_a_multi_channel_input_gets_a_conv0_of_as_many_input_channels():
    m = create_model("res15", 12, (2, 101, 40), n_maps=8).eval()
    assert m.conv0.weight.shape == (8, 2, 3, 3)
    assert m(torch.randn(1, 2, 101, 40)).shape == (1, 12)
