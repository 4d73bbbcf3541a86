"""Per-file librosa computation of each recipe, as the original code does it (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from audionas.features.frontend import fit_length
from audionas.features.presets import get_spec


def librosa_reference(wave: np.ndarray, preset: str) -> np.ndarray:
    """Features (H, W) of one mono clip computed with librosa/scipy (float32 input, like librosa.load)."""
    import librosa
    import scipy.fft
    import scipy.signal

    spec = get_spec(preset)
    y = fit_length(wave, spec.clip_samples)
    if spec.kind == "mfcc":
        # Honk: melspectrogram (power 2, centred); librosa >= 0.10 defaults to constant padding, while the
        # librosa of Honk's time padded with reflect, so it is passed explicitly.
        mel = librosa.feature.melspectrogram(
            y=y, sr=spec.sample_rate, n_fft=spec.n_fft, win_length=spec.win_length,
            hop_length=spec.hop_length, window=spec.window, center=True, pad_mode="reflect",
            power=2.0 if spec.spectrum == "power" else 1.0, n_mels=spec.n_mels, fmin=spec.fmin,
            fmax=spec.fmax)
        mel[mel > 0] = np.log(mel[mel > 0])
        mfcc = scipy.fft.dct(mel, type=2, norm="ortho", axis=0)[: spec.n_mfcc]
        return np.ascontiguousarray(mfcc.T)
    # dcase_util MelExtractor: |librosa.stft(y + eps)| with scipy's asymmetric window, mel, log(mel + eps).
    window = scipy.signal.get_window(spec.window, spec.win_length, fftbins=True)
    stft = librosa.stft(y + np.float32(spec.signal_eps), n_fft=spec.n_fft, win_length=spec.win_length,
                        hop_length=spec.hop_length, window=window, center=True, pad_mode="reflect")
    s = np.abs(stft) if spec.spectrum == "magnitude" else np.abs(stft) ** 2
    mel_basis = librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels, fmin=spec.fmin,
                                    fmax=spec.fmax)
    return np.log(mel_basis @ s + np.float32(spec.log_eps))
