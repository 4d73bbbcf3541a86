"""`audionas search supernet|nsga2|random`: the ASC paper's one-shot search (FairNAS supernet + NSGA-II)."""

from __future__ import annotations

import argparse

from audionas.commands import (
    RUN_MARKERS,
    Command,
    check_out_folder,
    data_flag_extra,
    nonnegative_int,
    positive_int,
    preset_and_run_dir,
    run_job,
)

# A search writes state.json before any candidate: a non-empty --out without it is no search to resume.
SEARCH_MARKERS = ("state.json",)


def _supernet_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. epochs=1 data.batch_size=32 optim.lr=0.001")
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
    extra = data_flag_extra(args.data, args.overrides)
    cfg = load_config(SupernetConfig, preset, args.overrides, extra, expand={"space": space_mapping})
    check_out_folder(out, "supernet run", RUN_MARKERS)
    return run_job(train_supernet, cfg, out)


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--supernet", required=True, metavar="RUN", help="a trained supernet run directory")
    p.add_argument("--out", required=True, metavar="SEARCH", help="search directory; running again resumes")
    p.add_argument("--data", help="dataset folder (default: the supernet run's data.root)")
    p.add_argument("--bn", default="none", choices=["none", "recalibrate"],
                   help="BN statistics of a candidate: the supernet's (none) or re-estimated (recalibrate)")
    p.add_argument("--calib-batches", type=positive_int, default=8,
                   help="training batches for --bn recalibrate")
    p.add_argument("--calib-batch-size", type=positive_int, default=64,
                   help="clips per recalibration batch")
    p.add_argument("--metric", default="auto", choices=["auto", "accuracy", "macro_f1", "paper_f1"],
                   help="validation score (auto: paper_f1, the ASC paper's per-channel macro-F1, for ASC "
                        "spaces on DCASE data; accuracy otherwise)")
    p.add_argument("--val-limit", type=nonnegative_int, default=0,
                   help="score on N evenly spaced validation items (0 = all)")
    p.add_argument("--candidates-per-pass", type=positive_int, default=4,
                   help="candidates scored in one batched pass (--bn none)")
    p.add_argument("--eval-batch-size", type=positive_int, default=None,
                   help="validation items per forward pass, shared by the candidates of a pass (default: the "
                        "supernet run's data.eval_batch_size)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="supernet and features in channels_last memory format (faster on CPU)")
    p.add_argument("--cost", default="macs", choices=["macs", "params", "latency_ms"],
                   help="second objective, minimised: MACs (the paper), trainable params (model size) or "
                        "latency_ms (one-thread CPU latency from a per-block lookup table, measured once "
                        "into SUPERNET/latency_cpu.json)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the candidates (random search at the same seed and --batch as NSGA-II's "
                        "--population draws NSGA-II's random candidates)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")


def _nsga2_args(p: argparse.ArgumentParser) -> None:
    _eval_args(p)
    p.add_argument("--population", type=positive_int, default=64, help="P (the paper: 64)")
    p.add_argument("--generations", type=positive_int, default=70, help="I (the paper: 70)")


def _random_args(p: argparse.ArgumentParser) -> None:
    _eval_args(p)
    p.add_argument("--evaluations", type=positive_int, default=4480,
                   help="candidates in all (the paper: 64 x 70)")
    p.add_argument("--batch", type=positive_int, default=64,
                   help="candidates per generation (one state checkpoint)")


def _search_config(args: argparse.Namespace, algorithm: str):
    from audionas.config import from_dict
    from audionas.nas.oneshot.config import SearchConfig

    d = {"algorithm": algorithm, "seed": args.seed, "bn": args.bn, "calib_batches": args.calib_batches,
         "calib_batch_size": args.calib_batch_size, "metric": args.metric, "val_limit": args.val_limit,
         "candidates_per_pass": args.candidates_per_pass, "eval_batch_size": args.eval_batch_size,
         "channels_last": args.channels_last, "cost": args.cost}
    if algorithm == "nsga2":
        d.update(population=args.population, generations=args.generations)
    else:
        d.update(population=args.batch, evaluations=args.evaluations)
    return from_dict(SearchConfig, d)


def _runner(algorithm: str):
    def run(args: argparse.Namespace) -> int:
        from audionas.nas.oneshot.search import run_oneshot_search

        check_out_folder(args.out, "search (state.json)", SEARCH_MARKERS)
        run_oneshot_search(args.supernet, args.out, _search_config(args, algorithm), args.data, args.device)
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
