"""`audionas evaluate`: score a run or checkpoint (several = ensemble of posteriors) on a split."""

from __future__ import annotations

import argparse

from audionas.commands import Command, check_out_folder, nonnegative_int, positive_int
from audionas.console import out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_OR_CHECKPOINT",
                   help="run directories (final.pt, else checkpoints/last.pt) or checkpoint files; several "
                        "runs are ensembled by averaging their posteriors")
    p.add_argument("--data", help="dataset folder (default: the run's data.root)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="split to score (default: test)")
    p.add_argument("--cross-val", action="store_true",
                   help="score each run on its own split and average the scores (fold runs: each on its "
                        "fold's test list, the DCASE2018 development protocol) instead of ensembling them")
    p.add_argument("--paper", action="store_true",
                   help="DCASE2018 runs: add the ASC paper's Table 2 columns (B-s, N-s, N-e, its class-wise "
                        "per-channel F1 on the evaluation set) to the class-wise F1 table")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--out", help="folder for the confusion-matrix PNG, eval_<split>.json and (DCASE runs) "
                                 "the class-wise F1 tables (default: the first run's directory, the names "
                                 "then suffixed unless this is the run's final.pt on its own data: "
                                 "_ensemble, _<checkpoint>, _<--data folder>; --cross-val always adds "
                                 "_crossval); an earlier evaluation of other runs or data under the same "
                                 "names is refused, not replaced")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto: cuda if available)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="evaluation batch size (default data.eval_batch_size)")
    p.add_argument("--workers", type=nonnegative_int, default=None,
                   help="DataLoader workers (default data.num_workers)")


def run(args: argparse.Namespace) -> int:
    from audionas.train.evaluate import evaluate_runs, format_report, to_json

    check_out_folder(args.out)
    report = evaluate_runs(args.runs, data=args.data, split=args.split, out=args.out, device=args.device,
                           batch_size=args.batch_size, num_workers=args.workers,
                           cross_val=args.cross_val, paper=args.paper)
    out(to_json(report) if args.json else format_report(report))
    return 0


COMMANDS = [Command(("evaluate",), "evaluate a trained run or checkpoint (several = ensemble) on a split",
                    add_arguments, run)]
