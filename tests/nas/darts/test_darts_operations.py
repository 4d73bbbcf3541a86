"""DARTS operations: shapes (odd sizes too), ReLU-Conv-BN structure, the NAS1/NAS2 op sets."""

import pytest
import torch

from audionas.errors import UserError
from audionas.models import create_model
from audionas.nas.darts.genotype import DARTS_V2
from audionas.nas.darts.operations import OP_SETS, OPS, FactorizedReduce, ReLUConvBN, resolve_op_set


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("hw", [(101, 40), (51, 20), (7, 5)])
def test_every_op_shape_stride1_and_2(name, hw):
    x = torch.randn(2, 4, *hw)
    assert OPS[name](4, 1, False)(x).shape == x.shape
    H, W = hw
    assert OPS[name](4, 2, True)(x).shape == (2, 4, (H + 1) // 2, (W + 1) // 2)


def test_factorized_reduce_matches_reference_on_even_and_pads_odd():
    fr = FactorizedReduce(4, 6, affine=False)
    x = torch.randn(2, 4, 10, 8)
    rx = torch.relu(x)
    ref = fr.bn(torch.cat([fr.conv1(rx), fr.conv2(rx[:, :, 1:, 1:])], dim=1))
    assert torch.allclose(fr(x), ref)
    assert fr(torch.randn(2, 4, 101, 40)).shape == (2, 6, 51, 20)


def test_op_structure_relu_conv_bn():
    sep = OPS["sep_conv_9x9"](8, 2, False)
    assert sep.dw1.kernel_size == (9, 9) and sep.dw1.stride == (2, 2) and sep.dw2.stride == (1, 1)
    assert sep.dw1.groups == 8 and sep.pw1.kernel_size == (1, 1) and not sep.bn2.affine
    dil = OPS["dil_conv_5x5"](8, 1, True)
    assert dil.dw.dilation == (2, 2) and dil.dw.padding == (4, 4) and dil.bn.affine
    conv = OPS["conv_3x3"](8, 1, True)
    assert conv.conv.groups == 1 and conv.conv.kernel_size == (3, 3)
    assert OPS["avg_pool_3x3"](8, 1, False).pool.count_include_pad is False


def test_op_sets_and_custom_list():
    assert resolve_op_set("nas1") == OP_SETS["nas1"] and len(OP_SETS["nas1"]) == 9
    assert "sep_conv_9x9" in OP_SETS["nas1"] and "conv_3x3" in OP_SETS["nas2"] and len(OP_SETS["nas2"]) == 7
    assert resolve_op_set(["none", "conv_3x3", "skip_connect"]) == ["none", "conv_3x3", "skip_connect"]
    with pytest.raises(UserError, match="sep_conv_11x11"):
        resolve_op_set(["none", "sep_conv_11x11"])
    with pytest.raises(UserError, match="unknown op set"):
        resolve_op_set("nas3")


def test_search_pools_are_followed_by_bn_without_affine_eval_pools_are_not():
    # quark0/darts model_search.py MixedOp: pools get BatchNorm2d(affine=False) in the search net only.
    from audionas.nas.darts.search_cell import MixedOp

    for stride in (1, 2):
        mixed = MixedOp(4, stride, OP_SETS["nas1"])
        for name, op in zip(mixed.primitives, mixed.ops):
            if "pool" in name:
                assert isinstance(op, torch.nn.Sequential) and len(op) == 2
                assert isinstance(op[1], torch.nn.BatchNorm2d) and not op[1].affine
            else:
                assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in op.modules())
    m = create_model("darts", genotype="DARTS_V2", cells=3, channels=4)
    reduce_cell = next(c for c in m.cells if c.reduction)
    pools = [op for (name, _), op in zip(DARTS_V2.reduce, reduce_cell.ops) if "pool" in name]
    assert pools and all(not isinstance(op, torch.nn.Sequential) for op in pools)


def test_conv_and_pool_ops_compute_relu_conv_bn_written_out():
    # quark0/darts operations.py, written out with the ops' own layers: a missing ReLU (before the second
    # separable stack, or at the start of the plain conv / preprocessing op) or a wrong pool is caught.
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 7)  # about half negative: every ReLU changes the result
    sep = OPS["sep_conv_5x5"](4, 2, False)
    ref = sep.bn2(sep.pw2(sep.dw2(F.relu(sep.bn1(sep.pw1(sep.dw1(F.relu(x))))))))
    torch.testing.assert_close(sep(x), ref)
    dil = OPS["dil_conv_3x3"](4, 1, True)
    torch.testing.assert_close(dil(x), dil.bn(dil.pw(dil.dw(F.relu(x)))))
    for conv in (OPS["conv_3x3"](4, 2, True), ReLUConvBN(4, 6, 1, 1, 0, affine=False)):
        torch.testing.assert_close(conv(x), conv.bn(conv.conv(F.relu(x))))
    torch.testing.assert_close(OPS["max_pool_3x3"](4, 2, False)(x), F.max_pool2d(x, 3, 2, 1))
    torch.testing.assert_close(OPS["avg_pool_3x3"](4, 1, False)(x),
                               F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))


@pytest.mark.parametrize("spec", [5, None, ["conv_3x3", 5], ["none", 3], [["sep_conv_5x5"]], {"a": 1}])
def test_an_op_list_of_other_things_than_names_is_one_line(spec):
    # Before (DARTS QA): ops=5, ops=null, ops=[conv_3x3, 5], ops=[[sep_conv_5x5]] raised TypeErrors.
    with pytest.raises(UserError, match=r"^config field 'ops': expected an op set \(darts, nas1, nas2\) or a "
                                        r"list of op names, got "):
        resolve_op_set(spec)


def test_dil_conv_3x3_is_a_3x3_depthwise_conv_of_dilation_2_and_padding_2():
    # quark0/darts: 'dil_conv_3x3': DilConv(C, C, 3, stride, 2, 2); a 3x3 of dilation 1 has the same shapes.
    dil = OPS["dil_conv_3x3"](8, 2, False)
    assert dil.dw.kernel_size == (3, 3) and dil.dw.dilation == (2, 2) and dil.dw.padding == (2, 2)
    assert dil.dw.stride == (2, 2) and dil.dw.groups == 8 and not dil.bn.affine


def test_an_op_list_with_a_repeated_name_or_no_op_but_none_is_refused():
    with pytest.raises(UserError, match=r"^config field 'ops': op names must be distinct$"):
        resolve_op_set(["none", "conv_3x3", "conv_3x3"])
    for spec in (["none"], []):
        with pytest.raises(UserError, match=r"^config field 'ops': needs at least one op other than 'none'$"):
            resolve_op_set(spec)


def test_an_unknown_op_set_names_the_field_and_the_known_sets():
    with pytest.raises(UserError, match=r"^config field 'search\.ops': unknown op set 'nas3' \(known: darts, "
                                        r"nas1, nas2; or give a list of op names\)$"):
        resolve_op_set("nas3", field="search.ops")


def test_factorized_reduce_refuses_an_odd_channel_count_when_built():
    # Its two halves give 2 * (C_out // 2) channels: an odd C_out would fail later, in BatchNorm, mid-forward.
    with pytest.raises(ValueError, match=r"^FactorizedReduce needs an even number of output channels, got 5"):
        FactorizedReduce(4, 5)
