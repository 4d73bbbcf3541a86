"""File side of the `features` command: read one clip for a preset, write a feature matrix atomically."""

from __future__ import annotations

import os

import numpy as np

from audionas.data.audio import load_wav, sound_info
from audionas.errors import UserError
from audionas.features.presets import FeatureSpec
from audionas.utils.atomic import atomic_write

# `predict --channel mean`: every channel is classified and the class probabilities are averaged, the
# DCASE2018 task 5 official rule for a 4-channel segment (REFERENCE.md section 3).
MEAN_OF_CHANNELS = "mean"
# `--channel mix` (predict, features): the file is read as the mean of its channels, as a run trained with
# data.mixdown reads its clips.
MIX_CHANNELS = "mix"


def check_channel_choice(path: str | os.PathLike, channel: int | str | None, mean_ok: bool = False):
    """The file's header (soundfile's info), its channel count checked against `channel`: a multi-channel
    file without it (the file must be mono then), or a channel outside 0..n-1 of a multi-channel file, is a
    UserError naming the --channel choices (`mean` only with `mean_ok`); a mono file takes any channel (it is
    used as it is, so one folder can mix both) and `MEAN_OF_CHANNELS` / `MIX_CHANNELS` any count. An
    unreadable header gives None and is left to the audio loader, which says what is wrong."""
    try:
        info = sound_info(path)
    except UserError:
        return None
    n = info.channels
    if channel in (MEAN_OF_CHANNELS, MIX_CHANNELS):
        return info
    if channel is None and n > 1:
        if mean_ok:
            others = (f", --channel {MEAN_OF_CHANNELS} to average their predictions or --channel "
                      f"{MIX_CHANNELS} to average their samples (as data.mixdown=true trains)")
        else:
            others = f", or --channel {MIX_CHANNELS} to average their samples"
        raise UserError(f"{path}: {n} channels, expected one: choose it with --channel 0..{n - 1}{others}")
    if channel is not None and n > 1 and not 0 <= channel < n:
        raise UserError(f"--channel: expected 0..{n - 1} for {path} ({n} channel(s)), got {channel}")
    return info


def load_clip(path: str | os.PathLike, spec: FeatureSpec, channel: int | str | None = None,
              warn_resample: bool = True) -> np.ndarray:
    """Mono waveform at the preset's rate; `channel` (0-based) picks one channel of a multi-channel file, or
    `MIX_CHANNELS` averages them (a mono file is read as it is).

    A multi-channel file without `channel`, or a channel out of range, is a UserError naming --channel.
    `warn_resample` as in load_wav. Only the head of a file longer than the preset's clip is read (load_wav's
    `head`): its first clip, and a little more.
    """
    info = check_channel_choice(path, channel)
    if channel in (None, MIX_CHANNELS) or (info is not None and info.channels == 1):
        return load_wav(path, spec.sample_rate, channels=1, warn_resample=warn_resample,
                        mixdown=channel == MIX_CHANNELS, head=spec.clip_samples)
    return load_channels(path, spec, warn_resample, info)[channel]


def load_channels(path: str | os.PathLike, spec: FeatureSpec, warn_resample: bool = True,
                  info=None) -> np.ndarray:
    """Every channel of the file's head (as load_clip) at the preset's rate, (channels, frames) also for a
    mono file. `info`: its header if the caller read it (None, also for an unreadable one: sound_info raises
    the UserError saying why)."""
    n_channels = (info or sound_info(path)).channels
    data = load_wav(path, spec.sample_rate, channels=n_channels, warn_resample=warn_resample,
                    head=spec.clip_samples)
    return data[None] if n_channels == 1 else data


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """np.save to a temporary file beside `path`, then rename over it (never a half-written output)."""
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
