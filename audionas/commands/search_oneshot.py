"""`audionas search supernet|nsga2|random`: the ASC paper's one-shot search (FairNAS supernet + NSGA-II)."""

from __future__ import annotations

import argparse
from pathlib import Path

from audionas.commands import (
    Command,
    check_out_folder,
    check_preset_kind,
    data_flag_extra,
    nonnegative_int,
    overrides_argument,
    population_size,
    positive_int,
    preset_and_run_dir,
    run_job,
)
from audionas.utils.rundir import RUN_MARKERS, SEARCH_MARKERS


def _supernet_config() -> type:
    from audionas.nas.oneshot.config import SupernetConfig

    return SupernetConfig


def _supernet_args(p: argparse.ArgumentParser) -> None:
    overrides_argument(p, "epochs=1 data.batch_size=32 optim.lr=0.001", _supernet_config)
    p.add_argument("--preset", help="supernet preset (asc-fairnas, asc-fairnas-cpu, kws-fairnas, "
                                    "kws-fairnas-cpu) or a YAML file; optional when --out already holds a "
                                    "run (resume)")
    p.add_argument("--data", help="dataset folder (sets data.root)")
    p.add_argument("--out", help="run directory (default runs/<preset>); running again resumes it")


def _run_supernet(args: argparse.Namespace) -> int:
    from audionas.config import load_config
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.nas.oneshot.fairnas import train_supernet
    from audionas.nas.oneshot.space import space_mapping

    preset, out = preset_and_run_dir(args.preset, args.out, "supernet run")
    extra = data_flag_extra(args.data, args.overrides, SupernetConfig)
    cfg = load_config(SupernetConfig, preset, args.overrides, extra, expand={"space": space_mapping})
    check_out_folder(out, "supernet run", RUN_MARKERS)
    return run_job(train_supernet, cfg, out)


# Each SearchConfig field but `algorithm` is a flag of its own name, and the random search's --batch sets its
# population; flags default to None, so that only the flags given win over a preset.
_RENAMED_FLAGS = {"batch": "population"}


def _default(field: str) -> str:
    from audionas.nas.oneshot.config import SearchConfig

    return f"default: {getattr(SearchConfig, field)}, or the preset's"


def _eval_args(p: argparse.ArgumentParser, algorithm: str) -> None:
    example = "population=8 generations=3" if algorithm == "nsga2" else "evaluations=24 population=8"
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help=f"search config overrides (the fields of audionas.nas.oneshot.config.SearchConfig), "
                        f"e.g. {example} val_limit=256")
    p.add_argument("--preset", help=f"search preset (asc-{algorithm}, asc-{algorithm}-cpu) or a YAML file "
                                    f"(default: SearchConfig's defaults, the paper's settings; when --out "
                                    f"holds a search, the settings it started with)")
    p.add_argument("--supernet", required=True, metavar="RUN", help="a trained supernet run directory")
    p.add_argument("--out", required=True, metavar="SEARCH",
                   help="search directory; running again resumes it (its population, seed, cost and budget "
                        "are fixed when it starts; an NSGA-II search may ask for more --generations)")
    p.add_argument("--data", help="dataset folder (default: the supernet run's data.root)")
    p.add_argument("--bn", choices=["none", "recalibrate"],
                   help=f"BN statistics of a candidate: the supernet's (none) or re-estimated (recalibrate) "
                        f"({_default('bn')})")
    p.add_argument("--calib-batches", type=positive_int,
                   help=f"training batches for --bn recalibrate, unused with --bn none "
                        f"({_default('calib_batches')})")
    p.add_argument("--calib-batch-size", type=positive_int,
                   help=f"clips per recalibration batch, unused with --bn none "
                        f"({_default('calib_batch_size')})")
    p.add_argument("--metric", choices=["auto", "accuracy", "macro_f1", "paper_f1"],
                   help=f"validation score (auto: paper_f1, the ASC paper's per-channel macro-F1, for ASC "
                        f"spaces on DCASE data; accuracy otherwise; paper_f1 needs DCASE data) "
                        f"({_default('metric')})")
    p.add_argument("--val-limit", type=nonnegative_int,
                   help=f"score on N evenly spaced validation items, 0 = all ({_default('val_limit')})")
    p.add_argument("--candidates-per-pass", type=positive_int,
                   help=f"candidates scored in one batched pass with --bn none (recalibrate scores one at "
                        f"a time) ({_default('candidates_per_pass')})")
    p.add_argument("--eval-batch-size", type=positive_int,
                   help="validation items per forward pass, shared by the candidates of a pass (default: the "
                        "preset's, else the supernet run's data.eval_batch_size)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help=f"supernet and features in channels_last memory format, faster on CPU "
                        f"({_default('channels_last')})")
    p.add_argument("--cost", choices=["macs", "params", "latency_ms"],
                   help=f"second objective, minimised: MACs (the paper), trainable params (model size) or "
                        f"latency_ms (one-thread CPU latency from a per-block lookup table, measured once "
                        f"into SUPERNET/latency_cpu.json) ({_default('cost')})")
    p.add_argument("--seed", type=nonnegative_int,
                   help=f"seed of the candidates; random search at the same seed and --batch as NSGA-II's "
                        f"--population draws NSGA-II's random candidates ({_default('seed')})")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto, cuda if available)")


def _nsga2_args(p: argparse.ArgumentParser) -> None:
    _eval_args(p, "nsga2")
    p.add_argument("--population", type=population_size, help=f"P, the paper: 64 ({_default('population')})")
    p.add_argument("--generations", type=positive_int, help=f"I, the paper: 70 ({_default('generations')})")


def _random_args(p: argparse.ArgumentParser) -> None:
    _eval_args(p, "random")
    p.add_argument("--evaluations", type=positive_int,
                   help=f"candidates in all, the paper: 64 x 70 ({_default('evaluations')})")
    p.add_argument("--batch", type=population_size,
                   help=f"candidates per generation, one state checkpoint ({_default('population')})")


# The budget field the other algorithm has no use for: NSGA-II runs population x generations, a random
# search's generations follow from its evaluations.
_UNUSED = {"nsga2": "evaluations", "random": "generations"}


def search_config(args: argparse.Namespace, algorithm: str):
    """SearchConfig: defaults <- --preset (without one, the settings a search in --out started with) <- the
    flags given <- key=value overrides (load_config's order)."""
    from audionas.config import load_config, override_key, refuse_flag_overrides
    from audionas.errors import UserError
    from audionas.nas.oneshot.config import SearchConfig, started_with

    started = {}
    if args.preset is not None:
        preset = check_preset_kind(args.preset, "one-shot search")
        other = preset.get("algorithm", algorithm)
        if other != algorithm:
            raise UserError(f"--preset {args.preset}: a preset of the {other} search (`audionas search "
                            f"{other}`), not of {algorithm}")
    else:
        started = started_with(Path(args.out))
        try:  # a bad value there is the file's (edited by hand), not a flag's the user never gave
            load_config(SearchConfig, extra={**started, "algorithm": algorithm})
        except UserError as e:
            raise UserError(f"{Path(args.out) / 'search.json'}: its config: {e}") from None
    unused = _UNUSED[algorithm]
    for item in args.overrides:
        if override_key(item) == unused:
            raise UserError(f"override '{item}': a {algorithm} search has no use for {unused} ("
                            f"{'population x generations' if algorithm == 'nsga2' else 'evaluations'} "
                            f"set its budget)")
    names = [*(n for n in SearchConfig.__dataclass_fields__ if n != "algorithm"), *_RENAMED_FLAGS]
    flags = {_RENAMED_FLAGS.get(name, name): ("--" + name.replace("_", "-"), getattr(args, name))
             for name in names if getattr(args, name, None) is not None}
    refuse_flag_overrides({"algorithm": (f"`search {algorithm}`", algorithm), **flags}, args.overrides,
                          SearchConfig)
    extra = {**started, "algorithm": algorithm, **{field: value for field, (_, value) in flags.items()}}
    return load_config(SearchConfig, args.preset, args.overrides, extra)


def _runner(algorithm: str):
    def run(args: argparse.Namespace) -> int:
        from audionas.nas.oneshot.search import run_oneshot_search

        check_out_folder(args.out, "search (state.json)", SEARCH_MARKERS)
        run_oneshot_search(args.supernet, args.out, search_config(args, algorithm), args.data, args.device)
        return 0

    return run


COMMANDS = [
    Command(("search", "supernet"), "train a FairNAS supernet (strict fairness, resumable, torchrun-ready)",
            _supernet_args, _run_supernet),
    Command(("search", "nsga2"), "NSGA-II over a trained supernet (history.jsonl, pareto.json, resumable)",
            _nsga2_args, _runner("nsga2")),
    Command(("search", "random"), "random search over a trained supernet with the NSGA-II budget",
            _random_args, _runner("random")),
]
