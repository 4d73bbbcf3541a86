import re
from dataclasses import dataclass, field

import pytest

from audionas.config import apply_overrides, from_dict, load_config
from audionas.data import DataConfig
from audionas.errors import UserError


@dataclass
class Inner:
    lr: float = 0.1
    name: str = "sgd"


@dataclass
class Outer:
    epochs: int = 1
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def test_overrides_parse_nested_and_typed():
    assert apply_overrides({}, ["inner.lr=0.5", "epochs=5", "tags=[a, b]"]) == {
        "inner": {"lr": 0.5}, "epochs": 5, "tags": ["a", "b"]}


def test_overrides_apply_in_order_and_merge_mappings():
    data = {"inner": {"lr": 0.1, "name": "sgd"}, "epochs": 1}
    apply_overrides(data, ["inner={lr: 0.5}", "epochs=2", "epochs=3"])
    assert data == {"inner": {"lr": 0.5, "name": "sgd"}, "epochs": 3}


def test_override_inside_a_named_field_expands_it_first():
    named = {"small": {"layers": ["a", "b"], "num_classes": 12}}
    data = apply_overrides({"space": "small"}, ["space.num_classes=3"], expand={"space": named.__getitem__})
    assert data == {"space": {"layers": ["a", "b"], "num_classes": 3}}
    assert named["small"]["num_classes"] == 12
    data = apply_overrides({}, ["space=small", "space.num_classes=4"], expand={"space": named.__getitem__})
    assert data["space"]["num_classes"] == 4


def test_override_inside_a_scalar_is_an_error():
    with pytest.raises(UserError, match="override 'epochs.x=1': 'epochs' is 3, not a mapping"):
        apply_overrides({}, ["epochs=3", "epochs.x=1"])
    with pytest.raises(UserError, match="'space' is 'asc', not a mapping"):
        apply_overrides({"space": "asc"}, ["space.num_classes=3"])  # no expander for it


def test_exponent_floats_from_yaml_are_numbers():
    assert load_config(Outer, None, ["inner.lr=3e-4"]).inner.lr == 3e-4


def test_load_config_applies_overrides_over_defaults():
    cfg = load_config(Outer, None, ["inner.lr=0.5", "epochs=3"])
    assert cfg.inner.lr == 0.5 and cfg.epochs == 3 and cfg.inner.name == "sgd"


def test_a_nested_mapping_merges_over_the_fields_own_default_not_the_nested_class_defaults(tmp_path):
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SupernetConfig

    @dataclass
    class Custom:
        inner: Inner = field(default_factory=lambda: Inner(lr=0.7, name="adam"))

    assert from_dict(Custom, {"inner": {"lr": 0.5}}).inner == Inner(lr=0.5, name="adam")
    # A user's search preset naming only data.kind keeps the KWS paper's 40/40/20 split and batch 16.
    (tmp_path / "mine.yaml").write_text("ops: nas2\ndata:\n  kind: folder\n")
    c = load_config(DartsSearchConfig, str(tmp_path / "mine.yaml"))
    assert (c.data.kind, c.data.split, list(c.data.ratios), c.data.batch_size) == (
        "folder", "ratio", [0.4, 0.4, 0.2], 16)
    # The supernet's optimiser keeps the ASC recipe (Adam, warm-up, constant) when only its lr is changed.
    o = load_config(SupernetConfig, None, ["optim.lr=0.01"]).optim
    assert (o.name, o.lr, o.weight_decay, o.warmup_epochs) == ("adam", 0.01, 1e-6, 3.0)
    assert o.schedule == "constant"


def test_int_is_accepted_for_float_field():
    assert from_dict(Inner, {"lr": 1}).lr == 1.0


@pytest.mark.parametrize("data,needle", [
    ({"epochs": "many"}, "'epochs'"),
    ({"nope": 1}, "'nope'"),
    ({"inner": {"lr": "fast"}}, "'inner.lr'"),
    ({"inner": 3}, "'inner'"),
])
def test_bad_fields_name_the_field(data, needle):
    with pytest.raises(UserError, match=needle):
        from_dict(Outer, data)


def test_an_integer_beyond_64_bits_is_refused():
    # Before: accepted, then a traceback from numpy, torch or itertools.islice wherever it was used.
    assert from_dict(Outer, {"epochs": 2**63 - 1}).epochs == 2**63 - 1
    with pytest.raises(UserError, match=f"config field 'epochs': expected a 64-bit integer, got {2**63}$"):
        from_dict(Outer, {"epochs": 2**63})
    with pytest.raises(UserError, match="'epochs': expected a 64-bit integer, got 100000000000000000000$"):
        load_config(Outer, None, ["epochs=1.0e+20"])


def test_override_without_equals_is_an_error():
    with pytest.raises(UserError, match="key=value"):
        apply_overrides({}, ["epochs"])


@pytest.mark.parametrize("item", ["=3", ".epochs=3", "inner..lr=0.1", "inner.=0.1"])
def test_override_with_an_empty_name_in_its_key_says_so(item):
    # before: "config field '': unknown (expected one of: ...)" or "config field 'inner.': unknown"
    with pytest.raises(UserError) as e:
        load_config(Outer, None, [item])
    assert str(e.value) == f"override '{item}': expected key=value with a dotted key such as optim.lr=0.01"


def test_unknown_preset_is_an_error():
    with pytest.raises(UserError, match="no-such-preset"):
        load_config(Outer, "no-such-preset")


def test_preset_file_with_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("epochs: 7\ninner:\n  lr: 0.2\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {base}\ninner:\n  name: adam\n")
    cfg = load_config(Outer, str(child))
    assert (cfg.epochs, cfg.inner.lr, cfg.inner.name) == (7, 0.2, "adam")


def test_invalid_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(UserError, match="bad.yaml"):
        load_config(Outer, str(bad))


def _train_error(capsys, preset) -> str:
    from audionas.cli import main

    assert main(["train", "--preset", str(preset), "--data", str(preset.parent / "data"),
                 "--out", str(preset.parent / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("audionas: error:") and len(err.strip().splitlines()) == 1
    return err


def test_base_cycle_is_an_error(tmp_path, capsys):
    a, b, me = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "me.yaml"
    a.write_text(f"base: {b}\n")
    b.write_text(f"base: {a}\n")
    me.write_text(f"base: {me}\nepochs: 2\n")
    with pytest.raises(UserError, match="cycle"):
        load_config(Outer, str(a))
    assert "cycle" in _train_error(capsys, a) and "b.yaml" in _train_error(capsys, b)
    assert "me.yaml: base:" in _train_error(capsys, me)


@pytest.mark.parametrize("base", ["3", "[a]", "{x: 1}", "''"])
def test_base_must_name_a_preset(tmp_path, capsys, base):
    p = tmp_path / "p.yaml"
    p.write_text(f"base: {base}\nepochs: 2\n")
    assert "p.yaml: base: expected a preset name or a YAML file path" in _train_error(capsys, p)


def test_binary_preset_is_an_error(tmp_path, capsys):
    p = tmp_path / "bin.yaml"
    p.write_bytes(bytes(range(256)) * 2)
    assert "bin.yaml: not a text YAML file" in _train_error(capsys, p)
    p.write_text("epochs: 1\x00\n")  # valid UTF-8, but a character YAML forbids
    assert "bin.yaml: invalid YAML at character 10: unacceptable character" in _train_error(capsys, p)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_preset_is_an_error(tmp_path, capsys, text):
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    assert "mine.yaml: empty preset (no config fields); expected fields or base: PRESET" in (
        _train_error(capsys, p))


@pytest.mark.parametrize("value, says", [("5", "5"), ("[1]", "[1]"), ("", "null")])
def test_a_preset_field_that_is_not_a_mapping_is_refused_under_the_flag_that_fills_it(tmp_path, capsys, value,
                                                                                    says):
    # Before: --data merged its mapping over the preset's `data: 5`, which was silently dropped (the optim
    # section, set by no flag, was already refused).
    from audionas.nas.darts.config import DartsSearchConfig

    p = tmp_path / "p.yaml"
    p.write_text(f"base: kws-tc-resnet-cpu\ndata: {value}\n")
    assert f"config field 'data': expected a mapping, got {says}" in _train_error(capsys, p)
    with pytest.raises(UserError, match=f"config field 'data': expected a mapping, got {re.escape(says)}"):
        load_config(DartsSearchConfig, str(p), extra={"data": {"root": str(tmp_path)}})


def test_a_key_given_twice_in_a_preset_is_refused_with_its_line(tmp_path, capsys):
    # Before: PyYAML kept the last value without a word; nested mappings and YAML merges are still read.
    p = tmp_path / "p.yaml"
    p.write_text("base: kws-tc-resnet-cpu\nepochs: 1\noptim:\n  lr: 0.1\n  lr: 0.2\n")
    assert "p.yaml: invalid YAML at line 5, column 3: key 'lr' given twice" in _train_error(capsys, p)
    from audionas.config import read_yaml

    p.write_text("a: &o {lr: 0.1, momentum: 0.8}\nb:\n  <<: *o\n  lr: 0.2\n")
    assert read_yaml(p)["b"] == {"lr": 0.2, "momentum": 0.8}


def test_an_integer_too_long_for_python_is_a_one_line_error(tmp_path, capsys):
    # Before (QA): int()'s ValueError past 4300 digits escaped as a traceback, from a preset or an override.
    p = tmp_path / "p.yaml"
    p.write_text(f"base: kws-tc-resnet-cpu\nepochs: 1{'0' * 5000}\n")
    said = "p.yaml: invalid YAML at line 2, column 9: an integer of more than 4300 digits"
    assert said in _train_error(capsys, p)
    from audionas.train.config import TrainConfig

    p.write_text("base: kws-tc-resnet-cpu\n")
    with pytest.raises(UserError, match="config field 'epochs': expected an integer, got '10000"):
        load_config(TrainConfig, str(p), [f"epochs=1{'0' * 5000}"])
    p.write_text(f"base: kws-tc-resnet-cpu\nmodel_args: {'[' * 5000}\n")
    assert "p.yaml: invalid YAML: nested too deeply" in _train_error(capsys, p)


def _laughs(levels: int) -> str:
    """A list that YAML aliases expand to 9 ** levels values ("billion laughs")."""
    items = [f"&a0 [{', '.join(['lol'] * 9)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


def test_yaml_aliases_expanding_to_billions_of_values_are_refused(tmp_path, capsys):
    # Before (QA): a 463-byte preset, an override or a run's config.yaml hung for minutes at gigabytes, or
    # died in a MemoryError traceback: the checks and their messages walked the expanded value.
    from audionas.train.config import TrainConfig

    p = tmp_path / "p.yaml"
    p.write_text(f"base: kws-tc-resnet-cpu\nepochs: {_laughs(10)}\n")
    said = "p.yaml: invalid YAML at line 1, column 1: more than 100,000 values once its aliases are expanded"
    assert said in _train_error(capsys, p)
    with pytest.raises(UserError, match=r"^override 'epochs=\[&a0 .*: more than 100,000 values once its"):
        load_config(TrainConfig, None, [f"epochs={_laughs(10)}"])
    # Aliases that expand to a few values are read; a wrong value's message shows it cut short.
    p.write_text(f"base: kws-tc-resnet-cpu\nepochs: {_laughs(5)}\n")
    with pytest.raises(UserError, match=r"p.yaml: config field 'epochs': expected an integer, got "
                                        r"\[\['lol', 'lol', .*\.\.\.$") as e:
        load_config(TrainConfig, str(p))
    assert len(str(e.value).split("expected an integer, got ")[1]) == 200


def test_invalid_yaml_is_one_line_with_line_and_column(tmp_path, capsys):
    p = tmp_path / "config.yaml"
    p.write_text("epochs: 1\na: [1,\n")
    err = _train_error(capsys, p)
    assert "config.yaml: invalid YAML at line 3, column 1: expected the node content" in err


def test_data_config_validates_kind():
    with pytest.raises(UserError, match="data.kind"):
        from_dict(DataConfig, {"kind": "mp3"})


def test_every_builtin_preset_loads_and_builds_its_model_or_space():
    """A preset typo (unknown field, model argument or space option) fails here, not in a user's run."""
    from audionas.config import list_presets, load_config
    from audionas.models import create_model
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SearchConfig, SupernetConfig
    from audionas.nas.oneshot.space import load_space
    from audionas.train.config import TrainConfig

    # the paper experiments' presets and their CPU variants (25 YAML files): none missing from the package
    assert {"kws-res15", "kws-tc-resnet", "kws-nas1", "kws-nas2", "kws-fairnas", "asc-baseline",
            "asc-fairnas", "asc-nsga2", "asc-random"} <= set(list_presets()) and len(list_presets()) >= 25
    for name in list_presets():
        raw = name.removeprefix("kws-").removeprefix("asc-")
        if raw.startswith(("nsga2", "random")):
            assert load_config(SearchConfig, name).algorithm == raw.removesuffix("-cpu")
        elif name.endswith("fairnas") or name.endswith("fairnas-cpu"):
            space = load_space(load_config(SupernetConfig, name).space)
            space.build([0] * len(space.layers))
        elif raw.startswith("nas"):
            load_config(DartsSearchConfig, name)
        else:
            cfg = load_config(TrainConfig, name)
            if cfg.model not in ("darts", "mbnet"):  # those need --genotype / --chromosome
                create_model(cfg.model, **cfg.model_args)


def test_paper_sized_asc_presets_evaluate_in_small_batches():
    """Before: 256 10-second log-mels per evaluation pass, 17.8 GB on a CPU (and too much for many GPUs)."""
    from audionas.config import list_presets, load_config
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.train.config import TrainConfig

    # (the search presets asc-nsga2 / asc-random evaluate in the supernet run's data.eval_batch_size)
    paper_sized = [n for n in list_presets() if n.startswith("asc-") and not n.endswith("-cpu")
                   and not n.startswith(("asc-nsga2", "asc-random"))]
    assert sorted(paper_sized) == ["asc-baseline", "asc-baseline-fold", "asc-fairnas", "asc-nas1", "asc-vgg"]
    for name in paper_sized:
        cls = SupernetConfig if "fairnas" in name else DartsSearchConfig if "nas1" in name else TrainConfig
        assert load_config(cls, name).data.eval_batch_size <= 32, name


def test_yaml_booleans_in_a_word_list_and_bare_commas_get_a_hint(tmp_path, capsys):
    from audionas.cli import main
    from audionas.train.config import TrainConfig

    # a preset file keeps them as typed (below); a mapping from Python holds what it holds
    with pytest.raises(UserError, match=r"'data.words\[0\]': expected a string, got True \(YAML reads an "
                                        r"unquoted yes, no, on or off as true/false: quote it, e.g. words: "):
        load_config(TrainConfig, None, extra={"data": {"words": [True, False]}})
    with pytest.raises(UserError, match=r"'data.words': expected a list, got 'up,down' \(write a list as "):
        load_config(TrainConfig, None, ["data.words=up,down"])
    assert load_config(TrainConfig, None, ['data.words=["yes", "no"]']).data.words == ["yes", "no"]
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--out", str(tmp_path / "r"), "data.words=up,down"]
    assert main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_preset_file_keeps_number_and_boolean_like_text_as_typed(tmp_path):
    # Before (QA): `root: 010` trained on the folder '8' (YAML 1.1's octal, turned into text without a word),
    # and `words: [yes, no]` was refused; an override already kept both as typed.
    from audionas.train.config import TrainConfig

    preset = tmp_path / "p.yaml"
    preset.write_text("base: kws-tc-resnet-cpu\ndata:\n  root: 010\n  words: [yes, no, 007]\n"
                      "  split_seed: 12\noptim:\n  lr: 1e-2\n")
    cfg = load_config(TrainConfig, str(preset))
    assert (cfg.data.root, cfg.data.words) == ("010", ["yes", "no", "007"])
    assert cfg.data.split_seed == 12 and cfg.optim.lr == 0.01  # number fields read numbers (010: refused)
    child = tmp_path / "child.yaml"  # through `base:` too
    child.write_text("base: p.yaml\nepochs: 2\n")
    assert load_config(TrainConfig, str(child)).data.root == "010"


def test_a_preset_path_that_is_a_folder_is_named_as_one(tmp_path):
    from audionas.train.config import TrainConfig

    (tmp_path / "dir.yaml").mkdir()  # before (QA): "no such preset (known: ...)"
    with pytest.raises(UserError, match=r"^preset .*dir\.yaml: a folder, expected a YAML file$"):
        load_config(TrainConfig, str(tmp_path / "dir.yaml"))


@pytest.mark.parametrize("raw", ["010", "0x10", "0b11", "1:30", "-0o7"])
def test_an_integer_written_in_another_base_is_refused_not_read_as_yaml_1_1_does(raw, tmp_path):
    # Before: YAML 1.1 read `epochs=010` as 8, `0x10` as 16 and `1:30` as 90, without a word.
    from audionas.train.config import TrainConfig

    for where in ("override", "preset"):
        with pytest.raises(UserError, match=rf"config field 'data.batch_size': expected an integer, got "
                                            rf"'{re.escape(raw)}'"):
            if where == "override":
                load_config(TrainConfig, None, [f"data.batch_size={raw}"])
            else:
                (tmp_path / "p.yaml").write_text(f"data:\n  batch_size: {raw}\n")
                load_config(TrainConfig, str(tmp_path / "p.yaml"))


def test_decimal_integers_and_number_lists_are_read_as_written():
    from audionas.train.config import TrainConfig

    cfg = load_config(TrainConfig, None, ["epochs=1_000", "data.batch_size=+32",
                                          "optim.milestones=[010, 20]"])
    assert (cfg.epochs, cfg.data.batch_size, cfg.optim.milestones) == (1000, 32, [10.0, 20.0])
    with pytest.raises(UserError, match=r"got '010' \(YAML 1.1 reads it as an octal, hexadecimal, binary or "
                                        r"base-60 number: write it in decimal\)"):
        load_config(TrainConfig, None, ["epochs=010"])


def test_a_key_given_twice_in_an_override_mapping_is_refused():
    # Before (QA): `optim={lr: 0.01, lr: 0.02}` trained with 0.02 without a word (a preset file refused it).
    from audionas.train.config import TrainConfig

    with pytest.raises(UserError, match=r"^override 'optim=\{lr: 0.01, lr: 0.02\}': key 'lr' given twice$"):
        load_config(TrainConfig, None, ["optim={lr: 0.01, lr: 0.02}"])
    with pytest.raises(UserError, match=r"^override 'data=\{root: a, root: b\}': key 'root' given twice$"):
        load_config(TrainConfig, None, ["data={root: a, root: b}"])


def test_a_text_field_keeps_number_and_boolean_like_text_as_typed():
    from audionas.train.config import TrainConfig

    cfg = load_config(TrainConfig, None, ["data.root=010", "data.words=[007, 1.50, 12:30, 2024-01-01]",
                                          "data.cache=1.0e3", "data.split_seed=12", "optim.lr=1e-2"])
    assert cfg.data.root == "010" and cfg.data.cache == "1.0e3"  # YAML 1.1 alone: '8' and '1000.0'
    assert cfg.data.words == ["007", "1.50", "12:30", "2024-01-01"]  # not 7, 1.5, 750 and a date
    assert cfg.data.split_seed == 12 and cfg.optim.lr == 0.01  # number fields read numbers (010: refused)
    cfg = load_config(TrainConfig, None, ["data={root: 010, split_seed: 12, words: [007]}"])  # a mapping too
    assert (cfg.data.root, cfg.data.split_seed, cfg.data.words) == ("010", 12, ["007"])
    # Before: 'expected a string, got True'; the words yes / no / on / off are text in a text field
    cfg = load_config(TrainConfig, None, ["data.words=[yes, no, on, off, true]", "data={root: no}"])
    assert cfg.data.words == ["yes", "no", "on", "off", "true"] and cfg.data.root == "no"
    assert load_config(TrainConfig, None, ["data.augment=no", "channels_last=yes"]).data.augment is False


@pytest.mark.parametrize("item, hint", [
    ("lr=0.1", "; did you mean optim.lr?"), ("epoch=3", "; did you mean epochs?"),
    ("data.wrds=[a]", "; did you mean data.words?"),
    ("channels=16", "; an argument of model 'darts' goes under model_args (model_args.channels=...)"),
    ("space=x.yaml", "")])
def test_an_unknown_field_gets_a_hint(item, hint):
    from audionas.train.config import TrainConfig

    with pytest.raises(UserError) as e:
        load_config(TrainConfig, None, ["model=darts", item])
    assert f"config field '{item.split('=')[0]}': unknown{hint} (expected one of: " in str(e.value)


@dataclass
class Typed:
    n: int = 1
    x: float = 0.5
    flag: bool = False
    name: str = "a"
    pair: tuple[int, ...] = (1, 2)


def test_an_integer_field_takes_whole_floats_only():
    assert from_dict(Typed, {"n": 3.0}).n == 3 and type(from_dict(Typed, {"n": 3.0}).n) is int
    with pytest.raises(UserError, match=r"config field 'n': expected an integer, got 2\.5$"):
        from_dict(Typed, {"n": 2.5})
    with pytest.raises(UserError, match="'n': expected a 64-bit integer, got -100000000000000000000$"):
        from_dict(Typed, {"n": -10**20})
    for raw in ("true", "yes", "off"):  # YAML 1.1 booleans are no integers (Python's bool is an int)
        with pytest.raises(UserError, match=r"config field 'n': expected an integer, got "):
            load_config(Typed, None, [f"n={raw}"])


def test_an_integer_field_takes_scientific_notation_as_a_float_field_does(tmp_path):
    # Before (QA): `epochs: 1e3` was refused ("got '1e3'": YAML 1.1 reads it as text) while `1000.0` and a
    # float field's `1e3` were taken
    from audionas.train.config import TrainConfig

    assert from_dict(Typed, {"n": "2.5e1"}).n == 25 and type(from_dict(Typed, {"n": "1E3"}).n) is int
    p = tmp_path / "p.yaml"
    p.write_text("base: kws-tc-resnet-cpu\nepochs: 1e3\n")
    assert load_config(TrainConfig, str(p), ["data.batch_size=6.4e1"]).epochs == 1000
    assert load_config(TrainConfig, str(p), ["data.batch_size=6.4e1"]).data.batch_size == 64
    assert from_dict(Typed, {"n": "9007199254740993e0"}).n == 9007199254740993  # QA: float() gave ...992
    for text in ("1.5e0", "e3", "1e3x", "12345678901234567891e-2", "1.0000000000000001e0"):
        with pytest.raises(UserError, match=f"config field 'n': expected an integer, got '{text}'$"):
            from_dict(Typed, {"n": text})
    for text in ("1e400", "1e999999999"):
        with pytest.raises(UserError, match=f"config field 'n': expected a 64-bit integer, got '{text}'$"):
            from_dict(Typed, {"n": text})


@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf", "inf", "nan", "1" + "0" * 400])
def test_a_float_field_refuses_nan_and_infinity(raw):
    # 1e400 as an integer: float() raised OverflowError (a traceback) before finite_float.
    with pytest.raises(UserError, match=r"config field 'x': expected a finite number, got "):
        load_config(Typed, None, [f"x={raw}"])


def test_a_bool_field_takes_only_true_or_false():
    assert load_config(Typed, None, ["flag=true"]).flag is True
    for raw in ("1", "0", "yes-please"):
        with pytest.raises(UserError, match=r"config field 'flag': expected true or false, got "):
            load_config(Typed, None, [f"flag={raw}"])


def test_a_tuple_field_is_a_tuple_and_values_keep_their_equals_signs():
    cfg = load_config(Typed, None, ["pair=[3, 4, 5]", "name=a=b"])
    assert cfg.pair == (3, 4, 5) and type(cfg.pair) is tuple
    assert cfg.name == "a=b"
    assert load_config(Typed, None, ["name="]).name == ""  # key= is the empty string, not null


def test_relative_base_file_is_found_beside_its_preset(tmp_path, monkeypatch, capsys):
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "mybase.yaml").write_text("epochs: 7\n")
    (d / "child.yaml").write_text("base: mybase.yaml\ninner:\n  lr: 0.3\n")
    (d / "typo.yaml").write_text("base: kws-tc-resnet-cpuX\n")
    monkeypatch.chdir(tmp_path)  # not the presets' folder
    cfg = load_config(Outer, str(d / "child.yaml"))
    assert (cfg.epochs, cfg.inner.lr) == (7, 0.3)
    err = _train_error(capsys, d / "typo.yaml")
    assert "typo.yaml: base: preset 'kws-tc-resnet-cpuX': no such preset" in err


def test_a_config_changed_in_python_is_checked_when_a_run_starts(tmp_path):
    # Before (API QA): dataclasses.replace(cfg, epochs=-1) or optim.lr=1e6 trained without a word, and a dict
    # given for the config failed with an AttributeError deep inside.
    import dataclasses

    from audionas.config import check_config
    from audionas.nas.oneshot.config import SearchConfig
    from audionas.train.config import TrainConfig
    from audionas.train.trainer import train

    cfg = load_config(TrainConfig, "kws-tc-resnet-cpu", None, {"data": {"root": str(tmp_path / "none")}})
    check_config(cfg, TrainConfig)
    for bad, said in ((dataclasses.replace(cfg, epochs=-1), "config field 'epochs'"),
                      (dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=1e6)), "'optim.lr'"),
                      ({"model": "res15"}, "expected a TrainConfig, got a dict")):
        with pytest.raises(UserError, match=re.escape(said)):
            train(bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match=r"population \(--population\): expected at least 2"):
        check_config(dataclasses.replace(SearchConfig(), population=1), SearchConfig)
    with pytest.raises(UserError, match="expected a SearchConfig, got a TrainConfig"):
        check_config(cfg, SearchConfig)


def test_a_python_config_of_numpy_numbers_or_tuples_runs_as_a_presets_would(tmp_path, speech_commands_root):
    # Before (Python API QA): optim.lr=np.float64(1e-3) passed the check (a float subclass), then config.yaml
    # failed to write ("cannot represent an object"), leaving an empty run folder; data.ratios as a tuple
    # was refused with "expected 3 numbers (train, val, test), got (0.6, 0.2, 0.2)", data.root as a Path
    # with "expected a string".
    import dataclasses

    import numpy as np

    from audionas.config import check_config, dump_yaml
    from audionas.train.config import TrainConfig
    from audionas.train.trainer import train

    cfg = load_config(TrainConfig, "kws-tc-resnet-cpu", ["model=tc-resnet8"],
                      {"data": {"root": str(speech_commands_root)}})
    numpy_cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=np.float64(1e-3)),
                                    data=dataclasses.replace(cfg.data, split="ratio", ratios=(0.6, 0.2, 0.2),
                                                             root=speech_commands_root))  # a Path
    checked = check_config(numpy_cfg, TrainConfig)
    assert type(checked.optim.lr) is float and checked.data.ratios == [0.6, 0.2, 0.2]
    assert checked.data.root == str(speech_commands_root)
    assert dump_yaml(checked) == dump_yaml(dataclasses.replace(
        cfg, optim=dataclasses.replace(cfg.optim, lr=1e-3),
        data=dataclasses.replace(cfg.data, split="ratio", ratios=[0.6, 0.2, 0.2])))
    train(numpy_cfg, tmp_path / "numpy", _stop_after_steps=1)
    assert (tmp_path / "numpy" / "config.yaml").read_text() == dump_yaml(checked)
    # Before (API QA 2): numpy integers were refused ("expected an integer, got np.int64(1)"), so a sweep
    # `for seed in np.arange(5)` failed; a numpy number in free-form model_args too.
    swept = dataclasses.replace(cfg, seed=np.int64(1),
                                data=dataclasses.replace(cfg.data, batch_size=np.int32(8)),
                                model_args={"width": np.float32(1.5), "deep": np.bool_(True)})
    checked = check_config(swept, TrainConfig)
    assert (checked.seed, checked.data.batch_size, checked.model_args) == (1, 8, {"width": 1.5, "deep": True})
    assert [type(v) for v in (checked.seed, checked.data.batch_size, *checked.model_args.values())] == [
        int, int, float, bool]
    free = dataclasses.replace(cfg, model_args={"width": np.array([1.5, 2.0])})  # no plain value to make
    said = "'model_args.width': expected a number, string, list or mapping, got array([1.5, 2. ])"
    with pytest.raises(UserError, match=re.escape(said)):
        train(free, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_file_field_of_a_preset_is_looked_up_beside_it_then_from_the_working_folder(tmp_path, monkeypatch):
    # before (API QA): a preset's `space: mine.yaml` was read from the working folder only
    from audionas.config import load_preset_dict

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "g.json").write_text("{}")
    (tmp_path / "p" / "mine.yaml").write_text("model: darts\nmodel_args: {genotype: g.json}\n")
    (tmp_path / "p" / "sn.yaml").write_text("space: s.yaml\n")  # no such file beside it: left as written
    monkeypatch.chdir(tmp_path)
    assert load_preset_dict("p/mine.yaml")["model_args"]["genotype"] == str(tmp_path / "p" / "g.json")
    assert load_preset_dict("p/sn.yaml")["space"] == "s.yaml"


def test_a_mistake_in_a_preset_file_of_ones_own_names_the_file(tmp_path):
    # before (API QA): "config field 'epochs': ..." alone, as for the command line's epochs=three
    from audionas.train.config import TrainConfig

    (tmp_path / "bad.yaml").write_text("base: kws-tc-resnet-cpu\nepochs: three\n")
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path / 'bad.yaml'))}: config field 'epochs': "
                                        rf"expected an integer, got 'three'$"):
        load_config(TrainConfig, str(tmp_path / "bad.yaml"))
    assert load_config(TrainConfig, str(tmp_path / "bad.yaml"), ["epochs=3"]).epochs == 3  # mended: fine
    with pytest.raises(UserError, match=r"^config field 'epochs': expected an integer, got 'four'$"):
        load_config(TrainConfig, "kws-tc-resnet-cpu", ["epochs=four"])  # on the command line: no file named


def test_an_overrides_own_mistake_over_a_faulty_preset_file_does_not_name_the_file(tmp_path):
    # the file has a mistake of its own (epochs: three), but the one reported is the command line's
    from audionas.train.config import TrainConfig

    (tmp_path / "bad.yaml").write_text("base: kws-tc-resnet-cpu\nepochs: three\n")
    with pytest.raises(UserError, match=r"^config field 'epochs': expected an integer, got 'four'$"):
        load_config(TrainConfig, str(tmp_path / "bad.yaml"), ["epochs=four"])
