"""Google Speech Commands v0.01 / v0.02 (official layout) and the 12-class protocol.

Layout: ROOT/<word>/<8-hex speaker>_nohash_<n>.wav, ROOT/_background_noise_/*.wav, ROOT/validation_list.txt,
ROOT/testing_list.txt. Classes are `["_silence_", "_unknown_", *words]`; `_unknown_` = clips of the other
word folders and `_silence_` = background-noise crops, each `ceil(n * pct / 100)` per split for n command-word
clips (TF input_data.py); a pct of 0 drops that class. The layout, splits and clip dataset are those of
`class_folders.py` and `clips.py`, shared with a user's own folder (`folder.py`).
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from audionas.data import DataBundle, DataConfig
from audionas.data.audio import AUDIO_FILES
from audionas.data.class_folders import NOISE_DIR, assign_splits, cap, load_noise, open_dataset, warn_capped
from audionas.data.clips import finish
from audionas.errors import UserError, warn

SPEECH_COMMANDS_V1_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                            "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
SPEECH_COMMANDS_V2_WORDS = SPEECH_COMMANDS_V1_WORDS + ("backward", "forward", "follow", "learn", "visual")
BACKGROUND_NOISE_NAMES = ("doing_the_dishes", "dude_miaowing", "exercise_bike", "pink_noise", "running_tap",
                          "white_noise")  # the wavs of v0.01's _background_noise_ folder
SILENCE, UNKNOWN = "_silence_", "_unknown_"


def _missing_word_hint(word: str, folders: dict) -> str:
    """Why a data.words entry has no folder: a v0.02 word in a v0.01 set, or not Speech Commands at all."""
    if not set(folders) & set(SPEECH_COMMANDS_V1_WORDS):
        # "train with": evaluate (--data DIR) reads data the way the run was trained and takes no override
        return "for a folder-per-class dataset of your own, train with data.kind=folder"
    v2_only = set(SPEECH_COMMANDS_V2_WORDS) - set(SPEECH_COMMANDS_V1_WORDS)
    if word in v2_only and not set(folders) & v2_only:
        return "a v0.02 word, and this dataset has none of them: Speech Commands v0.01?"
    return "not a word of this dataset"


def build(cfg: DataConfig, seed: int = 0, checked: Collection[str] | None = None,
          training: bool = True) -> DataBundle:
    """Speech Commands with the 12-class protocol (`words` + `_silence_` + `_unknown_`)."""
    spec, root, folders = open_dataset(cfg, "the Speech Commands layout ROOT/<word>/*.wav",
                                       lambda name: name in cfg.words)  # other words: only `_unknown_` clips
    if spec.clip_samples != spec.sample_rate:  # Speech Commands clips are at most 1 s
        seconds = spec.clip_samples / spec.sample_rate
        effect = (f"{1 - 1 / seconds:.0%} of each input is zero padding" if seconds > 1
                  else f"clips are cropped to {seconds:g} s")
        warn(f"data.feature={spec.name} makes {seconds:g} s inputs and Speech Commands clips are "
             f"1 s: {effect} (honk-mfcc is the keyword recipe)")
    words = list(cfg.words)
    if not words or len(set(words)) != len(words) or {SILENCE, UNKNOWN} & set(words):
        raise UserError(f"config field 'data.words': expected distinct word folder names, got {words}")
    made = [c for c in (SILENCE, UNKNOWN) if c in folders]
    if made:  # its _silence_ clips would be read as one more unknown word
        raise UserError(f"{root / made[0]}: a folder of the 12-class protocol's own: this looks like the "
                        f"labelled test-set archive (speech_commands_test_set_v0.02), which audionas does "
                        f"not read; train and test on the full dataset's folder (its lists give the test "
                        f"split)")
    if NOISE_DIR in words:
        raise UserError(f"config field 'data.words': {NOISE_DIR} holds the background noise, not a word")
    for w in words:
        if w not in folders:
            hint = _missing_word_hint(w, folders)
            raise UserError(f"{root / w}: word folder not found (listed in data.words; {hint})")
        if not folders[w]:
            raise UserError(f"{root / w}: no {AUDIO_FILES} in this word folder")
    if cfg.unknown_pct > 0 and set(folders) <= set(words):
        raise UserError(f"config field 'data.words': names every word folder of {root}, so no other words "
                        f"are left for '{UNKNOWN}'; set data.unknown_pct=0 to train without that class")
    # Choice: silence_pct=0 / unknown_pct=0 drop that class (TF keeps a label no clip has; no run wants an
    # output it never trains).
    classes = [c for c, pct in ((SILENCE, cfg.silence_pct), (UNKNOWN, cfg.unknown_pct)) if pct > 0] + words
    label_of = {c: k for k, c in enumerate(classes)}
    parts = assign_splits(root, folders, cfg)
    need_noise = cfg.silence_pct > 0 or (cfg.augment and cfg.noise_prob > 0)
    noise = load_noise(root, spec.sample_rate, spec.clip_samples, cfg.mixdown, training) if need_noise else []
    if need_noise and not noise:
        raise UserError(f"{root / NOISE_DIR}: no background noise wavs (needed for '{SILENCE}' and "
                        f"noise augmentation; set data.silence_pct=0 data.augment=false to run without)")
    split_items: list[list[tuple[str | None, int]]] = []
    word_clips = word_kept = 0  # the words' clips, and those data.limit_per_class keeps
    for s, rels in enumerate(parts):
        rng = np.random.default_rng([int(cfg.split_seed) % 2**32, s])
        by_word: dict[str, list[str]] = {w: [] for w in words}
        unknown: list[str] = []
        for rel in rels:
            w = rel.split("/")[0]
            (by_word[w] if w in by_word else unknown).append(rel)
        items: list[tuple[str | None, int]] = []
        for w in words:
            kept = cap(by_word[w], cfg.limit_per_class, rng)
            items += [(rel, label_of[w]) for rel in kept]
            word_clips, word_kept = word_clips + len(by_word[w]), word_kept + len(kept)
        n = len(items)
        n_unknown = math.ceil(n * cfg.unknown_pct / 100)
        n_silence = math.ceil(n * cfg.silence_pct / 100)
        if cfg.limit_per_class > 0:
            n_unknown, n_silence = min(n_unknown, cfg.limit_per_class), min(n_silence, cfg.limit_per_class)
        # TF input_data.py: shuffle the other words' clips with the seed, take the first ceil(n * pct / 100).
        chosen = [unknown[i] for i in rng.permutation(len(unknown))[:n_unknown]]
        items += [(rel, label_of[UNKNOWN]) for rel in sorted(chosen)]
        if n_silence:
            items += [(None, label_of[SILENCE])] * n_silence
        split_items.append(items)
    warn_capped(root, cfg.limit_per_class, word_kept, word_clips)
    return finish(root, split_items, classes, cfg, seed, noise, checked=checked, training=training)
