"""Batched log-mel / MFCC features in torch (presets honk-mfcc, dcase-logmel) and their librosa reference.

`build_frontend(preset)` maps waveforms (N, samples) to (N, 1, H, W): honk-mfcc (N, 1, 101, 40) time x
coefficient for 16000 samples; dcase-logmel (N, 1, 40, 501) band x time for 160000 samples.
"""

from audionas.features.frontend import (
    FeatureFrontend,
    build_frontend,
    compute_features,
    dct_matrix,
    fit_length,
    mel_filterbank,
    repeat_to_length,
    stft_window,
)
from audionas.features.presets import FEATURE_PRESETS, FeatureSpec, get_spec
from audionas.features.reference import librosa_reference

__all__ = [
    "FEATURE_PRESETS",
    "FeatureFrontend",
    "FeatureSpec",
    "build_frontend",
    "compute_features",
    "dct_matrix",
    "fit_length",
    "get_spec",
    "librosa_reference",
    "mel_filterbank",
    "repeat_to_length",
    "stft_window",
]
