"""The DARTS search network and cell: alphas per cell kind, edge weighting, forward shapes, cell layouts,
the KWS search presets."""

import pytest
import torch

from audionas.errors import UserError
from audionas.nas.darts.layout import reduction_cells
from audionas.nas.darts.operations import OP_SETS
from audionas.nas.darts.search_cell import SearchCell
from audionas.nas.darts.search_model import SearchNetwork


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
    # DARTS doubles C at each reduction cell; a cell outputs multiplier (4) x C channels
    assert [s[0] for s in sizes] == [16, 16, 32, 32, 64, 64] and net.classifier.in_features == 64
    assert not any(
        m.affine
        for n, m in net.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d) and n.startswith("cells")
    )


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


def test_a_search_cell_outputs_its_last_multiplier_nodes():
    # quark0/darts: cat(states[-multiplier:]); derive_genotype's concat
    # range(2 + steps - multiplier, steps + 2) names the same nodes. multiplier < steps: the first nodes are
    # not part of the output.
    torch.manual_seed(0)
    cell = SearchCell(["none", "skip_connect", "conv_3x3"], 4, 4, 2, reduction=False, reduction_prev=False,
                      steps=3, multiplier=2)
    w = torch.softmax(torch.randn(9, 3), dim=-1)
    s0, s1 = torch.randn(2, 4, 5, 4), torch.randn(2, 4, 5, 4)
    out = cell(s0, s1, w)
    cell.multiplier = 3
    every_node = cell(s0, s1, w)  # nodes 2, 3, 4 (2 channels each)
    assert out.shape == (2, 4, 5, 4)
    torch.testing.assert_close(out, every_node[:, 2:])


def test_the_search_stem_batch_norm_is_affine_and_a_weight():
    # quark0/darts model_search.py: the stem's BatchNorm2d(C_curr) keeps its affine parameters (only the
    # cells' BN has none); they train with the weights, not with the alphas.
    net = SearchNetwork(C=2, cells=1, layout="N", primitives=["none", "skip_connect"])
    bn = net.stem[1]
    assert bn.affine and any(p is bn.weight for p in net.weight_parameters())


def test_the_search_net_op_set_defaults_to_nas1():
    net = SearchNetwork(C=2, cells=1, layout="N")
    assert net.primitives == OP_SETS["nas1"] and net.alphas_normal.shape == (14, 9)


def test_the_genotype_ranks_a_nodes_inputs_by_softmaxed_weight_not_raw_alpha():
    # DARTS _parse ranks on softmax(alpha): an edge whose ops are equally strong (raw 1, 1) ranks below edges
    # with one clear winner (raw 0.9 or 0.8 against -5), though its largest raw alpha is the largest.
    net = SearchNetwork(C=2, cells=1, layout="N", primitives=["none", "skip_connect", "conv_3x3"])
    with torch.no_grad():
        net.alphas_normal.zero_()
        net.alphas_normal[2] = torch.tensor([0.0, 1.0, 1.0])  # node 1, input 0
        net.alphas_normal[3] = torch.tensor([-5.0, 0.9, -5.0])  # node 1, input 1
        net.alphas_normal[4] = torch.tensor([-5.0, -5.0, 0.8])  # node 1, input 2
    assert [tuple(g) for g in net.genotype().normal[2:4]] == [("skip_connect", 1), ("conv_3x3", 2)]


def test_weight_and_arch_parameters_split_the_parameters():
    # The SGD of the weights must never see an alpha (and the alphas' Adam no weight).
    net = SearchNetwork(C=2, cells=2, layout="NR", primitives=["none", "skip_connect"])
    weights, alphas = net.weight_parameters(), net.arch_parameters()
    assert {id(p) for p in weights}.isdisjoint(id(a) for a in alphas)
    assert len(weights) + len(alphas) == len(list(net.parameters()))
