"""File side of the `features` command: read one clip for a preset, write a feature matrix atomically."""

from __future__ import annotations

import os

import numpy as np

from audionas.data.audio import load_wav, sound_info
from audionas.errors import UserError
from audionas.features.presets import FeatureSpec
from audionas.utils.checkpoint import atomic_write


def check_channel_choice(path: str | os.PathLike, channel: int | None) -> None:
    """UserError naming --channel for a multi-channel file given without it (the file must be mono then)."""
    if channel is not None:
        return
    try:
        n = sound_info(path).channels
    except UserError:
        return  # the audio loader says what is wrong with the file
    if n > 1:
        raise UserError(f"{path}: {n} channels, expected one: choose it with --channel 0..{n - 1}")


def load_clip(path: str | os.PathLike, spec: FeatureSpec, channel: int | None = None) -> np.ndarray:
    """Mono waveform at the preset's rate; `channel` (0-based) picks one channel of a multi-channel file.

    A multi-channel file without `channel`, or a channel out of range, is a UserError naming --channel.
    """
    if channel is None:
        check_channel_choice(path, channel)
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
