"""Ops (shapes incl. odd sizes), op sets, search net forward, genotype derivation and JSON, param counts."""

import json

import pytest
import torch

from audionas.errors import UserError
from audionas.models import create_model
from audionas.nas.darts.genotype import DARTS_V2, EMPTY, Genotype, derive_gene, get_genotype
from audionas.nas.darts.layout import reduction_cells
from audionas.nas.darts.operations import OP_SETS, OPS, FactorizedReduce, ReLUConvBN, resolve_op_set
from audionas.nas.darts.search_model import SearchNetwork


def n_params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


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


def test_layouts():
    assert "".join("R" if r else "N" for r in reduction_cells(6)) == "NNRNRN"
    assert "".join("R" if r else "N" for r in reduction_cells(6, "nnr")) == "NNRNNR"
    assert reduction_cells(3, "nrn") == [False, True, False]
    with pytest.raises(UserError, match="layout"):
        reduction_cells(6, "NNR")
    with pytest.raises(UserError, match="'cells': expected at least 1 cell, got 0"):
        reduction_cells(0)


def test_search_net_forward_kws_shape_and_spatial_sizes():
    torch.manual_seed(0)
    net = SearchNetwork(C=4, num_classes=12, cells=6, primitives=OP_SETS["nas1"])
    assert net.alphas_normal.shape == (14, 9) and net.alphas_reduce.shape == (14, 9)
    for alphas in net.arch_parameters():  # 1e-3 * randn: small but not all equal (zeros passed before)
        assert 5e-4 < alphas.std() < 2e-3 and alphas.abs().max() < 0.01
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for c in net.cells]
    out = net(torch.randn(2, 1, 101, 40))
    for h in hooks:
        h.remove()
    assert out.shape == (2, 12)
    assert [s[1:] for s in sizes] == [(101, 40)] * 2 + [(51, 20)] * 2 + [(26, 10)] * 2
    assert not any(
        m.affine
        for n, m in net.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d) and n.startswith("cells")
    )


def test_genotype_derivation_on_hand_set_alphas():
    prims = ["none", "max_pool_3x3", "skip_connect", "conv_3x3"]
    W = torch.full((14, 4), 0.1)
    W[:, 0] = 0.9  # `none` dominates everywhere but is never chosen
    W[0, 3], W[1, 2] = 0.5, 0.4  # node 0: inputs 0 (conv) and 1 (skip)
    W[2, 1], W[3, 1], W[4, 3] = 0.2, 0.6, 0.7  # node 1: inputs 2 (conv 0.7) then 1 (pool 0.6)
    W[5:9, 1] = torch.tensor([0.3, 0.2, 0.2, 0.25])  # node 2: inputs 0, then 3 (tie 1/2 resolved below)
    W[9:14, 2] = torch.tensor([0.1, 0.1, 0.1, 0.15, 0.12])  # node 3: ties on 0..2 (0.1 == other ops)
    gene = derive_gene(W, prims)
    assert gene[:2] == [("conv_3x3", 0), ("skip_connect", 1)]
    assert gene[2:4] == [("conv_3x3", 2), ("max_pool_3x3", 1)]
    assert gene[4:6] == [("max_pool_3x3", 0), ("max_pool_3x3", 3)]
    assert gene[6:] == [("skip_connect", 3), ("skip_connect", 4)]


def test_genotype_op_tie_goes_to_the_first_op_as_in_darts():
    # quark0/darts `_parse` keeps the first op of the largest weight: on an exact tie between two ops
    # (e.g. weights rounded to the same float) the earlier primitive wins, not the later one.
    prims = ["none", "max_pool_3x3", "skip_connect", "conv_3x3"]
    W = torch.full((14, 4), 0.25)
    assert [op for op, _ in derive_gene(W, prims)] == ["max_pool_3x3"] * 8
    W[:, 1] = 0.1  # now skip_connect and conv_3x3 tie
    assert [op for op, _ in derive_gene(W, prims)] == ["skip_connect"] * 8


def test_search_net_genotype_uses_both_alpha_sets():
    torch.manual_seed(0)
    net = SearchNetwork(C=2, cells=3, primitives=OP_SETS["nas2"])
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_reduce.zero_()
        net.alphas_normal[:, OP_SETS["nas2"].index("conv_3x3")] = 5.0
        net.alphas_reduce[:, OP_SETS["nas2"].index("max_pool_3x3")] = 5.0
    g = net.genotype()
    assert all(op == "conv_3x3" for op, _ in g.normal) and all(op == "max_pool_3x3" for op, _ in g.reduce)
    assert g.normal_concat == [2, 3, 4, 5]


def test_genotype_json_round_trip_and_bad_files(tmp_path):
    p = tmp_path / "g.json"
    DARTS_V2.save(p)
    assert Genotype.load(p) == DARTS_V2
    assert get_genotype(str(p)) == DARTS_V2
    bad = tmp_path / "bad.json"
    bad.write_text("__import__('os')")
    with pytest.raises(UserError, match="bad.json"):
        get_genotype(str(bad))
    d = DARTS_V2.to_dict()
    d["normal"][0] = ["sep_conv_99x99", 0]
    bad.write_text(json.dumps(d))
    with pytest.raises(UserError, match="unknown op"):
        get_genotype(str(bad))
    with pytest.raises(UserError, match="missing.json"):
        create_model("darts", genotype=str(tmp_path / "missing.json"))
    bad.write_text(json.dumps({"algorithm": "nsga2", "front": []}))  # a one-shot search's pareto.json
    said = (r"bad\.json: missing key\(s\) normal, normal_concat, reduce, reduce_concat; a one-shot "
            r"search's front: train --chromosome FILE#k$")
    with pytest.raises(UserError, match=said):
        get_genotype(str(bad))
    bad.write_text(json.dumps({"chromosome": [0, 1], "score": 0.5}))  # one member of that front
    with pytest.raises(UserError, match=said):
        get_genotype(str(bad))
    bad.write_text(json.dumps({"normal": []}))
    with pytest.raises(UserError, match=r"missing key\(s\) normal_concat, reduce, reduce_concat$"):
        get_genotype(str(bad))
    bad.write_text(json.dumps({**DARTS_V2.to_dict(), "extra": 1, "Reduce": []}))  # before: ignored
    with pytest.raises(UserError, match=r"unknown key\(s\) Reduce, extra; expected normal, normal_concat, "):
        get_genotype(str(bad))
    assert get_genotype({**DARTS_V2.to_dict(), "source": "x.json", "ops": "nas1"}) == DARTS_V2


def test_darts_v2_cifar_param_count():
    m = create_model(
        "darts", num_classes=10, input_shape=(3, 32, 32), genotype="DARTS_V2", cells=20, channels=36
    )
    assert abs(n_params(m) - 3_349_342) <= 0.005 * 3_349_342
    assert n_params(m) == 3_349_342  # quark0/darts model.py, counted by hand in REFERENCE.md


def test_kws_skeleton_param_count_and_forward():
    m = create_model("darts", num_classes=12, input_shape=(1, 101, 40), genotype=EMPTY, cells=6, channels=16)
    assert n_params(m) == 59_036
    m.eval()
    assert m(torch.randn(2, 1, 101, 40)).shape == (2, 12)


def test_skeleton_counts_back_the_default_layout_for_the_papers_scalings():
    # REFERENCE.md section 2: the paper's NAS1 scalings (6/16 107K, 6/24 223K, 6/36 474K, 12/16 281K) fit
    # reductions at L//3 and 2L//3; with "every two normal cells followed by a reduction" the 12-cell
    # network without any cell op is already above the paper's 281K.
    def skeleton(cells, channels, layout="darts"):
        return n_params(create_model("darts", num_classes=12, input_shape=(1, 101, 40), genotype=EMPTY,
                                     cells=cells, channels=channels, layout=layout))

    got = {(6, 16): skeleton(6, 16), (6, 24): skeleton(6, 24), (6, 36): skeleton(6, 36),
           (12, 16): skeleton(12, 16)}
    assert got == {(6, 16): 59_036, (6, 24): 129_444, (6, 36): 286_176, (12, 16): 145_948}
    paper = {(6, 16): 107_000, (6, 24): 223_000, (6, 36): 474_000, (12, 16): 281_000}
    assert all(got[k] < paper[k] for k in paper)
    assert skeleton(12, 16, "nnr") == 669_212 > paper[(12, 16)]


def test_drop_path_spares_identity_edges_and_rescales_kept_samples():
    from audionas.nas.darts.genotype import DARTS_V1
    from audionas.nas.darts.model import drop_path

    torch.manual_seed(0)
    x = torch.ones(4000, 1, 1, 1)
    y = drop_path(x, 0.25)
    kept = y != 0
    assert torch.all(y[kept] == 1 / 0.75) and 0.7 < kept.float().mean() < 0.8
    # DARTS_V1's normal node 1 reads skip_connect(0) + sep_conv(1); a drop_prob near 1 zeroes only the conv
    m = create_model("darts", genotype="DARTS_V1", cells=1, channels=4, layout="N", drop_path_prob=0.999)
    cell = m.cells[0]
    cell.train()
    s0, s1 = torch.randn(2, 12, 5, 4), torch.randn(2, 12, 5, 4)
    h0 = cell.preprocess0(s0)
    torch.manual_seed(1)
    out = cell(s0, s1, 0.999)
    assert DARTS_V1.normal[2:4] == [("skip_connect", 0), ("sep_conv_3x3", 1)]
    node1 = out[:, 4:8]  # concat [2, 3, 4, 5]: node 1 is state 3
    torch.testing.assert_close(node1, h0)


def test_eval_net_drop_path_aux_and_progress():
    torch.manual_seed(0)
    m = create_model("darts", genotype="DARTS_V1", cells=3, channels=4, auxiliary=True, drop_path_prob=0.5)
    m.set_progress(0.5)
    assert m.drop_path_prob == pytest.approx(0.25)
    m.train()
    logits, aux = m(torch.randn(3, 1, 21, 10))
    assert logits.shape == aux.shape == (3, 12)
    m.eval()
    assert m(torch.randn(3, 1, 21, 10)).shape == (3, 12)


def test_a_folder_as_the_genotype_file_is_a_user_error(tmp_path, capsys):
    from audionas.cli import main

    with pytest.raises(UserError, match="is a folder .expected a JSON genotype file"):
        get_genotype(str(tmp_path))
    DARTS_V2.save(tmp_path / "genotype.json")  # a DARTS search run: the message points at its genotype
    with pytest.raises(UserError, match="genotype.json"):
        get_genotype(str(tmp_path))
    (tmp_path / "binary.json").write_bytes(bytes(range(128, 256)))
    with pytest.raises(UserError, match="binary.json: not UTF-8 text"):
        get_genotype(str(tmp_path / "binary.json"))
    assert main(["profile", "darts", "--genotype", str(tmp_path), "--repeats", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"audionas: error: {tmp_path}: is a folder")


def test_profile_of_a_genotype_file_points_to_the_darts_form(tmp_path, capsys):
    from audionas.cli import main

    DARTS_V2.save(tmp_path / "genotype.json")
    assert main(["profile", str(tmp_path / "genotype.json"), "--repeats", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"audionas profile darts --genotype {tmp_path / 'genotype.json'}" in err
    assert main(["profile", "darts", "--genotype", str(tmp_path / "genotype.json"), "--repeats", "0"]) == 0


@pytest.mark.parametrize("kind, concat", [("reduce", [0, 2, 3, 4, 5]), ("normal", [2, 2, 3]),
                                          ("normal", [1, 5]), ("reduce", [6])])
def test_a_concat_of_inputs_repeats_or_missing_nodes_is_a_user_error(tmp_path, capsys, kind, concat):
    from audionas.cli import main

    p = tmp_path / "g.json"
    p.write_text(json.dumps({**DARTS_V2.to_dict(), f"{kind}_concat": concat}))
    with pytest.raises(UserError, match=rf"'{kind}_concat' must be a non-empty list of distinct node "
                                        rf"indices in 2..5, got \{concat}"):
        Genotype.load(p)
    assert main(["profile", "darts", "--genotype", str(p), "--cells", "3", "--channels", "8",
                 "--repeats", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


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


def test_kws_search_presets_carry_the_papers_settings():
    # KWS paper section 3.1 and REFERENCE.md section 2 (DARTS): 6 cells, C=16, batch 16, 50 epochs, SGD 0.025
    # cosine to 0.001, momentum 0.9, wd 3e-4, clip 5; Adam 3e-4, betas (0.5, 0.999), wd 1e-3; 40/40/20 split;
    # first order (section 2: alpha descends grad_a L_val(w, alpha)).
    from audionas.config import load_config
    from audionas.nas.darts.config import DartsSearchConfig

    for preset, ops in (("kws-nas1", "nas1"), ("kws-nas2", "nas2")):
        c = load_config(DartsSearchConfig, preset, [])
        assert (c.ops, c.cells, c.channels, c.layout, c.epochs) == (ops, 6, 16, "darts", 50)
        assert (c.w_lr, c.w_lr_min, c.w_momentum, c.w_weight_decay) == (0.025, 0.001, 0.9, 3e-4)
        assert (c.grad_clip, c.data.batch_size) == (5.0, 16)
        assert (c.a_lr, list(c.a_betas), c.a_weight_decay, c.unrolled) == (3e-4, [0.5, 0.999], 1e-3, False)
        assert (c.data.kind, c.data.split) == ("speech_commands", "ratio")
        assert list(c.data.ratios) == [0.4, 0.4, 0.2]
        assert (c.data.silence_pct, c.data.unknown_pct, c.data.feature) == (10.0, 10.0, "honk-mfcc")


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


def test_genotype_ranks_edges_by_their_strongest_non_none_op_not_by_total_weight():
    # quark0/darts `_parse`: key = max over non-none ops of the edge. Node 1 (rows 2..4, inputs 0..2):
    # input 0: strongest op 0.6 (none 0.3); input 1: none 0, spread evenly (max 1/6); input 2: max 0.5.
    # By max: inputs 0 and 2. By the total non-none weight (1 - none) it would be inputs 1 and 2.
    prims = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "conv_3x3", "dil_conv_3x3",
             "dil_conv_5x5"]
    W = torch.full((14, 7), 1 / 7)
    W[2] = torch.tensor([0.3, 0.6, 0.02, 0.02, 0.02, 0.02, 0.02])
    W[3] = torch.tensor([0.0] + [1 / 6] * 6)
    W[4] = torch.tensor([0.1, 0.08, 0.08, 0.5, 0.08, 0.08, 0.08])
    gene = derive_gene(W, prims)
    assert gene[2:4] == [("max_pool_3x3", 0), ("skip_connect", 2)]


def test_search_cell_edge_k_is_weighted_by_alpha_row_k():
    # Node i sums MixedOp_k(state_j, weights[k]) over its inputs j, k = offset of node i + j (rows 0-1 node 0,
    # 2-4 node 1, 5-8 node 2, 9-13 node 3); the cell outputs the 4 nodes concatenated.
    from audionas.nas.darts.search_cell import SearchCell

    torch.manual_seed(0)
    prims = OP_SETS["nas2"]
    cell = SearchCell(prims, 6, 6, 4, reduction=False, reduction_prev=False)
    w = torch.softmax(torch.randn(14, len(prims)) * 3, dim=-1)
    s0, s1 = torch.randn(2, 6, 5, 4), torch.randn(2, 6, 5, 4)
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    k = 0
    for _ in range(4):
        node = 0
        for h in list(states):
            mixed = cell.edges[k]
            node = node + sum(w[k, o] * op(h) for o, op in enumerate(mixed.ops))
            k += 1
        states.append(node)
    torch.testing.assert_close(cell(s0, s1, w), torch.cat(states[2:], dim=1))


def test_search_net_normal_cells_get_softmax_alphas_normal_and_reduction_cells_alphas_reduce():
    torch.manual_seed(0)
    net = SearchNetwork(C=2, cells=4, primitives=OP_SETS["nas2"])
    with torch.no_grad():
        net.alphas_normal.normal_()
        net.alphas_reduce.normal_()
    seen = []
    for cell in net.cells:
        cell.register_forward_pre_hook(lambda m, args: seen.append((m.reduction, args[2].detach())))
    net(torch.randn(2, 1, 12, 8))
    assert [r for r, _ in seen] == [False, True, True, False]  # reductions at 4 // 3 and 8 // 3
    for reduction, w in seen:
        alphas = net.alphas_reduce if reduction else net.alphas_normal
        torch.testing.assert_close(w, torch.softmax(alphas.detach(), dim=1))


def test_eval_mode_never_drops_paths():
    torch.manual_seed(0)
    m = create_model("darts", genotype="DARTS_V1", cells=3, channels=4, drop_path_prob=0.9)
    m.set_progress(1.0)
    x = torch.randn(3, 1, 21, 10)
    m.eval()
    out = m(x)
    m.drop_path_prob = 0.0
    torch.testing.assert_close(out, m(x))


def test_auxiliary_head_reads_the_last_reduction_cell():
    # 6 cells, C=16: N N R(32) N R(64) N; the aux head (after the second reduction, quark0/darts) sees
    # cell 4's output of 4 x 64 = 256 channels on a 26 x 10 map.
    m = create_model("darts", genotype="DARTS_V2", cells=6, channels=16, auxiliary=True)
    assert m.aux_index == 4 and m.auxiliary_head.features[2].in_channels == 256
    seen = []
    m.auxiliary_head.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))
    m.train()
    m(torch.randn(2, 1, 101, 40))
    assert seen == [(2, 256, 26, 10)]


@torch.no_grad()
def test_eval_cell_node_is_the_sum_of_its_two_genotype_ops():
    # quark0/darts model.py Cell: node i = op_2i(state[idx_2i]) + op_2i+1(state[idx_2i+1]); output = concat.
    from audionas.nas.darts.genotype import DARTS_V1

    torch.manual_seed(0)
    cell = create_model("darts", genotype="DARTS_V1", cells=1, channels=4, layout="N").cells[0].eval()
    s0, s1 = torch.randn(2, 12, 5, 4), torch.randn(2, 12, 5, 4)
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    for i in range(4):
        (_, a), (_, b) = DARTS_V1.normal[2 * i], DARTS_V1.normal[2 * i + 1]
        states.append(cell.ops[2 * i](states[a]) + cell.ops[2 * i + 1](states[b]))
    torch.testing.assert_close(cell(s0, s1, 0.0), torch.cat(states[2:], dim=1))


def test_a_genotype_input_that_is_not_an_earlier_state_is_a_user_error():
    # node i (genes 2i, 2i+1) reads states 0..i+1 only: inputs 0, 1 and the nodes before it
    for n, idx in [(0, 2), (3, 3), (7, 5)]:
        d = DARTS_V2.to_dict()
        d["normal"][n] = ["skip_connect", idx]
        with pytest.raises(UserError, match=f"'normal'\\[{n}\\]: input {idx} must be in 0..{1 + n // 2}"):
            Genotype.from_dict(d)
    d = DARTS_V2.to_dict()
    d["reduce"][7] = ["skip_connect", 4]  # the last node may read node 2 (state 4)
    assert Genotype.from_dict(d).reduce[7] == ("skip_connect", 4)


def test_profile_counts_no_auxiliary_head_as_the_darts_code_does(capsys):
    # Before, auxiliary=true gave 3,825,768 params: the training-only head counted as part of the network.
    from audionas.cli import main

    base = ["profile", "darts", "--genotype", "DARTS_V2", "--cells", "20", "--channels", "36", "--classes",
            "10", "--input", "3x32x32", "--json", "--repeats", "0"]
    got = []
    for extra in ([], ["--arg", "auxiliary=true"]):
        assert main([*base, *extra]) == 0
        got.append(json.loads(capsys.readouterr().out))
    assert got[0]["params"] == got[1]["params"] == 3_349_342 and got[0]["macs"] == got[1]["macs"]
    aux = create_model("darts", num_classes=10, input_shape=(3, 32, 32), genotype="DARTS_V2", cells=20,
                       channels=36, auxiliary=True)
    assert n_params(aux) > 3_349_342  # the head is there, and trains


@pytest.mark.parametrize("spec", [5, None, ["conv_3x3", 5], ["none", 3], [["sep_conv_5x5"]], {"a": 1}])
def test_an_op_list_of_other_things_than_names_is_one_line(spec):
    # Before (DARTS QA): ops=5, ops=null, ops=[conv_3x3, 5], ops=[[sep_conv_5x5]] raised TypeErrors.
    with pytest.raises(UserError, match=r"^config field 'ops': expected an op set \(darts, nas1, nas2\) or a "
                                        r"list of op names, got "):
        resolve_op_set(spec)
