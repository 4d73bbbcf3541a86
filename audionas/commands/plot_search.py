"""`audionas plot-search SEARCH [SEARCH2]`: the ASC paper's Figure 4 and the hypervolume of each front."""

from __future__ import annotations

import argparse
import json

from audionas.commands import Command, check_out_folder
from audionas.console import out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("searches", nargs="+", metavar="SEARCH", help="one or two search folders (nsga2, random)")
    p.add_argument("--out", help="output folder for figure4.png / figure4.svg (default: the first SEARCH)")
    p.add_argument("--json", action="store_true", help="print the hypervolumes as JSON")


def run(args: argparse.Namespace) -> int:
    from audionas.nas.oneshot.plot import plot_searches
    from audionas.utils.text import escape_controls

    check_out_folder(args.out)
    res = plot_searches(args.searches, args.out)
    if args.json:
        out(json.dumps(res, indent=2))
        return 0
    lo, hi = res["cost_range"]
    name = "MACs" if res["cost"] == "macs" else res["cost"]
    span = f"({hi} - {lo})" if hi > lo else "1"  # one cost in the space: hypervolume() divides by 1
    out(f"hypervolume (objectives 1 - score and ({name} - {lo}) / {span}, reference point "
        f"{tuple(res['reference_point'])}):")
    for name, v in res["hypervolume"].items():
        out(f"  {name}: {v:.4f}")
    for f in res["files"]:
        out(f"wrote {escape_controls(f)}")
    return 0


COMMANDS = [Command(("plot-search",), "draw Figure 4 (NSGA-II vs random search) and print hypervolumes",
                    add_arguments, run)]
