from dataclasses import dataclass, field

import pytest

from audionas.config import from_dict, load_config, parse_overrides
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
    assert parse_overrides(["inner.lr=0.5", "epochs=5", "tags=[a, b]"]) == {
        "inner": {"lr": 0.5}, "epochs": 5, "tags": ["a", "b"]}


def test_exponent_floats_from_yaml_are_numbers():
    assert load_config(Outer, None, ["inner.lr=3e-4"]).inner.lr == 3e-4


def test_load_config_applies_overrides_over_defaults():
    cfg = load_config(Outer, None, ["inner.lr=0.5", "epochs=3"])
    assert cfg.inner.lr == 0.5 and cfg.epochs == 3 and cfg.inner.name == "sgd"


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


def test_override_without_equals_is_an_error():
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["epochs"])


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


def test_data_config_validates_kind():
    with pytest.raises(UserError, match="data.kind"):
        from_dict(DataConfig, {"kind": "mp3"})


def test_every_builtin_preset_loads_and_builds_its_model_or_space():
    """A preset typo (unknown field, model argument or space option) fails here, not in a user's run."""
    from audionas.config import list_presets, load_config
    from audionas.models import create_model
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.nas.oneshot.space import load_space
    from audionas.train.config import TrainConfig

    for name in list_presets():
        raw = name.removeprefix("kws-").removeprefix("asc-")
        if name.endswith("fairnas") or name.endswith("fairnas-cpu"):
            space = load_space(load_config(SupernetConfig, name).space)
            space.build([0] * len(space.layers))
        elif raw.startswith("nas"):
            load_config(DartsSearchConfig, name)
        else:
            cfg = load_config(TrainConfig, name)
            if cfg.model not in ("darts", "mbnet"):  # those need --genotype / --chromosome
                create_model(cfg.model, **cfg.model_args)
