"""`audionas profile MODEL`: trainable params, MACs (multiply-adds) and CPU latency of a model.

MODEL is a registered model name, a training run (directory or checkpoint: the trained network, its classes
and input shape) or a one-shot search result `SEARCH/pareto.json#k` (the front member, before training).
"""

from __future__ import annotations

import argparse
import json
import math
import re

from audionas.commands import Command, positive_int
from audionas.errors import UserError

# Options forwarded to the model factory as keyword arguments when given (searched models).
MODEL_OPTIONS = {
    "genotype": dict(help="DARTS genotype: a name (e.g. DARTS_V2) or a file"),
    "cells": dict(type=positive_int, help="number of cells (DARTS evaluation network)"),
    "channels": dict(type=positive_int, help="initial channels (DARTS evaluation network)"),
    "arch": dict(help="architecture: a chromosome / block-string list (YAML, e.g. '[1,5,2]') or a file"),
}
MAX_PASSES = 100_000  # timed or warm-up passes: a median needs far fewer; 1e20 ran for ever
# Choice: one sample of at most 2^22 values (a 1x40x100000 log-mel: 33 min at a 20 ms hop); 1x100000000x40 was
# killed for lack of memory with no message.
MAX_INPUT_VALUES = 1 << 22
RESERVED = {"name": "the model name is the MODEL argument", "num_classes": "use --classes",
            "input_shape": "use --input"}
YAML_OPTIONS = {"arch"}  # values read with yaml.safe_load (a list stays a list, a path stays a string)


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
    """`value` read with yaml.safe_load; invalid YAML is a UserError naming `where` (the flag as typed)."""
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise UserError(f"{where}: value is not valid YAML: {value!r}") from e


def parse_model_args(pairs: list[str] | None) -> dict:
    """['depth=3', 'widths=[1, 2]'] -> {'depth': 3, 'widths': [1, 2]} (values read with yaml.safe_load)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UserError(f"--arg: expected key=value with an identifier key, got '{pair}'")
        if key in RESERVED:
            raise UserError(f"--arg {key}: reserved; {RESERVED[key]}")
        out[key] = parse_yaml_value(value, f"--arg {key}")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="registered model name (res15, tc-resnet14-1.5, darts, ...), a training run "
                                 "directory or checkpoint, or SEARCH/pareto.json#k")
    p.add_argument("--classes", type=positive_int, default=None,
                   help="number of classes (default: the model's)")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input shape of one sample (default: the model's, 1x101x40 for KWS models)")
    p.add_argument("--json", action="store_true", help='print {"params", "macs", "latency_ms"} as JSON')
    p.add_argument("--repeats", type=int, default=50, help="timed forward passes (0 skips latency)")
    p.add_argument("--warmup", type=int, default=5, help="untimed forward passes before timing")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads for timing (default: unchanged)")
    for name, kw in MODEL_OPTIONS.items():
        p.add_argument(f"--{name}", default=None, **kw)
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument (YAML value), repeatable: --arg dropout=0.2")


def model_kwargs(args: argparse.Namespace) -> dict:
    """Model keyword arguments from --arg and the explicit model options."""
    kwargs = parse_model_args(args.arg)
    for name in MODEL_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            if name in kwargs:
                raise UserError(f"--{name} given twice (also as --arg {name}=...)")
            kwargs[name] = parse_yaml_value(value, f"--{name}") if name in YAML_OPTIONS else value
    return kwargs


def resolve_model(args: argparse.Namespace):
    """(model, label, input shape, classes, model kwargs) for the MODEL argument and the model options."""
    from pathlib import Path

    from audionas.models.registry import create_model, list_models, model_defaults

    kwargs = model_kwargs(args)
    kind = ("name" if args.model in list_models() else "result" if "#" in args.model
            else "run" if Path(args.model).exists() else "name")
    if kind != "name" and kwargs:
        raise UserError(f"{args.model}: the architecture is fixed; --{next(iter(kwargs))} applies to a "
                        f"registered model name only")
    if kind == "run" and Path(args.model).suffix.lower() == ".json":
        raise UserError(f"{args.model}: a JSON file, not a run or checkpoint; a DARTS genotype is profiled "
                        f"with `audionas profile darts --genotype {args.model} --cells N --channels C`, a "
                        f"search front member as SEARCH/pareto.json#k")
    if kind == "run":
        from audionas.train.evaluate import load_model

        if args.classes is not None or args.input is not None:
            raise UserError(f"{args.model}: a trained run's classes and input shape are fixed; drop "
                            f"--classes/--input")
        lm = load_model(args.model)
        return lm.model, f"{lm.config.model} ({lm.path})", lm.input_shape, len(lm.classes), {}
    if kind == "result":
        from audionas.nas.oneshot.space import resolve_chromosome

        spec = resolve_chromosome(args.model, "MODEL")
        name, kwargs = spec["model"], dict(spec["model_args"])
        defaults = {"num_classes": spec["num_classes"], "input_shape": spec["input_shape"]}
    else:
        name, defaults = args.model, model_defaults(args.model)
    shape = parse_input_shape(args.input) if args.input else tuple(defaults.get("input_shape", (1, 101, 40)))
    classes = args.classes if args.classes is not None else int(defaults.get("num_classes", 12))
    if classes < 1:
        raise UserError(f"--classes: expected a positive integer, got {classes}")
    model = create_model(name, num_classes=classes, input_shape=shape, **kwargs)  # bad arguments: UserError
    label = args.model if name == args.model else f"{name} ({args.model})"
    return model, label, shape, classes, (kwargs if name == args.model else {})


def run(args: argparse.Namespace) -> int:
    import torch

    from audionas.profile import count_macs, count_params, measure_latency
    from audionas.utils.dist import check_threads

    for flag, value in (("--repeats", args.repeats), ("--warmup", args.warmup)):
        if not 0 <= value <= MAX_PASSES:
            raise UserError(f"{flag}: expected an integer in 0..{MAX_PASSES:,}, got {value}")
    if args.threads is not None:
        check_threads(args.threads, "--threads")
    model, label, shape, classes, kwargs = resolve_model(args)
    try:
        macs = count_macs(model, shape)
    except RuntimeError as e:
        raise UserError(f"--input {'x'.join(map(str, shape))}: model '{label}' cannot run on it: "
                        f"{str(e).splitlines()[0]}") from e
    result = {
        "params": count_params(model),
        "macs": macs,
        "latency_ms": (measure_latency(model, shape, args.repeats, args.warmup, num_threads=args.threads)
                       if args.repeats > 0 else None),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    threads = args.threads or torch.get_num_threads()
    lat = (f"{result['latency_ms']:.2f} ms (CPU, 1 sample, median of {args.repeats}, "
           f"{threads} thread{'s' if threads != 1 else ''})" if args.repeats > 0 else "not measured")
    rows = [
        ("model", label + (f" {kwargs}" if kwargs else "")),
        ("input", "x".join(map(str, shape))),
        ("classes", str(classes)),
        ("params", f"{result['params']:,} (trainable)"),
        ("MACs", f"{result['macs']:,} ({result['macs'] / 1e6:.2f} M multiply-adds)"),
        ("latency", lat),
    ]
    for k, v in rows:
        print(f"{k:<8} {v}")
    return 0


COMMANDS = [Command(("profile",), "trainable params, MACs (multiply-adds) and CPU latency of a model",
                    add_arguments, run)]
