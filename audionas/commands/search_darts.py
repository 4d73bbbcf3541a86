"""`audionas search darts`: DARTS cell search (the KWS paper); torchrun for several processes."""

from __future__ import annotations

import argparse

from audionas.commands import (
    Command,
    check_out_folder,
    data_flag_extra,
    overrides_argument,
    preset_and_run_dir,
    run_job,
)
from audionas.utils.rundir import RUN_MARKERS


def _darts_config() -> type:
    from audionas.nas.darts.config import DartsSearchConfig

    return DartsSearchConfig


def _args(p: argparse.ArgumentParser) -> None:
    overrides_argument(p, "epochs=2 ops=nas2 unrolled=false data.limit_per_class=8", _darts_config)
    p.add_argument("--preset", help="kws-nas1, kws-nas2, kws-nas1-cpu, kws-nas2-cpu, asc-nas1, asc-nas1-cpu "
                                    "or a YAML file; optional when --out already holds a search (resume)")
    p.add_argument("--data", help="dataset folder (sets data.root)")
    p.add_argument("--out", help="run directory (default runs/<preset>); the same command again resumes")


def _run(args: argparse.Namespace) -> int:
    from audionas.config import load_config
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.darts.search import search

    preset, out = preset_and_run_dir(args.preset, args.out, "DARTS search")
    extra = data_flag_extra(args.data, args.overrides, DartsSearchConfig)
    cfg = load_config(DartsSearchConfig, preset, args.overrides, extra)
    check_out_folder(out, "DARTS search", RUN_MARKERS)
    return run_job(search, cfg, out)


COMMANDS = [Command(("search", "darts"), "DARTS cell search (KWS paper): genotype.json (the best-val_acc "
                    "epoch's cell), genotype_last.json and cell drawings",
                    _args, _run)]
