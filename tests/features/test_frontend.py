import dataclasses

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn as nn

from audionas.errors import UserError
from audionas.features import (
    FEATURE_PRESETS,
    FeatureSpec,
    build_frontend,
    compute_features,
    dct_matrix,
    fit_length,
    librosa_reference,
)
from audionas.inference import InferenceModel


def test_presets_declare_paper_shapes():
    assert FEATURE_PRESETS["honk-mfcc"].output_shape == (101, 40)
    assert FEATURE_PRESETS["dcase-logmel"].output_shape == (40, 501)
    spec = FEATURE_PRESETS["dcase-logmel"]
    assert isinstance(spec, FeatureSpec)
    assert (spec.win_length, spec.hop_length, spec.n_fft) == (640, 320, 1024)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_mels = 64  # frozen


@pytest.mark.parametrize("preset", ["honk-mfcc", "dcase-logmel"])
def test_module_output_shape_and_input_forms(preset):
    spec = FEATURE_PRESETS[preset]
    x = torch.randn(2, spec.clip_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    front = build_frontend(preset)
    with torch.no_grad():
        out2 = front(x)
        out3 = front(x[:, None])
    assert out2.shape == (2, 1, *spec.output_shape) and out2.dtype == torch.float32
    assert torch.equal(out2, out3)
    with pytest.raises(ValueError):
        front(x[0])
    # An empty batch gives no rows (before: MKL's FFT error), from the waveform inference model too.
    assert front(x[:0]).shape == (0, 1, *spec.output_shape)
    model = InferenceModel(nn.Flatten(), front, True, (spec.clip_samples,))
    assert model(x[:0]).shape == (0, int(np.prod(spec.output_shape)))


def test_unknown_preset_is_user_error_listing_known():
    for fn in (lambda: build_frontend("mfcc-honk"), lambda: compute_features(np.zeros(10), "mfcc-honk"),
               lambda: librosa_reference(np.zeros(10), "mfcc-honk")):
        with pytest.raises(UserError) as e:
            fn()
        msg = str(e.value)
        assert "mfcc-honk" in msg and "honk-mfcc" in msg and "dcase-logmel" in msg


def test_dct_matrix_is_scipy_orthonormal_dct2():
    d = dct_matrix(40, 40)
    np.testing.assert_allclose(d, scipy.fft.dct(np.eye(40), type=2, norm="ortho", axis=0), atol=1e-12)
    np.testing.assert_allclose(d @ d.T, np.eye(40), atol=1e-12)
    x = np.random.default_rng(0).normal(size=(40, 7))
    expected = scipy.fft.dct(x, norm="ortho", axis=0)[:13]
    np.testing.assert_allclose(dct_matrix(13, 40) @ x, expected, atol=1e-12)


def test_fit_length_pads_at_end_and_crops():
    np.testing.assert_array_equal(fit_length(np.ones(3), 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fit_length(np.arange(6), 4), [0, 1, 2, 3])
    assert fit_length(np.ones(3), 5).dtype == np.float32


def test_silence_gives_finite_features():
    # Honk's rule logs only positive mel energies, so digital silence stays exactly 0 (no -inf, no NaN).
    z = compute_features(np.zeros(16000, np.float32), "honk-mfcc")
    assert np.isfinite(z).all() and np.all(z == 0)
    np.testing.assert_array_equal(librosa_reference(np.zeros(16000), "honk-mfcc"), z)
    half = np.zeros(16000, np.float32)
    half[:4000] = np.random.default_rng(0).normal(scale=0.1, size=4000)
    assert np.isfinite(compute_features(half, "honk-mfcc")).all()
    d = compute_features(np.zeros(100, np.float32), "dcase-logmel")
    assert np.isfinite(d).all() and d.max() < -30  # log(mel + eps), eps = 2.2e-16
    np.testing.assert_allclose(d, librosa_reference(np.zeros(100), "dcase-logmel"), atol=1e-3)


@pytest.mark.parametrize("preset", ["honk-mfcc", "dcase-logmel"])
def test_matches_librosa_reference_on_real_speech(speech_yes, preset):
    ours = compute_features(speech_yes, preset)
    ref = librosa_reference(speech_yes, preset)
    assert ours.shape == ref.shape == FEATURE_PRESETS[preset].output_shape
    assert np.abs(ref).max() > 1.0  # real content, not an all-zero comparison
    assert np.abs(ours - ref).max() <= 1e-3


def test_batch_equals_single_clips(speech_yes):
    spec = FEATURE_PRESETS["honk-mfcc"]
    clips = [speech_yes, np.roll(fit_length(speech_yes, 16000), 3000), 0.3 * speech_yes[2000:]]
    batch = torch.from_numpy(np.stack([fit_length(c, spec.clip_samples) for c in clips]))
    with torch.no_grad():
        out = build_frontend("honk-mfcc")(batch).numpy()
    for i, c in enumerate(clips):
        np.testing.assert_allclose(out[i, 0], compute_features(c, "honk-mfcc"), atol=1e-4)
    assert np.abs(out[0, 0] - out[1, 0]).max() > 1.0


@pytest.mark.parametrize("preset", ["honk-mfcc", "dcase-logmel"])
def test_chunked_batch_equals_one_piece(preset, monkeypatch):
    # A batch forward cuts into several chunks (the last one shorter) and writes them into one output.
    import audionas.features.frontend as frontend

    spec = FEATURE_PRESETS[preset]
    x = torch.randn(5, spec.clip_samples // 4, generator=torch.Generator().manual_seed(2)) * 0.1
    front = build_frontend(preset)
    with torch.no_grad():
        whole = front._features(x)
        frames = x.shape[1] // spec.hop_length + 1
        monkeypatch.setattr(frontend, "_CPU_CHUNK_ELEMENTS", 2 * frames * spec.n_fft)
        assert [len(p) for p in front.chunks(x)] == [2, 2, 1]
        chunked = front(x)
    assert chunked.shape == whole.shape == (5, 1, *front.feature_shape(x.shape[1]))
    assert torch.equal(chunked, whole)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_gpu(speech_yes):
    x = torch.from_numpy(fit_length(speech_yes, 16000))[None]
    with torch.no_grad():
        out = build_frontend("honk-mfcc").cuda()(x.cuda()).cpu()[0, 0].numpy()
    np.testing.assert_allclose(out, compute_features(speech_yes, "honk-mfcc"), atol=1e-3)


@pytest.mark.parametrize("preset", ["honk-mfcc", "dcase-logmel"])
def test_matches_reference_at_clip_edges(preset):
    # Loud from the first to the last sample, so the reflect padding and window centring must agree.
    spec = FEATURE_PRESETS[preset]
    t = np.arange(spec.clip_samples) / spec.sample_rate
    rng = np.random.default_rng(1)
    wave = (0.5 * np.sin(2 * np.pi * 440 * t) + rng.normal(scale=0.05, size=t.size)).astype(np.float32)
    np.testing.assert_allclose(compute_features(wave, preset), librosa_reference(wave, preset), atol=1e-3)


def test_reflect_pad_equals_torch_stft_centring():
    from audionas.features.frontend import reflect_pad

    x = torch.randn(3, 1000, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(reflect_pad(x, 240).numpy(),
                                  np.pad(x.numpy(), ((0, 0), (240, 240)), mode="reflect"))
    w = torch.hann_window(480)
    ours = torch.stft(reflect_pad(x, 240), 480, 160, window=w, center=False, return_complex=True)
    ref = torch.stft(x, 480, 160, window=w, center=True, pad_mode="reflect", return_complex=True)
    torch.testing.assert_close(ours, ref)
    with pytest.raises(ValueError):
        reflect_pad(x[:, :240], 240)


@pytest.mark.parametrize("preset", ["honk-mfcc", "dcase-logmel"])
def test_filterbank_blocks_hold_every_nonzero_weight(preset):
    from audionas.features.frontend import mel_filterbank

    spec = FEATURE_PRESETS[preset]
    front = build_frontend(preset)
    fb = mel_filterbank(spec)
    rebuilt = np.zeros_like(fb)
    repeat = 2 if spec.spectrum == "power" else 1  # interleaved re, im columns
    for i, (start, end, lo, hi) in enumerate(front.fb_blocks):
        block = getattr(front, f"mel_fb_{i}").numpy()
        assert block.shape == (end - start, hi - lo)
        cols = np.arange(lo, hi)
        if repeat == 2:
            np.testing.assert_array_equal(block[:, 0::2], block[:, 1::2])
            block, cols = block[:, 0::2], cols[0::2] // 2
        rebuilt[start:end, front.bins[0] + cols] = block
    np.testing.assert_array_equal(rebuilt, fb)


def test_repeat_to_length_fills_by_repeating_and_crops():
    from audionas.features import repeat_to_length

    np.testing.assert_array_equal(repeat_to_length(np.arange(3), 7), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(repeat_to_length(np.arange(6), 4), [0, 1, 2, 3])
    two = repeat_to_length(np.array([[1, 2], [3, 4]]), 5)  # (channels, samples): along the last axis
    np.testing.assert_array_equal(two, [[1, 2, 1, 2, 1], [3, 4, 3, 4, 3]])
    assert two.dtype == np.float32 and repeat_to_length(np.zeros(0), 4).tolist() == [0, 0, 0, 0]
