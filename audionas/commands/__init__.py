"""CLI subcommands. Each module defines COMMANDS, a list of `Command`; `audionas.cli` discovers them."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audionas.config import INT64_MAX
from audionas.errors import UserError


@dataclass(frozen=True)
class Command:
    """One subcommand: `path` is ("train",) or ("data", "synth-speech-commands")."""

    path: tuple[str, ...]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


class WhenShown:
    """Text computed only when a help is printed: argparse fills `%(name)s` in an option's help from the
    attribute `name` of its action, so `action.name = WhenShown(f)` keeps f's work (reading every preset)
    out of each command's start-up."""

    def __init__(self, text: Callable[[], str]):
        self.text = text

    def __str__(self) -> str:
        return self.text()


def config_fields(cls: type) -> str:
    """The fields a `key=value` override of config dataclass `cls` may name, for a command's help:
    `epochs, seed, ...; data.{root, batch_size, ...}; optim.{lr, ...}`."""
    import dataclasses

    config = cls()
    top, nested = [], []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            nested.append(f"{f.name}.{{{', '.join(g.name for g in dataclasses.fields(value))}}}")
        else:
            top.append(f.name)
    return "; ".join([", ".join(top), *nested])


def overrides_argument(p: argparse.ArgumentParser, examples: str, config: Callable[[], type]) -> None:
    """The `key=value ...` positional of a command configured by dataclass `config()` (imported only when
    the help is shown); its help lists the fields."""
    action = p.add_argument("overrides", nargs="*", metavar="key=value",
                            help=f"config overrides, e.g. {examples}; the fields: %(fields)s (a preset's "
                                 f"YAML shows their values)")
    action.fields = WhenShown(lambda: config_fields(config()))
    action.config = config


def field_as_flag_hint(p: argparse.ArgumentParser, flags: list[str], argv: list[str]) -> str:
    """For unrecognized `flags` that name a config field of `p`'s key=value overrides (`--seed 3`,
    `--optim.lr=0.1`), the error's hint to set it as `seed=3`, its value the argument after the flag in
    `argv` (the command line) when not given with `=`; "" when none names a field."""
    import dataclasses

    action = next((a for a in p._actions if hasattr(a, "config")), None)
    if action is None:
        return ""
    config = action.config()()
    for flag in flags:
        name, _, value = flag[2:].partition("=") if flag.startswith("--") else ("", "", "")
        head, _, tail = name.replace("-", "_").partition(".")
        if not any(f.name == head for f in dataclasses.fields(config)):
            continue
        nested = getattr(config, head)  # a section (data, optim) or a mapping (model_args: any key)
        if tail and not (isinstance(nested, dict) or dataclasses.is_dataclass(nested)
                         and any(f.name == tail for f in dataclasses.fields(nested))):
            continue
        key = f"{head}.{tail}" if tail else head
        after = argv[argv.index(flag) + 1:argv.index(flag) + 2] if flag in argv else []
        if not value and after and not after[0].startswith("-") and "=" not in after[0]:
            value = after[0]
        return f"; {key} is a config field: set it as {key}={value or 'VALUE'}"
    return ""


def channel_choice(*words: str) -> Callable[[str], int | str]:
    """argparse type of --channel: a channel number (0 or more), or one of `words` ("mean", "mix")."""
    named = " or ".join(f"'{w}'" for w in words)

    def parse(text: str) -> int | str:
        if text in words:
            return text
        try:
            return nonnegative_int(text)
        except argparse.ArgumentTypeError:
            sep = ", " if len(words) > 1 else " or "
            raise argparse.ArgumentTypeError(f"expected a channel number (0 or more){sep}{named}, "
                                             f"got '{text}'") from None
    return parse


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, limits where 0 means 'off') that fits 64 bits."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{text}'")
    if value > INT64_MAX:  # numpy, torch and islice take 64-bit integers: a traceback otherwise
        raise argparse.ArgumentTypeError(f"expected a 64-bit integer, at most {INT64_MAX}, got '{text}'")
    return value


def positive_int(text: str, least: int = 1) -> int:
    """argparse type: an integer >= 1 (counts and sizes; `least`: another bound) that fits 64 bits."""
    value = nonnegative_int(text) if text.strip().lstrip("+").isdigit() else 0
    if value < least:
        raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got '{text}'")
    return value


def population_size(text: str) -> int:
    """argparse type: a search's candidates per generation, an integer >= 2 (as SearchConfig checks it)."""
    return positive_int(text, least=2)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


# Names of files audionas writes or reads: as a new --out folder's name, a mistaken file path.
_FILE_SUFFIXES = {".md", ".csv", ".png", ".svg", ".json", ".jsonl", ".yaml", ".pt", ".pt2", ".npy", ".wav"}


def check_not_broken_link(out: Path) -> None:
    """UserError when --out is a link to nothing (the OS would say "File exists", or name a temp file)."""
    if out.is_symlink() and not out.exists():
        from audionas.data.audio import broken_link

        raise UserError(f"--out {broken_link(out)}; mend the link or choose another --out")


def check_out_folder(out: str | Path | None, what: str | None = None, markers: tuple[str, ...] = ()) -> None:
    """UserError unless --out is a folder or can become one (no regular file on its path). With `markers`,
    a non-empty folder must hold one of them (it is a `what` already), so another folder is not mixed into."""
    if out is None:
        return
    path = Path(out)
    check_not_broken_link(path)
    if not path.exists() and path.suffix.lower() in _FILE_SUFFIXES:  # `report --out X/table2.md`
        raise UserError(f"--out {out}: expected a folder (the command writes its files into it), not a "
                        f"{path.suffix} file name")
    from audionas.utils.rundir import check_folder_path, check_not_foreign

    if markers:  # it checks the path first
        check_not_foreign(path, what, markers)
    else:
        check_folder_path(path)


def run_job(job: Callable[..., object], cfg: object, out: Path) -> int:
    """`job(cfg, out)` for a run folder (a `run_folder_job`: nothing half-written is left behind); the
    torchrun process group is left on any exit (exit code 0 when it returns)."""
    from audionas.utils.dist import cleanup

    try:
        job(cfg, out)
    finally:
        cleanup()
    return 0


KIND_COMMANDS = {"training run": "train", "DARTS search": "search darts", "supernet run": "search supernet",
                 "one-shot search": "search nsga2|random"}


def check_run_kind(run: Path, what: str) -> None:
    """UserError when `run` holds another kind of run (a supernet run given to `train`, ...): its config.yaml
    would otherwise fail as an unknown field of this command's config."""
    from audionas.config import read_yaml
    from audionas.utils.rundir import config_kind

    path = run / "config.yaml"
    if not path.is_file():
        return
    try:
        data = read_yaml(path)
    except UserError:
        return  # an unreadable config.yaml is reported where it is read, naming the problem
    kind = config_kind(data)
    if kind not in (None, what):
        raise UserError(f"{run}: holds a {kind}, not a {what}; choose another --out")


def check_preset_kind(preset: str, what: str) -> dict:
    """The preset's fields; UserError when it is another command's preset (`what` is a RUN_KINDS value)."""
    from audionas.config import load_preset_dict
    from audionas.utils.rundir import config_kind

    data = load_preset_dict(preset)
    kind = config_kind(data)
    if kind not in (None, what):  # else: "config field 'space': unknown", say
        raise UserError(f"--preset {preset}: a {kind} preset (`audionas {KIND_COMMANDS[kind]}`), not a "
                        f"{what} one")
    return data


def data_flag_extra(data: str | None, overrides: list[str], cls: type) -> dict | None:
    """--data as the config dict it sets (data.root), after refusing a key=value override of that field
    (of config class `cls`)."""
    from audionas.config import refuse_flag_overrides

    refuse_flag_overrides({"data.root": ("--data", str(data))} if data else {}, overrides, cls)
    return {"data": {"root": str(data)}} if data else None


def preset_and_run_dir(preset: str | None, out: str | None, what: str) -> tuple[str, Path]:
    """The preset to load and the run directory (UserError when it holds another kind of run; `what` is a
    RUN_KINDS value). Without --preset, an existing run's config.yaml (resume); without --out,
    runs/<preset name>."""
    run = Path(out) if out else None
    if preset is None:
        if run is None or not (run / "config.yaml").is_file():
            raise UserError(f"--preset: required unless --out names an existing {what}")
        preset = str(run / "config.yaml")
    else:
        check_preset_kind(preset, what)
    if run is None and Path(preset).name == "config.yaml":  # a run's: runs/config would be no one's name
        raise UserError(f"--out: required with --preset {preset} (a run's config: --out "
                        f"{Path(preset).parent} resumes that run, another folder starts a new one)")
    run = run if run is not None else Path("runs") / Path(preset).stem
    check_not_broken_link(run)
    check_run_kind(run, what)
    return preset, run
