"""Batched log-mel / MFCC in torch (CPU or GPU): one STFT over the batch, one matmul per stage."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn as nn

from audionas.features.presets import FeatureSpec, get_spec


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_out, n_in): `D @ x == scipy.fft.dct(x, type=2, norm='ortho')[:n_out]`."""
    k = np.arange(n_out, dtype=np.float64)[:, None]
    n = np.arange(n_in, dtype=np.float64)[None, :]
    basis = np.cos(math.pi * k * (2.0 * n + 1.0) / (2.0 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def stft_window(spec: FeatureSpec) -> np.ndarray:
    """Periodic window of `win_length` zero-padded to `n_fft`, centred, exactly as librosa.stft builds it."""
    import librosa
    import scipy.signal

    win = scipy.signal.get_window(spec.window, spec.win_length, fftbins=True)
    return librosa.util.pad_center(win, size=spec.n_fft)


def mel_filterbank(spec: FeatureSpec) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) Slaney mel filterbank from librosa (float32, librosa's default)."""
    import librosa

    return librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels, fmin=spec.fmin,
                               fmax=spec.fmax)


class FeatureFrontend(nn.Module):
    """Waveforms (N, samples) or (N, 1, samples) -> features (N, 1, H, W) following a FeatureSpec."""

    def __init__(self, spec: FeatureSpec):
        super().__init__()
        self.spec = spec
        window = torch.from_numpy(stft_window(spec).astype(np.float32))
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_fb", torch.from_numpy(mel_filterbank(spec).astype(np.float32)),
                             persistent=False)
        if spec.kind == "mfcc":
            # Stored transposed (n_mels, n_mfcc) so the (N, T, n_mels) log-mel needs one matmul.
            dct_t = dct_matrix(spec.n_mfcc, spec.n_mels).T.astype(np.float32)
            self.register_buffer("dct_t", torch.from_numpy(np.ascontiguousarray(dct_t)), persistent=False)

    def extra_repr(self) -> str:
        return f"preset={self.spec.name!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        if x.dim() == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 2:
            raise ValueError(f"{spec.name}: expected waveforms (N, samples) or (N, 1, samples), "
                             f"got shape {tuple(x.shape)}")
        x = x.to(self.window.dtype)
        if spec.signal_eps:
            x = x + spec.signal_eps
        # The window is already padded to n_fft (centred), so win_length=n_fft reproduces librosa's framing.
        stft = torch.stft(x, n_fft=spec.n_fft, hop_length=spec.hop_length, win_length=spec.n_fft,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        if spec.spectrum == "power":
            s = torch.view_as_real(stft).square().sum(-1)
        else:
            s = stft.abs()
        # (N, F, T) -> (N, T, F) @ (F, n_mels) -> (N, T, n_mels): time-major for the DCT matmul.
        mel = torch.matmul(s.transpose(1, 2), self.mel_fb.T)
        if spec.log == "positive":
            # Honk: data[data > 0] = log(data[data > 0]); entries are >= 0, so the others stay exactly 0.
            mel = torch.log(torch.where(mel > 0, mel, torch.ones_like(mel)))
        else:
            mel = torch.log(mel + spec.log_eps)
        if spec.kind == "mfcc":
            out = torch.matmul(mel, self.dct_t)  # (N, T, n_mfcc): time x coefficient
        else:
            out = mel.transpose(1, 2)  # (N, n_mels, T): band x time
        return out.unsqueeze(1).contiguous()


def build_frontend(preset: str) -> nn.Module:
    """The batched torch feature module of `preset` (UserError if unknown)."""
    return FeatureFrontend(get_spec(preset))


def fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad at the end or crop to `n` samples (Honk's rule)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {wave.shape}")
    if len(wave) >= n:
        return wave[:n]
    return np.pad(wave, (0, n - len(wave)))


@functools.cache
def _cached_frontend(preset: str) -> FeatureFrontend:
    return FeatureFrontend(get_spec(preset)).eval()


def compute_features(wave: np.ndarray, preset: str) -> np.ndarray:
    """Features (H, W) float32 of one mono clip, padded/cropped to the preset's clip length (torch path)."""
    spec = get_spec(preset)
    x = torch.from_numpy(fit_length(wave, spec.clip_samples))[None]
    with torch.inference_mode():
        return _cached_frontend(spec.name)(x)[0, 0].numpy().copy()
