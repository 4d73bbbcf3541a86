"""Tiny datasets in the official on-disk layouts, made of synthetic tones and noise (for tests, < 1 s)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audionas.data.audio import save_wav
from audionas.data.speech_commands import (
    BACKGROUND_NOISE_NAMES,
    SPEECH_COMMANDS_V1_WORDS,
    SPEECH_COMMANDS_V2_WORDS,
)
from audionas.data.splits import which_set
from audionas.data.synth import shaped_noise

SAMPLE_RATE = 16000


def fixture_speakers(n: int, val_pct: float = 10.0, test_pct: float = 10.0) -> list[str]:
    """`n` 8-hex speaker ids chosen so that the TF hash rule puts about 20% in validation and 20% in testing.

    With n >= 3 every split gets at least one speaker, so tiny fixtures exercise all three splits.
    """
    n_val = max(1, round(0.2 * n)) if n >= 3 else 0
    n_test = n_val
    want = {"validation": n_val, "testing": n_test, "training": n - n_val - n_test}
    got: dict[str, list[str]] = {k: [] for k in want}
    rng = np.random.default_rng(12345)
    while any(len(got[k]) < want[k] for k in want):
        sid = f"{int(rng.integers(0, 2**32)):08x}"
        s = which_set(f"{sid}_nohash_0.wav", val_pct, test_pct)
        if len(got[s]) < want[s] and all(sid not in v for v in got.values()):
            got[s].append(sid)
    return sorted(sum(got.values(), []))


def make_speech_commands_fixture(root: str | Path, words: Sequence[str] | None = None, speakers: int = 5,
                                 per_word: int = 1, version: int = 1, with_lists: bool = True,
                                 noise_seconds: float = 2.0, seed: int = 0) -> Path:
    """Write a tiny Speech Commands dataset in the official layout under `root`; returns `root`.

    One folder per word with `<8-hex speaker>_nohash_<n>.wav` (16 kHz mono PCM-16, <= 1 s, a word-specific
    tone plus noise, so a model can learn it), `_background_noise_/` with the six official noise names, and
    `validation_list.txt` / `testing_list.txt` following the TF hash rule (when `with_lists`).
    """
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2, got {version}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    words = list(words) if words is not None else list(
        SPEECH_COMMANDS_V1_WORDS if version == 1 else SPEECH_COMMANDS_V2_WORDS)
    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    speaker_ids = fixture_speakers(speakers)
    for w_idx, word in enumerate(words):
        for spk in speaker_ids:
            for rep in range(per_word):
                name = f"{spk}_nohash_{rep}.wav"
                n = SAMPLE_RATE if rng.random() < 0.8 else int(rng.integers(SAMPLE_RATE // 2, SAMPLE_RATE))
                f0 = 150.0 + 90.0 * w_idx + rng.uniform(-5, 5)
                x = 0.3 * np.sin(2 * np.pi * f0 * t[:n]) * np.hanning(n) + 0.01 * rng.standard_normal(n)
                save_wav(root / word / name, x, SAMPLE_RATE)
                s = which_set(name)
                if s in lists:
                    lists[s].append(f"{word}/{name}")
    n_noise = int(noise_seconds * SAMPLE_RATE)
    for i, name in enumerate(BACKGROUND_NOISE_NAMES):
        if name == "white_noise":
            x = rng.standard_normal(n_noise) * 0.2
        else:  # pink, peak 0.5
            x = shaped_noise(rng, n_noise, 1.0)
            x *= 0.5 / (np.abs(x).max() + 1e-9)
        x *= 1.0 + 0.5 * np.sin(2 * np.pi * (0.5 + i) * np.arange(n_noise) / SAMPLE_RATE)
        save_wav(root / "_background_noise_" / f"{name}.wav", np.clip(x, -1, 1), SAMPLE_RATE)
    if with_lists:
        for s, fname in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
            (root / fname).write_text("".join(f"{p}\n" for p in sorted(lists[s])))
    return root


def make_folder_fixture(root: str | Path, classes: Sequence[str] = ("dog_bark", "alarm", "clap"),
                        per_class: int = 10, noise: bool = False, seed: int = 0) -> Path:
    """A user's own sounds: `root/<class>/<speaker>_nohash_0.wav`, one tone per class, 0.25-1.25 s long.

    Clips are shorter and longer than one second (to exercise pad and crop); no list files, so splits fall
    back to the hash rule; `noise` adds `_background_noise_/hum.wav`.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    speakers = fixture_speakers(per_class)
    for k, c in enumerate(classes):
        for spk in speakers:
            n = int(rng.integers(4000, 20000))
            x = 0.3 * np.sin(2 * np.pi * (300 + 200 * k) * np.arange(n) / SAMPLE_RATE)
            save_wav(root / c / f"{spk}_nohash_0.wav", x, SAMPLE_RATE)
    if noise:
        save_wav(root / "_background_noise_" / "hum.wav", 0.2 * rng.standard_normal(24000), SAMPLE_RATE)
    return root
