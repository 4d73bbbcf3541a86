"""Feature recipes as frozen constants: `FEATURE_PRESETS[name] -> FeatureSpec`; `get_spec("NAME@Xs")` gives
a recipe on inputs of another length."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from audionas.errors import UserError


@dataclass(frozen=True)
class FeatureSpec:
    """One feature recipe: STFT, mel filterbank (librosa.filters.mel, Slaney), log, optional DCT-II."""

    name: str
    kind: str  # 'mfcc' -> (time, coefficient) | 'logmel' -> (band, time)
    sample_rate: int
    clip_samples: int  # clips are zero-padded at the end or cropped to this length
    n_fft: int
    win_length: int  # window zero-padded to n_fft, centred (as librosa.stft does)
    hop_length: int
    window: str  # scipy.signal.get_window name, periodic (fftbins=True)
    n_mels: int
    fmin: float
    fmax: float
    n_mfcc: int = 0  # coefficients kept after the orthonormal DCT-II ('mfcc' only)
    spectrum: str = "power"  # 'power' |X|^2 or 'magnitude' |X|
    log: str = "positive"  # 'positive': log of entries > 0 only (Honk) | 'eps': log(x + log_eps)
    log_eps: float = 0.0
    signal_eps: float = 0.0  # added to the waveform before the STFT (dcase_util does y + eps)

    @property
    def n_frames(self) -> int:
        """STFT frames of one clip with centred (reflect-padded) frames."""
        return 1 + self.clip_samples // self.hop_length

    @property
    def time_axis(self) -> str:
        """The axis of output_shape time runs along: 'h' (MFCC: time x coefficient) or 'w' (band x time)."""
        return "h" if self.kind == "mfcc" else "w"

    @property
    def output_shape(self) -> tuple[int, int]:
        """(H, W) of one clip: (time, coefficient) for MFCC, (band, time) for log-mel."""
        if self.kind == "mfcc":
            return (self.n_frames, self.n_mfcc)
        return (self.n_mels, self.n_frames)


FEATURE_PRESETS: dict[str, FeatureSpec] = {
    # Honk (castorini/honk utils/manage_audio.py), as in the KWS paper: 30 ms window, 10 ms hop, 20 Hz-4 kHz.
    "honk-mfcc": FeatureSpec(
        name="honk-mfcc", kind="mfcc", sample_rate=16000, clip_samples=16000, n_fft=480, win_length=480,
        hop_length=160, window="hann", n_mels=40, fmin=20.0, fmax=4000.0, n_mfcc=40,
        spectrum="power", log="positive",
    ),
    # DCASE2018 task 5 baseline (task5.yaml + dcase_util MelExtractor): 40 ms Hamming window, 20 ms hop.
    "dcase-logmel": FeatureSpec(
        name="dcase-logmel", kind="logmel", sample_rate=16000, clip_samples=160000, n_fft=1024,
        win_length=640, hop_length=320,
        # Choice: periodic 'hamming' = dcase_util's window_type 'hamming_asymmetric' (scipy sym=False).
        window="hamming", n_mels=40, fmin=50.0, fmax=8000.0,
        # Choice: magnitude spectrum, as the baseline's `spectrogram_type: magnitude`.
        spectrum="magnitude",
        # Choice: natural log(mel + eps), waveform + eps, eps = np.spacing(1), as dcase_util's MelExtractor.
        log="eps", log_eps=float(np.spacing(1)), signal_eps=float(np.spacing(1)),
    ),
}


MAX_SECONDS = 600.0  # a longer input is no clip: the whole STFT of every clip is held at once


def get_spec(preset: str) -> FeatureSpec:
    """The FeatureSpec of `preset`: a name of FEATURE_PRESETS, or `NAME@Xs`, that recipe on inputs of X
    seconds (clips cropped or padded to them): your sounds' length, where the presets fix 1 s and 10 s. An
    unknown name or a bad length is a UserError."""
    known = ", ".join(sorted(FEATURE_PRESETS))
    name, at, length = preset.partition("@") if isinstance(preset, str) else (preset, "", "")
    try:
        spec = FEATURE_PRESETS[name]
    except (KeyError, TypeError):
        raise UserError(f"feature preset '{preset}': unknown (known: {known}, each also as NAME@Xs for "
                        f"inputs of X seconds, e.g. honk-mfcc@2s)") from None
    if not at:
        return spec
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)s", length)
    seconds = float(match[1]) if match else math.nan
    samples = round(seconds * spec.sample_rate) if math.isfinite(seconds) else 0
    if not (samples >= spec.win_length and seconds <= MAX_SECONDS):
        raise UserError(f"feature preset '{preset}': expected {name}@Xs with X seconds from "
                        f"{spec.win_length / spec.sample_rate:g} to {MAX_SECONDS:g}, e.g. {name}@2s")
    return replace(spec, name=preset, clip_samples=samples)
