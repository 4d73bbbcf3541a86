"""Real speech for the feature tests: espeak-ng says "yes", resampled to 16 kHz."""

import shutil
import subprocess

import numpy as np
import pytest


@pytest.fixture(scope="module")
def speech_yes(tmp_path_factory) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: no real speech to compare the features on")
    import librosa
    import soundfile as sf

    path = tmp_path_factory.mktemp("speech") / "yes.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "yes"], check=True, capture_output=True)
    wave, sr = sf.read(str(path), dtype="float32")
    if sr != 16000:
        wave = librosa.resample(wave, orig_sr=sr, target_sr=16000).astype(np.float32)
    assert 0.2 * 16000 < len(wave) < 16000 and np.abs(wave).max() > 0.1
    return wave
