"""Torch checkpoints: saved atomically (write then rename), loaded safely (weights_only=True: never unpickle
what a user hands over), and checked against the run that resumes from them."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from audionas.console import stops_held
from audionas.errors import UserError
from audionas.utils.atomic import atomic_write


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside `path`, then rename over it; a stop signal waits for its end."""
    with stops_held():
        atomic_write(Path(path), lambda f: torch.save(obj, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with weights_only=True; a missing or foreign file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle protocol before failing on it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt, truncated, or holds arbitrary objects
        if isinstance(e, pickle.UnpicklingError):
            why = "not a torch checkpoint, or one holding objects other than tensors and plain data"
        elif "zip archive" in str(e):
            why = "truncated, or not a torch checkpoint"
        elif isinstance(e, (PermissionError, IsADirectoryError)):
            why = f"cannot be read: {e.strerror or e}"
        elif isinstance(e, OSError):  # torch's zip reader on a file cut past its first few KB: EINVAL
            why = "truncated, or not a torch checkpoint"
        else:  # e.g. a text file: torch's legacy loader fails with a bare KeyError
            why = "not a torch checkpoint (expected a torch.save file of tensors and plain data)"
        if path.suffix == ".pt2":  # what `audionas export` writes: a program, not a training checkpoint
            why = "an exported program: give the run folder or its final.pt"
        raise UserError(f"{path}: not a readable audionas checkpoint ({why})") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not an audionas checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


NOT_THIS_RUN = "does not fit this run: it holds another network's weights"


def load_weights(module: torch.nn.Module, ck: dict, key: str, path: str | os.PathLike,
                 what: str = NOT_THIS_RUN) -> None:
    """`module.load_state_dict(ck[key])`; weights that are missing or of another network are a UserError
    `{path}: {what} (the first mismatch)`. The default `what` is for a resumed run's checkpoint."""
    state = ck.get(key)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{path}: field '{key}': expected the network weights (a state dict of tensors)")
    # Training stops when it diverges, so such weights come from a damaged or edited file: they would
    # predict NaN (evaluate's argmax still gives an accuracy) and export a NaN program without a word.
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())),
               None)
    if bad is not None:
        raise UserError(f"{path}: field '{key}': weight '{bad}' holds NaN or infinite values (a damaged or "
                        f"edited checkpoint)")
    # load_state_dict casts without a word: integer, boolean or complex weights (a damaged or edited file)
    # would predict from their rounded or real parts.
    own = module.state_dict()
    for k, v in state.items():
        if k in own and (v.is_floating_point() != own[k].is_floating_point() or v.is_complex()):
            raise UserError(f"{path}: field '{key}': weight '{k}' is {str(v.dtype).removeprefix('torch.')}, "
                            f"expected {str(own[k].dtype).removeprefix('torch.')} (a damaged or edited "
                            f"checkpoint)")
    try:
        module.load_state_dict(state)
    except RuntimeError as e:  # torch's first line names only the class; the next one the first mismatch
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__
        raise UserError(f"{path}: {what} ({detail[:160]})") from None


def load_resume_checkpoint(path: str | os.PathLike, steps_per_epoch: int, world_size: int,
                           required: tuple[str, ...] = (), data: dict | None = None) -> dict | None:
    """The checkpoint to resume from, or None when there is none yet. Exact resume replays the same batches,
    so one saved with another number of steps per epoch or of processes is a UserError; so is one without
    the `required` entries (optimizer, RNG states, ...) the run restores, and one whose `data` entries
    (classes, split sizes, ...; compared when the checkpoint has them) differ: the dataset changed."""
    path = Path(path)
    if not path.is_file():
        return None
    # Read on the CPU: RNG and sampler states must be CPU tensors, and optimizer steps stay where they load
    # (on a GPU, Adam would sync on every step); load_state_dict moves weights and moments to the device.
    ck = load_checkpoint(path, map_location="cpu")
    missing = [k for k in required if k not in ck]
    if missing:
        raise UserError(f"{path}: no {', '.join(repr(k) for k in missing)} entry (not a checkpoint this kind "
                        f"of run writes); choose another --out")
    for key, now in (data or {}).items():
        if key in ck and ck[key] != now:
            # band statistics are 2 x bands numbers: named, not printed
            what = ("other band statistics" if key == "band_statistics"
                    else "other clips in its train or val split" if key == "split_fingerprint"
                    else f"{key} {ck[key]}, the data now has {now}")
            raise UserError(f"{path}: the run started on data with {what} (the dataset changed); restore it "
                            f"or choose another --out")
    saved = (ck.get("steps_per_epoch"), ck.get("world_size", world_size))
    if saved[1] != world_size:  # each process's batches follow from the process count
        how = ("in one process (without torchrun)" if saved[1] == 1
               else f"with {saved[1]} processes (torchrun)")
        raise UserError(f"{path}: saved on {saved[1]} process(es), now {world_size}: resume it {how}, or "
                        f"choose another --out")
    if saved[0] != steps_per_epoch:
        raise UserError(f"{path}: saved with {saved[0]} steps per epoch, now {steps_per_epoch} (dataset or "
                        f"batch size changed); choose another --out")
    return ck
