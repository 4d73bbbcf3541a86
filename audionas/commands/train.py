"""`audionas train`: train (or resume) a model from a preset with key=value overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

from audionas.commands import (
    Command,
    WhenShown,
    check_out_folder,
    overrides_argument,
    positive_int,
    preset_and_run_dir,
    run_job,
)
from audionas.errors import UserError, warn
from audionas.utils.rundir import RUN_MARKERS


def warn_if_search_unfinished(genotype: Path) -> None:
    """Warn when a genotype file is that of a DARTS search run that has not finished (no summary.json yet):
    it is the best cell so far, and the search's rerun would resume it."""
    from audionas.config import read_yaml
    from audionas.utils.rundir import config_kind

    run = genotype.parent
    if not genotype.is_file() or (run / "summary.json").exists() or not (run / "config.yaml").is_file():
        return
    try:
        is_search = config_kind(read_yaml(run / "config.yaml")) == "DARTS search"
    except UserError:
        return  # not a run's config: nothing to say about it here
    if is_search:
        warn(f"{genotype}: the DARTS search in {run} is unfinished (no summary.json): this is its "
             f"best cell so far; rerunning the search resumes it")


def training_presets() -> list[str]:
    """The built-in presets of `audionas train` (the others are the searches')."""
    from audionas.config import list_presets, load_preset_dict
    from audionas.utils.rundir import config_kind

    return [name for name in list_presets() if config_kind(load_preset_dict(name)) == "training run"]


def _train_config() -> type:
    from audionas.train.config import TrainConfig

    return TrainConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    overrides_argument(p, "epochs=5 optim.lr=0.01 data.batch_size=128", _train_config)
    preset = p.add_argument("--preset", help="training preset (%(presets)s) or a YAML file; optional when "
                                             "--out already holds a run (resume)")
    preset.presets = WhenShown(lambda: ", ".join(training_presets()))
    p.add_argument("--data", help="dataset folder (sets data.root)")
    p.add_argument("--out", help="run directory (default runs/<preset>); running again resumes it")
    p.add_argument("--genotype", help="DARTS genotype: a name, a JSON file, or Genotype(...) text as DARTS "
                                      "prints it; sets model=darts, model_args.genotype")
    p.add_argument("--cells", type=positive_int,
                   help="with --genotype: number of cells (default: the DARTS preset's, else 6)")
    p.add_argument("--channels", type=positive_int,
                   help="with --genotype: initial channels (default: the DARTS preset's, else 16)")
    p.add_argument("--chromosome", metavar="SEARCH/pareto.json#k",
                   help="a one-shot search result: sets model and model_args from the chromosome")


def build_extra(args: argparse.Namespace) -> tuple[dict, dict | None]:
    """Named flags as a config dict (applied after the preset, before key=value overrides), and the resolved
    --chromosome (resolve_chromosome) or None."""
    extra: dict = {}
    if args.data:
        extra["data"] = {"root": str(args.data)}
    if (args.cells is not None or args.channels is not None) and not args.genotype:
        raise UserError("--cells/--channels: only valid together with --genotype")
    if args.genotype and args.chromosome:
        raise UserError("--genotype and --chromosome: choose one")
    if args.genotype:
        from audionas.nas.darts.genotype import is_genotype_text

        if not is_genotype_text(args.genotype):  # a file, or a name
            warn_if_search_unfinished(Path(args.genotype))
        margs = {"genotype": args.genotype}
        if args.cells is not None:
            margs["cells"] = args.cells
        if args.channels is not None:
            margs["channels"] = args.channels
        extra["model"] = "darts"
        extra["model_args"] = margs
    chromosome = None
    if args.chromosome:
        from audionas.nas.oneshot.space import resolve_chromosome

        chromosome = resolve_chromosome(args.chromosome)
        extra["model"] = chromosome["model"]
        extra["model_args"] = dict(chromosome.get("model_args") or {})
    return extra, chromosome


def fields_set_by_flags(args: argparse.Namespace, extra: dict) -> dict[str, tuple[str, object]]:
    """The config fields the named flags set (see build_extra), each with its flag and value."""
    out: dict[str, tuple[str, object]] = {}
    if args.data:
        out["data.root"] = ("--data", extra["data"]["root"])
    if args.genotype:
        out["model"] = ("--genotype", "darts")
        for key in ("genotype", "cells", "channels"):
            if key in extra["model_args"]:
                out[f"model_args.{key}"] = (f"--{key}", extra["model_args"][key])
    if args.chromosome:  # the architecture; other model arguments (dropout, ...) stay free
        out["model"] = ("--chromosome", extra["model"])
        out.update({f"model_args.{k}": ("--chromosome", v) for k, v in extra["model_args"].items()})
    return out


def resolve_config(args: argparse.Namespace):
    """(TrainConfig, run directory) from the preset, the named flags and the key=value overrides."""
    from audionas.config import load_config, load_preset_dict, override_key, refuse_flag_overrides
    from audionas.train.config import TrainConfig

    extra, chromosome = build_extra(args)
    refuse_flag_overrides(fields_set_by_flags(args, extra), args.overrides, TrainConfig)
    preset, out = preset_and_run_dir(args.preset, args.out, "training run")
    # A model chosen by flags does not inherit the preset's arguments; a DARTS preset keeps its own (cells,
    # channels, layout, ...) under --genotype, which replaces only what its flags name.
    preset_model = load_preset_dict(preset).get("model")
    keeps_args = args.genotype and preset_model == "darts"
    replace = ("model_args",) if "model_args" in extra and not keeps_args else ()
    cfg = load_config(TrainConfig, preset, args.overrides, extra, replace=replace)
    named = "model" in extra or any(override_key(o) == "model" for o in args.overrides)
    if not named and preset_model is None:  # a preset file of one's own
        warn(f"{preset}: names no model (nor does a base: preset); training the default model, {cfg.model}")
    if chromosome is not None:
        if not warn_if_searched_on_other_input(chromosome, args.chromosome, cfg.data.feature):
            warn_if_other_recipe(chromosome, args.chromosome, preset)  # the warning above names the recipe
    return cfg, out


def warn_if_other_recipe(spec: dict, ref: str, preset: str) -> None:
    """Warn when the preset is neither the retraining preset the chromosome's space names (`preset_hint`) nor
    one built on it (`base:`): e.g. the paper's asc-baseline (batch 192, 10 epochs) on a CPU space's front."""
    from audionas.config import preset_lineage, preset_path

    hint = spec.get("preset_hint")
    if not hint or Path(preset).name == "config.yaml":  # a resume reads the run's own config
        return
    try:
        wanted = preset_path(hint).resolve()
    except UserError:  # a space naming a preset this installation does not have
        return
    if wanted not in preset_lineage(preset):
        warn(f"--chromosome {ref}: its space's retraining preset is '{hint}'; --preset {preset} is another "
             f"recipe (give --preset {hint} to retrain it as the space intends)")


def warn_if_searched_on_other_input(spec: dict, ref: str, feature: str) -> bool:
    """Warn when a chromosome's space (`spec`, resolved from `ref`) was searched on other inputs than the
    run's features give (a KWS front member trained with an ASC preset, say): the search's scores say nothing
    about it there. Returns whether it warned."""
    from audionas.features import get_spec

    shape = [1, *get_spec(feature).output_shape]
    if list(spec["input_shape"]) != shape:
        hint = spec.get("preset_hint")
        hint = f"; its space's retraining preset is '{hint}'" if hint else ""
        warn(f"--chromosome {ref}: searched on {spec['task']} inputs {spec['input_shape']}, but "
             f"this run's data.feature '{feature}' gives {shape}{hint}")
        return True
    return False


def run(args: argparse.Namespace) -> int:
    from audionas.train.trainer import train

    cfg, out = resolve_config(args)
    check_out_folder(out, "training run", RUN_MARKERS)
    return run_job(train, cfg, out)


COMMANDS = [Command(("train",), "train a model from a preset (the same command again resumes)",
                    add_arguments, run)]
