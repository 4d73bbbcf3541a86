import json

import numpy as np
import pytest
from oneshot_helpers import TINY_SPACE

from audionas.errors import UserError
from audionas.models.asc import ASC_BASELINE_BLOCKS, mbnet_cost
from audionas.nas.oneshot.space import (
    SearchSpace,
    asc_space,
    load_space,
    resolve_chromosome,
    space_from_dict,
    space_mapping,
)
from audionas.profile import count_macs, count_params


def test_asc_space_matches_the_paper():
    s = asc_space()
    assert s.n_choices == [6] * 20
    assert s.layers[0] == ["ir_e3_k3t_s1x1_c24", "ir_e3_k5t_s1x1_c24", "ir_e3_k7t_s1x1_c24",
                           "ir_e6_k3t_s1x1_c24", "ir_e6_k5t_s1x1_c24", "ir_e6_k7t_s1x1_c24"]
    assert s.layers[16] == ["ir_e3_k5t_s2x4_c160", "ir_e3_k7t_s2x4_c160", "ir_e6_k5t_s2x4_c160",
                            "ir_e6_k7t_s2x4_c160", "ir_e8_k5t_s2x4_c160", "ir_e8_k7t_s2x4_c160"]
    # directions, strides and widths are the baseline's
    for choices, base in zip(s.layers, ASC_BASELINE_BLOCKS):
        assert all(c.split("_")[3:] == base.split("_")[3:] for c in choices)
        assert all(c[c.index("_k") + 3] == base[base.index("_k") + 3] for c in choices)
    base = s.encode(ASC_BASELINE_BLOCKS)
    assert s.decode(base) == ASC_BASELINE_BLOCKS
    assert s.cost(base) == mbnet_cost(ASC_BASELINE_BLOCKS, 9, (1, 40, 501)) == (3_283_817, 2_061_997_184)


def test_encode_decode_roundtrip(tiny_space):
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = tiny_space.random(rng)
        assert tiny_space.encode(tiny_space.decode(c)) == c
    with pytest.raises(UserError, match="gene 2"):
        tiny_space.decode([0, 0, 6])
    with pytest.raises(UserError, match="expected 3 genes"):
        tiny_space.decode([0, 0])
    with pytest.raises(UserError, match=r"arch\[1\]"):
        tiny_space.encode(["ir_e3_k3t_s1x1_c4", "ir_e9_k3f_s2x2_c8", "ir_e3_k5t_s1x1_c8"])


def test_cost_is_exact_on_built_models(tiny_space):
    rng = np.random.default_rng(1)
    for _ in range(4):
        c = tiny_space.random(rng)
        m = tiny_space.build(c)
        assert tiny_space.cost(c) == (count_params(m), count_macs(m, (1, 12, 8)))


def test_cost_is_exact_on_one_asc_candidate():
    s = asc_space()
    c = [5, 0, 4, 1, 3, 2, 0, 5, 1, 4, 2, 3, 0, 1, 5, 4, 5, 2, 3, 0]
    m = s.build(c)
    assert s.cost(c) == (count_params(m), count_macs(m, (1, 40, 501)))


def test_cost_range_bounds(tiny_space):
    lo, hi = tiny_space.cost_range("macs")
    assert lo == tiny_space.cost([0, 0, 0])[1] and hi == tiny_space.cost([5, 5, 5])[1]
    lo, hi = tiny_space.cost_range("params")
    assert lo == tiny_space.cost([0, 0, 0])[0] and hi == tiny_space.cost([5, 5, 5])[0]



def test_cost_range_is_the_true_min_and_max_with_unequal_choice_counts():
    # layer 2 has 2 choices, the others 6: the cost table pads it with zeros that must not count
    import itertools

    space = space_from_dict(dict(TINY_SPACE, layers=[
        "ir_e6_k3t_s1x1_c4", {"choices": ["ir_e3_k3f_s2x2_c8", "ir_e6_k5f_s2x2_c8"]},
        {"block": "ir_e6_k5t_s1x1_c8", "expansions": [3, 6, 8], "kernels": [5, 7]}]))
    assert space.n_choices == [6, 2, 6]
    costs = [space.cost(c) for c in itertools.product(*(range(n) for n in space.n_choices))]
    assert space.cost_range("params") == (min(p for p, _ in costs), max(p for p, _ in costs))
    assert space.cost_range("macs") == (min(m for _, m in costs), max(m for _, m in costs))

@pytest.mark.parametrize("patch, field", [
    ({"layers": []}, "layers"),
    ({"layers": ["ir_e6_k3t_s1x1_c4", {"choices": ["ir_e3_k3t_s1x1_c8", "ir_e3_k3t_s2x2_c8"]}]}, "layers[1]"),
    ({"layers": ["ir_bad"]}, "layers[0]"),
    ({"layers": [{"block": "ir_e6_k3t_s1x1_c4", "kernel": [3]}]}, "layers[0]"),
    ({"expansions": [3, "x"]}, "expansions"),
    ({"input_shape": [1, 12]}, "input_shape"),
    # Before (QA): profile SEARCH/pareto.json#0 blamed a --input flag the user never gave.
    ({"input_shape": [1, 1_000_000, 1_000_000]}, "space.input_shape: expected a sample of at most "),
    ({"model_args": {"depth": 3}}, "model_args.depth"),
    ({"model_args": {**TINY_SPACE["model_args"], "stem_channels": 0}}, "model_args.stem_channels"),
    ({"model_args": {**TINY_SPACE["model_args"], "gru_hidden": "abc"}}, "model_args.gru_hidden"),
    ({"model_args": {**TINY_SPACE["model_args"], "gru_layers": -1}}, "model_args.gru_layers"),
    ({"colour": 1}, "colour"),
    ({"task": "vision"}, "task"),
])
def test_bad_space_is_a_user_error_naming_the_field(patch, field):
    d = {**TINY_SPACE, **patch}
    with pytest.raises(UserError, match=field.replace("[", r"\[").replace("]", r"\]")):
        space_from_dict(d)


@pytest.mark.parametrize("patch, message", [
    # before (QA): "space.layers[0]: block BlockSpec(expansion=3, kernel=4, ...): kernel must be odd ..."
    ({"kernels": [4, 3]}, "space.kernels: expected a non-empty list of odd positive integers, got [4, 3]"),
    ({"expansions": [0, -1]}, "space.expansions: expected a non-empty list of positive integers, got "
                              "[0, -1]"),
    ({"layers": [{"block": "ir_e6_k3t_s1x1_c4", "kernels": [2]}]},
     "space.layers[0]: kernels: expected a non-empty list of odd positive integers, got [2]"),
])
def test_bad_expansions_or_kernels_are_named_by_field(patch, message):
    with pytest.raises(UserError) as e:
        space_from_dict({**TINY_SPACE, **patch})
    assert str(e.value) == message


def test_a_bad_block_is_named_as_its_string():
    from audionas.models.blocks import BlockSpec

    with pytest.raises(UserError, match=r"^block 'ir_e3_k4t_s1x1_c8': kernel must be odd"):
        BlockSpec(3, 4, "t", (1, 1), 8)


@pytest.mark.parametrize("override, needle", [
    ("space.model_args.stem_channels=0", "space.model_args.stem_channels: expected a positive integer, "
                                         "got 0"),
    ("space.model_args.gru_hidden=abc", "space.model_args.gru_hidden: expected a positive integer, "
                                        "got 'abc'"),
    # before (QA): "pool 'max': expected ...", the field not named
    ("space.model_args.pool=max", "space.model_args.pool: expected 'last' (the GRU's last step) or 'mean'"),
    # sizes of 1e20: before, an OverflowError traceback from the int64 cost table
    *[(f"space.{o}", "space: its params or MACs exceed 64-bit integers") for o in (
        f"num_classes={10**20}", f"model_args.gru_hidden={10**20}")],
    (f"space.input_shape=[1,{10**20},40]", "space.input_shape: expected a sample of at most 4,194,304"),
    # a block's own sizes are bounded first (models/blocks.py MOST)
    (f"space.expansions=[{10**20}]", f"expansion {10**20} is above 64, far beyond any MBNet block"),
    (f"space.layers=[ir_e6_k3t_s2x2_c{10**20}]", f"out_channels {10**20} is above 4096, far beyond"),
])
def test_cli_bad_space_model_args_exit_2(tmp_path, capsys, override, needle):
    from audionas.cli import main

    assert main(["search", "supernet", "--preset", "kws-fairnas-cpu", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "run"), override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("audionas: error:") and len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "run").exists()


def test_space_yaml_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: f\ntask: kws\nnum_classes: 5\ninput_shape: [1, 12, 8]\nmodel_args: {time_axis: h}\n"
                 "kernels: [3, 5]\nlayers:\n  - ir_e6_k3t_s1x1_c8\n  - {choices: [ir_e3_k3f_s1x1_c8]}\n")
    s = load_space(str(p))
    assert s.n_choices == [4, 1] and s.layers[0][1] == "ir_e3_k5t_s1x1_c8"
    (tmp_path / "bad.yaml").write_text("layers: [ir_e6_k4t_s1x1_c8]\n")
    with pytest.raises(UserError, match="bad.yaml.layers.0."):
        load_space(str(tmp_path / "bad.yaml"))
    with pytest.raises(UserError, match="space 'nope'"):
        load_space("nope")


def test_cli_override_edits_a_named_space():
    from audionas.config import load_config
    from audionas.nas.oneshot.config import SupernetConfig

    cfg = load_config(SupernetConfig, "asc-fairnas", ["space.num_classes=10"],
                      expand={"space": space_mapping})
    s, asc = load_space(cfg.space), asc_space()
    assert s.num_classes == 10 and s.layers == asc.layers and s.input_shape == asc.input_shape
    assert load_config(SupernetConfig, "asc-fairnas").space == "asc"  # untouched unless edited


def test_a_chromosome_with_more_genes_than_layers_is_refused(tiny_space):
    # zip() would read the first three and ignore the rest
    for check in (tiny_space.decode, tiny_space.cost, tiny_space.check):
        with pytest.raises(UserError, match=r"chromosome \[0, 0, 0, 0\]: expected 3 genes for space "):
            check([0, 0, 0, 0])


def test_a_gene_that_is_not_an_integer_is_refused(tiny_space):
    # Before, a hand-edited pareto.json gene of 1.7, "2" or true was truncated or converted by int().
    for genes in ([0, 0, 1.7], [0, 0, "2"], [0, 0, True], [0, 0, 2.0]):
        with pytest.raises(UserError, match=r"expected a list of integers"):
            tiny_space.check(genes)
    assert tiny_space.check(np.array([0, 0, 2])) == [0, 0, 2]  # the search's own numpy genes


def test_the_asc_cpu_supernet_space_retrains_with_its_preset_hint():
    # asc-fairnas-cpu's space is asc-cpu's network with the paper's 6 choices per block: its first choices
    # are asc-cpu's blocks and its fixed parts asc-cpu's model_args, so `train --preset asc-cpu
    # --chromosome` retrains what the search scored.
    from audionas.config import load_config
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.train.config import TrainConfig

    space = load_space(load_config(SupernetConfig, "asc-fairnas-cpu").space)
    train = load_config(TrainConfig, space.preset_hint)
    assert space.preset_hint == "asc-cpu" and space.task == "asc" and space.input_shape == (1, 40, 501)
    assert space.decode([0] * len(space.layers)) == train.model_args["arch"]
    assert all(len(c) == 6 for c in space.layers)
    assert {k: v for k, v in train.model_args.items() if k != "arch"}.items() <= space.model_args.items()


def test_a_home_relative_space_file_is_expanded(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    assert load_space("~/space.yaml") == space_from_dict(TINY_SPACE)


def test_a_layer_with_the_same_choice_twice_is_refused():
    # a repeated choice would be trained and counted twice, and encode() could only ever find the first
    with pytest.raises(UserError, match=r"^space: space 'tiny': layers\[1\]: duplicate choices$"):
        space_from_dict({**TINY_SPACE, "layers": [
            "ir_e6_k3t_s1x1_c4", {"choices": ["ir_e3_k3t_s1x1_c8", "ir_e3_k3t_s1x1_c8"]}]})


def test_an_unknown_field_next_to_choices_is_named():
    # before, {choices: [...], kernels: [...]} silently ignored the kernels
    with pytest.raises(UserError, match=r"^space\.layers\[0\]: unknown field 'kernels' next to choices$"):
        space_from_dict({**TINY_SPACE, "layers": [{"choices": ["ir_e6_k3t_s1x1_c4"], "kernels": [3, 5]}]})


def test_a_block_layer_takes_the_space_expansions_and_kernels_it_does_not_set():
    # the space-level defaults apply to {block: ...} layers too, not the built-in [3, 6] / [3, 5, 7]
    s = space_from_dict({**TINY_SPACE, "expansions": [2, 4], "kernels": [3], "layers": [
        {"block": "ir_e6_k5t_s1x1_c4", "kernels": [5, 7]},
        {"block": "ir_e6_k3t_s1x1_c4", "expansions": [5]}]})
    assert s.layers == [["ir_e2_k5t_s1x1_c4", "ir_e2_k7t_s1x1_c4", "ir_e4_k5t_s1x1_c4", "ir_e4_k7t_s1x1_c4"],
                        ["ir_e5_k3t_s1x1_c4"]]


def test_an_expansion_of_zero_is_named_by_its_field():
    # the existing [0, -1] case is refused for the -1 alone
    with pytest.raises(UserError) as e:
        space_from_dict({**TINY_SPACE, "expansions": [0]})
    assert str(e.value) == "space.expansions: expected a non-empty list of positive integers, got [0]"


def test_a_negative_gene_is_refused_not_read_from_the_end(tiny_space):
    # Python's negative indexing would decode -1 as the layer's last choice
    for check in (tiny_space.decode, tiny_space.cost, tiny_space.check):
        with pytest.raises(UserError, match=r"^chromosome \[0, -1, 0\]: gene 1 = -1 outside 0\.\.5$"):
            check([0, -1, 0])


def test_zero_classes_is_refused_naming_the_field():
    # S17
    with pytest.raises(UserError, match=r"^space\.num_classes: expected a positive integer, got 0$"):
        space_from_dict({**TINY_SPACE, "num_classes": 0})


def test_a_negative_front_index_is_refused_not_read_from_the_end(tmp_path):
    # front[-1] would resolve to the last member (the CLI test checks #99 only)
    p = tmp_path / "pareto.json"
    front = [{"chromosome": [3, 3, 1]}, {"chromosome": [0, 0, 0]}]
    p.write_text(json.dumps({"space": TINY_SPACE, "front": front}))
    said = r"^--chromosome .*pareto\.json#-1: index -1 outside 0\.\.1 \(front size 2\)$"
    with pytest.raises(UserError, match=said):
        resolve_chromosome(f"{p}#-1")
    assert resolve_chromosome(tmp_path / "pareto.json#1")["chromosome"] == [0, 0, 0]
    assert resolve_chromosome(f"{tmp_path}#0")["chromosome"] == [3, 3, 1]  # the search folder alone


def test_duplicate_choices_are_found_in_canonical_spelling():
    # `ir_e03_...` is `ir_e3_...`: the supernet would train two copies and encode() only find the first
    with pytest.raises(UserError, match=r"^space 'tiny': layers\[0\]: duplicate choices$"):
        SearchSpace("tiny", [["ir_e3_k3t_s1x1_c8", "ir_e03_k3t_s1x1_c8"]], task="kws", num_classes=5,
                    input_shape=(1, 12, 8), model_args=TINY_SPACE["model_args"])
    layers = [("ir_e03_k3t_s1x1_c8", "ir_e6_k3t_s1x1_c8")]
    s = SearchSpace("tiny", layers, task="kws", num_classes=5, input_shape=(1, 12, 8),
                    model_args=TINY_SPACE["model_args"])
    assert s.layers == [["ir_e3_k3t_s1x1_c8", "ir_e6_k3t_s1x1_c8"]]
    assert layers == [("ir_e03_k3t_s1x1_c8", "ir_e6_k3t_s1x1_c8")]  # the caller's list is left as it was
