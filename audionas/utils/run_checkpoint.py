"""A run's resume checkpoint (`checkpoints/last.pt`): what the trainer, the supernet and the DARTS search
restore on a rerun and save as they go, in one place so the three loops cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from audionas.utils.checkpoint import load_resume_checkpoint, load_weights, save_atomic
from audionas.utils.dist import gather_on_main
from audionas.utils.rng import get_rng_state, set_rng_state

# Entries of `fixed` that say which data the run trains on: a resume on other values is refused.
DATA_ENTRIES = ("classes", "input_shape", "split_sizes", "split_fingerprint", "band_statistics")


def data_entries(bundle) -> dict[str, Any]:
    """The DATA_ENTRIES of a run on DataBundle `bundle`: classes, model input shape, split_sizes (items in
    train and val), split_fingerprint (which clips; none for in-memory data) and, for cached features, the
    training split's band statistics (so that evaluation, export and search use the run's own, whatever cache
    they are given)."""
    from audionas.data import split_fingerprint
    from audionas.features.normalize import BandStandardize

    sizes = {name: len(ds) for name, ds in (("train", bundle.train), ("val", bundle.val)) if ds is not None}
    entries = {"classes": list(bundle.classes), "input_shape": [int(v) for v in bundle.input_shape],
               "split_sizes": sizes}
    fingerprint = split_fingerprint(bundle)
    if fingerprint:
        entries["split_fingerprint"] = fingerprint
    if isinstance(bundle.frontend, BandStandardize):
        entries["band_statistics"] = bundle.frontend.statistics()
    return entries


class RunCheckpoint:
    """The weights of `model`, the state dicts of `holders` (name -> optimizer, scheduler, sampler, ...; a
    None holder is saved as None and neither required nor restored) and the RNG states of every process.

    `fixed` are entries saved unchanged every time (config, classes, ...). Saving adds `steps_per_epoch` and
    `world_size`, which restoring checks (exact resume replays the same batches), as it checks the
    DATA_ENTRIES of `fixed`. Only rank 0 writes; every rank restores, its own RNG states included.
    """

    def __init__(self, path: Path, model: torch.nn.Module, holders: dict[str, Any], *,
                 device: torch.device | str, steps_per_epoch: int, world_size: int, rank: int,
                 fixed: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.model = model  # the unwrapped network (not its DDP wrapper: its keys have no "module.")
        self.holders = holders
        self.device = device
        self.steps_per_epoch = steps_per_epoch
        self.world_size = world_size
        self.rank = rank
        self.fixed = dict(fixed or {})

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def restore(self, required: tuple[str, ...] = ()) -> dict | None:
        """Load the weights, the holders' states and the RNG states from the checkpoint and return it (the
        caller reads its own entries: step, stats, ...), or None when there is none yet.

        `required`: the entries a missing-entry UserError names, in that order; the holders and 'rng' are
        required too (added after them when not listed)."""
        live = tuple(name for name, holder in self.holders.items() if holder is not None)
        needed = tuple(dict.fromkeys((*required, *live, "rng")))
        data = {k: v for k, v in self.fixed.items() if k in DATA_ENTRIES}
        ck = load_resume_checkpoint(self.path, self.steps_per_epoch, self.world_size, needed, data)
        if ck is None:
            return None
        load_weights(self.model, ck, "model", self.path)
        for name in live:
            self.holders[name].load_state_dict(ck[name])
        ranks = ck.get("rng_ranks")  # absent in a one-process run's checkpoint (and in those before it)
        set_rng_state(ranks[self.rank] if isinstance(ranks, list) and len(ranks) == self.world_size
                      else ck["rng"], self.device)
        return ck

    def save(self, **fields: Any) -> None:
        """Write the weights, the holders' states, the RNG states, `fixed` and `fields` (step, epoch, partial
        stats, ...) atomically. Every rank calls it (its RNG states are gathered); only rank 0 writes."""
        states = gather_on_main(get_rng_state(self.device))
        if not self.is_main:
            return
        ranks = {"rng_ranks": states} if len(states) > 1 else {}
        save_atomic({"model": self.model.state_dict(),
                     **{name: h.state_dict() if h is not None else None for name, h in self.holders.items()},
                     "rng": states[0], **ranks, **fields, **self.fixed,
                     "steps_per_epoch": self.steps_per_epoch, "world_size": self.world_size}, self.path)
