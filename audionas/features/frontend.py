"""Batched log-mel / MFCC in torch (CPU or GPU): batched STFT (cache-sized chunks on CPU), then matmuls."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn as nn

from audionas.features.presets import FeatureSpec, get_spec


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_out, n_in): `D @ x == scipy.fft.dct(x, type=2, norm='ortho')[:n_out]`."""
    import scipy.fft

    return scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]


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


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Mirror `pad` samples at both ends of the last axis, edge sample excluded (numpy/torch 'reflect')."""
    if x.shape[-1] <= pad:
        raise ValueError(f"reflect padding of {pad} needs more than {pad} samples, got {x.shape[-1]}")
    return torch.cat([x[..., 1:pad + 1].flip(-1), x, x[..., -pad - 1:-1].flip(-1)], dim=-1)


# Choice: the mel filterbank is applied in blocks of this many adjacent filters (fastest here of 1-40).
_FILTERS_PER_BLOCK = 5

# Choice: CPU batches are processed in chunks of about this many framed samples (2 MB in float32).
_CPU_CHUNK_ELEMENTS = 1 << 19


class FeatureFrontend(nn.Module):
    """Waveforms (N, samples) or (N, 1, samples) -> features (N, 1, H, W) following a FeatureSpec."""

    def __init__(self, spec: FeatureSpec):
        super().__init__()
        self.spec = spec
        window = torch.from_numpy(stft_window(spec).astype(np.float32))
        self.register_buffer("window", window, persistent=False)
        fb = mel_filterbank(spec)  # (n_mels, F)
        support = np.flatnonzero(fb.any(axis=0))
        # STFT bins outside the filterbank's support (above fmax, below fmin) are multiplied by exact zeros:
        # skip them (honk-mfcc keeps bins 1..119 of 241).
        self.bins = (int(support[0]), int(support[-1]) + 1)
        fb = fb[:, self.bins[0]:self.bins[1]]  # (n_mels, F')
        if spec.spectrum == "power":
            # |X|^2 summed by fb == (re, im interleaved)^2 summed by fb with each column repeated: one
            # contiguous square of the STFT and no separate re^2 + im^2 pass.
            fb = np.repeat(fb, 2, axis=1)
        # Each STFT bin feeds at most two mel triangles, so the filterbank is ~95% zeros. It is applied as
        # dense blocks of _FILTERS_PER_BLOCK adjacent filters, each over the bins those filters cover: ~7x
        # fewer multiply-adds than the full matrix, and exact (the skipped terms are zeros).
        self.fb_blocks: list[tuple[int, int, int, int]] = []  # (first filter, end filter, first bin, end bin)
        for i, start in enumerate(range(0, spec.n_mels, _FILTERS_PER_BLOCK)):
            end = min(start + _FILTERS_PER_BLOCK, spec.n_mels)
            cols = np.flatnonzero(fb[start:end].any(axis=0))
            lo, hi = int(cols[0]), int(cols[-1]) + 1
            self.fb_blocks.append((start, end, lo, hi))
            block = np.ascontiguousarray(fb[start:end, lo:hi].astype(np.float32))
            self.register_buffer(f"mel_fb_{i}", torch.from_numpy(block), persistent=False)
        if spec.kind == "mfcc":
            # Stored transposed (n_mels, n_mfcc), for the frame-major (frames, n_mels) log-mel.
            dct_t = dct_matrix(spec.n_mfcc, spec.n_mels).T.astype(np.float32)
            self.register_buffer("dct_t", torch.from_numpy(np.ascontiguousarray(dct_t)), persistent=False)

    def extra_repr(self) -> str:
        return f"preset={self.spec.name!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 2:
            raise ValueError(f"{self.spec.name}: expected waveforms (N, samples) or (N, 1, samples), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[0] == 0:  # MKL's FFT refuses an empty batch
            return x.new_zeros(0, 1, *self.feature_shape(x.shape[-1]), dtype=self.window.dtype)
        parts = self.chunks(x.to(self.window.dtype))
        if len(parts) == 1:
            return self._features(parts[0])
        # Each chunk writes its rows of one preallocated output: no concatenation copy at the end.
        out = parts[0].new_empty(len(x), 1, *self.feature_shape(x.shape[-1]))
        for part, rows in zip(parts, out.split(len(parts[0]))):
            self._features(part, out=rows)
        return out

    def feature_shape(self, samples: int) -> tuple[int, int]:
        """(H, W) of the features of `samples`-long waveforms: (frames, n_mfcc) or (n_mels, frames)."""
        frames = samples // self.spec.hop_length + 1  # centred frames (n_fft // 2 padding on both sides)
        return (frames, self.spec.n_mfcc) if self.spec.kind == "mfcc" else (self.spec.n_mels, frames)

    def chunks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The batch in the pieces forward computes one at a time: on CPU, chunks whose framed signal fits in
        cache are ~2-3x faster than one big STFT; on GPU, and in an exported program (any batch size), one."""
        if x.device.type != "cpu" or torch.compiler.is_exporting() or len(x) <= 1:
            return [x]
        frames = x.shape[1] // self.spec.hop_length + 1
        chunk = max(1, _CPU_CHUNK_ELEMENTS // (frames * self.spec.n_fft))
        return [x] if chunk >= len(x) else list(x.split(chunk))

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """Complex STFT (N, F, T) of waveforms (N, samples): centred, reflect-padded frames, as librosa."""
        spec = self.spec
        if spec.signal_eps:
            x = x + spec.signal_eps
        # Same as torch.stft(center=True, pad_mode="reflect") (tested), but concatenating the two mirrored
        # edges is several times cheaper than reflection_pad1d on CPU.
        x = reflect_pad(x, spec.n_fft // 2)
        # The window is already padded to n_fft (centred), so win_length=n_fft reproduces librosa's framing.
        return torch.stft(x, n_fft=spec.n_fft, hop_length=spec.hop_length, win_length=spec.n_fft,
                          window=self.window, center=False, return_complex=True)

    def _features(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Features (N, 1, H, W) of one chunk, written into `out` when given."""
        spec = self.spec
        stft = self.stft(x)
        # (N, F, T) -> (N, T, F): torch.stft computes frames-major, so this view is contiguous and cheap.
        stft = stft.transpose(1, 2)[..., self.bins[0]:self.bins[1]]
        if spec.spectrum == "power":
            s = torch.view_as_real(stft).flatten(-2).square()  # (N, T, 2F'): re0, im0, re1, im1, ...
        else:
            # sqrt(re^2 + im^2): ~3.5x faster than complex abs on CPU, which rescales like hypot (float32's
            # range is ample for audio magnitudes; same values to 3e-8 here).
            sq = torch.view_as_real(stft).square()
            s = (sq[..., 0] + sq[..., 1]).sqrt_()
        n, frames = s.shape[:2]
        s = s.reshape(n * frames, -1)
        mel = s.new_empty(spec.n_mels, n * frames)  # (n_mels, N * T)
        for i, (start, end, lo, hi) in enumerate(self.fb_blocks):
            torch.mm(getattr(self, f"mel_fb_{i}"), s[:, lo:hi].T, out=mel[start:end])
        if spec.log == "positive":
            # Honk: data[data > 0] = log(data[data > 0]). Entries are >= 0, and exact zeros (digital silence)
            # give -inf, which becomes the 0 Honk leaves there (NaN, not > 0, too).
            mel = mel.log_().nan_to_num_(nan=0.0, posinf=math.inf, neginf=0.0)
        else:
            mel = (mel + spec.log_eps).log_()
        if spec.kind == "mfcc":  # (N, T, n_mfcc): time x coefficient
            if out is None:
                return torch.mm(mel.T, self.dct_t).view(n, 1, frames, -1)
            torch.mm(mel.T, self.dct_t, out=out.view(n * frames, -1))
            return out
        bands = mel.view(-1, n, frames).transpose(0, 1)  # (N, n_mels, T): band x time
        if out is None:
            return bands.unsqueeze(1).contiguous()
        out[:, 0].copy_(bands)
        return out


def build_frontend(preset: str) -> nn.Module:
    """The batched torch feature module of `preset` (UserError if unknown)."""
    return FeatureFrontend(get_spec(preset))


def fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad at the end or crop to `n` samples (Honk's rule)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {wave.shape}")
    import librosa

    return librosa.util.fix_length(wave, size=n)


def repeat_to_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Repeat a clip shorter than `n` samples until it fills `n`, or crop it, along the last axis (the DCASE
    cache's rule: a short fixture clip fills the whole log-mel image instead of ending in silence)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.shape[-1] == 0:
        return np.zeros((*wave.shape[:-1], n), dtype=np.float32)
    reps = -(-n // wave.shape[-1])
    return np.ascontiguousarray(np.tile(wave, (1,) * (wave.ndim - 1) + (reps,))[..., :n])


@functools.cache
def _cached_frontend(preset: str) -> FeatureFrontend:
    return FeatureFrontend(get_spec(preset)).eval()


def compute_features(wave: np.ndarray, preset: str, repeat: bool = False) -> np.ndarray:
    """Features (H, W) float32 of one mono clip, zero-padded (`repeat`: repeated) or cropped to the preset's
    clip length (torch path)."""
    spec = get_spec(preset)
    x = torch.from_numpy((repeat_to_length if repeat else fit_length)(wave, spec.clip_samples))[None]
    with torch.inference_mode():
        return _cached_frontend(spec.name)(x)[0, 0].numpy().copy()
