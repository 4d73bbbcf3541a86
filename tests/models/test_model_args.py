"""Model arguments of the wrong type or out of range are UserErrors naming the model and the argument."""

import pytest
import torch.nn as nn

from audionas.errors import UserError
from audionas.models import create_model, registry
from audionas.models.args import input_shape_arg, real_in
from audionas.models.registry import check_time_axis

MBNET = {"arch": ["ir_e3_k3t_s2x2_c16"]}


@pytest.mark.parametrize("name, kwargs, needle", [
    ("res15", {"n_maps": -1}, "model 'res15': argument 'n_maps': expected a positive integer, got -1"),
    ("res15", {"n_maps": 1.5}, "model 'res15': argument 'n_maps'"),
    ("res15", {"n_maps": [1]}, "model 'res15': argument 'n_maps'"),
    ("res15", {"n_maps": "abc"}, "model 'res15': argument 'n_maps'"),
    ("res15", {"n_maps": True}, "model 'res15': argument 'n_maps'"),
    ("mbnet", {**MBNET, "gru_layers": 0}, "model 'mbnet': argument 'gru_layers'"),
    ("mbnet", {**MBNET, "gru_hidden": "abc"}, "model 'mbnet': argument 'gru_hidden'"),
    ("mbnet", {**MBNET, "stem_channels": 0}, "model 'mbnet': argument 'stem_channels'"),
    ("mbnet", {**MBNET, "stem_channels": -1}, "model 'mbnet': argument 'stem_channels'"),
    ("mbnet", {**MBNET, "fc_hidden": 2.5}, "model 'mbnet': argument 'fc_hidden'"),
    ("mbnet", {**MBNET, "pool": "max"}, "model 'mbnet': argument 'pool': expected 'last' (the GRU's"),
    ("mbnet", {**MBNET, "depth": 3}, "model 'mbnet': unknown argument(s) depth (known: arch, "),
    ("mbnet", {"arch": 5}, "model 'mbnet': argument 'arch'"),
    ("asc-baseline", {"head_channels": 0}, "model 'asc-baseline': argument 'head_channels'"),
    ("asc-vgg", {"config": [-1]}, "model 'asc-vgg': argument 'config'"),
    ("asc-vgg", {"config": ["M", "abc"]}, "model 'asc-vgg': argument 'config'"),
    ("asc-vgg", {"config": []}, "model 'asc-vgg': argument 'config'"),
    ("darts", {"cells": "abc"}, "model 'darts': argument 'cells'"),
    ("darts", {"channels": 0}, "model 'darts': argument 'channels'"),
    ("darts", {"cells": 99999}, "model 'darts': argument 'cells': expected at most 100, got 99999"),
    ("darts", {"channels": 99999}, "model 'darts': argument 'channels': expected at most 1024, got 99999"),
    ("darts", {"drop_path_prob": "abc"}, "model 'darts': argument 'drop_path_prob': expected a number in"),
    ("darts", {"drop_path_prob": 1.5}, "model 'darts': argument 'drop_path_prob'"),
    ("darts", {"auxiliary": "yes"}, "model 'darts': argument 'auxiliary'"),
    ("darts", {"layout": 3}, "model 'darts': argument 'layout'"),
    ("darts", {"depth": 3}, "model 'darts': unknown argument"),
    ("tc-resnet8", {"dropout": "abc"}, "model 'tc-resnet8': argument 'dropout'"),
    ("tc-resnet8", {"bn_eps": 0}, "model 'tc-resnet8': argument 'bn_eps'"),
    ("tc-resnet8", {"bn_momentum": "x"}, "model 'tc-resnet8': argument 'bn_momentum'"),
    # an integer of 401 digits (as YAML reads --arg dropout=1000...0) was an OverflowError traceback
    ("tc-resnet8", {"dropout": 10**400}, "model 'tc-resnet8': argument 'dropout': expected a number in"),
    ("darts", {"drop_path_prob": 10**400}, "model 'darts': argument 'drop_path_prob': expected a number"),
    # an argument the model fixes was "_build() got multiple values for argument 'n_layers'" (QA)
    ("res15", {"n_layers": 13}, "model 'res15': unknown argument(s) n_layers (known: n_maps)"),
    ("res8", {"n_maps": 3}, "model 'res8': unknown argument(s) n_maps (known: none)"),
    ("tc-resnet8", {"width": 2}, "model 'tc-resnet8': unknown argument(s) width (known: bn_eps, "),
])
def test_bad_model_argument_names_model_and_argument(name, kwargs, needle):
    with pytest.raises(UserError) as e:
        create_model(name, **kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)
    # Before (QA): a bad value (cells=99999) was refused only when the network was built, after the data scan
    with pytest.raises(UserError) as e:
        registry.freeze_model_args(name, kwargs)
    assert needle in str(e.value)


@pytest.mark.parametrize("preset, args, needle", [
    ("kws-tc-resnet-cpu", {"dropout": 1.5}, "model 'tc-resnet14-1.5': argument 'dropout': expected a number"),
    ("kws-res15-cpu", {"n_maps": 0}, "model 'res15': argument 'n_maps': expected a positive integer, got 0"),
    ("asc-cpu", {"gru_layers": 0}, "model 'mbnet': argument 'gru_layers': expected a positive integer"),
    ("asc-baseline", {"pool": "max"}, "model 'asc-baseline': argument 'pool': expected 'last'"),
])
def test_a_bad_argument_value_is_said_before_the_data_is_read(tmp_path, capsys, preset, args, needle):
    from audionas.cli import main

    overrides = [f"model_args.{k}={v}" for k, v in args.items()]
    assert main(["train", "--preset", preset, "--data", str(tmp_path / "none"), "--out",
                 str(tmp_path / "run"), *overrides]) == 2
    err = capsys.readouterr().err
    assert needle in err and "not found" not in err


def test_construction_errors_become_user_errors_naming_the_arguments(monkeypatch):
    def fragile(num_classes=3, input_shape=(1, 4, 4), width=4):
        return nn.Linear(width, num_classes) if width != 7 else nn.Conv2d(1, 2, 3, groups=width)

    monkeypatch.setitem(registry._MODELS, "fragile", fragile)
    with pytest.raises(UserError, match=r"model 'fragile': cannot be built with .*width=7.*: "
                                        r"in_channels must be divisible by groups"):
        create_model("fragile", width=7)
    assert isinstance(create_model("fragile", width=5), nn.Linear)


def test_valid_arguments_still_build():
    assert create_model("res15", n_maps=8).conv0.out_channels == 8
    assert create_model("darts", cells=3, channels=4, drop_path_prob=0, auxiliary=True).drop_path_max == 0
    m = create_model("mbnet", input_shape=(1, 40, 32), stem_channels=8, gru_hidden=16, gru_layers=1, **MBNET)
    assert m.head.gru.hidden_size == 16
    assert create_model("asc-vgg", input_shape=(1, 8, 8), config=[4, "M", 8]).features[0].out_channels == 4


def test_a_number_yaml_reads_as_text_is_taken_as_the_number():
    # Before (QA): model_args.bn_eps=1e-3 and --arg bn_eps=1e-3 were refused (PyYAML reads 1e-3 as a string).
    from audionas.config import load_config
    from audionas.models.args import real_in
    from audionas.train.config import TrainConfig

    assert real_in("1e-3", "x", 0.0, lo_open=True) == 0.001 and real_in(" 2.5 ", "x") == 2.5
    with pytest.raises(UserError, match=r"^x: expected a number > 0, got 'abc'$"):
        real_in("abc", "x", 0.0, lo_open=True)
    with pytest.raises(UserError, match=r"^x: expected a number, got 'nan'$"):
        real_in("nan", "x")
    cfg = load_config(TrainConfig, "kws-tc-resnet-cpu", ["model_args.bn_eps=1e-3"])
    model = create_model(cfg.model, num_classes=12, input_shape=(1, 101, 40), **cfg.model_args)
    assert {m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.001}


def test_a_number_given_as_text_is_frozen_as_the_number_its_float_argument_takes():
    # Before (review): model_args.bn_eps=1e-5 stayed the text '1e-5' in the run's config, so the same command
    # again (or the preset's 1.0e-5) counted as a different config when resuming.
    from audionas.models import freeze_model_args

    frozen = freeze_model_args("tc-resnet14-1.5", {"bn_eps": "1e-5", "dropout": "0.25", "time_axis": "h"})
    assert frozen == {"bn_eps": 1e-5, "dropout": 0.25, "time_axis": "h"}
    for bad in ({"dropout": "abc"}, {"bn_eps": "nan"}):  # refused now, as when built
        with pytest.raises(UserError, match="model 'tc-resnet14-1.5': argument"):
            freeze_model_args("tc-resnet14-1.5", bad)


@pytest.mark.parametrize("name", ["res15", "tc-resnet8", "asc-baseline", "darts"])
@pytest.mark.parametrize("classes", [0, -1, 2.0, True])
def test_a_class_count_that_is_no_positive_integer_is_refused_for_every_model(name, classes):
    # before (API QA): create_model("res15", num_classes=0) built a network with an output of no units
    with pytest.raises(UserError, match=rf"^num_classes: expected a positive integer, got {classes!r}$"):
        create_model(name, num_classes=classes)


@pytest.mark.parametrize("preset, name, args, needle", [
    ("asc-cpu", "mbnet", {**MBNET, "gru_hiden": 8}, "model 'mbnet': unknown argument(s) gru_hiden (known: "
                                                    "arch, fc_hidden, gru_hidden, "),
    ("asc-baseline", "asc-baseline", {"pol": "mean"}, "model 'asc-baseline': unknown argument(s) pol (known: "
                                                      "fc_hidden, "),
    ("asc-vgg", "asc-vgg", {"stem_channels": 8}, "model 'asc-vgg': unknown argument(s) stem_channels (known: "
                                                 "config, "),
    ("kws-res15-cpu", "res15", {"nmaps": 8}, "model 'res15': unknown argument(s) nmaps (known: n_maps)"),
    ("kws-tc-resnet-cpu", "tc-resnet14-1.5", {"drop_out": 0.1},
     "model 'tc-resnet14-1.5': unknown argument(s) drop_out (known: "),
])
def test_a_misspelt_argument_is_said_before_the_data_is_read(tmp_path, capsys, preset, name, args, needle):
    # Before (QA): the ASC models, res15 and TC-ResNet took **kwargs and checked them only when building,
    # after the dataset scan (~30 s on Speech Commands v0.02).
    from audionas.cli import main

    with pytest.raises(UserError, match=r"^" + needle.replace("(", r"\(").replace(")", r"\)")):
        registry.freeze_model_args(name, args)
    overrides = [f"model_args.{k}={v}" for k, v in args.items()]
    assert main(["train", "--preset", preset, "--data", str(tmp_path / "none"), "--out",
                 str(tmp_path / "run"), *overrides]) == 2
    err = capsys.readouterr().err
    assert needle in err and "not found" not in err


def test_a_time_axis_check_passes_when_either_layout_is_unknown():
    # '' / None: a model without a time axis, or data of unknown layout; only a real mismatch is refused.
    for model_axis, data_axis in (("h", ""), ("w", ""), ("", "h"), (None, "w"), ("h", "h")):
        check_time_axis(model_axis, data_axis)
    with pytest.raises(UserError, match=r"^config field 'model_args.time_axis': 'h' reads the input as "
                                        r"C x time x freq, but this data's features are C x freq x time; "
                                        r"set model_args.time_axis=w$"):
        check_time_axis("h", "w")


@pytest.mark.parametrize("shape", [[0, 101, 40], (1, 0, 40), [1, 101, 0]])
def test_an_input_shape_with_a_zero_size_is_refused(shape):
    with pytest.raises(UserError, match=r"^ck\.pt: expected three positive integers \[C, H, W\], got "):
        input_shape_arg(shape, "ck.pt")
    assert input_shape_arg([1, 101, 40], "ck.pt") == (1, 101, 40)


def test_a_real_bound_is_included_unless_open():
    assert real_in(1, "w", 0, 1) == 1.0 and real_in(0, "w", 0, 1) == 0.0
    with pytest.raises(UserError, match=r"^w: expected a number in \[0, 1\), got 1$"):
        real_in(1, "w", 0, 1, hi_open=True)
    with pytest.raises(UserError, match=r"^w: expected a number in \(0, 1\], got 0$"):
        real_in(0, "w", 0, 1, lo_open=True)
    assert real_in("0.5", "w", 0, 1, lo_open=True, hi_open=True) == 0.5
