"""CLI subcommands. Each module defines COMMANDS, a list of `Command`; `audionas.cli` discovers them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand: `path` is ("train",) or ("data", "synth-speech-commands")."""

    path: tuple[str, ...]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
