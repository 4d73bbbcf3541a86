"""The `audionas` command: subcommands discovered from `audionas.commands.*` modules."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import audionas.commands as commands_pkg
from audionas import __version__
from audionas.commands import Command
from audionas.errors import UserError
from audionas.utils.allocator import tune_allocator


def _discover() -> list[Command]:
    found: list[Command] = []
    for mod in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_pkg.__name__}.{mod.name}")
        found.extend(getattr(module, "COMMANDS", []))
    return found


DESCRIPTION = ("Neural architecture search for audio classification: keyword spotting, acoustic scenes, "
               "your own sounds.")

EPILOG = """typical runs:
  audionas train --preset kws-tc-resnet-cpu --data DIR --out RUN      train a baseline
  audionas search darts --preset kws-nas1-cpu --data DIR --out RUN    DARTS cell search
  audionas search supernet ... ; audionas search nsga2 ...            FairNAS + NSGA-II
  audionas evaluate RUN --data DIR --json                             score a trained run
`audionas COMMAND --help` gives each command's options; README.md has the workflows."""

GROUP_HELP = {
    "data": "datasets: synthetic Speech Commands, DCASE2018 fixtures and log-mel caches",
    "search": "architecture search: darts, supernet (FairNAS), nsga2, random",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audionas", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"audionas {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in sorted(_discover(), key=lambda c: c.path):
        if len(cmd.path) == 1:
            sub = top.add_parser(cmd.path[0], help=cmd.help, description=cmd.help)
        else:
            group, name = cmd.path
            if group not in groups:
                text = GROUP_HELP.get(group, f"{group} subcommands")
                gp = top.add_parser(group, help=text, description=text)
                groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
                gp.set_defaults(_group_parser=gp)
            sub = groups[group].add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sub)
        sub.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 2
    tune_allocator()  # before any model exists: CPU steps reuse freed memory (~3x faster steps measured)
    try:
        return int(run(args) or 0)
    except UserError as e:
        print(f"audionas: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("audionas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
