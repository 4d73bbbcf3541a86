"""The DARTS evaluation network built from a genotype: parameter counts, drop path, auxiliary head."""

import json

import pytest
import torch

from audionas.errors import UserError
from audionas.models import create_model
from audionas.nas.darts.genotype import DARTS_V1, DARTS_V2, EMPTY, Genotype


def n_params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_darts_v2_cifar_param_count():
    m = create_model(
        "darts", num_classes=10, input_shape=(3, 32, 32), genotype="DARTS_V2", cells=20, channels=36
    )
    assert abs(n_params(m) - 3_349_342) <= 0.005 * 3_349_342
    assert n_params(m) == 3_349_342  # quark0/darts model.py, counted by hand in REFERENCE.md


def test_kws_skeleton_param_count_and_forward():
    with pytest.warns(UserWarning, match="model 'darts': the genotype: every path to the classifier passes"):
        m = create_model("darts", num_classes=12, input_shape=(1, 101, 40), genotype=EMPTY, cells=6,
                         channels=16)
    assert n_params(m) == 59_036
    m.eval()
    assert m(torch.randn(2, 1, 101, 40)).shape == (2, 12)


@pytest.mark.filterwarnings("ignore:model 'darts'")  # EMPTY cannot learn: tested above
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


def test_a_cell_whose_paths_all_pass_none_ops_is_said_not_to_learn(recwarn):
    # Before: a hand-written genotype of 'none' ops trained to chance level without a word.
    from audionas.nas.darts.genotype import reaches_output
    from audionas.nas.darts.layout import reduction_cells

    def cell(normal, reduce):
        return Genotype(normal=normal * 4, reduce=reduce * 4)

    dead, from0 = [("none", 0), ("none", 1)], [("skip_connect", 0), ("none", 1)]
    from1 = [("none", 0), ("sep_conv_3x3", 1)]
    layout = reduction_cells(6)  # N N R N R N
    assert reaches_output(DARTS_V2, layout) and not reaches_output(EMPTY, layout)
    assert not reaches_output(cell(dead, from0), layout)
    assert reaches_output(cell(from0, dead), layout)  # input 0 of the cell after a dead reduction lives
    assert not reaches_output(cell(from1, dead), layout)
    assert reaches_output(cell(from1, dead), [False, False])
    create_model("darts", genotype=DARTS_V2.to_dict())
    assert not recwarn.list
    with pytest.warns(UserWarning, match="model 'darts': the genotype: every path to the classifier passes"):
        create_model("darts", genotype=cell(from1, dead).to_dict(), cells=3, layout="NRN")
    with pytest.warns(UserWarning, match="genotype g.json: every path"):
        create_model("darts", genotype={**cell(dead, from0).to_dict(), "source": "g.json"})


@torch.no_grad()
def test_eval_cell_stacks_the_genotypes_concat_nodes_not_its_last_ones():
    # A genotype file may concat any distinct nodes (Genotype.from_dict checks 2..n_states-1), e.g. [2, 5].
    d = DARTS_V1.to_dict()
    d["normal_concat"] = [2, 5]
    torch.manual_seed(0)
    cell = create_model("darts", genotype=d, cells=1, channels=4, layout="N").cells[0].eval()
    s0, s1 = torch.randn(2, 12, 5, 4), torch.randn(2, 12, 5, 4)
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    for i in range(4):
        (_, a), (_, b) = DARTS_V1.normal[2 * i], DARTS_V1.normal[2 * i + 1]
        states.append(cell.ops[2 * i](states[a]) + cell.ops[2 * i + 1](states[b]))
    torch.testing.assert_close(cell(s0, s1, 0.0), torch.cat([states[2], states[5]], dim=1))
