"""`audionas report RUN [RUN...] --out DIR`: the KWS paper's Table 2 (Markdown + CSV) for training runs."""

from __future__ import annotations

import argparse

from audionas.commands import Command, check_out_folder
from audionas.console import out


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="training run directories (audionas train --out)")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/table2.md and DIR/table2.csv")
    p.add_argument("--paper", action="store_true", help="append the paper's own Table 2 rows for comparison")


def _run(args: argparse.Namespace) -> int:
    from audionas.report import to_markdown, write_report

    check_out_folder(args.out)
    rows = write_report(args.runs, args.out, paper=args.paper)
    out(to_markdown(rows), end="")
    return 0


COMMANDS = [Command(("report",), "the KWS paper's Table 2 (model, cells, channels, accuracy, params) and "
                                 "MACs", _args, _run)]
