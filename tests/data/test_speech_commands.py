import hashlib
import math
import re
import shutil
import warnings

import numpy as np
import pytest
import torch

from audionas.data import DataConfig, build_data
from audionas.data.audio import load_wav
from audionas.data.class_folders import speaker_of
from audionas.data.clips import augment_config
from audionas.data.fixtures import make_speech_commands_fixture
from audionas.data.splits import which_set
from audionas.errors import UserError

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def tf_which_set(filename, val=10.0, test=10.0):
    """TF input_data.which_set, written out independently of audionas.data.splits."""
    base = filename.split("/")[-1]
    name = re.sub(r"_nohash_.*$", "", base)
    h = hashlib.sha1(name.encode()).hexdigest()
    p = (int(h, 16) % (2**27)) * (100.0 / (2**27 - 1))
    return "validation" if p < val else "testing" if p < val + test else "training"


def cfg(root, **kw):
    return DataConfig(root=str(root), **kw)


def paths(ds):
    return [p for p, _ in ds.items if p is not None]


def test_fixture_layout(speech_commands_root):
    root = speech_commands_root
    assert len([d for d in root.iterdir() if d.is_dir() and d.name != "_background_noise_"]) == 30
    names = sorted(p.stem for p in (root / "_background_noise_").glob("*.wav"))
    assert names == ["doing_the_dishes", "dude_miaowing", "exercise_bike", "pink_noise", "running_tap",
                     "white_noise"]
    for f in (root / "yes").iterdir():
        assert re.fullmatch(r"[0-9a-f]{8}_nohash_\d+\.wav", f.name)
    for line in (root / "testing_list.txt").read_text().split():
        assert (root / line).is_file() and which_set(line) == "testing"


def test_hash_rule_known_names():
    names = ["0a7c2a8d_nohash_0.wav", "bird/0a7c2a8d_nohash_3.wav", "ffd2ba2f_nohash_1.wav",
             "c1d39ce8_nohash_0.wav", "3a32b18d_nohash_0.wav", "641fc168_nohash_0.wav",
             "c9e4c4de_nohash_0.wav", "no_hash_marker.wav"]
    for n in names:
        for v, t in ((10, 10), (20, 5), (0, 0)):
            assert which_set(n, v, t) == tf_which_set(n, v, t)
    assert which_set("yes/641fc168_nohash_0.wav") == "testing"  # a speaker of the fixture
    assert which_set("yes/c9e4c4de_nohash_0.wav") == "validation"
    assert which_set("a/641fc168_nohash_0.wav") == which_set("b/641fc168_nohash_7.wav")


def test_twelve_class_counts(speech_commands_root):
    b = build_data(cfg(speech_commands_root, split="hash"), seed=0)
    assert b.classes == ["_silence_", "_unknown_", *WORDS]
    assert b.input_shape == (1, 101, 40)
    for ds in (b.train, b.val, b.test):
        c = ds.counts()
        n = sum(c[w] for w in WORDS)
        assert n > 0
        assert c["_silence_"] == math.ceil(n * 10 / 100) and c["_unknown_"] == math.ceil(n * 10 / 100)
        for p, y in ds.items:
            if y == 1:
                assert p.split("/")[0] not in WORDS
            elif y >= 2:
                assert p.split("/")[0] == WORDS[y - 2]
    b2 = build_data(cfg(speech_commands_root, split="hash", silence_pct=25, unknown_pct=15), seed=0)
    n = sum(b2.train.counts()[w] for w in WORDS)
    assert b2.train.counts()["_silence_"] == math.ceil(n * 0.25)
    assert b2.train.counts()["_unknown_"] == math.ceil(n * 0.15)


def test_a_pct_of_zero_drops_its_class_without_warnings(tmp_path):
    # Before: the class stayed (an output no clip trains) with warnings to give it more clips.
    import warnings

    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=10)
    for pct, kept in ((dict(silence_pct=0), "_unknown_"), (dict(unknown_pct=0), "_silence_")):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            b = build_data(cfg(root, split="ratio", words=["yes", "no"], **pct), seed=0)
        assert b.classes == [kept, "yes", "no"]
        assert not [w for w in record if "_silence_" in str(w.message) or "_unknown_" in str(w.message)]
        for ds in (b.train, b.val, b.test):
            assert sorted(ds.counts().values())[0] > 0  # every class has clips, labels match classes
            for p, y in ds.items:
                assert b.classes[y] == (kept if p is None or p.startswith("bed/") else p.split("/")[0])


def test_a_word_folder_that_is_no_class_may_have_any_name(tmp_path):
    # Before (search QA): a non-target word folder named in Latin-1 (or with a tab) was refused as a class
    # folder name, though its clips are only `_unknown_` ones; a target word's folder is still refused.
    import os

    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed", "cat"], speakers=10)
    os.rename(root / "bed", os.fsencode(root) + b"/b\xe9d")
    os.rename(root / "cat", root / "c\tat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = build_data(cfg(root, split="hash", words=["yes", "no"], unknown_pct=100), seed=0)
    assert b.classes == ["_silence_", "_unknown_", "yes", "no"]
    unknown = {p.split("/")[0] for ds in (b.train, b.val, b.test) for p, y in ds.items if y == 1}
    assert unknown == {"b\udce9d", "c\tat"}
    x, y = next((b.train[i] for i, (p, _) in enumerate(b.train.items) if p and p.startswith("b\udce9d/")))
    assert x.shape == (16000,) and b.classes[y] == "_unknown_"
    with pytest.raises(UserError, match=r"c\\tat: a class folder name with a control character"):
        build_data(cfg(root, split="hash", words=["yes", "c\tat"]), seed=0)


def test_mixdown_reads_speech_commands_clips_and_noise_of_several_channels(tmp_path):
    import soundfile as sf

    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=6)
    clip = next((root / "yes").glob("*.wav"))
    mono = sf.read(clip, dtype="float32")[0]
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    sf.write(clip, stereo, 16000, subtype="FLOAT")
    noise = next((root / "_background_noise_").glob("*.wav"))
    hum = sf.read(noise, dtype="float32")[0]
    sf.write(noise, np.stack([hum, -hum], axis=1), 16000, subtype="FLOAT")
    said = rf"{re.escape(str(noise))}: expected 1 channel\(s\), got 2; .*data\.mixdown=true"
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, split="hash", words=["yes", "no"]), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = build_data(cfg(root, split="hash", words=["yes", "no"], mixdown=True, augment=False), seed=0)
    assert any(np.allclose(n, 0.0) for n in b.train.noise)  # the hum's two channels cancel out
    rel = f"yes/{clip.name}"
    ds = next(ds for ds in (b.train, b.val, b.test) if rel in [p for p, _ in ds.items])
    x, _ = ds[[p for p, _ in ds.items].index(rel)]
    np.testing.assert_allclose(x.numpy()[:len(mono)], 0.75 * mono, atol=1e-6)


def test_clips_at_another_rate_or_longer_are_warned_about_once(tmp_path):
    # Before: a warning per resampled clip each epoch, and a clip longer than 1 s was cut without a word.
    import warnings

    import soundfile as sf

    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=6)
    slow = sorted((root / "yes").glob("*.wav"))[:3]
    for f in slow:
        x, _ = sf.read(f, dtype="float32")
        sf.write(f, x[::2], 8000)
    long = sorted((root / "no").glob("*.wav"))[0]
    x = np.linspace(-0.5, 0.5, 24000, dtype=np.float32)
    sf.write(long, x, 16000, subtype="FLOAT")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        b = build_data(cfg(root, split="hash", words=["yes", "no"], augment=False), seed=0)
        for epoch in (0, 1):
            b.train.set_epoch(epoch)
            for ds in (b.train, b.val, b.test):
                for i in range(len(ds)):
                    assert ds[i][0].shape == (16000,)
    said = [str(w.message) for w in record]
    resampled = [m for m in said if "Hz" in m]
    assert len(resampled) == 1 and resampled[0].startswith(f"{root}: 3 of ")
    assert "8000 Hz" in resampled[0]
    longer = [m for m in said if "longer" in m]
    n = sum(len(paths(d)) for d in (b.train, b.val, b.test))
    assert longer == [f"{root}: 1 of {n} clips are longer than 1 s (e.g. {long}); only their first 1 s are "
                      "used"]
    ds = next(d for d in (b.train, b.val, b.test) if f"no/{long.name}" in paths(d))
    i = [p for p, _ in ds.items].index(f"no/{long.name}")
    np.testing.assert_allclose(ds[i][0].numpy(), x[:16000])


def test_unknown_choice_is_seeded(tmp_path):
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed", "bird", "cat", "dog"],
                                        speakers=10)
    c = dict(split="hash", words=["yes", "no"], unknown_pct=50)

    def unknown(split_seed, seed=0):
        ds = build_data(cfg(root, split_seed=split_seed, **c), seed=seed).train
        return [p for p, y in ds.items if y == 1]

    assert unknown(0) == unknown(0) == unknown(0, seed=3)  # the run seed does not pick the clips
    assert {tuple(unknown(s)) for s in range(6)} != {tuple(unknown(0))}


@pytest.mark.parametrize("val, test", [(10, 10), (5, 15)])
def test_hash_split_follows_tf_rule(speech_commands_root, val, test):
    b = build_data(cfg(speech_commands_root, split="hash", val_pct=val, test_pct=test), seed=0)
    for ds, name in ((b.train, "training"), (b.val, "validation"), (b.test, "testing")):
        assert paths(ds) and all(tf_which_set(p, val, test) == name for p in paths(ds))


def _lists_bundle(tmp_path, validation, testing):
    """The 'lists' split of a yes/no/bed fixture whose list files hold the clips the two callables name
    (each given the sorted yes/ and no/ clip paths)."""
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=5)
    yes, no = (sorted(f"{w}/{f.name}" for f in (root / w).iterdir()) for w in ("yes", "no"))
    (root / "validation_list.txt").write_text("".join(f"{p}\n" for p in validation(yes, no)))
    (root / "testing_list.txt").write_text("".join(f"{p}\n" for p in testing(yes, no)))
    return build_data(cfg(root, split="lists", words=["yes", "no"]), seed=0), yes


def test_lists_split_follows_list_files(tmp_path):
    b, all_yes = _lists_bundle(tmp_path, lambda yes, no: [yes[0]], lambda yes, no: [yes[1], no[0]])
    assert paths(b.val) == [all_yes[0]]
    assert set(all_yes[:2]).isdisjoint(paths(b.train))
    assert all_yes[1] in paths(b.test) and len([p for p in paths(b.test) if p.startswith("no/")]) == 1


def test_ratio_split_groups_speakers_and_is_seeded(tmp_path):
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=10, per_word=2)
    c = dict(split="ratio", ratios=[0.4, 0.4, 0.2], words=["yes", "no"], silence_pct=0, unknown_pct=0)
    b = build_data(cfg(root, **c), seed=1)
    assert b.classes == ["yes", "no"]  # a pct of 0 drops _silence_ / _unknown_
    sizes = [sum(y == 0 for _, y in ds.items) for ds in (b.train, b.val, b.test)]
    assert sizes == [8, 8, 4]  # 40/40/20 of 10 speakers x 2 repetitions of "yes"
    for w in ("yes", "no"):
        spk = [{speaker_of(p) for p in paths(ds) if p.startswith(w + "/")} for ds in (b.train, b.val, b.test)]
        assert not (spk[0] & spk[1] or spk[0] & spk[2] or spk[1] & spk[2])
    again = build_data(cfg(root, **c), seed=1)
    assert paths(again.train) == paths(b.train)
    other = build_data(cfg(root, split_seed=2, **c), seed=1)
    assert paths(other.train) != paths(b.train)


def test_speaker_ratio_split_is_speaker_disjoint_across_words(tmp_path):
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=20, per_word=2)
    c = dict(words=["yes", "no"], silence_pct=0, unknown_pct=0, ratios=[0.4, 0.4, 0.2])
    b = build_data(cfg(root, split="speaker_ratio", **c), seed=1)
    spk = [{speaker_of(p) for p in paths(ds)} for ds in (b.train, b.val, b.test)]
    assert all(spk) and not (spk[0] & spk[1] or spk[0] & spk[2] or spk[1] & spk[2])
    assert [len(s) for s in spk] == [8, 8, 4]  # 40/40/20 of 20 speakers with equal clip counts


def test_split_is_seeded_by_split_seed_not_the_run_seed(speech_commands_root):
    from dataclasses import replace

    from audionas.config import load_config
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.train.config import TrainConfig

    root = str(speech_commands_root)
    same = [f"data.root={root}", "data.limit_per_class=0"]
    search = load_config(DartsSearchConfig, "kws-nas1-cpu", ["seed=0", *same])
    retrain = load_config(TrainConfig, "kws-darts-retrain-cpu",
                          ["seed=1", *same, "model_args.genotype=DARTS_V2"])
    s = build_data(search.data, search.seed)
    r = build_data(retrain.data, retrain.seed)
    assert s.test.items == r.test.items and len(s.test.items) > 0
    silence = [i for i, (p, _) in enumerate(s.test.items) if p is None]
    assert silence and all(torch.equal(s.test[i][0], r.test[i][0]) for i in silence)  # same noise crops
    assert set(paths(r.train)) == set(paths(s.train)) | set(paths(s.val))  # train+val of the search split
    other = build_data(replace(retrain.data, split_seed=1), retrain.seed)
    assert paths(other.test) != paths(r.test)


def test_val_augmented_view_is_the_val_split_with_training_augmentation(speech_commands_root):
    c = cfg(speech_commands_root, split="ratio", ratios=[0.4, 0.4, 0.2], noise_prob=1.0)
    b = build_data(c, seed=0)
    assert b.val_augmented.items == b.val.items and b.val_augmented.train and not b.val.train
    words = [i for i, (p, _) in enumerate(b.val.items) if p is not None][:4]
    for i in words:
        assert torch.equal(b.val[i][0], torch.from_numpy(_raw(b.val, i)))  # evaluation view: clean
        assert not torch.equal(b.val_augmented[i][0], b.val[i][0])  # alpha view: shifted + noise
    again = build_data(c, seed=0).val_augmented
    assert all(torch.equal(again[i][0], b.val_augmented[i][0]) for i in words)  # deterministic for a seed
    again.set_epoch(1)
    assert not all(torch.equal(again[i][0], b.val_augmented[i][0]) for i in words)


def test_the_training_split_is_scored_without_its_augmentation(speech_commands_root):
    # Before (review): evaluate --split train and eval_split=train scored shifted, noisy clips that changed
    # every epoch; now the training items as val and test are read (clean words, fixed silence crops).
    b = build_data(cfg(speech_commands_root, split="hash", noise_prob=1.0), seed=0)
    scored = b.split("train")
    assert scored.items == b.train.items and b.train.train and not scored.train
    words = [i for i, (p, _) in enumerate(b.train.items) if p is not None][:4]
    silence = [i for i, (p, _) in enumerate(b.train.items) if p is None][:2]
    for i in words:
        assert torch.equal(scored[i][0], torch.from_numpy(_raw(b.train, i)))
        assert not torch.equal(b.train[i][0], scored[i][0])  # the training view is augmented
    first = [scored[i][0] for i in silence]
    b.train.set_epoch(4)
    scored.set_epoch(4)
    assert silence and all(torch.equal(scored[i][0], x) for i, x in zip(silence, first))
    assert b.split("val") is b.val


def test_split_seed_is_validated(tmp_path):
    with pytest.raises(UserError, match="'data.split_seed'"):
        build_data(cfg(tmp_path, split_seed=-1), seed=0)


def test_merge_val_and_limit(speech_commands_root):
    b = build_data(cfg(speech_commands_root, split="hash"), seed=0)
    m = build_data(cfg(speech_commands_root, split="hash", merge_val_into_train=True), seed=0)
    assert m.val is None and len(m.train) == len(b.train) + len(b.val)
    assert m.test.items == b.test.items
    with pytest.raises(UserError, match=r"split 'val': .*\(data.merge_val_into_train=true trains on it\)"):
        m.split("val")
    said = r"data.limit_per_class=1 keeps 30 of \d+ clips \(at most 1 per class in each split; a cap of quick"
    with pytest.warns(UserWarning, match=said):  # 10 words x 3 splits
        lim = build_data(cfg(speech_commands_root, split="hash", limit_per_class=1), seed=0)
    for ds in (lim.train, lim.val, lim.test):
        assert max(ds.counts().values()) == 1


def _raw(ds, i):
    p, _ = ds.items[i]
    x = load_wav(ds.root / p, 16000)
    return np.pad(x, (0, 16000 - len(x)))[:16000]


def _shifted(raw, s):
    """Honk's zero-padded time shift of `raw` by `s` samples (length kept)."""
    return np.concatenate([raw[s:], np.zeros(s)]) if s >= 0 else np.concatenate([np.zeros(-s), raw[:s]])


def test_augmentation_train_only_and_reproducible(speech_commands_root):
    b = build_data(cfg(speech_commands_root, split="hash", noise_prob=0.0), seed=3)
    word = [i for i, (p, y) in enumerate(b.train.items) if y >= 2][:6]
    shifted = 0
    for i in word:
        x = b.train[i][0].numpy()
        raw = _raw(b.train, i)
        ok = [s for s in range(-1600, 1601) if np.array_equal(x, _shifted(raw, s))]
        assert ok, "train item is not a zero-padded shift of the file within +-1600 samples"
        shifted += ok[0] != 0
    assert shifted > 0
    for ds in (b.val, b.test):
        for i, (p, y) in enumerate(ds.items):
            x, yy = ds[i]
            assert x.dtype == torch.float32 and x.shape == (16000,) and yy == y
            if p is not None:
                np.testing.assert_array_equal(x.numpy(), _raw(ds, i))


def test_epoch_determinism_and_silence(speech_commands_root):
    c = cfg(speech_commands_root, split="hash")
    a, b = build_data(c, seed=5).train, build_data(c, seed=5).train
    idx = list(range(len(a)))
    a.set_epoch(2)
    b.set_epoch(2)
    xa = [a[i][0] for i in idx]
    xb = [b[i][0] for i in reversed(idx)][::-1]  # access order (workers, resume) does not matter
    assert all(torch.equal(u, v) for u, v in zip(xa, xb))
    b.set_epoch(3)
    assert not all(torch.equal(u, b[i][0]) for i, u in zip(idx, xa))
    d = build_data(c, seed=6).train
    d.set_epoch(2)
    assert not all(torch.equal(u, d[i][0]) for i, u in zip(idx, xa))
    val = build_data(c, seed=5).val
    sil = [i for i, (p, _) in enumerate(val.items) if p is None]
    assert sil
    for i in sil:
        x = val[i][0]
        assert x.abs().max() > 0 and x.abs().max() <= 1
        val.set_epoch(7)
        assert torch.equal(x, val[i][0])  # eval silence is fixed


def test_no_two_splits_draw_the_same_silence_crop(tmp_path):
    # Before (data QA): val and test (both seeded by data.split_seed) drew item i's crop from the same stream,
    # and so did training's epoch 0 when seed == split_seed: test silence repeated the val silence a model was
    # chosen on. Splits of equal size put their silence at the same indices.
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no"], speakers=6)
    c = cfg(root, split="ratio", words=["yes"], unknown_pct=0, silence_pct=100, ratios=[0.34, 0.33, 0.33])
    b = build_data(c, seed=0)
    splits = {"train": b.train, "val": b.val, "test": b.test}
    for a, z in (("val", "test"), ("train", "val"), ("train", "test")):
        both = [i for i in range(min(len(splits[a]), len(splits[z])))
                if splits[a].items[i][0] is None and splits[z].items[i][0] is None]
        assert len(both) == 2
        assert not any(torch.equal(splits[a][i][0], splits[z][i][0]) for i in both), (a, z)
    again = build_data(c, seed=0).test
    assert all(torch.equal(b.test[i][0], again[i][0]) for i in range(len(again)))  # still fixed per split



def test_no_augment_keeps_words_clean(speech_commands_root):
    b = build_data(cfg(speech_commands_root, split="hash", augment=False), seed=0)
    i = next(i for i, (p, y) in enumerate(b.train.items) if y >= 2)
    np.testing.assert_array_equal(b.train[i][0].numpy(), _raw(b.train, i))


@pytest.mark.parametrize("feature,effect", [("dcase-logmel", "90% of each input is zero padding"),
                                            ("test-dcase-logmel-0.5s", "clips are cropped to 0.5 s")])
def test_a_feature_made_for_other_clip_lengths_warns(speech_commands_root, short_dcase_preset, feature,
                                                     effect):
    msg = f"data.feature={feature} makes .* s inputs and Speech Commands clips are 1 s: {effect}"
    with pytest.warns(UserWarning, match=msg):
        b = build_data(DataConfig(root=str(speech_commands_root), feature=feature), seed=0)
    assert b.input_shape[-1] == (501 if feature == "dcase-logmel" else 26)


def test_missing_list_files(tmp_path, speech_commands_root):
    root = tmp_path / "sc"
    shutil.copytree(speech_commands_root, root)
    (root / "testing_list.txt").unlink()
    with pytest.raises(UserError, match=r"testing_list\.txt.*not found"):
        build_data(cfg(root, split="lists"), seed=0)


def test_unknown_label_in_list(tmp_path, speech_commands_root):
    root = tmp_path / "sc"
    shutil.copytree(speech_commands_root, root)
    with open(root / "validation_list.txt", "a") as f:
        f.write("banana/0123abcd_nohash_0.wav\n")
    with pytest.raises(UserError, match=r"validation_list\.txt:\d+: unknown label 'banana'"):
        build_data(cfg(root, split="lists"), seed=0)


def test_a_list_file_that_is_not_text_or_is_a_folder_is_named_as_such(tmp_path, speech_commands_root):
    # Before: the raw bytes were echoed in an "unknown label" line, and a folder named validation_list.txt
    # was "a class folder holding no audio files".
    root = tmp_path / "sc"
    shutil.copytree(speech_commands_root, root)
    (root / "validation_list.txt").write_bytes(b"\xff\xfe\x1b[2J\x00\x9c garbage")
    with pytest.raises(UserError, match=r"validation_list\.txt: not UTF-8 text \(expected one clip path per "
                                        r"line\)$"):
        build_data(cfg(root, split="lists"), seed=0)
    (root / "validation_list.txt").write_text("\x1b[2Jban\tana/x.wav\n")  # text, with control characters
    with pytest.raises(UserError, match=r"unknown label '\\x1b\[2Jban\\tana' in '\\x1b\[2Jban\\tana/x\.wav'"):
        build_data(cfg(root, split="lists"), seed=0)
    (root / "validation_list.txt").unlink()
    (root / "validation_list.txt").mkdir()
    with pytest.raises(UserError, match=r"validation_list\.txt: a folder, expected the list file "
                                        r"validation_list\.txt"):
        build_data(cfg(root, split="lists"), seed=0)


def test_list_entries_are_read_as_normalised_paths(tmp_path, speech_commands_root):
    # Before: './yes/x.wav' was refused as "unknown label '.'".
    root = tmp_path / "sc"
    shutil.copytree(speech_commands_root, root)
    want = build_data(cfg(root, split="lists"), seed=0)
    lines = (root / "validation_list.txt").read_text().splitlines()
    (root / "validation_list.txt").write_text("".join(f"./{rel.replace('/', '//')}\n" for rel in lines))
    got = build_data(cfg(root, split="lists"), seed=0)
    assert lines and got.val.items == want.val.items


def test_bad_roots_and_words(tmp_path, speech_commands_root):
    with pytest.raises(UserError, match="nowhere: dataset folder not found"):
        build_data(cfg(tmp_path / "nowhere"), seed=0)
    # "train with": the hint is for evaluate --data too, which takes no override (before: "add data.kind=...")
    with pytest.raises(UserError, match=r"speech_commands\w*/banana: word folder not found \(listed in "
                                        r"data.words; not a word of this dataset\)$"):
        build_data(cfg(speech_commands_root, words=["yes", "banana"]), seed=0)
    # before (QA): the data.kind=folder hint for a v0.02 word in a v0.01 set too
    said = (r"/visual: word folder not found \(listed in data.words; a v0.02 word, and this dataset has none "
            r"of them: Speech Commands v0.01\?\)$")
    with pytest.raises(UserError, match=said):
        build_data(cfg(speech_commands_root, words=["yes", "visual"]), seed=0)
    own = make_speech_commands_fixture(tmp_path / "own", words=["kettle", "door"])
    said = (r"/yes: word folder not found \(listed in data.words; for a folder-per-class dataset of your "
            r"own, train with data.kind=folder\)$")
    with pytest.raises(UserError, match=said):
        build_data(cfg(own, words=["yes", "no"]), seed=0)
    said = r"^config field 'data.words': _background_noise_ holds the background noise, not a word$"
    with pytest.raises(UserError, match=said):
        build_data(cfg(speech_commands_root, words=["yes", "_background_noise_"]), seed=0)
    with pytest.raises(UserError, match="data.words"):
        build_data(cfg(speech_commands_root, words=["yes", "yes"]), seed=0)
    root = make_speech_commands_fixture(tmp_path / "nonoise", words=["yes", "no", "bed"])
    shutil.rmtree(root / "_background_noise_")
    with pytest.raises(UserError, match="_background_noise_"):
        build_data(cfg(root, words=["yes", "no"]), seed=0)
    b = build_data(cfg(root, words=["yes", "no"], silence_pct=0, augment=False), seed=0)
    assert b.classes == ["_unknown_", "yes", "no"]


def test_bad_wav_in_dataset_names_file(tmp_path):
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"])
    victim = sorted((root / "yes").iterdir())[0]
    whole = victim.read_bytes()
    victim.write_bytes(whole[:-500])
    with pytest.raises(UserError, match=re.escape(victim.name) + ": truncated wav"):
        build_data(cfg(root, split="hash", words=["yes", "no"]), seed=0)  # headers are read before training
    victim.write_bytes(whole)
    b = build_data(cfg(root, split="hash", words=["yes", "no"]), seed=0)
    victim.write_bytes(whole[:-500])  # damaged after the build: the read names it
    ds = next(d for d in (b.train, b.val, b.test) if f"yes/{victim.name}" in paths(d))
    i = paths(ds).index(f"yes/{victim.name}")
    with pytest.raises(UserError, match=re.escape(victim.name) + ": truncated wav"):
        ds[i]


def test_version2_layout(tmp_path):
    root = make_speech_commands_fixture(tmp_path, version=2, speakers=3)
    assert (root / "backward").is_dir() and (root / "visual").is_dir()
    b = build_data(cfg(root, split="lists"), seed=0)
    unknown_words = {p.split("/")[0] for ds in (b.train, b.val, b.test) for p, y in ds.items if y == 1}
    assert unknown_words and not unknown_words & set(WORDS)


def test_dataloader_workers_match_direct_indexing(speech_commands_root):
    from torch.utils.data import DataLoader

    ds = build_data(cfg(speech_commands_root, split="hash"), seed=1).train
    ds.set_epoch(4)
    direct = torch.stack([ds[i][0] for i in range(len(ds))])
    batches = list(DataLoader(ds, batch_size=8, num_workers=2, shuffle=False))
    xs = torch.cat([x for x, _ in batches])
    ys = torch.cat([y for _, y in batches])
    assert torch.equal(xs, direct) and ys.tolist() == ds.targets.tolist()


@pytest.mark.parametrize("preset, what", [("kws-tc-resnet-cpu", "dataset folder"),
                                          ("asc-cpu", "DCASE2018 feature cache folder")])
def test_data_that_is_a_file_or_an_archive_says_so(tmp_path, capsys, preset, what):
    from audionas.cli import main

    archive = tmp_path / "speech_commands_v0.01.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    assert main(["train", "--preset", preset, "--data", str(archive), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {archive}: a file, expected a {what} (an archive? "
                                       f"extract it and pass its folder)\n")
    assert not (tmp_path / "r").exists()


def test_honks_augmentation_defaults_and_draws(speech_commands_root):
    # REFERENCE section 2 (Honk): shift randint(-1600, 1600) (both ends), noise p=0.8 scaled by U(0, 0.1)
    aug = augment_config(DataConfig(), 16000, 16000)
    assert (aug.enabled, aug.shift_samples, aug.noise_prob, aug.noise_max) == (True, 1600, 0.8, 0.1)
    ds = build_data(cfg(speech_commands_root, split="hash", shift_ms=0.125, noise_prob=0.0), seed=0).train
    words = [i for i, (p, _) in enumerate(ds.items) if p is not None][:6]
    shifts = set()
    for epoch in range(20):
        ds.set_epoch(epoch)
        for i in words:
            x, raw = ds[i][0].numpy(), _raw(ds, i)
            shifts.update(s for s in range(-2, 3) if np.array_equal(x, _shifted(raw, s)))
    assert shifts == {-2, -1, 0, 1, 2}  # shift_ms=0.125: 2 samples, both ends drawn
    # a noise crop starts anywhere in its recording: x = a * ramp[off:off + n] shows off through x[0] / x[-1]
    ds = build_data(cfg(speech_commands_root, split="hash"), seed=0).train
    ds.noise = [np.linspace(0, 1, 40000, dtype=np.float32)]
    ends = [ds[i][0].numpy() for i, (p, _) in enumerate(ds.items) if p is None]
    ratios = [float(x[0] / x[-1]) for x in ends if x[-1] > 0]
    assert len(ratios) >= 3 and max(ratios) - min(ratios) > 0.1


def test_noise_is_scaled_by_at_most_noise_max_and_clipped(speech_commands_root):
    # Honk: x = clip(x + a * noise_crop, -1, 1), a ~ U(0, 0.1). A constant "noise" of 8 shows a directly.
    b = build_data(cfg(speech_commands_root, split="hash", shift_ms=0, noise_prob=1.0), seed=0)
    ds = b.train
    ds.noise = [np.full(40000, 8.0, np.float32)]
    scales, clipped = [], 0
    for i in [i for i, (p, _) in enumerate(ds.items) if p is not None][:40]:
        x, raw = ds[i][0].numpy(), _raw(ds, i)
        assert x.max() <= 1.0 and x.min() >= -1.0
        free = x < 1.0
        clipped += int((~free).sum())
        if free.any():
            a = (x[free] - raw[free]) / 8.0
            np.testing.assert_allclose(a, a[0], atol=1e-6)  # one scale per clip
            scales.append(float(a[0]))
    assert clipped > 0 and len(scales) > 20
    assert 0.0 <= min(scales) and max(scales) <= 0.1 and max(scales) > 0.05


def test_a_file_in_both_list_files_counts_as_validation(tmp_path):
    # TF input_data.py checks validation_list first: a clip listed twice is a validation clip only.
    b, yes = _lists_bundle(tmp_path, lambda yes, no: [yes[0]], lambda yes, no: [yes[0], yes[1]])
    assert paths(b.val) == [yes[0]]
    assert [p for p in paths(b.test) if p.startswith("yes/")] == [yes[1]]
    assert yes[0] not in paths(b.train) and yes[0] not in paths(b.test)


def test_a_listed_file_that_does_not_exist_is_refused(tmp_path):
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=5)
    with open(root / "testing_list.txt", "a") as f:
        f.write("yes/deadbeef_nohash_9.wav\n")
    n = len((root / "testing_list.txt").read_text().splitlines())
    with pytest.raises(UserError, match=rf"testing_list\.txt:{n}: listed file 'yes/deadbeef_nohash_9\.wav' "
                                        r"not found under"):
        build_data(cfg(root, split="lists", words=["yes", "no"]), seed=0)


def test_noise_shorter_than_a_clip_is_tiled_for_silence(tmp_path):
    # 0.25 s noise files: a silence clip is a * (the file repeated 4 times), 0 <= a <= noise_max.
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"], speakers=5, noise_seconds=0.25)
    noise = [load_wav(f, 16000) for f in sorted((root / "_background_noise_").glob("*.wav"))]
    assert all(len(x) == 4000 for x in noise)
    tiled = [np.tile(x, 4) for x in noise]
    b = build_data(cfg(root, split="hash", words=["yes", "no"]), seed=0)
    sil = [i for ds in (b.train, b.val) for i, (p, _) in enumerate(ds.items) if p is None]
    assert sil
    for ds in (b.train, b.val):
        for i in [i for i, (p, _) in enumerate(ds.items) if p is None]:
            x = ds[i][0].numpy().astype(np.float64)
            fits = []
            for t in tiled:
                a = float(x @ t / (t @ t))
                fits.append((np.abs(x - a * t).max(), a))
            err, a = min(fits)
            assert err < 1e-6 and 0.0 <= a <= 0.1


def test_hash_percentages_another_split_does_not_use_are_warned_about(speech_commands_root):
    # Before (data QA): data.val_pct / data.test_pct under the lists or ratio split changed nothing, silently.
    root = str(speech_commands_root)
    said = r"config field 'data.{}': not used: only data.split=hash reads it \(this split: {}\)$"
    for split in ("lists", "ratio"):
        with pytest.warns(UserWarning) as rec:
            build_data(DataConfig(root=root, split=split, val_pct=30, test_pct=25), 0)
        for name in ("val_pct", "test_pct"):
            assert any(re.match(said.format(name, split), str(w.message)) for w in rec)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        b = build_data(DataConfig(root=root, split="hash", val_pct=30, test_pct=25), 0)
        build_data(DataConfig(root=root, split="lists"), 0)  # the default percentages: nothing said
    assert not [w for w in rec if "not used" in str(w.message)]
    assert len(b.val) > len(build_data(DataConfig(root=root, split="hash"), 0).val)


def test_ratios_the_split_does_not_use_are_warned_about_and_malformed_ones_refused(speech_commands_root):
    """Before: data.ratios set without data.split=ratio was ignored without a word, and not even checked."""
    from audionas.config import load_config
    from audionas.train.config import TrainConfig

    with pytest.warns(UserWarning, match=r"^config field 'data.ratios': not used: only data.split=ratio or "
                                         r"speaker_ratio reads it \(this split: lists\)$"):
        build_data(DataConfig(root=str(speech_commands_root), ratios=[0.6, 0.2, 0.2]), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_data(DataConfig(root=str(speech_commands_root), split="ratio", ratios=[0.6, 0.2, 0.2]), 0)
        build_data(DataConfig(root=str(speech_commands_root)), 0)  # the default ratios: nothing said
    with pytest.raises(UserError, match=r"'data.ratios': expected 3 numbers \(train, val, test\), "
                                        r"got \[0.5, 0.5\]"):
        load_config(TrainConfig, "kws-tc-resnet-cpu", ["data.ratios=[0.5,0.5]"])


def test_every_word_as_a_keyword_leaves_no_unknown_words_and_is_named(tmp_path):
    # before (QA): a dead _unknown_ output, and warnings advising more clips or a ratio split
    root = make_speech_commands_fixture(tmp_path / "sc", words=["yes", "no", "bed"])
    said = (r"^config field 'data.words': names every word folder of .*sc, so no other words are left for "
            r"'_unknown_'; set data.unknown_pct=0 to train without that class$")
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, words=["yes", "no", "bed"]), seed=0)
    assert "_unknown_" not in build_data(cfg(root, words=["yes", "no", "bed"], unknown_pct=0), seed=0).classes


@pytest.mark.parametrize("made", ["_silence_", "_unknown_"])
def test_the_labelled_test_set_archive_is_named_not_split(tmp_path, made):
    # before (QA): with data.split=hash its _silence_ clips became _unknown_ items
    root = make_speech_commands_fixture(tmp_path / "sc", words=["yes", "no", "bed"])
    shutil.copytree(root / "bed", root / made)
    said = (rf"/{made}: a folder of the 12-class protocol's own: this looks like the labelled test-set "
            r"archive \(speech_commands_test_set_v0.02\)")
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, words=["yes", "no"], split="hash"), seed=0)


def test_ratios_beside_the_list_split_are_warned_about_in_one_wording(speech_commands_root, tmp_path):
    # Before (QA): twice, two wordings: by the config check (set by hand) and the dataset (the split used).
    # One text: the command shows a warning text once.
    from audionas.cli import main

    with pytest.warns(UserWarning) as rec:
        assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root), "--out",
                     str(tmp_path / "run"), "model=tc-resnet8", "epochs=1", "max_steps_per_epoch=1",
                     "data.batch_size=8", "data.ratios=[0.6,0.2,0.2]", "data.val_pct=5"]) == 0
    for name in ("ratios", "val_pct"):
        said = [str(w.message) for w in rec if f"'data.{name}'" in str(w.message)]
        assert len(said) == 2 and len(set(said)) == 1, said


@pytest.mark.parametrize("own", ["_silence_", "_unknown_"])
def test_a_class_name_of_the_protocol_is_no_word(tmp_path, own):
    # Catches ({_silence_, _unknown_} & words dropped): said as a data.words error, not a missing folder
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"])
    said = rf"^config field 'data.words': expected distinct word folder names, got \['yes', '{own}'\]$"
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, words=["yes", own], split="hash"), seed=0)


def test_a_word_folder_without_clips_is_refused(tmp_path):
    # Catches (the empty-word-folder check dropped): a keyword with no clip would be a class no clip trains
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"])
    for f in (root / "no").iterdir():
        f.unlink()
    with pytest.raises(UserError, match=r"/no: no audio files \(.*\) in this word folder$"):
        build_data(cfg(root, words=["yes", "no"], split="hash"), seed=0)


def test_no_background_noise_is_needed_without_silence_or_noise_draws(tmp_path):
    # Catches (need_noise = silence or augment, whatever noise_prob): augmentation with noise_prob=0 draws
    # shifts only, so a dataset without _background_noise_ trains
    import shutil

    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed"])
    shutil.rmtree(root / "_background_noise_")
    b = build_data(cfg(root, words=["yes", "no"], split="hash", silence_pct=0, noise_prob=0), seed=0)
    assert b.classes == ["_unknown_", "yes", "no"] and len(b.train) > 0
    with pytest.raises(UserError, match="_background_noise_: no background noise wavs"):
        build_data(cfg(root, words=["yes", "no"], split="hash", silence_pct=0, noise_prob=0.5), seed=0)


def test_limit_per_class_caps_unknown_and_silence_too(tmp_path):
    # Catches (n_unknown no longer capped by data.limit_per_class): at 100% unknown, 2 words' clips would
    # ask for 2 unknown clips
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed", "cat"], speakers=20)
    with pytest.warns(UserWarning, match="data.limit_per_class=1 keeps"):
        b = build_data(cfg(root, words=["yes", "no"], split="hash", limit_per_class=1, unknown_pct=100,
                           silence_pct=100), seed=0)
    assert b.train.counts() == {"_silence_": 1, "_unknown_": 1, "yes": 1, "no": 1}


def test_the_unknown_clips_of_a_split_are_listed_in_path_order(tmp_path):
    # Catches (sorted(chosen) -> chosen): the seeded choice is kept in path order, as the words' clips, so
    # the split's clip order (and its split fingerprint, order-sensitive) does not follow the shuffle
    root = make_speech_commands_fixture(tmp_path, words=["yes", "no", "bed", "bird", "cat"], speakers=10)
    b = build_data(cfg(root, words=["yes", "no"], split="hash", unknown_pct=50), seed=0)
    unknown = [p for p, y in b.train.items if y == b.classes.index("_unknown_")]
    assert len(unknown) > 2 and unknown == sorted(unknown)
