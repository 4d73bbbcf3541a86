"""The two feature recipes against librosa called with the papers' numbers written out (not read from the
presets: `librosa_reference` follows the preset, so a wrong preset value would pass the other tests)."""

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from audionas.features import compute_features, get_spec


def _wave(seconds: float) -> np.ndarray:
    # tones across the band (one below Honk's 20 Hz floor, ones above its 4 kHz ceiling) plus noise
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(3)
    tones = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((10, 0.3), (300, 0.2), (1800, 0.1), (5000, 0.3),
                                                           (7000, 0.2)))
    return (tones + rng.normal(scale=0.02, size=t.size)).astype(np.float32)


def test_honk_mfcc_is_the_kws_recipe():
    # castorini/honk: 16 kHz, 40 mels, n_fft 480, hop 160, 20-4000 Hz, power 2, Hann, centred (reflect),
    # log of positive entries, orthonormal DCT-II, 40 coefficients; (time, coefficient)
    y = _wave(1.0)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_mels=40, n_fft=480, hop_length=160, fmin=20,
                                         fmax=4000, power=2.0, window="hann", center=True, pad_mode="reflect")
    mel[mel > 0] = np.log(mel[mel > 0])
    want = scipy.fft.dct(mel, type=2, norm="ortho", axis=0)[:40].T
    got = compute_features(y, "honk-mfcc")
    assert got.shape == want.shape == (101, 40)
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_dcase_logmel_is_the_task5_baseline_recipe():
    # DCASE2018 task 5 baseline: 16 kHz, 40 ms periodic Hamming window in a 1024-point FFT, 20 ms hop,
    # 40 mels 50-8000 Hz on the magnitude spectrum, log(mel + eps) of (y + eps); (band, time)
    y = _wave(10.0)
    eps = np.spacing(1)
    window = scipy.signal.get_window("hamming", 640, fftbins=True)
    s = np.abs(librosa.stft(y + np.float32(eps), n_fft=1024, win_length=640, hop_length=320, window=window,
                            center=True, pad_mode="reflect"))
    want = np.log(librosa.filters.mel(sr=16000, n_fft=1024, n_mels=40, fmin=50, fmax=8000) @ s + eps)
    got = compute_features(y, "dcase-logmel")
    assert got.shape == want.shape == (40, 501)
    np.testing.assert_allclose(got, want, atol=1e-3)
    # digital silence shows the eps added to the waveform (without it the floor is lower by up to 0.08)
    s = np.abs(librosa.stft(np.full(160000, eps, np.float32), n_fft=1024, win_length=640, hop_length=320,
                            window=window, center=True, pad_mode="reflect"))
    want = np.log(librosa.filters.mel(sr=16000, n_fft=1024, n_mels=40, fmin=50, fmax=8000) @ s + eps)
    silence = compute_features(np.zeros(160000, np.float32), "dcase-logmel")
    np.testing.assert_allclose(silence, want, atol=1e-3)


def test_a_preset_at_another_input_length_is_that_recipe_on_longer_or_shorter_clips():
    # Before (own-sounds QA): the input length was 1 s or 10 s, so a user's 2-4 s sounds lost all but 1 s.
    import pytest

    from audionas.errors import UserError
    from audionas.features import get_spec

    base, two = get_spec("honk-mfcc"), get_spec("honk-mfcc@2s")
    assert (two.clip_samples, two.output_shape, two.name) == (32000, (201, 40), "honk-mfcc@2s")
    assert {**vars(two), "clip_samples": 0, "name": ""} == {**vars(base), "clip_samples": 0, "name": ""}
    assert get_spec("dcase-logmel@2.5s").output_shape == (40, 126)
    wave = _wave(2.0)
    longer, first = compute_features(wave, "honk-mfcc@2s"), compute_features(wave[:16000], "honk-mfcc")
    assert longer.shape == (201, 40)  # frames that end within the first second are the 1 s input's
    np.testing.assert_allclose(longer[:98], first[:98], atol=1e-4)
    for bad in ("honk-mfcc@0s", "honk-mfcc@2", "honk-mfcc@1e3s", "honk-mfcc@601s", "honk-mfcc@0.01s"):
        with pytest.raises(UserError, match=rf"^feature preset '{bad}': expected honk-mfcc@Xs with X seconds "
                                            r"from 0.03 to 600, e.g. honk-mfcc@2s$"):
            get_spec(bad)
    with pytest.raises(UserError, match=r"'mfcc@2s': unknown \(known: dcase-logmel, honk-mfcc.*, each also "):
        get_spec("mfcc@2s")


@pytest.mark.parametrize("preset, samples, shape", [
    ("honk-mfcc@0.03s", 480, (4, 40)),  # one window: the shortest length taken
    ("dcase-logmel@0.04s", 640, (40, 3)),
    ("honk-mfcc@600s", 9_600_000, (60001, 40)),  # MAX_SECONDS itself is taken
    ("honk-mfcc@2.03s", 32480, (204, 40)),  # 2.03 * 16000 = 32479.999...: rounded, not truncated
    ("honk-mfcc@.5s", 8000, (51, 40)),
])
def test_a_preset_length_at_the_bounds_and_between_samples(preset, samples, shape):
    spec = get_spec(preset)
    assert (spec.clip_samples, spec.output_shape) == (samples, shape)


def test_each_preset_says_which_axis_time_runs_along():
    assert get_spec("honk-mfcc").time_axis == get_spec("honk-mfcc@2s").time_axis == "h"  # (time, coefficient)
    assert get_spec("dcase-logmel").time_axis == "w"  # (band, time)
