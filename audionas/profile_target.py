"""What `audionas profile MODEL` profiles: MODEL (a registered model name, a trained run or checkpoint, or a
one-shot search front member SEARCH/pareto.json#k) and its flags (--classes, --input, --arg KEY=VALUE)
resolved to a network and its input shape; every mistake a UserError naming the flag."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import torch.nn as nn

from audionas.errors import UserError
from audionas.models.args import MAX_INPUT_VALUES

MAX_PASSES = 100_000  # timed or warm-up passes: a median needs far fewer; 1e20 ran for ever
RESERVED = {"name": "the model name is the MODEL argument", "num_classes": "use --classes",
            "input_shape": "use --input"}
YAML_OPTIONS = {"arch"}  # model options read as safe YAML (a list stays a list, a path stays a string)


class ProfileTarget(NamedTuple):
    """The model to profile, how to name it, its input shape and classes, and the model kwargs given."""

    model: nn.Module
    label: str
    input_shape: tuple[int, ...]
    num_classes: int
    model_kwargs: dict


def check_passes(repeats: int, warmup: int) -> None:
    """UserError unless both counts (--repeats, --warmup) are in 0..MAX_PASSES."""
    for flag, value in (("--repeats", repeats), ("--warmup", warmup)):
        if not 0 <= value <= MAX_PASSES:
            raise UserError(f"{flag}: expected an integer in 0..{MAX_PASSES:,}, got {value}")


def parse_input_shape(text: str) -> tuple[int, ...]:
    """'1x101x40' -> (1, 101, 40); anything else is a UserError."""
    if not re.fullmatch(r"\d+x\d+x\d+", (text or "").strip()) or any(int(v) < 1 for v in text.split("x")):
        raise UserError(f"--input: expected CxHxW with positive integers (e.g. 1x101x40), got '{text}'")
    shape = tuple(int(v) for v in text.split("x"))
    if math.prod(shape) > MAX_INPUT_VALUES:
        raise UserError(f"--input: expected a sample of at most {MAX_INPUT_VALUES:,} values (C x H x W), got "
                        f"'{text}' ({math.prod(shape):,})")
    return shape


def parse_yaml_value(value: str, where: str):
    """`value` read as safe YAML (config.SafeLoader); invalid YAML is a UserError naming `where` (the flag
    as typed)."""
    import yaml

    from audionas.config import SafeLoader

    try:
        return yaml.load(value, Loader=SafeLoader)  # a yaml.SafeLoader: no Python objects
    except (yaml.YAMLError, RecursionError):
        raise UserError(f"{where}: value is not valid YAML: {value!r}") from None


def parse_model_args(pairs: list[str] | None) -> dict:
    """['depth=3', 'widths=[1, 2]'] -> {'depth': 3, 'widths': [1, 2]} (values read by parse_yaml_value)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UserError(f"--arg: expected key=value with an identifier key, got '{pair}'")
        if key in RESERVED:
            raise UserError(f"--arg {key}: reserved; {RESERVED[key]}")
        if key in out:  # the last would win without a word
            raise UserError(f"--arg {key}: given twice; give it once")
        out[key] = parse_yaml_value(value, f"--arg {key}")
    return out


def model_kwargs(pairs: list[str] | None, options: dict | None = None) -> dict:
    """Model keyword arguments from --arg KEY=VALUE `pairs` and the explicit model `options`.

    `options` maps an option name (the flag without `--`) to its value, None when not given; the YAML_OPTIONS
    are read as parse_yaml_value reads them. An option also given as --arg is a UserError.
    """
    kwargs = parse_model_args(pairs)
    for name, value in (options or {}).items():
        if value is not None:
            if name in kwargs:
                raise UserError(f"--{name} given twice (also as --arg {name}=...)")
            kwargs[name] = _yaml_option(name, value) if name in YAML_OPTIONS else value
    return kwargs


def _yaml_option(name: str, value: str):
    """A YAML option's value (--arch): the YAML text given, or read from the file it names."""
    from pathlib import Path

    path = Path(value)
    if path.is_dir():
        raise UserError(f"--{name} {value}: a folder, expected a YAML value or a YAML file")
    if not path.is_file():
        parsed = parse_yaml_value(value, f"--{name}")
        if isinstance(parsed, str) and ("/" in value or path.suffix.lower() in (".yaml", ".yml")):
            raise UserError(f"--{name} {value}: file not found (expected a YAML value or a YAML file)")
        return parsed
    import yaml

    from audionas.config import SafeLoader

    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)  # no Python objects
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        raise UserError(f"--{name} {value}: not a readable YAML file ({type(e).__name__})") from None


def resolve_profile_target(model: str, classes: int | None = None, input_shape: str | None = None,
                           model_args: list[str] | None = None, options: dict | None = None) -> ProfileTarget:
    """The model named by `model`: a registered model name, a trained run (directory or checkpoint) or
    `SEARCH/pareto.json#k` (a one-shot search front member, before training).

    `classes` and `input_shape` (CxHxW text) override the model's defaults (1x101x40 and 12 when it has
    none); a run's are fixed. `model_args` and `options` as in model_kwargs, for a registered name only.
    Every mistake is a UserError naming the flag.
    """
    from pathlib import Path

    from audionas.models.registry import create_model, freeze_model_args, list_models, model_defaults

    kwargs = model_kwargs(model_args, options)
    kind = ("name" if model in list_models() else "run" if Path(model).exists()
            else "result" if "#" in model else "name")  # a run's path may hold '#' ('run#1')
    if kind == "name" and model not in list_models() and (
            "/" in model or Path(model).suffix.lower() in (".pt", ".pt2", ".json", ".yaml", ".yml")):
        raise UserError(f"{model}: no such run directory or checkpoint file (MODEL: a registered model name, "
                        f"a run or SEARCH/pareto.json#k)")
    if kind != "name" and kwargs:
        flags = [f"--{n}" for n, v in (options or {}).items() if v is not None]  # else it came from --arg
        flag = flags[0] if flags else f"--arg {next(iter(kwargs))}"
        raise UserError(f"{model}: the architecture is fixed; {flag} applies to a registered model name only")
    if kind == "run" and (Path(model).name == "pareto.json" or (Path(model) / "search.json").is_file()):
        front = Path(model) if Path(model).name == "pareto.json" else Path(model) / "pareto.json"
        raise UserError(f"{model}: a one-shot search, not a trained run; profile a front member as {front}#k "
                        f"(k = 0-based front index)")
    if kind == "run" and Path(model).suffix.lower() == ".json":
        raise UserError(f"{model}: a JSON file, not a run or checkpoint; a DARTS genotype is profiled "
                        f"with `audionas profile darts --genotype {model} --cells N --channels C`, a "
                        f"search front member as SEARCH/pareto.json#k")
    if kind == "run":
        from audionas.train.trained_run import load_model

        if classes is not None or input_shape is not None:
            raise UserError(f"{model}: a trained run's classes and input shape are fixed; drop "
                            f"--classes/--input")
        lm = load_model(model)
        return ProfileTarget(lm.model, f"{lm.config.model} ({lm.path})", lm.input_shape, len(lm.classes), {})
    if kind == "result":
        from audionas.nas.oneshot.space import resolve_chromosome

        spec = resolve_chromosome(model, "MODEL")
        name, kwargs = spec["model"], dict(spec["model_args"])
        defaults = {"num_classes": spec["num_classes"], "input_shape": spec["input_shape"]}
    else:
        name, defaults = model, model_defaults(model)
    shape = (parse_input_shape(input_shape) if input_shape is not None
             else tuple(defaults.get("input_shape", (1, 101, 40))))
    classes = classes if classes is not None else int(defaults.get("num_classes", 12))
    if classes < 1:
        raise UserError(f"--classes: expected a positive integer, got {classes}")
    # frozen as `train` freezes them: a genotype.json brings its search's cell layout (NRN, nnr) along
    built = freeze_model_args(name, kwargs) if name == model else kwargs
    net = create_model(name, num_classes=classes, input_shape=shape, **built)  # bad arguments: UserError
    label = model if name == model else f"{name} ({model})"
    if "layout" in built and "layout" not in kwargs:  # shown: the genotype's search brought it
        kwargs = {**kwargs, "layout": built["layout"]}
    return ProfileTarget(net, label, shape, classes, kwargs if name == model else {})
