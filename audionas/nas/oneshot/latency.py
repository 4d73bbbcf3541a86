"""Latency as a search objective (`--cost latency_ms`): a lookup table of each choice block's CPU time.

Timing every candidate would cost more than scoring it and differ from run to run; as FBNet does, each block
choice of each layer (and the stem + head once) is timed alone on its input shape: median of `repeats`
single-sample passes on one CPU thread (`audionas profile --threads 1`), glibc's allocator tuned as the CLI
tunes it (else a block's activations may be mapped afresh on every pass: 1.2 instead of 0.36 ms for one
block here, depending on the process's history). A chromosome's latency is the
stem + head plus its blocks' times. The table is measured once per supernet and kept in its run folder
(`latency_cpu.json`), so NSGA-II and random search over one supernet, and a resumed search, rank with the
same numbers; delete the file to measure again (another machine, another load).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from audionas.errors import UserError
from audionas.models.asc import MBNet
from audionas.models.blocks import InvertedResidual, as_spec, out_hw
from audionas.nas.oneshot.space import SearchSpace
from audionas.profile import measure_latency
from audionas.utils.allocator import tune_allocator
from audionas.utils.atomic import write_json_atomic
from audionas.utils.jsonio import is_finite_number, read_json

LATENCY_FILE = "latency_cpu.json"


def measure_table(space: SearchSpace, repeats: int = 20, warmup: int = 3) -> dict:
    """{"fixed": stem + head ms, "blocks": [[ms of each choice] per layer], ...} of `space` on this CPU."""
    def ms(module, shape) -> float:
        return measure_latency(module, shape, repeats, warmup, num_threads=1)

    tune_allocator()

    _, (f, t) = space.layer_inputs[0]
    last = as_spec(space.layers_first[-1])  # the choices of a layer share their output shape
    cin, hw = space.layer_inputs[-1]
    # Building modules draws initial weights: leave the caller's RNG alone (the CPU's: no GPU is touched).
    with torch.random.fork_rng(devices=[]):
        template = MBNet(space.layers_first, space.num_classes, space.input_shape, **space.model_args)
        fixed = (ms(template.stem, (space.input_shape[0], f, t))
                 + ms(template.head, (last.out_channels, *out_hw(hw, last.stride))))
        blocks = [[ms(InvertedResidual(c, b), (c, *size)) for b in choices]
                  for (c, size), choices in zip(space.layer_inputs, space.layers)]
    return {"unit": "ms", "threads": 1, "repeats": repeats, "machine": platform.machine(),
            "processor": platform.processor(), "torch": torch.__version__, "space": space.to_dict(),
            "fixed": round(fixed, 4), "blocks": [[round(v, 4) for v in row] for row in blocks]}


def check_can_measure(supernet_run: str | Path) -> None:
    """UserError, before a search's set-up, when the table is still to be measured but the supernet run's
    folder cannot take it (a shared, read-only run): searches of one supernet must share one table."""
    folder = Path(supernet_run)
    if not (folder / LATENCY_FILE).is_file() and not os.access(folder, os.W_OK):
        raise UserError(f"{folder}: read-only, and its latency table ({LATENCY_FILE}) is not measured yet; "
                        f"copy the supernet run to a folder you can write, or run one --cost latency_ms "
                        f"search as its owner")


def latency_table(supernet_run: str | Path, space: SearchSpace, log=None) -> dict:
    """The supernet run's table, measured and written (atomically) on first use; UserError when the file is
    not a table of this space."""
    path = Path(supernet_run) / LATENCY_FILE
    if not path.is_file():
        if log:
            log(f"measuring the latency table of space '{space.name}' (one CPU thread) into {path}")
        _create_once(measure_table(space), path)
    try:
        table = read_json(path, "a latency table")
    except UserError as e:
        raise UserError(f"{e}; delete it to measure again") from None
    rows = table.get("blocks")
    shape_ok = (isinstance(rows, list) and len(rows) == len(space.n_choices)
                and all(isinstance(r, list) and len(r) == n for r, n in zip(rows, space.n_choices)))
    numbers = (shape_ok and all(_ms(v) for r in rows for v in r) and _ms(table.get("fixed"))
               and is_finite_number(latency_range(table)[1]))  # finite entries can still sum to inf
    if table.get("space") != json.loads(json.dumps(space.to_dict())) or not numbers:
        raise UserError(f"{path}: not the latency table of space '{space.name}' (expected 'fixed' and "
                        f"'blocks' in ms per layer choice); delete it to measure again")
    return table


def _create_once(table: dict, path: Path) -> None:
    """Write `table` to `path` unless a search started at the same time wrote its own first: every search of
    the supernet then ranks with the one table (os.link creates the name only when it is absent)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_json_atomic(table, tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _ms(v) -> bool:
    return is_finite_number(v) and v > 0  # a block always takes some time


def chromosome_latency(table: dict, genes) -> float:
    """Stem + head + the chosen block of every layer, in ms."""
    return round(table["fixed"] + sum(table["blocks"][l][g] for l, g in enumerate(genes)), 4)


def latency_range(table: dict) -> tuple[float, float]:
    """Smallest and largest chromosome latency (per-layer min / max)."""
    return (round(table["fixed"] + sum(min(r) for r in table["blocks"]), 4),
            round(table["fixed"] + sum(max(r) for r in table["blocks"]), 4))
