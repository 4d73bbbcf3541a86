"""DCASE2018 feature cache: contents, resume, verification, shuffle-and-mix warnings, CLI, errors."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from dcase_helpers import SHORT, _cfg, _prep

from audionas.cli import main
from audionas.data import DataConfig, build_data
from audionas.data.dcase_fixtures import DEV_DIRNAME
from audionas.errors import UserError
from audionas.features import build_frontend

pytestmark = pytest.mark.usefixtures("short_dcase_preset")


# ------------------------------------------------------------------------------------------- cache
def test_cache_contents_match_frontend(fixture_root, cache):
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["shape"] == [40, 26] and manifest["sets"] == ["dev", "eval"]
    feats = np.load(cache / "dev" / "features.npy", mmap_mode="r")
    assert feats.shape == (72 * 4, 40, 26) and feats.dtype == np.float16
    index = (cache / "dev" / "index.tsv").read_text().splitlines()
    assert index[0] == "row\tfile\tlabel\tsession\tchannel"
    assert len(index) == 1 + 72 * 4
    row, file, label, session, ch = index[1 + 4 * 5 + 2].split("\t")
    assert int(row) == 22 and ch == "2"
    wave, _ = sf.read(str(fixture_root / DEV_DIRNAME / file), dtype="float32")
    ref = build_frontend(SHORT)(torch.from_numpy(wave[:, 2].copy())[None])[0, 0].numpy()
    np.testing.assert_allclose(feats[22].astype(np.float32), ref, rtol=2e-3, atol=2e-2)
    assert not np.array_equal(feats[22], feats[23])  # channels differ


def test_real_preset_gives_40x501(fixture_root, tmp_path):
    out = tmp_path / "c"
    _prep(fixture_root, out, feature="dcase-logmel", limit=1)
    b = build_data(DataConfig(kind="dcase2018", root=str(out), feature="dcase-logmel", augment=False), 0)
    x, y = b.train[0]
    assert b.input_shape == (1, 40, 501) and x.shape == (1, 40, 501) and x.dtype == torch.float32
    assert b.time_axis == "w"  # bands x time: an ASC model reads time along W
    assert len(b.train) == 9 * 4  # --limit 1: one segment per class, four channels each
    z = b.frontend(torch.stack([b.train[i][0] for i in range(len(b.train))]))
    per_band = z.permute(2, 0, 1, 3).reshape(40, -1)  # all 36 items: the statistics are exact
    torch.testing.assert_close(per_band.mean(1), torch.zeros(40), atol=1e-3, rtol=0)
    torch.testing.assert_close(per_band.std(1, correction=0), torch.ones(40), atol=1e-3, rtol=0)
    raw = build_data(DataConfig(kind="dcase2018", root=str(out), feature="dcase-logmel", augment=False,
                                normalize=False), 0)
    assert isinstance(raw.frontend, torch.nn.Identity)


def test_resume_after_interruption_gives_identical_bytes(fixture_root, cache, tmp_path):
    out = tmp_path / "c"
    _prep(fixture_root, out, chunk_files=4, checkpoint_every=8, stop_after=20)
    prog = json.loads((out / "dev" / "progress.json").read_text())
    assert prog["done_files"] == 24  # stopped at the first checkpoint after 20 segments
    with pytest.raises(UserError, match="incomplete"):
        build_data(_cfg(out), 0)
    summary = _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    assert summary["sets"]["dev"]["complete"] and not summary["sets"]["dev"]["reused"]
    for name in ("dev", "eval"):
        for f in ("features.npy", "index.tsv", "set.json"):
            assert (out / name / f).read_bytes() == (cache / name / f).read_bytes(), (name, f)


def test_crash_mid_chunk_resumes_from_marker(fixture_root, cache, tmp_path, monkeypatch):
    import audionas.data.dcase_cache as mod

    out = tmp_path / "c"
    real = mod._waveform_chunk
    calls = {"n": 0}

    def crashing(*a, **kw):
        compute = real(*a, **kw)

        def wrapped(start, stop):
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return compute(start, stop)
        return wrapped

    monkeypatch.setattr(mod, "_waveform_chunk", crashing)
    with pytest.raises(KeyboardInterrupt):
        _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    assert json.loads((out / "dev" / "progress.json").read_text())["done_files"] == 16
    monkeypatch.setattr(mod, "_waveform_chunk", real)
    _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    assert (out / "dev" / "features.npy").read_bytes() == (cache / "dev" / "features.npy").read_bytes()


def test_a_kill_during_the_first_manifest_write_does_not_block_the_rerun(fixture_root, cache, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / ".manifest.json.k1ll3d00.tmp").write_text('{"form')  # what the killed atomic write left
    _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    assert (out / "dev" / "features.npy").read_bytes() == (cache / "dev" / "features.npy").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in cache.iterdir())


def test_reuse_verifies_source(fixture_root, cache, tmp_path):
    summary = _prep(fixture_root, cache, chunk_files=4, checkpoint_every=8)
    assert summary["sets"]["dev"]["reused"]
    with pytest.raises(UserError, match=rf"{cache / 'dev'}: this cache was built with --limit 0 \(now 2\); "
                                        rf"use another --out or delete {cache}"):
        _prep(fixture_root, cache, limit=2)  # another source list into the same cache
    # a changed label in the source after caching
    src = tmp_path / "src"
    shutil.copytree(fixture_root, src)
    out = tmp_path / "c"
    _prep(src, out)
    meta = src / DEV_DIRNAME / "meta.txt"
    meta.write_text(meta.read_text().replace("DevNode1_ex1_1.wav\tabsence", "DevNode1_ex1_1.wav\tcooking"))
    for k in range(1, 5):  # keep the folds consistent with meta.txt
        for s in ("train", "evaluate"):
            p = src / DEV_DIRNAME / "evaluation_setup" / f"fold{k}_{s}.txt"
            p.write_text(p.read_text().replace("DevNode1_ex1_1.wav\tabsence", "DevNode1_ex1_1.wav\tcooking"))
    with pytest.raises(UserError, match="different source list"):
        _prep(src, out)


def test_damaged_cache_is_a_user_error(cache, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(cache, bad)
    idx = bad / "dev" / "index.tsv"
    idx.write_text(idx.read_text().replace("absence", "cooking", 1))
    with pytest.raises(UserError, match=rf"{bad}.*checksum"):
        build_data(_cfg(bad), 0)
    bad2 = tmp_path / "bad2"
    shutil.copytree(cache, bad2)
    feats = np.load(bad2 / "eval" / "features.npy")
    np.save(bad2 / "eval" / "features.npy", feats[:-4])
    n, bands, frames = feats.shape
    want = rf"expected \({n}, {bands}, {frames}\) float16"
    with pytest.raises(UserError, match=rf"{bad2}: eval/features.npy holds \({n - 4}, {bands}, {frames}\) "
                                        rf"float16, {want} \({n // 4} segments x 4 channels of "):
        build_data(_cfg(bad2), 0)
    np.save(bad2 / "eval" / "features.npy", feats.astype(np.float32))
    with pytest.raises(UserError, match=rf"features.npy holds \({n}, {bands}, {frames}\) float32, {want} .*; "
                                        rf"prepare the cache again"):
        build_data(_cfg(bad2), 0)


def test_a_cut_short_or_empty_features_file_is_refused_not_read_as_zeros(fixture_root, cache, tmp_path):
    # Before (QA): a resume over a features.npy cut short padded it with zero rows and called the cache
    # complete; an empty one was an EOFError / ValueError traceback (train, evaluate, prepare).
    out = tmp_path / "c"
    _prep(fixture_root, out, chunk_files=4, checkpoint_every=8, stop_after=20)
    feats = out / "dev" / "features.npy"
    with open(feats, "r+b") as f:
        f.truncate(5000)
    damaged = rf"{feats}: cut short or unreadable; delete the cache folder {out} and prepare it again$"
    with pytest.raises(UserError, match=damaged):
        _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    assert feats.stat().st_size == 5000
    feats.write_bytes(b"")
    with pytest.raises(UserError, match=damaged):
        _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    done = tmp_path / "done"
    shutil.copytree(cache, done)
    (done / "dev" / "features.npy").write_bytes(b"")
    with pytest.raises(UserError, match=rf"{done / 'dev' / 'features.npy'}: cut short or unreadable; "):
        build_data(_cfg(done), 0)


# ------------------------------------------------------------------------------------------- bad input
def test_wavs_at_another_rate_get_one_warning_for_the_set(small_root, tmp_path):
    """Before: one warning per wav (twice for the first), i.e. a line per segment: 72,984 on the real set."""
    import librosa

    wavs = sorted((small_root / DEV_DIRNAME / "audio").glob("*.wav"))
    for wav in wavs:
        data, sr = sf.read(str(wav), dtype="float32")
        sf.write(str(wav), librosa.resample(data.T, orig_sr=sr, target_sr=8000).T, 8000, subtype="PCM_16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _prep(small_root, tmp_path / "c")
    first = small_root / DEV_DIRNAME / "audio" / "DevNode1_ex1_1.wav"  # meta.txt's first
    n = len(wavs)
    assert [str(w.message) for w in caught] == [
        f"dev set: {n} of {n} wavs are not at 16000 Hz (8000 Hz; e.g. {first}); resampling them"]


def test_a_resumed_set_reads_its_headers_again_and_a_finished_one_does_not(small_root, tmp_path, monkeypatch):
    """Only a finished set is reused unread: a resumed one warns of other rates as a fresh one does (the
    first run's warning may be long gone), and a finished one reads none of its 72,984 headers again."""
    import librosa

    import audionas.data.audio as audio

    for wav in (small_root / DEV_DIRNAME / "audio").glob("*.wav"):
        data, sr = sf.read(str(wav), dtype="float32")
        sf.write(str(wav), librosa.resample(data.T, orig_sr=sr, target_sr=8000).T, 8000, subtype="PCM_16")
    out = tmp_path / "c"
    with pytest.warns(UserWarning, match="resampling them"):
        assert not _prep(small_root, out, chunk_files=4, checkpoint_every=8, stop_after=8)["sets"]["dev"][
            "complete"]
    with pytest.warns(UserWarning, match=r"^dev set: 36 of 36 wavs are not at 16000 Hz .*resampling them$"):
        assert _prep(small_root, out)["sets"]["dev"]["complete"]
    read, check = [], audio.check_audio
    monkeypatch.setattr(audio, "check_audio", lambda *a, **kw: read.append(a) or check(*a, **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _prep(small_root, out)["sets"]["dev"]["reused"]
    assert read == []


@pytest.mark.parametrize("problem", ["channels", "length"])
def test_bad_wav_names_the_file(small_root, tmp_path, problem):
    wav = small_root / DEV_DIRNAME / "audio" / "DevNode1_ex6_1.wav"
    data, sr = sf.read(str(wav))
    if problem == "channels":
        sf.write(str(wav), data[:, :2], sr, subtype="PCM_16")
        msg = "expected 4 channel"
    else:
        sf.write(str(wav), data[:4000], sr, subtype="PCM_16")
        msg = "expected 8000 frames"
    with pytest.raises(UserError, match=rf"DevNode1_ex6_1.wav: {msg}"):
        _prep(small_root, tmp_path / "c")


# ------------------------------------------------------------------------------------------- CLI
def test_cli_exit_codes(tmp_path, capsys):
    root = tmp_path / "fx"
    assert main(["data", "make-dcase-fixture", "--out", str(root), "--sessions", "1", "--segments", "1",
                 "--nodes", "1", "--seconds", "0.5"]) == 0
    assert (root / DEV_DIRNAME / "meta.txt").is_file()
    assert capsys.readouterr().out.strip() == str(root)
    out = tmp_path / "cache"
    args = ["data", "prepare-dcase2018", "--root", str(root), "--out", str(out), "--seconds", "0.5",
            "--feature", SHORT, "--no-progress"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sets"]["dev"]["segments"] == 9
    assert main(args + ["--augment", "--augment-scale", "0.0002", "--augment-scope", "dev"]) == 0
    capsys.readouterr()
    assert (out / "aug-dev" / "features.npy").is_file()
    assert main(args + ["--augment", "--augment-scale", "0.0003", "--augment-scope", "dev"]) == 2
    assert capsys.readouterr().err.endswith(f"use another --out or delete {out / 'aug-dev'}\n")
    shutil.rmtree(out / "aug-dev")  # what the error says is enough: only the mixed segments are rebuilt
    assert main(args + ["--augment", "--augment-scale", "0.0003", "--augment-scope", "dev"]) == 0
    capsys.readouterr()
    import audionas.data.dcase_cache as dc

    asked, prepare = [], dc.prepare_augmentation
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dc, "prepare_augmentation", lambda c, scopes, **kw: (asked.append(scopes),
                                                                         prepare(c, scopes, **kw))[1])
        assert main(args + ["--augment", "--augment-scale", "0.0003", "--augment-scope", "dev,dev, dev"]) == 0
    assert asked == [["dev"]]  # before: dev three times over
    capsys.readouterr()
    assert main(["data", "prepare-dcase2018", "--root", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "nope: dataset folder not found" in capsys.readouterr().err
    assert main(args + ["--seconds", "10"]) == 2  # another setting on a finished cache
    assert main(args + ["--augment", "--augment-scope", "fold9"]) == 2
    capsys.readouterr()
    assert main(args + ["--augment", "--augment-scope", " , "]) == 2  # no scope at all, not 'nothing to mix'
    assert "--augment-scope: expected a comma list of " in capsys.readouterr().err
    for flag, value in (("--augment-scope", "fold1"), ("--augment-scale", "0.5"), ("--seed", "3")):
        assert main(args + [flag, value]) == 2  # was: ignored without a word
        expected = f"{flag}: only used with --augment (shuffle-and-mix); add --augment or drop it"
        assert capsys.readouterr().err == f"audionas: error: {expected}\n"
    with pytest.raises(SystemExit, match="2"):
        main(["data", "make-dcase-fixture", "--out", str(tmp_path / "x"), "--nodes", "7"])
    assert "argument --nodes: invalid choice: 7 (choose from 1, 2, 3, 4)" in capsys.readouterr().err


@pytest.mark.parametrize("scale", ["11", "1e20"])
def test_augment_scale_beyond_10_is_refused_before_any_work(dcase_root, tmp_path, capsys, scale):
    out = tmp_path / "cache"
    assert main(["data", "prepare-dcase2018", "--root", str(dcase_root), "--out", str(out), "--seconds",
                 "0.5", "--feature", SHORT, "--no-progress", "--augment", "--augment-scale", scale]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --augment-scale: expected a number in (0, 10] (1 = "
                                       f"the paper's 14K/28K segments per class), got {float(scale):g}\n")
    assert not out.exists()


@pytest.mark.parametrize("seconds", ["10", "1e300"])
def test_a_wrong_seconds_is_refused_on_the_first_wav_before_any_work(dcase_root, tmp_path, capsys, seconds):
    # Before: the cache folder was made, then the first chunk failed (1e300: a 300-digit frame count).
    out = tmp_path / "cache"
    assert main(["data", "prepare-dcase2018", "--root", str(dcase_root), "--out", str(out), "--seconds",
                 seconds, "--feature", SHORT, "--no-progress"]) == 2
    err = capsys.readouterr().err
    msg = f".wav: 0.5 s long, but --seconds {float(seconds):g} expects every wav to last that long"
    assert err.count("\n") == 1 and msg in err
    assert not out.exists()


def test_augmentation_far_larger_than_its_pool_warns_with_size_and_scale(dcase_cache, tmp_path):
    """The paper's absolute 14K/28K targets on a small cache: one warning with the plan, size and a scale."""
    from audionas.data.dcase_cache import augmentation_warning, prepare_augmentation

    labels, pool = np.repeat(np.arange(9), 4), np.arange(36)
    msg = augmentation_warning("dev", labels, pool, 168000 - 36, 1.0, (40, 501))
    assert "167964 new segments from 36 source segments (4666x, about 26.9 GB" in msg
    assert "--augment-scale 0.00064 plans about 2x" in msg
    assert augmentation_warning("dev", labels, pool, 360, 1.0, (40, 501)) is None
    cache = tmp_path / "cache"
    shutil.copytree(dcase_cache, cache)
    with pytest.warns(UserWarning, match=r"aug-dev: --augment-scale 0.003 plans 468 new segments from 36 "
                                         r"source segments \(13x, about 3.9 MB"):
        summary = prepare_augmentation(cache, ["dev"], scale=0.003, progress=False)
    assert summary["dev"]["new_segments"] == 468
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_augmentation(cache, ["dev"], scale=0.003, progress=False)  # finished: no warning again


def test_data_that_is_no_cache_says_what_it_is(speech_commands_root, tmp_path):
    """A keyword dataset gets a hint to use a keyword preset; a missing folder is named as missing."""
    with pytest.raises(UserError, match=r"manifest.json missing\); it looks like a keyword dataset "
                                        r".*kws-\* preset or data.kind=speech_commands\|folder$"):
        build_data(_cfg(speech_commands_root), 0)
    with pytest.raises(UserError, match=rf"^{tmp_path / 'nope'}: no such folder \(expected a DCASE2018 "):
        build_data(_cfg(tmp_path / "nope"), 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: not a DCASE2018 feature cache \(manifest.json missing\)$"):
        build_data(_cfg(tmp_path / "empty"), 0)


def test_a_wav_replaced_after_caching_is_noticed_by_its_size(small_root, tmp_path):
    out = tmp_path / "c"
    _prep(small_root, out)
    wav = small_root / DEV_DIRNAME / "audio" / "DevNode1_ex6_1.wav"
    data, sr = sf.read(str(wav))
    sf.write(str(wav), data, sr, subtype="PCM_24")  # same segment list and labels, another file
    with pytest.raises(UserError, match=rf"{out / 'dev'}: this cache was built from a different source list"):
        _prep(small_root, out)


@pytest.mark.parametrize("problem", ["missing", "channels", "length", "length at another rate"])
def test_a_missing_or_bad_wav_header_is_refused_before_anything_is_written(small_root, tmp_path, problem):
    """Before: manifest.json, set.json and index.tsv were written first, then the headers read; a wav of
    another length (not the first) stopped the feature pass midway, and once fixed the cache's fingerprint
    (file sizes) refused the resume."""
    wav = small_root / DEV_DIRNAME / "audio" / "DevNode1_ex6_1.wav"
    data, sr = sf.read(str(wav))
    if problem == "missing":
        wav.unlink()
    elif problem == "channels":
        sf.write(str(wav), data[:, :2], sr, subtype="PCM_16")
    elif problem == "length":
        sf.write(str(wav), data[:4000], sr, subtype="PCM_16")
    else:  # 0.25 s at 32 kHz: 4000 frames once resampled to 16 kHz, 8000 expected
        sf.write(str(wav), np.repeat(data[:4000], 2, axis=0), 2 * sr, subtype="PCM_16")
    said = {"missing": r"audio file not found \(1 of the 36 wavs of the dev set are missing; extract the",
            "channels": "expected 4 channel",
            "length": "expected 8000 frames at 16000 Hz, got 4000",
            "length at another rate": r"expected 8000 frames at 16000 Hz, got 4000 once resampled from its "
                                      r"32000 Hz \(0\.25 s; 0\.5 s expected\)$"}[problem]
    with pytest.raises(UserError, match=f"DevNode1_ex6_1.wav: {said}"):
        _prep(small_root, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_all_missing_wavs_are_counted(small_root, tmp_path):
    # before: a half-extracted archive named its first missing wav only
    dev = small_root / DEV_DIRNAME
    files = [line.split("\t")[0] for line in (dev / "meta.txt").read_text().splitlines() if line.strip()]
    for f in files[:3]:
        (dev / f).unlink()
    with pytest.raises(UserError, match=rf"^{dev / files[0]}: audio file not found \(3 of the 36 wavs of the "
                                        rf"dev set are missing; extract the whole archive\)$"):
        _prep(small_root, tmp_path / "c")


def test_a_set_stopped_by_a_bad_wav_before_any_row_starts_again_once_fixed(small_root, tmp_path):
    wav = small_root / DEV_DIRNAME / "audio" / "DevNode1_ex6_1.wav"  # in the first chunk of 8 files
    good = wav.read_bytes()
    data, sr = sf.read(str(wav), dtype="float32")
    data[5, 0] = np.nan
    sf.write(str(wav), data, sr, subtype="FLOAT")  # a header that passes, samples that do not
    out = tmp_path / "c"
    with pytest.raises(UserError, match="DevNode1_ex6_1.wav: 1 sample"):
        _prep(small_root, out)
    assert (out / "dev" / "set.json").is_file()  # started, no row computed
    wav.write_bytes(good)
    summary = _prep(small_root, out)
    assert summary["sets"]["dev"]["complete"] and not summary["sets"]["dev"]["reused"]
    assert len(build_data(_cfg(out), 0).train) == 36 * 4


def test_out_folders_that_are_not_this_cache_are_left_alone(small_root, cache, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    with pytest.raises(UserError, match=rf"{other}: folder is not empty and holds no DCASE2018 cache"):
        _prep(small_root, other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    c = tmp_path / "c"
    shutil.copytree(cache, c)
    before = (c / "manifest.json").read_bytes()
    with pytest.raises(UserError, match=rf"{c}: an existing cache of another format or feature preset"):
        _prep(small_root, c, feature="dcase-logmel")
    assert (c / "manifest.json").read_bytes() == before


def test_a_rerun_on_the_dev_folder_alone_keeps_the_cached_evaluation_set(fixture_root, cache, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(cache, out)
    summary = _prep(fixture_root / DEV_DIRNAME, out)  # e.g. rerun to add --augment, naming the dev folder
    assert summary["sets"]["eval"] == {"kept": True, "complete": True}
    assert json.loads((out / "manifest.json").read_text())["sets"] == ["dev", "eval"]
    assert build_data(_cfg(out), 0).test is not None


def test_a_resume_computes_only_the_unfinished_segments_in_the_chunking_the_set_started_with(
        fixture_root, cache, tmp_path, monkeypatch):
    import audionas.data.dcase_cache as mod

    out = tmp_path / "c"
    _prep(fixture_root, out, chunk_files=4, checkpoint_every=8, stop_after=20)  # dev: 24 of 72 done
    real, calls = mod._waveform_chunk, []

    def recording(*a, **kw):
        compute, mine = real(*a, **kw), []
        calls.append(mine)

        def wrapped(start, stop):
            mine.append((start, stop))
            return compute(start, stop)
        return wrapped

    monkeypatch.setattr(mod, "_waveform_chunk", recording)
    _prep(fixture_root, out, chunk_files=3, checkpoint_every=8)  # another --chunk-files on the rerun
    assert calls[0] == [(s, s + 4) for s in range(24, 72, 4)]  # neither redone nor skipped; chunks of 4
    assert (out / "dev" / "features.npy").read_bytes() == (cache / "dev" / "features.npy").read_bytes()


def test_a_set_one_segment_short_of_done_is_incomplete(cache, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(cache, out)
    (out / "dev" / "progress.json").write_text(json.dumps({"done_files": 72 - 1}))
    with pytest.raises(UserError, match="cache set 'dev' is incomplete"):
        build_data(_cfg(out), 0)


def test_each_fold_scope_mixes_only_its_own_folds_training_segments(cache):
    from audionas.data.dcase_cache import open_set, scope_pool

    seg = open_set(cache / "dev", (40, 26)).segments()
    info = json.loads((cache / "dev" / "set.json").read_text())
    for k in range(1, 5):
        pool = scope_pool(seg, f"fold{k}", 0).tolist()
        assert pool == info["folds"][str(k)]["train"], k
        assert not set(pool) & set(info["folds"][str(k)]["test"]), k  # no fold-k test segment leaks
    assert scope_pool(seg, "dev", 0).tolist() == list(range(72))


def test_a_fold_emptied_by_the_caches_limit_names_the_limit(small_root, tmp_path):
    # before: "... its dataset's evaluation_setup/fold1_train.txt lists none" of a full list
    out = tmp_path / "c"
    _prep(small_root, out, limit=1)  # the first clip of each class: all in fold 1's test sessions
    said = r"fold 1 of the cache .* has no training segments \(prepare-dcase2018 --limit 1 kept none of them"
    with pytest.raises(UserError, match=said):
        build_data(_cfg(out, fold=1), 0)
    b = build_data(_cfg(out, fold=2), 0)
    assert len(b.train) > 0 and b.test is None
    # before: "fold 2's list evaluation_setup/fold2_evaluate.txt is empty" of a list of 2 x 9 segments
    said = r"\(prepare-dcase2018 --limit 1 kept none of the segments fold 2's .*fold2_evaluate.txt names\)"
    with pytest.raises(UserError, match=r"split 'test': .* " + said):
        b.split("test")


def test_a_cache_another_process_is_preparing_is_refused(small_root, tmp_path, held_elsewhere):
    # Before: two prepare-dcase2018 runs on one --out both computed and wrote every set (QA).
    out = tmp_path / "c"
    out.mkdir()
    with held_elsewhere(out):
        with pytest.raises(UserError, match=rf"^{out}: in use by another audionas process"):
            _prep(small_root, out)
    assert not (out / "manifest.json").exists()
    assert _prep(small_root, out)["sets"]["dev"]["complete"]  # its lock ended with it


def test_a_cache_that_does_not_fit_on_the_disk_is_a_one_line_error_not_a_bus_error(small_root, small_disk):
    # Before (QA): numpy's memmap file is sparse; filling it on a full disk killed the process with SIGBUS
    # (exit 135, nothing said). Now the whole file is allocated first, and a lack of space is reported.
    import subprocess
    import sys

    out = small_disk(64) / "cache"
    done = subprocess.run([sys.executable, "-m", "audionas", "data", "prepare-dcase2018", "--root",
                           str(small_root), "--out", str(out), "--seconds", "0.5", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"audionas: error: {out / 'dev' / 'features.npy'}: cannot write; this cache set "
                           f"needs ") and line.endswith(" MB there (No space left on device)"), done.stderr
    assert not (out / "dev" / "features.npy").exists()  # what a failed allocation got is given back


def _done(out) -> int:
    return json.loads((out / "dev" / "progress.json").read_text())["done_files"]


def test_a_stop_on_a_checkpoint_stops_at_that_checkpoint(small_root, tmp_path):
    out = tmp_path / "c"
    _prep(small_root, out, chunk_files=4, checkpoint_every=8, stop_after=8)
    assert _done(out) == 8  # not the next checkpoint (16)


def test_checkpoints_fall_on_whole_chunks_at_most_checkpoint_every_apart(small_root, tmp_path):
    # --checkpoint-every 8 with chunks of 3: progress is saved every 6 segments (8 rounded down to chunks),
    # not only where a chunk boundary happens to hit a multiple of 8 (24)
    out = tmp_path / "c"
    _prep(small_root, out, chunk_files=3, checkpoint_every=8, stop_after=1)
    assert _done(out) == 6


def test_the_search_scope_mixes_only_the_training_part_of_the_search_split(cache):
    from audionas.data.dcase_cache import open_set, scope_pool
    from audionas.data.splits import search_split

    seg = open_set(cache / "dev", (40, 26)).segments()
    for seed in (0, 3):
        train, val = search_split(seg.labels, seg.groups, seed)
        pool = scope_pool(seg, "search", seed).tolist()
        assert pool == train.tolist() and not set(pool) & set(val.tolist())


def test_one_folder_of_audio_gets_no_keyword_dataset_hint(tmp_path):
    # the hint needs two or more class folders holding audio
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.wav").write_bytes(b"")
    with pytest.raises(UserError, match=r"d: not a DCASE2018 feature cache \(manifest.json missing\)$"):
        build_data(_cfg(d), 0)
    (d / "sub2").mkdir()
    (d / "sub2" / "b.wav").write_bytes(b"")
    with pytest.raises(UserError, match=r"manifest.json missing\); it looks like a keyword dataset"):
        build_data(_cfg(d), 0)
