"""`audionas profile MODEL`: trainable params, MACs (multiply-adds) and CPU latency of a model.

MODEL is a registered model name, a training run (directory or checkpoint: the trained network, its classes
and input shape) or a one-shot search result `SEARCH/pareto.json#k` (the front member, before training).
"""

from __future__ import annotations

import argparse
import json

from audionas.commands import Command, positive_int
from audionas.console import out

# Options forwarded to the model factory as keyword arguments when given (searched models).
MODEL_OPTIONS = {
    "genotype": dict(help="DARTS genotype: a name (e.g. DARTS_V1; default DARTS_V2), a file, or "
                          "Genotype(...) text as DARTS prints it"),
    "cells": dict(type=positive_int, help="number of cells (DARTS evaluation network)"),
    "channels": dict(type=positive_int, help="initial channels (DARTS evaluation network)"),
    "arch": dict(help="architecture: a YAML list (mbnet: block strings, e.g. '[ir_e6_k3t_s1x1_c24]') or a "
                      "YAML file holding one (a searched chromosome: give SEARCH/pareto.json#k as MODEL, "
                      "not here)"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="registered model name (res15, tc-resnet14-1.5, darts, ...), a training run "
                        "directory or checkpoint, or SEARCH/pareto.json#k")
    p.add_argument("--classes", type=positive_int, default=None,
                   help="number of classes (default: the model's; a trained run's are fixed)")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input shape of one sample (default: the model's, 1x101x40 for KWS models; a trained "
                        "run's is fixed)")
    p.add_argument("--json", action="store_true", help='print {"params", "macs", "latency_ms"} as JSON')
    p.add_argument("--repeats", type=int, default=50, help="timed forward passes (0 skips latency)")
    p.add_argument("--warmup", type=int, default=5, help="untimed forward passes before timing")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads for timing (default: unchanged)")
    for name, kw in MODEL_OPTIONS.items():
        p.add_argument(f"--{name}", default=None, **kw)
    p.add_argument("--arg", action="append", default=None, metavar="KEY=VALUE",
                   help="extra argument of the model's factory (YAML value), repeatable: e.g. "
                        "--arg n_maps=19 (res15), --arg dropout=0.2 (tc-resnet)")


def run(args: argparse.Namespace) -> int:
    import torch

    from audionas.models.registry import argument_defaults
    from audionas.profile import profile_model
    from audionas.profile_target import check_passes, resolve_profile_target
    from audionas.utils.dist import check_threads
    from audionas.utils.text import escape_controls

    check_passes(args.repeats, args.warmup)
    if args.threads is not None:
        check_threads(args.threads, "--threads")
    model, label, shape, classes, kwargs = resolve_profile_target(
        args.model, classes=args.classes, input_shape=args.input, model_args=args.arg,
        options={name: getattr(args, name, None) for name in MODEL_OPTIONS})
    result = profile_model(model, shape, args.repeats, args.warmup, num_threads=args.threads, label=label)
    if args.json:
        out(json.dumps(result))
        return 0
    threads = args.threads or torch.get_num_threads()
    lat = (f"{result['latency_ms']:.2f} ms (CPU, 1 sample, median of {args.repeats}, "
           f"{threads} thread{'s' if threads != 1 else ''})" if args.repeats > 0 else "not measured")
    default_cell = argument_defaults(args.model).get("genotype")  # {} for a run or search result
    if isinstance(default_cell, str) and "genotype" not in kwargs:  # its size could pass for a found cell
        label += f" (genotype {default_cell}, the default; --genotype for another)"
    rows = [
        ("model", escape_controls(label + (f" {kwargs}" if kwargs else ""))),
        ("input", "x".join(map(str, shape))),
        ("classes", str(classes)),
        ("params", f"{result['params']:,} (trainable)"),
        ("MACs", f"{result['macs']:,} ({result['macs'] / 1e6:.2f} M multiply-adds)"),
        ("latency", lat),
    ]
    for k, v in rows:
        out(f"{k:<8} {v}")
    return 0


COMMANDS = [Command(("profile",), "trainable params, MACs (multiply-adds) and CPU latency of a model",
                    add_arguments, run)]
