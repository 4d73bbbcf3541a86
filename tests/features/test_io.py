"""features.io: reading the clip a feature command or predict uses."""

import numpy as np
import pytest
import soundfile as sf

from audionas.data.audio import load_wav
from audionas.features import get_spec
from audionas.features.io import load_channels, load_clip


@pytest.mark.parametrize("rate, seconds", [(16000, 30.0), (44100, 30.0), (16000, 1.0 + 1 / 16000),
                                           (8000, 0.5), (16000, 1.0)])
def test_only_the_head_of_a_long_file_is_read_and_it_is_the_whole_files_head(tmp_path, rate, seconds):
    # Before (QA): the whole file was decoded (and resampled) for its first clip: 1.7 GB for a 3-hour wav.
    spec = get_spec("honk-mfcc")
    x = (0.1 * np.random.default_rng(0).standard_normal((int(round(seconds * rate)), 2))).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    whole = load_wav(path, 16000, channels=2, warn_resample=False)
    head = load_channels(path, spec, warn_resample=False)
    clip = load_clip(path, spec, channel=1, warn_resample=False)
    n = spec.clip_samples
    assert np.array_equal(head[:, :n], whole[:, :n]) and np.array_equal(clip, head[1])
    if whole.shape[1] > n:  # a longer file is still seen to be longer (the "only the first 1 s" warning)
        assert n < head.shape[1] <= n + 16000 + 1
    else:
        assert head.shape == whole.shape


def test_the_features_of_a_long_file_are_those_of_its_first_seconds(tmp_path, capsys):
    from audionas.cli import main

    x = (0.1 * np.random.default_rng(1).standard_normal(16000 * 60)).astype(np.float32)
    sf.write(tmp_path / "long.wav", x, 16000, subtype="FLOAT")
    sf.write(tmp_path / "cut.wav", x[:16000 * 2], 16000, subtype="FLOAT")
    for name in ("long", "cut"):
        with pytest.warns(UserWarning, match="longer than 1 s"):
            assert main(["features", "--preset", "honk-mfcc", str(tmp_path / f"{name}.wav"), "--out",
                         str(tmp_path / f"{name}.npy")]) == 0
    capsys.readouterr()
    assert np.array_equal(np.load(tmp_path / "long.npy"), np.load(tmp_path / "cut.npy"))


def test_the_channels_of_a_mono_file_are_one_row(tmp_path):
    # (channels, frames) also for a mono file: `predict --channel mean` iterates over its rows.
    spec = get_spec("honk-mfcc")
    x = (0.1 * np.random.default_rng(2).standard_normal(8000)).astype(np.float32)
    sf.write(tmp_path / "mono.wav", x, 16000, subtype="FLOAT")
    rows = load_channels(tmp_path / "mono.wav", spec, warn_resample=False)
    assert rows.shape == (1, 8000)
    assert np.array_equal(rows[0], load_clip(tmp_path / "mono.wav", spec, warn_resample=False))
