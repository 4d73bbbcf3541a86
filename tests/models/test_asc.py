"""ASC networks: block strings, sizes, residuals, paper targets, analytic cost == built model."""

import random

import pytest
import torch

from audionas.errors import UserError
from audionas.models import create_model
from audionas.models.asc import (
    ASC_BASELINE_BLOCKS,
    BaselineVGG,
    GRUHead,
    MBNet,
    block_inputs,
    mbnet_cost,
    vgg_cost,
)
from audionas.models.blocks import BlockSpec, InvertedResidual, block_cost, format_block, parse_block
from audionas.profile import count_macs, count_params


def test_block_string_round_trip():
    spec = parse_block("ir_e6_k3t_s1x1_c24")
    assert spec == BlockSpec(6, 3, "t", (1, 1), 24)
    assert spec.kernel_size == (1, 3) and spec.padding == (0, 1)
    f = parse_block("ir_e3_k7f_s2x4_c160")
    assert f.kernel_size == (7, 1) and f.stride == (2, 4) and f.out_channels == 160
    for s in ASC_BASELINE_BLOCKS + ["ir_e1_k5f_s2x1_c8", "ir_e8_k7t_s1x2_c256"]:
        assert format_block(parse_block(s)) == s


@pytest.mark.parametrize("bad", ["", "ir_e6_k3_s1x1_c24", "ir_e6_k3x_s1x1_c24", "ir_e6_k3t_s1_c24",
                                 "ir_e0_k3t_s1x1_c24", "ir_e6_k4t_s1x1_c24", "ir_e6_k3t_s0x1_c24",
                                 "ir_e6_k3t_s1x1_c24_extra", "mb_e6_k3t_s1x1_c24"])
def test_bad_block_strings(bad):
    with pytest.raises(UserError, match="block '") as e:
        parse_block(bad)
    assert bad in str(e.value)


def test_bad_block_spec_and_arch():
    with pytest.raises(UserError):
        BlockSpec(6, 3, "x", (1, 1), 24)
    with pytest.raises(UserError):
        create_model("mbnet", 9, (1, 40, 501))
    with pytest.raises(UserError, match="ir_e6_k3t"):
        create_model("mbnet", 9, (1, 40, 501), arch=["ir_e6_k3t_s1x1"])
    with pytest.raises(UserError, match="time_axis"):
        MBNet(["ir_e6_k3t_s1x1_c24"], 9, time_axis="x")


def test_baseline_stage_sizes():
    layout, (c, f, t) = block_inputs(ASC_BASELINE_BLOCKS, (1, 40, 501))
    assert len(ASC_BASELINE_BLOCKS) == 20
    out_hw = [hw for _, hw in layout[1:]] + [(f, t)]  # output of block i = input of block i + 1
    assert out_hw[1] == (40, 501)  # B1-2
    assert out_hw[2] == out_hw[4] == (20, 251)  # B3-5
    assert out_hw[5] == out_hw[8] == (10, 251)  # B6-9
    assert out_hw[9] == out_hw[15] == (10, 126)  # B10-16
    assert out_hw[16] == out_hw[19] == (5, 32)  # B17-20
    assert (c, f, t) == (256, 5, 32)
    specs = [parse_block(s) for s in ASC_BASELINE_BLOCKS]
    assert [s.direction for s in specs] == ["t", "f"] * 10
    assert [s.kernel for s in specs] == [3] * 16 + [5] + [3] * 3
    assert {s.expansion for s in specs} == {6}


def test_gru_head_feeds_the_last_time_step_or_the_mean_over_time():
    torch.manual_seed(0)
    head = GRUHead(2, 5, 3, head_channels=8, gru_hidden=6, gru_layers=2, fc_hidden=4).eval()
    x = torch.randn(2, 2, 5, 7)
    with torch.no_grad():
        out, _ = head.gru(head.freq_conv(x).flatten(2).transpose(1, 2))  # (N, T=7, hidden)
        assert out.shape == (2, 7, 6)
        fc = lambda h: head.fc2(head.act(head.fc1(h)))  # noqa: E731
        torch.testing.assert_close(head(x), fc(out[:, 6]))
        # only the last step sees the last frame: changing that frame changes the logits
        x2 = x.clone()
        x2[..., -1] += 3.0
        assert not torch.allclose(head(x2), head(x))
        head.pool = "mean"
        torch.testing.assert_close(head(x), fc(out.mean(1)))
        assert not torch.allclose(head(x), fc(out[:, 6]))


def test_baseline_module_shapes_and_residuals():
    m = create_model("asc-baseline", 9, (1, 40, 501)).eval()
    assert isinstance(m.head, GRUHead) and m.head.freq_size == 5
    assert m.head.freq_conv[0].kernel_size == (5, 1) and m.head.freq_conv[0].out_channels == 256
    residual = [b.use_residual for b in m.blocks]
    # residual where stride (1,1) and channels unchanged: B2, B4-5, B7-9, B11-13, B15-16, B18-19
    assert [i + 1 for i, r in enumerate(residual) if r] == [2, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 18, 19]
    shapes = []
    hooks = [b.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o.shape[2:]))) for b in m.blocks]
    with torch.no_grad():
        y = m(torch.randn(2, 1, 40, 501))
    for h in hooks:
        h.remove()
    assert y.shape == (2, 9)
    assert shapes[2] == (20, 251) and shapes[5] == (10, 251)
    assert shapes[9] == (10, 126) and shapes[16] == (5, 32)


def test_inverted_residual_structure():
    b = InvertedResidual(16, parse_block("ir_e6_k5f_s1x1_c16"))
    assert b.use_residual
    assert b.expand[0].out_channels == 96 and b.depthwise[0].groups == 96
    assert b.depthwise[0].kernel_size == (5, 1) and b.depthwise[0].padding == (2, 0)
    assert len(b.project) == 2  # linear bottleneck: conv + BN, no activation
    b1 = InvertedResidual(16, "ir_e1_k3t_s2x2_c24")
    assert isinstance(b1.expand, torch.nn.Identity) and not b1.use_residual
    x = torch.randn(2, 16, 7, 9)
    assert b1(x).shape == (2, 24, 4, 5)
    # the residual really adds the input: zero the last BN so the branch outputs 0
    torch.nn.init.zeros_(b.project[1].weight)
    b.eval()
    with torch.no_grad():
        assert torch.equal(b(x), x)


def test_baseline_params_macs_targets():
    m = create_model("asc-baseline", 9, (1, 40, 501))
    params, macs = count_params(m), count_macs(m, (1, 40, 501))
    assert (params, macs) == mbnet_cost(ASC_BASELINE_BLOCKS, 9, (1, 40, 501))
    assert abs(params / 3.31e6 - 1) < 0.01, params
    assert abs(macs / 2.03e9 - 1) < 0.02, macs


def test_vgg_targets():
    m = create_model("asc-vgg", 9, (1, 40, 501))
    params, macs = count_params(m), count_macs(m, (1, 40, 501))
    assert (params, macs) == vgg_cost(9, (1, 40, 501))
    assert m.head.freq_size == 2
    conv = sum(p.numel() for p in m.features.parameters())
    assert abs(conv / 14.72e6 - 1) < 0.001  # REFERENCE: the 13-conv stack alone is 14.72M
    assert abs(macs / 5.99e9 - 1) < 0.02, macs
    assert abs(params / 17.24e6 - 1) < 0.01, params  # with the 1024-channel head (VGG_HEAD_CHANNELS)
    assert params == 17_215_817
    with torch.no_grad():
        assert BaselineVGG(3, (1, 32, 40))(torch.randn(2, 1, 32, 40)).shape == (2, 3)


def test_vgg16_conv_stack_has_the_reference_multiply_adds():
    # REFERENCE.md section 1: VGG16's 13 convs on 1x40x501 with 2x2 pools are 5.967 G multiply-adds (the
    # calibration of the papers' "FLOPs" as MACs); BN and ReLU add none.
    m = create_model("asc-vgg", 9, (1, 40, 501))
    assert count_macs(m.features, (1, 40, 501)) == 5_966_701_056


def _random_arch(rng: random.Random) -> list[str]:
    specs = []
    for s in ASC_BASELINE_BLOCKS:
        b = parse_block(s)
        e = rng.choice([1, 3, 6, 8])
        k = rng.choice([3, 5, 7])
        specs.append(format_block(BlockSpec(e, k, rng.choice("tf"), b.stride, b.out_channels)))
    return specs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_cost_equals_built(seed):
    rng = random.Random(seed)
    arch = _random_arch(rng)
    kw = dict(stem_channels=rng.choice([8, 16]), head_channels=rng.choice([32, 64]), gru_hidden=24,
              gru_layers=rng.choice([1, 2]), fc_hidden=16)
    shape = (1, 40, 501) if seed == 0 else (2, rng.randint(9, 40), rng.randint(20, 80))
    m = MBNet(arch, 5, shape, **kw)
    assert (count_params(m), count_macs(m, shape)) == mbnet_cost(arch, 5, shape, **kw)


def test_block_cost_matches_module():
    for s in ["ir_e6_k3t_s2x2_c32", "ir_e1_k7f_s1x1_c16", "ir_e8_k5t_s2x4_c160"]:
        block = InvertedResidual(16, s)
        p, m, hw = block_cost(16, s, (13, 21))
        assert p == count_params(block)
        assert m == count_macs(block, (16, 13, 21))
        assert hw == tuple(block(torch.zeros(1, 16, 13, 21)).shape[2:])


def test_time_axis_h_kws_input():
    m = create_model("asc-baseline", 12, (1, 101, 40), time_axis="h").eval()
    assert m.head.freq_size == 5  # 40 MFCCs -> 20 -> 10 -> 5
    with torch.no_grad():
        assert m(torch.randn(2, 1, 101, 40)).shape == (2, 12)
    with pytest.raises(UserError, match="input_shape"):
        m(torch.randn(2, 1, 40, 101))
    p, macs = mbnet_cost(ASC_BASELINE_BLOCKS, 12, (1, 101, 40), time_axis="h")
    assert macs == count_macs(m, (1, 101, 40)) and p == count_params(m)


def test_mbnet_registry_kwargs():
    arch = ["ir_e3_k3t_s2x2_c8", "ir_e6_k5f_s1x1_c8"]
    m = create_model("mbnet", 4, (1, 16, 30), arch=arch, stem_channels=8, head_channels=16, gru_hidden=8,
                     fc_hidden=8)
    assert m.arch == arch and len(m.blocks) == 2 and m.blocks[1].use_residual
    out = m(torch.randn(3, 1, 16, 30))
    assert out.shape == (3, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_create_model_uses_the_factory_defaults_when_shape_is_left_out():
    m = create_model("asc-baseline")
    assert m.input_shape == (1, 40, 501)
    assert m.head.fc2.out_features == 9


@torch.no_grad()
def test_activations_are_relu6_clipped_at_6():
    # MobileNetV2: every conv + BN but the projection ends in ReLU6 (stem, expand, depthwise, frequency conv).
    torch.manual_seed(0)
    m = MBNet(["ir_e6_k3t_s1x1_c8"], 3, input_shape=(1, 5, 7), stem_channels=8, head_channels=8,
              gru_hidden=8, fc_hidden=8).train()
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.weight.fill_(10.0)  # normalised values x 10: many pass 6 before the clip
    x = torch.randn(4, 1, 5, 7)
    h = m.stem(x)
    e = m.blocks[0].expand(h)
    d = m.blocks[0].depthwise(e)
    f = m.head.freq_conv(m.blocks[0](h))
    for t in (h, e, d, f):
        assert t.min() == 0 and t.max() == 6


def test_vgg_activations_are_plain_relu_not_clipped():
    # BaselineVGG is VGG16 (ReLU); only the MobileNetV2 blocks clip at 6.
    torch.manual_seed(0)
    m = BaselineVGG(3, (1, 8, 8), config=[8, "M", 8], head_channels=8, gru_hidden=8, fc_hidden=8).train()
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.weight.fill_(10.0)
        h = m.features(torch.randn(4, 1, 8, 8))
    assert h.min() == 0 and h.max() > 6


def test_the_gru_head_runs_over_time_each_sample_alone():
    # batch_first: a sample's logits do not depend on the other samples of its batch
    torch.manual_seed(0)
    m = MBNet(["ir_e6_k3t_s1x1_c8"], 3, input_shape=(1, 5, 7), stem_channels=8, head_channels=8,
              gru_hidden=8, fc_hidden=8).eval()
    x = torch.randn(3, 1, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(m(x)[1:2], m(x[1:2]))


@pytest.mark.parametrize("stride, residual", [((1, 1), True), ((2, 1), False), ((1, 2), False)])
def test_a_block_keeps_its_residual_only_unstrided_on_both_axes(stride, residual):
    b = InvertedResidual(8, f"ir_e6_k3t_s{stride[0]}x{stride[1]}_c8")
    assert b.use_residual == residual
    assert b(torch.randn(2, 8, 6, 6)).shape == (2, 8, 6 // stride[0], 6 // stride[1])


def test_convs_get_kaiming_normal_fan_out_init():
    # torchvision MobileNetV2 init: N(0, 2 / fan_out), fan_out = out_channels * kernel area. Block 19's 1x1
    # expand conv (160 -> 960): std sqrt(2 / 960) = 0.0456 (fan_in would give sqrt(2 / 160) = 0.112).
    torch.manual_seed(0)
    w = create_model("asc-baseline").blocks[18].expand[0].weight.detach()
    assert w.shape == (960, 160, 1, 1)
    assert float(w.std()) == pytest.approx((2 / 960) ** 0.5, rel=0.02)
    # there PyTorch's default gives the same std (fan_out = 6 fan_in); a depthwise conv tells them apart:
    # block 1's 192 1x3 kernels: sqrt(2 / (192 * 3)) = 0.059, PyTorch's default 1 / sqrt(3 * 3) = 0.33
    d = create_model("asc-baseline").blocks[0].depthwise[0].weight.detach()
    assert d.shape == (192, 1, 1, 3) and float(d.std()) == pytest.approx((2 / 576) ** 0.5, rel=0.05)


def test_an_expansion_1_block_keeps_the_residual_at_stride_1_and_the_same_width():
    # Mutation audit: dropping the residual of e1 blocks passed every test (the built-in space uses e6).
    b = InvertedResidual(16, "ir_e1_k3t_s1x1_c16")
    assert isinstance(b.expand, torch.nn.Identity) and b.use_residual
    torch.nn.init.zeros_(b.project[1].weight)  # the branch adds zeros: the block is the identity
    b.eval()
    x = torch.randn(2, 16, 7, 9)
    with torch.no_grad():
        assert torch.equal(b(x), x)


@pytest.mark.parametrize("block, said", [
    ("ir_e6_k3t_s2x2_c100000", "out_channels 100000 is above 4096"),
    ("ir_e6_k10001t_s1x1_c8", "kernel 10001 is above 255"),
    ("ir_e65_k3t_s1x1_c8", "expansion 65 is above 64"),
    ("ir_e6_k3t_s1x65_c8", "stride 65 is above 64")])
def test_a_block_far_beyond_any_network_is_refused_as_a_typo(block, said):
    # Before (QA): c100000 in a one-shot space asked the supernet for 120 GB: a RuntimeError traceback.
    with pytest.raises(UserError, match=rf"^block '{block}': {said}, far beyond any MBNet block \(a "
                                        r"typo\?\)$"):
        parse_block(block)
    assert parse_block("ir_e64_k255f_s64x64_c4096").out_channels == 4096


def test_a_supernet_that_cannot_be_built_names_its_space(monkeypatch):
    from audionas.nas.oneshot import fairnas
    from audionas.nas.oneshot.space import load_space

    def no_memory(space):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] you tried to allocate 12 GB\nmore")

    monkeypatch.setattr(fairnas, "Supernet", no_memory)
    space = load_space("asc")
    said = r"its supernet cannot be built here: \[enforce fail at alloc_cpu.cpp:127\] you tried to allocate"
    with pytest.raises(UserError, match=rf"^space '{space.name}': {said}"):
        fairnas.new_supernet(space, "cpu")


SMALL = dict(stem_channels=8, head_channels=16, gru_hidden=8, fc_hidden=8)


@pytest.mark.parametrize("shape", [(0, 16, 30), (1, 0, 30), (1, 16, 0)])
def test_an_input_shape_with_a_zero_is_refused(shape):
    with pytest.raises(UserError, match=r"expected three positive integers \(C, H, W\)"):
        mbnet_cost(["ir_e3_k3t_s2x2_c8"], 4, shape, **SMALL)
    with pytest.raises(UserError, match=r"expected three positive integers \(C, H, W\)"):
        MBNet(["ir_e3_k3t_s2x2_c8"], 4, shape, **SMALL)


def test_the_gru_head_refuses_a_map_of_another_frequency_size():
    # a taller map would pass its Fx1 conv and be flattened into a longer "time" axis, silently
    head = GRUHead(8, 5, 3, head_channels=8, gru_hidden=8, fc_hidden=8)
    with torch.no_grad():
        assert head(torch.randn(2, 8, 5, 7)).shape == (2, 3)
        with pytest.raises(UserError, match="input has 6 frequency rows, the head was built for 5"):
            head(torch.randn(2, 8, 6, 7))


def test_an_unbatched_input_is_refused_even_when_its_third_size_is_the_frequency_size():
    m = MBNet(["ir_e3_k3t_s2x2_c8"], 4, (1, 16, 16), **SMALL).eval()
    with torch.no_grad(), pytest.raises(UserError, match=r"input \(1, 16, 16\) does not match input_shape"):
        m(torch.randn(1, 16, 16))


def test_a_single_block_string_as_arch_is_refused_as_not_a_list():
    # not parsed letter by letter ("block 'i'")
    with pytest.raises(UserError, match=r"^arch 'ir_e6_k3t_s1x1_c24': expected a non-empty list"):
        MBNet("ir_e6_k3t_s1x1_c24", 9)
    with pytest.raises(UserError, match=r"expected a non-empty list of block strings"):
        create_model("mbnet", 9, arch="ir_e6_k3t_s1x1_c24")


def test_a_vgg_input_too_short_in_time_for_its_pools_is_refused_when_built():
    config = [8, "M", 8, "M", 8, "M", 8, "M", 8]
    with pytest.raises(UserError, match=r"input_shape \(1, 40, 8\): too small for 4 2x2 pools"):
        BaselineVGG(9, (1, 40, 8), config=config)
    with pytest.raises(UserError, match=r"too small for 4 2x2 pools"):
        BaselineVGG(9, (1, 8, 501), config=config)


def test_vgg_cost_of_a_custom_config_equals_the_built_model():
    kw = dict(config=[8, "M", 16, "M", 16], head_channels=16, gru_hidden=8, fc_hidden=8)
    m = BaselineVGG(4, (1, 16, 30), **kw)
    assert (count_params(m), count_macs(m, (1, 16, 30))) == vgg_cost(4, (1, 16, 30), **kw)


@pytest.mark.parametrize("kwargs, said", [
    ({"pool": "max"}, r"argument 'pool': expected 'last' \(the GRU's last step\) or 'mean' \(over time\), "
                      r"got 'max'"),
    ({"time_axis": 1}, r"argument 'time_axis': expected a string, got 1"),
])
def test_a_bad_pool_or_time_axis_names_its_field(kwargs, said):
    with pytest.raises(UserError, match=rf"^model 'mbnet': {said}$"):
        create_model("mbnet", 4, (1, 16, 30), arch=["ir_e3_k3t_s2x2_c8"], **kwargs)


@pytest.mark.parametrize("config", [[0], [8, "M", -1], [True], [8, False], []])
def test_a_vgg_config_of_no_width_a_bool_or_nothing_is_refused_by_name(config):
    with pytest.raises(UserError, match=r"^model 'asc-vgg': argument 'config': expected a non-empty list of "
                                        r"positive integers"):
        create_model("asc-vgg", 4, (1, 16, 30), config=config)


def test_an_arch_given_as_a_tuple_is_taken_like_a_list():
    arch = ("ir_e3_k3t_s2x2_c8", "ir_e6_k5f_s1x1_c8")
    m = create_model("mbnet", 4, (1, 16, 30), arch=arch, **SMALL)
    assert m.arch == list(arch)


def test_the_mbnet_factory_takes_pool():
    m = create_model("mbnet", 4, (1, 16, 30), arch=["ir_e3_k3t_s2x2_c8"], pool="mean", **SMALL)
    assert m.head.pool == "mean"
