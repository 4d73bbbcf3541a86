"""A trained run's whole inference path as one module: (waveforms -> features ->) network -> probabilities.

Used by `audionas predict` (files -> classes) and `audionas export` (a .pt2 program).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from audionas.data.audio import AUDIO_FILES, audio_below, warn_other_files
from audionas.errors import UserError, warn
from audionas.train.predict import unwrap_logits
from audionas.train.trained_run import LoadedModel, load_model, scored_bundle
from audionas.utils.progress import progress_off


class InferenceModel(nn.Module):
    """(frontend ->) network -> softmax probabilities, the whole inference path of a run."""

    def __init__(self, model: nn.Module, frontend: nn.Module | None = None, waveform: bool | None = None,
                 sample_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.frontend = frontend if frontend is not None else nn.Identity()
        self.model = model
        self.waveform = waveform  # whether it takes waveforms (True) or features (False); None: not said
        self.sample_shape = sample_shape  # one input's shape (no batch axis); None: not checked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape[1:])
        if self.sample_shape is not None and shape != self.sample_shape and not (
                self.waveform and shape == (1, *self.sample_shape)):  # (N, 1, samples): the frontend's too
            # A pooled network would classify a clip of another length without a word, and wrongly.
            what = "waveforms" if self.waveform else "features"
            raise UserError(f"input of shape {tuple(x.shape)}: this model takes {what} of shape "
                            f"(batch, {', '.join(map(str, self.sample_shape))})")
        return torch.softmax(unwrap_logits(self.model(self.frontend(x))), dim=-1)


def waveform_frontend(cfg, data: str | None, lm: LoadedModel | None = None) -> nn.Module:
    """Waveforms -> model input as training saw it: the feature preset, then the data's own frontend (for a
    DCASE run: the band standardisation `lm` records, else the statistics of a training split of the size
    `lm` recorded)."""
    from dataclasses import replace

    from audionas.features import build_frontend

    features = build_frontend(cfg.data.feature)
    if cfg.data.kind != "dcase2018":
        if data:
            raise UserError("--data: only needed for a DCASE2018 run (its band statistics)")
        return features  # Speech Commands / folder bundles compute exactly these features on the device
    if not cfg.data.normalize:
        return features
    if lm is not None and lm.band_frontend is not None:
        if data:
            warn(f"--data {data}: not read; {lm.path} records its band statistics")
        return nn.Sequential(features, lm.band_frontend)
    # A checkpoint from before the statistics were recorded: recompute them from the same data config as
    # training and `audionas evaluate` (augmented rows included when used).
    moved = "" if data else ("pass the feature cache whose training split gives the band statistics with "
                             "--data CACHE")
    bundle = scored_bundle(replace(cfg.data, root=data or cfg.data.root), cfg.seed, None,
                           lm.classes if lm else None, lm.split_sizes if lm else None,
                           lm.path if lm else "this run", "checkpoint's", moved)
    return nn.Sequential(features, bundle.frontend)


def load_inference_model(run, waveform: bool = False, data: str | None = None
                         ) -> tuple[InferenceModel, LoadedModel]:
    """The eval-mode inference path of a run (checkpoint or directory) and the loaded run itself. Without
    `waveform` it takes the features the run's preset computes: a recorded band standardisation is part of
    it."""
    from audionas.features import get_spec

    lm = load_model(run)
    if getattr(lm.model, "auxiliary_head", None) is not None:  # DARTS's trains only: not in what is shipped
        lm.model.auxiliary_head = None
    frontend = waveform_frontend(lm.config, data, lm) if waveform else lm.band_frontend
    shape = (get_spec(lm.config.data.feature).clip_samples,) if waveform else tuple(lm.input_shape)
    return InferenceModel(lm.model, frontend, waveform, shape).eval(), lm


def audio_files(inputs: list[str]) -> list[Path]:
    """The files named, plus every audio file (AUDIO_SUFFIXES) below the folders named (sorted); a missing
    path is a UserError."""
    files: list[Path] = []
    others: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = [path / rel for rel in audio_below(path, others)]  # the datasets' rule for audio files
            if not found:
                raise UserError(f"{path}: no {AUDIO_FILES} in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():  # a FIFO, device or socket: reading it could block or never end
            raise UserError(f"{path}: not a regular file (a FIFO, device or socket), expected an audio "
                            f"file or folder")
        else:
            raise UserError(f"{path}: no such audio file or folder")
    warn_other_files(others, "the folders named")
    return files


def repeats_short_clips(data_kind: str) -> bool:
    """Whether a clip shorter than the preset's is filled by repeating it, as the run's dataset does: a DCASE
    cache repeats it (data/dcase_cache.py); the speech and folder datasets zero-pad it."""
    return data_kind == "dcase2018"


def top_classes(probs: np.ndarray, classes: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable (class, probability) pairs, most probable first (ties: class order)."""
    return [(classes[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")[:k]]


def predict_files(model: InferenceModel, feature: str, files: list[Path] | str | os.PathLike,
                  channel: int | str | None = None, batch_size: int = 64, repeat: bool = False
                  ) -> Iterator[tuple[Path, np.ndarray]]:
    """(file, class probabilities) for each file, in order (`model`: load_inference_model(run,
    waveform=True)): read at the preset's rate, cropped or filled to its clip length as the run's dataset
    does (zero padding; `repeat`: repeated, the DCASE cache's rule), `batch_size` files per forward pass
    (a progress bar when there are several). `channel` "mean" classifies every channel of a file (one clip
    each in the pass) and averages their probabilities. Files at another rate are resampled, with one
    warning for all of them."""
    from tqdm import tqdm

    from audionas.data.audio import warn_longer, warn_other_rates
    from audionas.features import fit_length, get_spec, repeat_to_length
    from audionas.features.io import MEAN_OF_CHANNELS, check_channel_choice, load_channels, load_clip

    if model.waveform is False:
        raise UserError("predict_files: the model takes features, not the waveforms read from files; load "
                        "it with load_inference_model(run, waveform=True)")
    # One path given as text (or bytes) is one file, not its characters.
    names = [os.fsdecode(f) for f in ([files] if isinstance(files, (str, bytes, os.PathLike)) else files)]
    if "" in names:  # Path("") is the current folder
        raise UserError("predict_files: an empty path; expected audio files")
    files = [Path(f) for f in names]
    spec = get_spec(feature)
    fit = repeat_to_length if repeat else fit_length
    warn_each = True
    seconds = spec.clip_samples / spec.sample_rate
    # None: an unreadable header, the loader says why
    infos = [check_channel_choice(f, channel, mean_ok=True) for f in files]
    if len(files) > 1:
        rates = [info.samplerate if info is not None else None for info in infos]
        warn_each = not warn_other_rates(files, rates, spec.sample_rate)
    longer = [f for f, i in zip(files, infos) if i is not None and i.duration > seconds]
    warn_longer(longer, len(files), seconds)

    def clips(f: Path) -> list[np.ndarray]:
        waves = (load_channels(f, spec, warn_each) if channel == MEAN_OF_CHANNELS
                 else [load_clip(f, spec, channel, warn_each)])
        return [fit(wave, spec.clip_samples) for wave in waves]

    batches = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc="predict", unit="batch", leave=False,
                          disable=progress_off(len(batches) < 2)):
            per_file = [clips(f) for f in batch]
            probs = model(torch.from_numpy(np.stack([w for waves in per_file for w in waves]))).numpy()
            ends = np.cumsum([len(waves) for waves in per_file])
            yield from zip(batch, (probs[end - len(waves):end].mean(axis=0)
                                   for waves, end in zip(per_file, ends)))
