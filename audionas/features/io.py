"""File side of the `features` command: read one clip for a preset, write a feature matrix atomically."""

from __future__ import annotations

import os

import numpy as np

from audionas.data.audio import load_wav, sound_info
from audionas.errors import UserError
from audionas.features.presets import FeatureSpec
from audionas.utils.checkpoint import atomic_write


def load_clip(path: str | os.PathLike, spec: FeatureSpec, channel: int | None = None) -> np.ndarray:
    """Mono waveform at the preset's rate; `channel` (0-based) picks one channel of a multi-channel file."""
    if channel is None:
        return load_wav(path, spec.sample_rate, channels=1)
    n_channels = sound_info(path).channels
    if not 0 <= channel < n_channels:
        raise UserError(f"--channel: expected 0..{n_channels - 1} for {path} ({n_channels} channel(s)), "
                        f"got {channel}")
    data = load_wav(path, spec.sample_rate, channels=n_channels)
    return data if n_channels == 1 else data[channel]


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """np.save to a temporary file beside `path`, then rename over it (never a half-written output)."""
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
