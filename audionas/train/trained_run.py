"""A trained run: its checkpoint (run folder, final.pt or last.pt), the network rebuilt from it, and the
checks that data scored with it is the data it was trained on (classes, training split, band statistics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from audionas.config import from_dict
from audionas.data import clips_digest
from audionas.errors import UserError, warn
from audionas.models.args import input_shape_arg
from audionas.utils.checkpoint import load_checkpoint, load_weights
from audionas.utils.jsonio import is_json_int
from audionas.utils.text import nfc

_SEARCH_HINTS = {"darts": "retrain its cell: audionas train --genotype RUN/genotype.json",
                 "supernet": "search it, then retrain a front member: audionas train --chromosome "
                             "SEARCH/pareto.json#k"}


def refuse_search_run(p: Path) -> None:
    """UserError when folder `p` is a search's (DARTS, supernet, NSGA-II / random), saying what to do."""
    for kind, file in (("darts", "genotype.json"), ("supernet", "space.json")):
        if (p / file).is_file() and (p / "checkpoints" / "last.pt").is_file():
            raise UserError(f"{p}: a search run, not a trained network; {_SEARCH_HINTS[kind]}")
    if (p / "search.json").is_file():
        raise UserError(f"{p}: a search folder, not a trained run; train a front member first "
                        f"(`audionas train --chromosome {p}/pareto.json#k ...`)")


def checkpoint_path(run_or_ckpt: str | Path) -> Path:
    """A checkpoint file, or a run directory's final.pt (else checkpoints/last.pt)."""
    p = Path(run_or_ckpt).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        if (p / "final.pt").is_file():
            return p / "final.pt"
        # A search run has no final.pt by design: said before the (false) "not finished" warning.
        refuse_search_run(p)
        if (p / "checkpoints" / "last.pt").is_file():
            warn(f"{p}: no final.pt (the run has not finished); using its last checkpoint, "
                 f"{p / 'checkpoints' / 'last.pt'}")
            return p / "checkpoints" / "last.pt"
        raise UserError(f"{p}: no final.pt or checkpoints/last.pt in this run directory")
    raise UserError(f"{p}: no such run directory or checkpoint file")


@dataclass
class LoadedModel:
    """A trained network in eval mode, with the config, classes and input shape it was trained with."""

    path: Path
    config: object  # TrainConfig
    classes: list[str]
    input_shape: tuple[int, int, int]
    model: nn.Module
    split_sizes: dict | None = None  # items per split when trained (checkpoint entry); None: not recorded
    band_frontend: nn.Module | None = None  # the recorded band standardisation (cached features); None: none
    split_fingerprint: dict | None = None  # checkpoint entry; None: not recorded


def checkpoint_fields(path: Path, ckpt: dict) -> tuple[list[str], tuple[int, int, int]]:
    """The `classes` and `input_shape` of a training checkpoint, checked: a hand edit is a UserError."""
    classes, shape = ckpt.get("classes"), ckpt.get("input_shape")
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
        raise UserError(f"{path}: field 'classes': expected a non-empty list of class names, "
                        f"got {str(classes)[:60]}")
    # Choice: a class name is a folder name (255 bytes at most on common file systems); each is told once.
    long = next((c for c in classes if not 0 < len(c) <= 255), None)
    if long is not None:
        raise UserError(f"{path}: field 'classes': expected names of 1 to 255 characters, got one of "
                        f"{len(long):,}")
    twice = next((c for c, n in Counter(classes).items() if n > 1), None)
    if twice is not None:
        raise UserError(f"{path}: field 'classes': class '{twice}' given twice (a damaged or edited "
                        f"checkpoint)")
    return list(classes), input_shape_arg(shape, f"{path}: field 'input_shape'")


def load_model(run_or_ckpt: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the model from a checkpoint's saved config and load its evaluation weights (EMA if kept)."""
    from audionas.models import create_model
    from audionas.train.config import TrainConfig

    path = checkpoint_path(run_or_ckpt)
    ckpt = load_checkpoint(path)
    if "primitives" in ckpt or "sampler" in ckpt:  # a DARTS search or a FairNAS supernet checkpoint
        hint = _SEARCH_HINTS["darts" if "primitives" in ckpt else "supernet"]
        raise UserError(f"{path}: a search run, not a trained network; {hint}")
    for key in ("config", "classes", "input_shape", "model"):
        if key not in ckpt:
            raise UserError(f"{path}: not an audionas training checkpoint (no '{key}')")
    if not isinstance(ckpt["config"], dict):
        raise UserError(f"{path}: field 'config': expected the run's config as a mapping, "
                        f"got {type(ckpt['config']).__name__}")
    from audionas.data import upgrade_run_config

    classes, shape = checkpoint_fields(path, ckpt)
    try:  # a hand-edited config is named with the checkpoint it is in
        cfg = from_dict(TrainConfig, upgrade_run_config(dict(ckpt["config"])))
        model = create_model(cfg.model, num_classes=len(classes), input_shape=shape, **cfg.model_args)
    except UserError as e:
        raise UserError(f"{path}: saved config: {e}") from None
    load_weights(model, ckpt, "ema" if ckpt.get("ema") else "model", path,
                 f"weights do not fit model '{cfg.model}'")
    return LoadedModel(path, cfg, classes, shape, model.to(device).eval(), ckpt.get("split_sizes"),
                       recorded_band_frontend(ckpt, shape, path), ckpt.get("split_fingerprint"))


def recorded_band_frontend(ckpt: dict, input_shape, path) -> nn.Module | None:
    """The band standardisation a checkpoint records (BandStandardize over input_shape[1] bands), or None
    when it records none (features without it, or a checkpoint from before it was recorded)."""
    from audionas.features.normalize import BandStandardize

    entry = ckpt.get("band_statistics")
    return None if entry is None else BandStandardize.from_statistics(entry, int(input_shape[1]), path)


def check_classes(bundle, trained: list[str] | None, root, whose: str, run) -> None:
    """UserError when the data's classes differ from the `trained` ones (scores would match them by index);
    `whose` names the owner in the message ("checkpoint's", "supernet's"). None: not recorded."""
    # A run trained on a folder a Mac named in NFD recorded those names: compared in NFC, as folders are read.
    if isinstance(trained, list) and [nfc(str(c)) for c in bundle.classes] != [nfc(str(c)) for c in trained]:
        raise UserError(f"{root}: dataset classes {list(bundle.classes)} differ from the {whose} {trained} "
                        f"({run})")


def warn_other_split(bundle, recorded, root, run, scored=None) -> None:
    """A warning when the training split of `bundle` holds other clips than the one `run` was trained on
    (`recorded`: its split_fingerprint; None: not recorded): the clips it is scored on may include ones it
    learned from, unless the `scored` dataset is `held_out` (DCASE's evaluation set: no training split has
    its clips)."""
    if getattr(scored, "held_out", False):
        return
    trained = recorded.get("train") if isinstance(recorded, dict) else None
    now = clips_digest(bundle.train)  # split_fingerprint's "train", without also digesting val
    # Shuffle-and-mix rows added to the cache after training are made of the training split's own segments:
    # digested without them only when the whole split differs.
    if (trained is not None and now is not None and now != trained
            and clips_digest(bundle.train, mixed=False) != trained):
        warn(f"{root}: its training split holds other clips than the one {run} was trained on "
             f"(another dataset, cache or split setting): the clips scored here may include ones "
             f"it learned from")


def trained_frontend(data_cfg, bundle, root, recorded: nn.Module | None, split_sizes, run) -> nn.Module:
    """The frontend a run (or supernet) was trained with, for data `bundle`: its `recorded` band
    standardisation, whatever cache `root` is; else the bundle's own. Without a record (checkpoints from
    before it was kept), a DCASE bundle whose training split differs in size from the recorded `split_sizes`
    is refused: its band statistics would not be the run's."""
    if recorded is not None:
        return recorded
    trained_items = split_sizes.get("train") if isinstance(split_sizes, dict) else None
    if data_cfg.kind != "dcase2018" or not data_cfg.normalize or not is_json_int(trained_items):
        return bundle.frontend
    if len(bundle.train) != trained_items:
        raise UserError(f"{root}: its training split holds {len(bundle.train)} items, {run} was trained "
                        f"on {trained_items} (the band statistics come from them): another cache, or its "
                        f"shuffle-and-mix rows are missing; pass the run's own feature cache")
    return bundle.frontend


def scored_bundle(data_cfg, seed: int, recorded: nn.Module | None, classes, split_sizes, run, whose: str,
                  moved: str = "", named: str = "", checked: Collection[str] | None = None):
    """The data a trained network (a run's, a supernet) is scored on, as `data_cfg` reads it: built without
    training-only work, its classes checked against the `classes` the network recorded (`whose`, `run`: as
    in check_classes), with the frontend it was trained with (trained_frontend, naming it `named` or `run`).
    `moved`: what to do when the data cannot be read because data.root is gone (a run moved without it).
    `checked`: the splits it will read (build_data)."""
    from dataclasses import replace

    from audionas.data import build_data

    # A recorded standardisation replaces the bundle's: skip computing the cache's own statistics.
    try:
        bundle = build_data(replace(data_cfg, normalize=False) if recorded is not None else data_cfg, seed,
                            training=False, checked=checked)
    except UserError:
        if not moved or not data_cfg.root or Path(data_cfg.root).expanduser().exists():
            raise
        raise UserError(f"{data_cfg.root}: no such folder; it is the data.root of {run}: {moved}") from None
    check_classes(bundle, classes, data_cfg.root, whose, run)
    frontend = trained_frontend(data_cfg, bundle, data_cfg.root, recorded, split_sizes, named or run)
    return replace(bundle, frontend=frontend)


def run_dir_of(checkpoint: Path) -> Path:
    """The run a checkpoint belongs to (RUN/final.pt, RUN/best.pt, RUN/checkpoints/*.pt)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
