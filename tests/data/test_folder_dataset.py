import re

import numpy as np
import pytest
import soundfile as sf
import torch

from audionas.data import DataConfig, build_data
from audionas.data.class_folders import speaker_of
from audionas.data.fixtures import make_folder_fixture as make_folder
from audionas.errors import UserError


def cfg(root, **kw):
    return DataConfig(kind="folder", root=str(root), **kw)


def test_classes_and_hash_fallback(tmp_path):
    root = make_folder(tmp_path)
    with pytest.warns(UserWarning, match="using the hash split"):
        b = build_data(cfg(root), seed=0)
    assert b.classes == ["alarm", "clap", "dog_bark"] and b.split_rule == "hash"
    assert not b.train.noise
    sizes = [len(ds) for ds in (b.train, b.val, b.test)]
    assert sum(sizes) == 30 and min(sizes) > 0
    for ds in (b.train, b.val, b.test):
        for p, y in ds.items:
            assert p.split("/")[0] == b.classes[y]
    x, y = b.train[0]
    assert x.dtype == torch.float32 and x.shape == (16000,)
    xv, _ = b.val[0]
    assert xv.shape == (16000,)


def test_a_shift_of_a_whole_clip_or_more_is_refused(tmp_path):
    # Before: 1001 ms made clips longer than 1 s (a collate error later), 1e300 an int64 traceback.
    root = make_folder(tmp_path)
    assert build_data(cfg(root, split="ratio", shift_ms=999), seed=0).train[0][0].shape == (16000,)
    for ms in (1000, 999.97, 1e300):  # 999.97 ms is 15999.5 samples: rounded, a whole clip
        msg = f"'data.shift_ms': expected less than the clip length (1000 ms), got {ms:g}"
        with pytest.raises(UserError, match=re.escape(msg) + "$"):
            build_data(cfg(root, split="ratio", shift_ms=ms), seed=0)


def test_ratio_split_and_noise(tmp_path):
    root = make_folder(tmp_path, noise=True)
    b = build_data(cfg(root, split="ratio", noise_prob=1.0, shift_ms=0), seed=0)
    assert [len(ds) for ds in (b.train, b.val, b.test)] == [24, 3, 3]  # 80/10/10 of 3 x 10 clips by default
    assert len(b.train.noise) == 1
    clean = build_data(cfg(root, split="ratio", augment=False), seed=0).train
    assert not torch.equal(b.train[0][0], clean[0][0])  # noise added on the training split
    val_clean = build_data(cfg(root, split="ratio", augment=False), seed=0).val
    assert torch.equal(b.val[0][0], val_clean[0][0])  # never on evaluation splits


def test_lists_when_present(tmp_path):
    root = make_folder(tmp_path)
    first = sorted(p.name for p in (root / "clap").iterdir())[0]
    (root / "validation_list.txt").write_text(f"clap/{first}\n")
    (root / "testing_list.txt").write_text("")
    with pytest.warns(UserWarning) as record:
        b = build_data(cfg(root, split="lists"), seed=0)
    messages = [str(w.message) for w in record]
    assert any("the 'test' split is empty" in m for m in messages)
    # val holds one clap clip: the other two classes get no validation score, and the user is told
    assert any("the 'val' split has no clips of alarm, dog_bark ('lists' split)" in m
               and "data.split=ratio" in m for m in messages)
    assert b.test is None
    assert b.val is not None and [p for p, _ in b.val.items] == [f"clap/{first}"]
    (root / "testing_list.txt").write_text(f"clap/{first}\n")  # in both lists (QA: said nothing)
    said = (r"1 clip\(s\) are in both validation_list.txt and testing_list.txt and count as validation, as "
            r"TensorFlow's rule has it \(e.g. clap/")
    with pytest.warns(UserWarning, match=said):
        b = build_data(cfg(root, split="lists"), seed=0)
    assert [p for p, _ in b.val.items] == [f"clap/{first}"]
    (root / "testing_list.txt").unlink()
    with pytest.raises(UserError, match=r"testing_list\.txt: list file\(s\) not found"):
        build_data(cfg(root, split="lists"), seed=0)


@pytest.mark.parametrize("absolute", ["posix", "drive"])
def test_an_absolute_path_in_a_list_file_is_named_as_one(tmp_path, absolute):
    # Before (QA): "unknown label '' in '/.../clap/x.wav'", which hid that only the path's form was wrong.
    root = make_folder(tmp_path)
    first = sorted(p.name for p in (root / "clap").iterdir())[0]
    entry = str(root / "clap" / first) if absolute == "posix" else f"C:\\data\\clap\\{first}"
    shown = entry.replace("\\", "/")
    alarm = sorted(p.name for p in (root / "alarm").iterdir())[0]
    (root / "validation_list.txt").write_text(f"alarm/{alarm}\n{entry}\n")
    (root / "testing_list.txt").write_text("")
    said = (f"{root / 'validation_list.txt'}:2: '{shown}' is an absolute path; list entries are relative to "
            f"the dataset folder {root} (e.g. <class>/<file>.wav)")
    with pytest.raises(UserError, match=re.escape(said) + "$"):
        build_data(cfg(root, split="lists"), seed=0)


def test_folder_errors(tmp_path):
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(UserError, match="empty_root: no class folders"):
        build_data(cfg(tmp_path / "empty_root"), seed=0)
    root = make_folder(tmp_path / "a")
    (root / "silent_class").mkdir()
    with pytest.raises(UserError, match=r"silent_class: class folder holds no audio files \(\.wav, \.flac"):
        build_data(cfg(root, split="hash"), seed=0)
    one = make_folder(tmp_path / "b", classes=("only",))
    with pytest.raises(UserError, match="only one class folder"):
        build_data(cfg(one, split="hash"), seed=0)
    cache = tmp_path / "cache"  # what a DCASE feature cache looks like from outside
    (cache / "dev").mkdir(parents=True)
    (cache / "manifest.json").write_text("{}")
    for kind in ("folder", "speech_commands"):
        with pytest.raises(UserError, match=rf"cache: a DCASE2018 feature cache, .*\(data.kind={kind}\)$"):
            build_data(DataConfig(kind=kind, root=str(cache)), seed=0)


def test_limit_per_class(tmp_path):
    root = make_folder(tmp_path)
    b = build_data(cfg(root, split="ratio", ratios=[0.4, 0.4, 0.2], limit_per_class=2), seed=0)
    for ds in (b.train, b.val, b.test):
        assert max(ds.counts().values()) == 2

    def kept(split_seed):  # the hash split does not depend on the seed: only the limit's choice can
        c = cfg(root, split="hash", limit_per_class=1, split_seed=split_seed)
        return build_data(c, seed=0).train.items

    assert kept(0) == kept(0) and any(kept(k) != kept(0) for k in (1, 2, 3))  # chosen by data.split_seed


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("eval_batch_size", -1), ("num_workers", -1),
                                         ("limit_per_class", -2)])
def test_loading_fields_are_checked(tmp_path, field, value):
    with pytest.raises(UserError, match=f"'data.{field}': expected an integer >= "):
        build_data(cfg(make_folder(tmp_path), **{field: value}), seed=0)


def test_flac_ogg_and_mp3_clips_load_like_wav(tmp_path):
    wav_root = make_folder(tmp_path / "wav")
    root = make_folder(tmp_path / "mixed")
    formats = {"alarm": "FLAC", "clap": "OGG", "dog_bark": "MP3"}
    for cls, fmt in formats.items():
        for f in sorted((root / cls).glob("*.wav")):
            data, sr = sf.read(f, dtype="float32")
            sf.write(f.with_suffix("." + fmt.lower()), data, sr, format=fmt)
            f.unlink()
    (root / "clap" / "notes.txt").write_text("not audio")
    kw = dict(split="ratio", augment=False)
    mixed, ref = build_data(cfg(root, **kw), seed=0), build_data(cfg(wav_root, **kw), seed=0)
    assert mixed.classes == ref.classes
    for got_ds, ref_ds in zip((mixed.train, mixed.val, mixed.test), (ref.train, ref.val, ref.test)):
        stems = [[p.rsplit(".", 1)[0] for p, _ in ds.items] for ds in (got_ds, ref_ds)]
        assert stems[0] == stems[1]
        for i, (p, _) in enumerate(got_ds.items):
            x, x_ref = got_ds[i][0].numpy(), ref_ds[i][0].numpy()
            if p.endswith(".flac"):
                np.testing.assert_array_equal(x, x_ref)  # lossless
            else:  # lossy codecs: the same tone, not the same samples
                assert np.corrcoef(x, x_ref)[0, 1] > 0.9, p
    assert {p.rsplit(".", 1)[1] for p, _ in mixed.train.items} == {"flac", "ogg", "mp3"}


def test_more_workers_than_the_machine_can_hold_are_refused_before_any_fork(tmp_path, capsys):
    import os

    from audionas.cli import main

    cores = len(os.sched_getaffinity(0))
    with pytest.raises(UserError, match=rf"'data.num_workers': 99999 worker processes for {cores} CPU "
                                        rf"core\(s\) here; expected at most {4 * cores}"):
        build_data(cfg(make_folder(tmp_path), num_workers=99999), seed=0)
    run = tmp_path / "run"
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out", str(run),
                 "data.kind=folder", "data.num_workers=99999"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not run.exists()
    with pytest.raises(SystemExit):
        main(["evaluate", str(run), "--workers", "-1"])
    assert "--workers: expected an integer >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("field, value, msg", [
    ("unknown_pct", 500, r"'data.unknown_pct': expected a percentage in 0..100, got 500"),
    ("silence_pct", -5, r"'data.silence_pct': expected a percentage in 0..100, got -5"),
    ("val_pct", 150, r"'data.val_pct': expected a percentage in 0..100, got 150"),
    ("test_pct", 90, r"'data.val_pct', 'data.test_pct': expected a sum below 100 .the rest trains., "
                     r"got 10 \+ 90")])
def test_percentages_are_checked(tmp_path, field, value, msg):
    with pytest.raises(UserError, match=msg):
        build_data(cfg(make_folder(tmp_path), **{field: value}), seed=0)


@pytest.mark.parametrize("bad", ["corrupt", "empty", "stereo"])
def test_a_bad_clip_in_any_split_is_refused_before_training(tmp_path, bad):
    # Before: clips were first read by the loader, so a bad test clip stopped the run after its last epoch.
    root = make_folder(tmp_path)
    path = root / "clap" / "zz_nohash_0.wav"
    if bad == "corrupt":
        path.write_bytes(b"RIFX not audio at all" * 10)
    elif bad == "empty":
        path.write_bytes(b"")
    else:
        sf.write(path, np.zeros((800, 2), np.float32), 16000)
    expected = ("expected 1 channel(s), got 2; mix it down to mono first" if bad == "stereo"
                else "not a readable audio file")
    with pytest.raises(UserError, match=re.escape(f"{path}: {expected}")):
        build_data(cfg(root, split="hash"), seed=0)
    ok = build_data(cfg(root, split="hash", limit_per_class=1), seed=0)  # only the clips used are checked
    assert all(p != "clap/zz_nohash_0.wav" for ds in (ok.train, ok.val, ok.test) for p, _ in ds.items)
    if bad == "stereo":  # every stereo clip is counted at once, with the fix (before: one run per file; QA)
        sf.write(root / "alarm" / "zz_nohash_0.wav", np.zeros((800, 2), np.float32), 16000)
        said = (f"{root / 'alarm' / 'zz_nohash_0.wav'}: expected 1 channel(s), got 2 (1 more clip(s) have "
                f"several channels too); mix them down to mono first, or train with data.mixdown=true (each "
                f"file read as the mean of its channels)")
        with pytest.raises(UserError, match=re.escape(said) + "$"):
            build_data(cfg(root, split="hash"), seed=0)


def test_mixdown_reads_clips_and_noise_of_several_channels_as_their_mean(tmp_path):
    root = make_folder(tmp_path)
    rng = np.random.default_rng(0)
    stereo = (0.3 * rng.standard_normal((12000, 2))).clip(-1, 1).astype(np.float32)
    sf.write(root / "clap" / "zz_nohash_0.wav", stereo, 16000, subtype="FLOAT")
    (root / "_background_noise_").mkdir()
    noise = (0.2 * rng.standard_normal((32000, 3))).clip(-1, 1).astype(np.float32)
    sf.write(root / "_background_noise_" / "hum.wav", noise, 16000, subtype="FLOAT")
    said = (f"{root / '_background_noise_' / 'hum.wav'}: expected 1 channel(s), got 3; mix it down to mono "
            f"first, or train with data.mixdown=true (each file read as the mean of its channels)")
    with pytest.raises(UserError, match=re.escape(said) + "$"):
        build_data(cfg(root, split="hash"), seed=0)
    b = build_data(cfg(root, split="hash", mixdown=True, augment=False), seed=0)
    np.testing.assert_allclose(b.train.noise[0], noise.mean(axis=1), atol=1e-7)
    ds, i = next((ds, ds.items.index(it)) for ds in (b.train, b.val, b.test) for it in ds.items
                 if it[0] == "clap/zz_nohash_0.wav")
    ds.check_readable()
    x, _ = ds[i]
    want = np.pad(stereo.mean(axis=1), (0, 16000 - 12000))
    np.testing.assert_allclose(x.numpy(), want, atol=1e-7)


def test_clips_at_another_rate_are_warned_about_once(tmp_path):
    # Before: one warning per clip read, again each epoch (1000 clips at 44.1 kHz: 1000 lines an epoch).
    import warnings

    root = make_folder(tmp_path)
    for f in sorted((root / "alarm").glob("*.wav"))[:4]:
        x, _ = sf.read(f, dtype="float32")
        sf.write(f, x[::2], 8000)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        b = build_data(cfg(root, split="ratio"), seed=0)
        for epoch in (0, 1):
            b.train.set_epoch(epoch)
            for ds in (b.train, b.val, b.test):
                for i in range(len(ds)):
                    assert ds[i][0].shape == (16000,)
    resampled = [str(w.message) for w in record if "Hz" in str(w.message)]
    assert len(resampled) == 1
    assert resampled[0].startswith(f"{root}: 4 of 30 clips are not at 16000 Hz (")
    assert "8000 Hz" in resampled[0] and "resampl" in resampled[0]


def test_a_scoring_of_one_split_reads_and_warns_about_that_splits_clips_only(tmp_path):
    # Before: evaluate read every clip's header, so it counted training clips it never scores in its rate
    # warning, and a damaged training clip stopped a scoring of the test split.
    import warnings

    root = make_folder(tmp_path)
    b = build_data(cfg(root, split="ratio"), seed=0)
    train = [root / rel for rel, _ in b.train.items]
    test = [root / rel for rel, _ in b.test.items]
    for f in (train[0], test[0]):
        x, _ = sf.read(f, dtype="float32")
        sf.write(f, x[::2], 8000)

    def rate_warnings(**kw):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            build_data(cfg(root, split="ratio"), seed=0, training=False, **kw)
        return [str(w.message) for w in record if "Hz" in str(w.message)]

    assert rate_warnings()[0].startswith(f"{root}: 2 of 30 clips are not at 16000 Hz (")
    assert rate_warnings(checked=("test",))[0].startswith(f"{root}: 1 of {len(test)} clips are not at ")
    assert rate_warnings(checked=("val",)) == []
    train[1].write_bytes(b"RIFX not audio at all" * 10)
    with pytest.raises(UserError, match=re.escape(f"{train[1]}: not a readable audio file")):
        build_data(cfg(root, split="ratio"), seed=0, training=False)
    assert len(build_data(cfg(root, split="ratio"), seed=0, training=False, checked=("val",)).val) == 3
    merged = cfg(root, split="ratio", merge_val_into_train=True)
    with pytest.raises(UserError, match=re.escape(f"{train[1]}: not a readable audio file")):
        build_data(merged, seed=0, training=False, checked=("train",))


def test_clips_in_subfolders_of_a_class_folder_belong_to_that_class(tmp_path):
    # Before: ROOT/<class>/<session>/*.wav were skipped without a word (predict read them: it walks folders).
    root = make_folder(tmp_path)
    (root / "alarm" / "day 2").mkdir()
    moved = sorted((root / "alarm").glob("*.wav"))[:4]
    for f in moved:
        f.rename(root / "alarm" / "day 2" / f.name)
    (root / "alarm" / ".trash").mkdir()  # hidden folders stay hidden
    (root / "alarm" / ".trash" / "old.wav").write_bytes(b"")
    deeper = root / "clap" / "nested" / "deeper"
    deeper.mkdir(parents=True)
    (deeper / "x_nohash_0.wav").write_bytes(sorted((root / "clap").glob("*.wav"))[0].read_bytes())
    (root / "validation_list.txt").write_text(f"alarm/day 2/{moved[0].name}\n")
    (root / "testing_list.txt").write_text("clap/nested/deeper/x_nohash_0.wav\n")
    b = build_data(cfg(root, split="lists"), seed=0)
    items = [item for ds in (b.train, b.val, b.test) for item in ds.items]
    assert len(items) == 31
    assert b.val.items == [(f"alarm/day 2/{moved[0].name}", b.classes.index("alarm"))]
    assert b.test.items == [("clap/nested/deeper/x_nohash_0.wav", b.classes.index("clap"))]
    assert sum(p.startswith("alarm/day 2/") for p, _ in items) == 4


def test_a_class_missing_from_the_training_split_is_warned_about(tmp_path):
    # Before: only val and test were checked; a one-clip class went to val (0.4 x 1 rounds to no training
    # clip) and was never learned, without a word.
    root = make_folder(tmp_path)
    for f in sorted((root / "clap").glob("*.wav"))[1:]:
        f.unlink()
    with pytest.warns(UserWarning, match=r"the 'train' split has no clips of clap \('ratio' split\): "
                                         r"the network never learns those classes"):
        b = build_data(cfg(root, split="ratio", ratios=[0.4, 0.4, 0.2]), seed=0)
    assert b.train.counts()["clap"] == 0


def test_a_broken_link_in_a_class_folder_is_one_line(tmp_path):
    # Before: skipped without a word, and the run trained on one clip fewer.
    root = make_folder(tmp_path)
    (root / "clap" / "x_nohash_9.wav").symlink_to(tmp_path / "moved-away.wav")
    with pytest.raises(UserError, match=r"x_nohash_9\.wav: a broken link \(its target .*moved-away\.wav"):
        build_data(cfg(root, split="ratio"), seed=0)



def test_links_to_folders_and_clips_outside_class_folders_are_named(tmp_path):
    # Before (data QA): a class folder's broken link dropped that class, and a linked subfolder's clips and
    # clips directly in the dataset folder were left out, all without a word.
    import shutil
    import warnings

    root = make_folder(tmp_path / "data", per_class=4)
    extra = tmp_path / "extra"
    shutil.copytree(root / "alarm", extra)
    (root / "alarm" / "more").symlink_to(extra)
    shutil.copy(sorted((root / "clap").iterdir())[0], root / "loose.wav")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        b = build_data(cfg(root, split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0)
    said = sorted(str(w.message) for w in rec)
    assert len(b.train) + len(b.val) + len(b.test) == 12
    assert [m for m in said if "not followed" in m] == [
        f"{root}: 1 link(s) to folders in the class folders are not followed and their clips are not used "
        f"(e.g. {root / 'alarm' / 'more'}); copy the folder there, or link its files"]
    assert [m for m in said if "no class folder" in m] == [
        f"{root}: 1 audio file(s) directly in the dataset folder are in no class folder and are not used "
        f"(e.g. loose.wav); put each clip in the folder of its class"]
    (root / "dog_bark").rename(tmp_path / "dog_bark")
    (root / "dog_bark").symlink_to(tmp_path / "moved")
    with pytest.warns(UserWarning, match=r"dog_bark: a broken link \(its target .*moved does not exist\); if "
                                         r"it was a class folder, that class is missing$"):
        assert build_data(cfg(root, split="ratio"), seed=0).classes == ["alarm", "clap"]


def test_a_loop_of_links_and_a_class_folder_linking_to_the_dataset_are_named(tmp_path):
    # Before (QA): a loop of two links was "a broken link (its target l2.wav does not exist)" though l2.wav
    # exists, and a folder linking to the dataset itself became one more class holding every clip.
    root = make_folder(tmp_path)
    (root / "clap" / "l1.wav").symlink_to("l2.wav")
    (root / "clap" / "l2.wav").symlink_to("l1.wav")
    with pytest.raises(UserError, match=r"l1\.wav: a link that leads back to itself \(a loop of links\)$"):
        build_data(cfg(root, split="ratio"), seed=0)
    for f in ("l1.wav", "l2.wav"):
        (root / "clap" / f).unlink()
    for target in (root, tmp_path):
        (root / "self").symlink_to(target)
        with pytest.raises(UserError, match=r"self: a link to the dataset folder itself \(or above it\), "
                                            r"not a class folder; remove it$"):
            build_data(cfg(root, split="ratio"), seed=0)
        (root / "self").unlink()


def test_a_class_folder_named_with_a_newline_is_refused_and_named_escaped(tmp_path):
    # Before (QA): accepted; the class name then split predict's and evaluate's lines and tables.
    root = make_folder(tmp_path)
    (root / "clap").rename(root / "cl\nap")
    with pytest.raises(UserError, match=r"/cl\\nap: a class folder name with a control character \(a "
                                        r"newline or tab\?\); rename the folder$"):
        build_data(cfg(root, split="ratio"), seed=0)


def test_list_files_with_a_byte_order_mark_or_other_unicode_forms_match(tmp_path):
    # before: "unknown label 'café'" for a list saved with a BOM, or in NFC against folders a Mac wrote in NFD
    import unicodedata

    root = make_folder(tmp_path, classes=(unicodedata.normalize("NFD", "café"), "alarm"), per_class=4)
    clips = sorted(p.name for p in (root / unicodedata.normalize("NFD", "café")).iterdir())
    (root / "validation_list.txt").write_text(f"\ufeffcafé/{clips[0]}\r\n", encoding="utf-8")
    (root / "testing_list.txt").write_text(f"café/{clips[1]}\n", encoding="utf-8")  # NFC
    b = build_data(cfg(root, split="lists"), seed=0)
    nfd = unicodedata.normalize("NFD", "café")
    assert [p for p, _ in b.val.items] == [f"{nfd}/{clips[0]}"]  # the path on disk
    assert [p for p, _ in b.test.items] == [f"{nfd}/{clips[1]}"]
    assert b.test[0][0].abs().max() > 0  # it loads


def test_files_of_other_formats_in_class_folders_are_warned_about(tmp_path):
    root = make_folder(tmp_path, per_class=4)
    (root / "clap" / "take2.aiff").write_bytes(b"FORM")
    (root / "alarm" / "deep").mkdir()
    (root / "alarm" / "deep" / "x.opus").write_bytes(b"OggS")
    (root / "alarm" / ".DS_Store").write_bytes(b"")  # hidden: skipped without a word
    said = (r"2 file\(s\) in the class folders are not audio files \(\.wav, \.flac, \.ogg, \.mp3\) and are "
            r"not used \(\.aiff, \.opus; e\.g\. ")
    with pytest.warns(UserWarning, match=said):
        b = build_data(cfg(root, split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0)
    assert len(b.train) + len(b.val) + len(b.test) == 12


def test_a_class_folder_linked_to_another_is_refused(tmp_path):
    # before: a fourth class holding the same clips as "clap"
    root = make_folder(tmp_path, per_class=4)
    (root / "zz_clap_link").symlink_to(root / "clap", target_is_directory=True)
    said = (rf"^{re.escape(str(root / 'zz_clap_link'))}: the same folder as {re.escape(str(root / 'clap'))} "
            rf"\(a link\); each class needs its own folder$")
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, split="ratio"), seed=0)


def test_a_clip_reached_twice_is_used_once_and_one_in_two_classes_is_refused(tmp_path):
    # before (QA): a link to a clip was one more clip, split apart from its target (train and test both)
    import os

    root = make_folder(tmp_path / "data", per_class=4)
    clip = sorted((root / "clap").iterdir())[0]
    (root / "clap" / "zz_link.wav").symlink_to(clip)
    os.link(clip, root / "clap" / "zz_hard.wav")
    said = (rf"^{re.escape(str(root))}: 2 clip\(s\) are links to another clip of their class and are used "
            rf"once \(e.g. clap/zz_hard.wav, the same file as clap/{clip.name}\)$")
    with pytest.warns(UserWarning, match=said):
        b = build_data(cfg(root, split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0)
    assert len(b.train) + len(b.val) + len(b.test) == 12
    (root / "dog_bark" / "zz_link.wav").symlink_to(clip)
    said = (rf"^{re.escape(str(root / 'dog_bark' / 'zz_link.wav'))}: the same file as "
            rf"{re.escape(str(clip))} \(a link\), in two classes; expected each clip in one class folder$")
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, split="ratio"), seed=0)


def test_background_noise_follows_the_class_folders_file_rules(tmp_path):
    # Before: macOS's ._hum.wav stopped the run ("not a readable audio file"), files of other formats or in
    # subfolders were dropped without a word (augmentation silently off), and each noise file at another
    # rate warned on its own.
    import warnings

    root = make_folder(tmp_path, per_class=4, noise=True)
    noise = root / "_background_noise_"
    (noise / "._hum.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(80))  # AppleDouble: skipped
    (noise / "README.md").write_text("as in the official sets: skipped")
    (noise / "rain.aiff").write_bytes(b"FORM")
    (noise / "more").mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(noise / name, 0.1 * np.ones(8000, np.float32), 8000)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        b = build_data(cfg(root, split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0)
    said = [str(w.message) for w in record]
    assert len(b.train.noise) == 3  # a.wav, b.wav, hum.wav
    assert (f"{noise}: 2 item(s) here are not audio files (.wav, .flac, .ogg, .mp3) and are not used as "
            f"noise (subfolders are not entered; e.g. {noise / 'more'})") in said
    rates = [m for m in said if "Hz" in m]
    assert rates == [f"2 of 3 background noise files are not at 16000 Hz (8000 Hz; e.g. {noise / 'a.wav'}); "
                     f"resampling them once"]
    for f in noise.iterdir():
        if f.name != "README.md":
            f.unlink() if f.is_file() else f.rmdir()
    with pytest.warns(UserWarning, match=rf"^{re.escape(str(noise))}: holds no audio files \(.*\); training "
                                         r"without noise augmentation$"):
        assert not build_data(cfg(root, split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0).train.noise


def test_class_names_are_read_in_nfc_so_a_copy_a_mac_wrote_is_the_same_dataset(tmp_path):
    # Before: a copy with NFD folder names (macOS) had other class names, sorted in another order (here 'va'
    # before 'über' in NFC, after 'u' + U+0308 in NFD): evaluate refused the run with two lists that print
    # the same, and ratio splits drew other clips.
    import unicodedata

    from audionas.train.trained_run import check_classes

    names = ("über café ☕", "va", "alarm")
    nfc_root = make_folder(tmp_path / "nfc", classes=names, per_class=6)
    nfd_root = make_folder(tmp_path / "nfd", classes=[unicodedata.normalize("NFD", c) for c in names],
                           per_class=6)
    bundles = [build_data(cfg(r, split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0)
               for r in (nfc_root, nfd_root)]
    assert bundles[0].classes == bundles[1].classes == ["alarm", "va", "über café ☕"]
    split = [[(unicodedata.normalize("NFC", p), y) for p, y in ds.items] for ds in (bundles[1].train,
                                                                                     bundles[1].val)]
    assert split == [bundles[0].train.items, bundles[0].val.items]
    nfd_trained = sorted(unicodedata.normalize("NFD", c) for c in names)  # a run from before: NFD, NFD order
    same = [unicodedata.normalize("NFD", c) for c in bundles[0].classes]  # NFD names, the order of NFC's
    check_classes(bundles[0], same, nfc_root, "checkpoint's", "run")
    with pytest.raises(UserError, match="differ from the"):
        check_classes(bundles[0], nfd_trained, nfc_root, "checkpoint's", "run")  # its labels are in NFD order
    (nfd_root / "va").rename(nfd_root / unicodedata.normalize("NFC", "über café ☕"))  # beside its NFD twin
    with pytest.raises(UserError, match=r"the same name as .* in another Unicode form \(NFC / NFD\); merge"):
        build_data(cfg(nfd_root, split="ratio"), seed=0)


def test_data_one_level_above_the_dataset_is_warned_about(tmp_path):
    # Before: --data PARENT (holding mine/ and mine2/) trained a 2-class "mine vs mine2" model on every clip
    # and the noise recordings, without a word (QA).
    make_folder(tmp_path / "mine", per_class=4, noise=True)
    make_folder(tmp_path / "mine2", per_class=4)
    (tmp_path / "mine2" / "testing_list.txt").write_text("")
    said = (rf"^{re.escape(str(tmp_path))}: 2 class folder\(s\) hold a dataset's _background_noise_/ or list "
            rf"files \(e\.g\. {re.escape(str(tmp_path / 'mine'))}\); is this folder one level above the "
            rf"dataset\?$")
    with pytest.warns(UserWarning, match=said):
        assert build_data(cfg(tmp_path, split="ratio"), seed=0).classes == ["mine", "mine2"]


@pytest.mark.parametrize("split", ["hash", "ratio", "speaker_ratio"])
def test_file_names_are_read_in_nfc_so_a_copy_a_mac_wrote_splits_the_same(tmp_path, split):
    # Before (QA): a copy whose clip names a Mac wrote in NFD ("é" as e + U+0301) put other speakers in each
    # split (hash of the raw name, sort of the raw speaker ids) and listed clips in another order: another
    # split and other weights from one dataset; its fingerprint differed too, so evaluate warned.
    import shutil
    import unicodedata

    from audionas.data import split_fingerprint

    src = make_folder(tmp_path / "src", classes=("alarm", "clap"), per_class=12)
    roots = {}
    for form in ("NFC", "NFD"):
        root = roots[form] = tmp_path / form
        for wav in sorted(src.rglob("*.wav")):
            spk = wav.name.split("_nohash_")[0]
            name = unicodedata.normalize(form, f"é{spk}_nohash_0.wav" if int(spk, 16) % 2 else wav.name)
            (root / wav.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(wav, root / wav.parent.name / name)
    names = {form: sorted(p.name for p in root.rglob("*.wav")) for form, root in roots.items()}
    assert names["NFC"] != names["NFD"]
    kw = {"ratios": [0.5, 0.25, 0.25]} if split != "hash" else {"val_pct": 25.0, "test_pct": 25.0}
    nfc, nfd = (build_data(cfg(roots[f], split=split, **kw), seed=0) for f in ("NFC", "NFD"))
    for a, b in ((nfc.train, nfd.train), (nfc.val, nfd.val), (nfc.test, nfd.test)):
        assert [(unicodedata.normalize("NFC", p), y) for p, y in b.items] == a.items
    assert split_fingerprint(nfc) == split_fingerprint(nfd)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_float_clip_beyond_the_unit_range_is_warned_about_once_per_run(tmp_path, capfd, workers):
    # Before (signals QA): DataLoader workers are new processes each epoch, so with data.num_workers > 0 each
    # such clip was warned about again every epoch and every evaluation.
    import os
    import warnings

    from torch.utils.data import DataLoader

    root = make_folder(tmp_path)
    loud = sorted(root.glob("*/*.wav"))
    for f in loud:
        x, _ = sf.read(f, dtype="float32")
        sf.write(f, 2.0 * x / np.abs(x).max(), 16000, subtype="FLOAT")
    b = build_data(cfg(root, split="ratio"), seed=0)
    with warnings.catch_warnings():  # each warning to fd 2 in one write, from the workers too
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_, **__: os.write(2, f"{message}\n".encode())
        b.test.check_readable()
        for epoch in (0, 1, 2):
            b.train.set_epoch(epoch)
            for ds in (b.train, b.val, b.val_augmented, b.test):  # val_augmented: the val clips again
                for x, _ in DataLoader(ds, batch_size=8, num_workers=workers):
                    assert x.abs().max() > 1.5
    said = [line for line in capfd.readouterr().err.splitlines() if "beyond [-1, 1]" in line]
    assert len(said) == len(loud) == len({line.split(":")[0] for line in said})


@pytest.mark.parametrize("split", ["hash", "ratio"])
def test_a_file_name_that_is_not_utf8_is_split_and_read(tmp_path, split):
    # Before (data QA): the hash split raised UnicodeEncodeError (a traceback, exit 1) on a Latin-1 name, and
    # the ratio split called that readable file "not a readable audio file".
    import os
    import shutil
    import warnings

    root = make_folder(tmp_path)
    first = sorted((root / "clap").iterdir())[0]
    latin1 = os.fsdecode(os.fsencode(root / "clap") + b"/caf\xe9_nohash_0.wav")
    shutil.copy(first, latin1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = build_data(cfg(root, split=split), seed=0)
    found = [(ds, i) for ds in (b.train, b.val, b.test) for i, (p, _) in enumerate(ds.items) if "\udce9" in p]
    assert len(found) == 1
    x, y = found[0][0][found[0][1]]
    assert x.shape == (16000,) and b.classes[y] == "clap"


def test_a_class_folder_name_that_is_not_utf8_is_refused_and_shown_escaped(tmp_path):
    # Before (review): it trained, then the confusion plot raised a TypeError on the class name (exit 1).
    import os

    root = make_folder(tmp_path)
    os.rename(root / "clap", os.fsencode(root) + b"/cl\xe4p")
    with pytest.raises(UserError, match=r"cl\\udce4p: a class folder name that is not UTF-8 \(another "
                                        r"encoding's bytes, shown escaped\); rename the folder$"):
        build_data(cfg(root, split="ratio"), seed=0)


def test_clips_left_out_by_limit_per_class_are_counted_in_one_warning(tmp_path):
    # Before (own-sounds QA): the CPU presets' caps (24-500 clips per class) dropped a user's clips silently.
    import warnings

    root = make_folder(tmp_path)

    def said(training=True, **kw):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            b = build_data(cfg(root, split="ratio", **kw), seed=0, training=training)
        return b, [str(w.message) for w in record if "limit_per_class" in str(w.message)]

    full, none = said()
    total = sum(len(ds) for ds in (full.train, full.val, full.test))
    capped, lines = said(limit_per_class=2)
    kept = sum(len(ds) for ds in (capped.train, capped.val, capped.test))
    assert not none and kept < total
    assert lines == [f"{root}: data.limit_per_class=2 keeps {kept} of {total} clips (at most 2 per class in "
                     f"each split; a cap of quick presets); data.limit_per_class=0 uses them all"]
    assert said(training=False, limit_per_class=2)[1] == []  # scoring a run: its training said so (review)


def test_a_feature_at_another_input_length_sizes_the_clips_and_the_model_input(tmp_path):
    root = make_folder(tmp_path)
    with pytest.warns(UserWarning):  # the hash split fallback
        b = build_data(cfg(root, feature="honk-mfcc@0.5s"), seed=0)
    x, _ = b.train[0]
    assert x.shape == (8000,) and tuple(b.input_shape) == (1, 51, 40)
    assert tuple(b.frontend(x[None]).shape) == (1, 1, 51, 40)


@pytest.mark.parametrize("where", ["alarm", "alarm/sub"])
def test_a_class_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch, where):
    # Before (QA): an unreadable class folder was "<class>/_background_noise_: Permission denied" (a path
    # that does not exist), and an unreadable subfolder was skipped with its clips, silently.
    import os

    root = make_folder(tmp_path)
    (root / "alarm" / "sub").mkdir()
    denied = root / where
    scandir = os.scandir

    def listing(path="."):  # as for a folder without read permission (the tests run as root)
        if os.fspath(path) == str(denied):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", listing)
    with pytest.raises(UserError, match=f"^{re.escape(str(denied))}: cannot read \\(Permission denied\\)$"):
        build_data(cfg(root, split="ratio"), seed=0)


def test_a_fifo_named_like_audio_is_named(tmp_path):
    # Before (QA): left out of the class silently
    import os

    root = make_folder(tmp_path)
    os.mkfifo(root / "alarm" / "zz.wav")
    with pytest.raises(UserError, match=r"alarm/zz.wav: named like audio but not a regular file \(a FIFO"):
        build_data(cfg(root, split="ratio"), seed=0)


def test_a_broken_link_among_the_noise_files_is_named_as_one(tmp_path):
    # Before (QA): counted among the items "not WAV ... (subfolders are not entered)", with a warning only
    root = make_folder(tmp_path, noise=True)
    (root / "_background_noise_" / "zz.wav").symlink_to(tmp_path / "gone.wav")
    with pytest.raises(UserError, match=r"_background_noise_/zz.wav: a broken link \(its target .*gone.wav"):
        build_data(cfg(root, split="ratio"), seed=0)


def test_a_link_to_a_device_among_the_noise_files_is_named(tmp_path):
    # Before (QA): counted among the items "not WAV ... (subfolders are not entered)", with a warning only
    root = make_folder(tmp_path, noise=True)
    (root / "_background_noise_" / "zz.wav").symlink_to("/dev/urandom")
    with pytest.raises(UserError, match=r"_background_noise_/zz.wav: named like audio but not a regular"):
        build_data(cfg(root, split="ratio"), seed=0)


def test_a_recording_in_two_formats_is_one_speaker_group():
    # without `_nohash_` the group is the file stem, so take1.wav and take1.flac land in one split
    assert speaker_of("clap/take1.wav") == speaker_of("clap/take1.flac") == "take1"
    assert speaker_of("clap/sub/bob_nohash_2.wav") == "bob"


def test_a_class_folder_linking_above_the_dataset_is_named(tmp_path):
    # its clips would hold the dataset's own clips again, as one more class
    root = make_folder(tmp_path / "ds")
    (root / "up").symlink_to(root.parent)
    said = r"up: a link to the dataset folder itself \(or above it\), not a class folder; remove it$"
    with pytest.raises(UserError, match=said):
        build_data(cfg(root, split="ratio"), seed=0)


def test_limit_per_class_keeps_the_chosen_clips_in_file_order(tmp_path):
    root = make_folder(tmp_path)
    b = build_data(cfg(root, split="hash", limit_per_class=3), seed=0)
    items = [p for p, _ in b.train.items]
    assert len(items) == 9 and items == sorted(items)  # classes in order, each class's clips in file order


def test_a_noise_file_shorter_than_a_clip_is_tiled_not_padded_with_silence(tmp_path):
    root = make_folder(tmp_path)
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "short.wav", np.full(4000, 0.25, np.float32), 16000)
    b = build_data(cfg(root, split="ratio"), seed=0)
    (noise,) = b.train.noise
    assert noise.shape == (16000,) and np.all(noise == 0.25)


@pytest.mark.parametrize("split", ["ratio", "speaker_ratio"])
def test_speakers_named_in_nfd_are_grouped_and_ordered_as_in_nfc(tmp_path, split):
    # 'é' sorts after 'f' in NFC but before it as NFD's 'e' + U+0301: the speaker order, hence the seeded
    # split, must not depend on the form a copy was written in
    import unicodedata

    from audionas.data.class_folders import assign_splits

    speakers = [f"{p}{k}" for p in ("d", "é", "f") for k in range(4)]
    parts = {}
    for form in ("NFC", "NFD"):
        rels = [unicodedata.normalize(form, f"a/{s}_nohash_{n}.wav") for s in speakers for n in range(2)]
        c = cfg(tmp_path, split=split, ratios=[0.5, 0.25, 0.25], split_seed=1)
        parts[form] = [sorted(unicodedata.normalize("NFC", r) for r in p)
                       for p in assign_splits(tmp_path, {"a": rels}, c)]
    assert parts["NFC"] == parts["NFD"]
