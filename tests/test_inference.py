"""`audionas predict` and the inference path: files in, the evaluation path's probabilities out."""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn as nn

from audionas.cli import main
from audionas.data import DataConfig, build_data
from audionas.data.dcase_cache import prepare_cache
from audionas.data.dcase_fixtures import DEV_DIRNAME, make_dcase2018_fixture
from audionas.errors import UserError
from audionas.features import build_frontend, get_spec
from audionas.features.frontend import FeatureFrontend
from audionas.inference import (
    InferenceModel,
    audio_files,
    load_inference_model,
    predict_files,
    waveform_frontend,
)
from audionas.train.predict import predict
from audionas.train.trained_run import load_model


@pytest.mark.slow
def test_predict_files_and_folders_match_evaluation(kws_run, speech_commands_root, capsys):
    lm = load_model(kws_run)
    bundle = build_data(lm.config.data, lm.config.seed)
    probs, _, _ = predict(lm.model, bundle.frontend, bundle.test, "cpu", 64)
    # test items that are files of the dataset (not `_silence_` crops of background noise)
    items = [(i, p) for i, (p, _) in enumerate(bundle.test.items) if p is not None][:20]
    files = [str(speech_commands_root / p) for _, p in items]
    assert main(["predict", str(kws_run), *files, "--json", "--top", "12", "--batch-size", "7"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["file"] for x in lines] == files
    for (i, _), line in zip(items, lines):
        got = dict(line["top"])
        assert sorted(got) == sorted(lm.classes) and line["class"] == lm.classes[int(np.argmax(probs[i]))]
        np.testing.assert_allclose([got[c] for c in lm.classes], probs[i], atol=1e-5)
    word = files[0].split("/")[-2]
    assert main(["predict", str(kws_run), str(speech_commands_root / word)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == len(list((speech_commands_root / word).glob("*.wav")))
    assert len(rows[0].split("\t")) == 4  # file, then the top 3 classes


def test_a_file_name_with_a_newline_or_tab_is_printed_escaped_on_its_own_line(kws_run, speech_commands_root,
                                                                             tmp_path, capsys):
    # Before (QA): the name was printed raw, splitting the file's line (and its tab-separated fields).
    import shutil

    clip = tmp_path / "a\nb\tc.wav"
    shutil.copy(next((speech_commands_root / "yes").glob("*.wav")), clip)
    assert main(["predict", str(kws_run), str(clip)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 1 and rows[0].split("\t")[0] == f"{tmp_path}/a\\nb\\tc.wav"
    assert len(rows[0].split("\t")) == 4


@pytest.mark.slow
def test_predict_bad_inputs_exit_2(kws_run, tmp_path, capsys):
    assert main(["predict", str(kws_run), str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav: no such audio file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(kws_run), str(tmp_path / "empty")]) == 2
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((16000, 2), np.float32), 16000, subtype="PCM_16")
    assert main(["predict", str(kws_run), str(stereo)]) == 2
    assert "stereo.wav" in capsys.readouterr().err
    assert main(["predict", str(kws_run), str(stereo), "--channel", "1"]) == 0
    capsys.readouterr()
    assert main(["predict", str(kws_run), str(stereo), "--channel", "1", "--data", str(tmp_path)]) == 2
    assert "--data: only needed for a DCASE2018 run" in capsys.readouterr().err  # a KWS run has no bands
    with pytest.raises(SystemExit, match="2"):
        main(["predict", str(kws_run), str(stereo), "--top", "0"])
    (tmp_path / "empty" / "._resource_fork.wav").write_bytes(b"junk")  # hidden: skipped like in the datasets
    assert main(["predict", str(kws_run), str(tmp_path / "empty")]) == 2


@pytest.mark.slow
def test_predict_channel_mean_averages_each_channels_probabilities(kws_run, speech_commands_root, tmp_path,
                                                                  capsys):
    # DCASE2018's official rule for a multi-channel segment: the channels' class probabilities averaged.
    words = sorted(p for p in speech_commands_root.glob("*/*.wav") if not p.parent.name.startswith("_"))[::7]
    waves = [sf.read(p, dtype="float32")[0] for p in words[:5]]
    n = min(len(w) for w in waves)
    three, mono, two = tmp_path / "three.wav", tmp_path / "mono.wav", tmp_path / "two.wav"
    sf.write(three, np.stack([w[:n] for w in waves[:3]], axis=1), 16000, subtype="FLOAT")
    sf.write(mono, waves[3], 16000, subtype="FLOAT")
    sf.write(two, np.stack([w[:n] for w in waves[3:5]], axis=1), 16000, subtype="FLOAT")
    assert main(["predict", str(kws_run), str(three)]) == 2
    assert ("--channel 0..2, --channel mean to average their predictions or --channel mix to average their "
            "samples (as data.mixdown=true trains)") in capsys.readouterr().err

    def probs(*args):
        assert main(["predict", str(kws_run), *args, "--json", "--top", "12"]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        return [np.array([dict(line["top"])[c] for c in sorted(dict(line["top"]))]) for line in lines]

    # batches of 2 files: channel counts 3+1, then 2, so each file's rows must be found in a mixed batch
    got = probs(str(three), str(mono), str(two), "--channel", "mean", "--batch-size", "2")
    want = [np.mean([probs(str(f), "--channel", str(k))[0] for k in range(count)], axis=0)
            for f, count in ((three, 3), (mono, 1), (two, 2))]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)
    assert not np.allclose(got[0], probs(str(three), "--channel", "0")[0], atol=1e-3)
    # --channel K picks channel K of each multi-channel file and reads a mono file as it is (QA: refused it)
    picked = probs(str(three), str(mono), str(two), "--channel", "1", "--batch-size", "2")
    alone = [probs(str(three), "--channel", "1")[0], probs(str(mono))[0],
             probs(str(two), "--channel", "1")[0]]
    for g, w in zip(picked, alone, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)
    with pytest.raises(SystemExit, match="2"):
        main(["predict", str(kws_run), str(three), "--channel", "avg"])
    assert "expected a channel number (0 or more), 'mean' or 'mix', got 'avg'" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_channel_mix_classifies_the_mean_of_the_channels_samples(kws_run, speech_commands_root,
                                                                          tmp_path, capsys):
    # data.mixdown's reading at prediction: a stereo file gives what its channels' mean, written mono, gives.
    words = sorted(p for p in speech_commands_root.glob("*/*.wav") if not p.parent.name.startswith("_"))[::7]
    a, b = (sf.read(p, dtype="float32")[0] for p in words[:2])
    n = min(len(a), len(b))
    two, mixed, mono = tmp_path / "two.wav", tmp_path / "mixed.wav", tmp_path / "mono.wav"
    sf.write(two, np.stack([a[:n], b[:n]], axis=1), 16000, subtype="FLOAT")
    sf.write(mixed, (a[:n] + b[:n]) / 2, 16000, subtype="FLOAT")
    sf.write(mono, a, 16000, subtype="FLOAT")

    def probs(*args):
        assert main(["predict", str(kws_run), *args, "--json", "--top", "12"]) == 0
        return [dict(json.loads(x)["top"]) for x in capsys.readouterr().out.splitlines()]

    got = probs(str(two), str(mono), "--channel", "mix")
    want = probs(str(mixed), str(mono))
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        np.testing.assert_allclose([g[c] for c in w], list(w.values()), atol=1e-5)
    assert not np.allclose([got[0][c] for c in want[1]], list(want[1].values()), atol=1e-3)


@pytest.mark.slow
def test_predict_repeats_short_dcase_clips_as_the_cache_does(short_dcase_preset, tmp_path, capsys):
    # 0.25 s wavs, half the short preset's clip: the cache repeats them to fill it, so predict must too.
    root = make_dcase2018_fixture(tmp_path / "fx", sessions_per_class=4, segments_per_session=1, seconds=0.25,
                                  nodes=1)
    cache = tmp_path / "cache"
    prepare_cache(root, cache, feature=short_dcase_preset, seconds=0.25, progress=False)
    preset = tmp_path / "asc-res8.yaml"
    preset.write_text(f"model: res8\nepochs: 1\noptim: {{name: adam, lr: 0.001}}\ndata: {{kind: dcase2018, "
                      f"feature: {short_dcase_preset}, augment: false, batch_size: 8}}\n")
    run = tmp_path / "asc"
    assert main(["train", "--preset", str(preset), "--data", str(cache), "--out", str(run)]) == 0
    lm = load_model(run)
    bundle = build_data(lm.config.data, lm.config.seed)  # as `audionas evaluate` builds it
    deployed = InferenceModel(lm.model, bundle.frontend).eval()
    feats = np.load(cache / "dev" / "features.npy", mmap_mode="r")
    rows = [line.split("\t") for line in (cache / "dev" / "index.tsv").read_text().splitlines()[1:]]
    rows = [(int(r[0]), str(root / DEV_DIRNAME / r[1])) for r in rows if r[4] == "1"][::4]
    capsys.readouterr()
    assert main(["predict", str(run), *[f for _, f in rows], "--channel", "1", "--json", "--top", "9"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    zero_padded, _ = load_inference_model(run, waveform=True)
    far = 0.0
    for (row, file), line in zip(rows, lines, strict=True):
        got = dict(line["top"])
        x = torch.from_numpy(feats[row].astype(np.float32))[None, None]
        with torch.no_grad():
            want = deployed(x)[0].numpy()
        np.testing.assert_allclose([got[c] for c in lm.classes], want, atol=2e-3)
        (_, p), = predict_files(zero_padded, short_dcase_preset, [Path(file)], channel=1, repeat=False)
        far = max(far, float(np.abs(p - want).max()))
    assert far > 0.05  # zero padding (the old predict path) gives other probabilities


def test_audio_files_finds_every_readable_format(tmp_path):
    for name in ("b/2.flac", "b/1.wav", "a.ogg", "c.mp3", "notes.txt", ".hidden.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in audio_files([str(tmp_path)])]
    assert found == ["a.ogg", "b/1.wav", "b/2.flac", "c.mp3"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: no audio files \(\.wav, \.flac, \.ogg, \.mp3\) in"):
        audio_files([str(tmp_path / "empty")])


def test_audio_files_in_folders_follow_the_datasets_rule(tmp_path):
    # Before: predict read clips in hidden folders (training skips them) and skipped broken links silently.
    for name in ("a/1.wav", "a/.trash/old.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in audio_files([str(tmp_path)])] == ["1.wav"]
    (tmp_path / "a" / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    with pytest.raises(UserError, match=r"gone\.wav: a broken link \(its target .*nowhere\.wav does not"):
        audio_files([str(tmp_path)])


def test_audio_files_names_a_fifo_as_one_and_a_missing_path_as_missing(tmp_path):
    # Before (QA): a FIFO named on the command line was "no such audio file or folder"
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(UserError, match=r"pipe\.wav: not a regular file \(a FIFO, device or socket\), "):
        audio_files([str(tmp_path / "pipe.wav")])
    with pytest.raises(UserError, match=r"gone\.wav: no such audio file or folder$"):
        audio_files([str(tmp_path / "gone.wav")])


def test_top_classes_most_probable_first_ties_in_class_order_and_k_beyond_the_classes():
    from audionas.inference import top_classes

    probs = np.array([0.2, 0.5, 0.2, 0.1], np.float32)
    assert top_classes(probs, ["a", "b", "c", "d"], 3) == [("b", 0.5), ("a", pytest.approx(0.2)),
                                                           ("c", pytest.approx(0.2))]
    assert [c for c, _ in top_classes(probs, ["a", "b", "c", "d"], 9)] == ["b", "a", "c", "d"]


@pytest.mark.slow
def test_predict_of_files_at_another_rate_warns_once_for_all_of_them(kws_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp_path / f"c{i}.wav", rng.uniform(-0.3, 0.3, 22050).astype(np.float32), 22050)
    with pytest.warns(UserWarning) as rec:
        assert main(["predict", str(kws_run), str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    resampled = [str(w.message) for w in rec if "resampling" in str(w.message)]
    first = tmp_path / "c0.wav"
    assert resampled == [f"3 of 3 files are not at 16000 Hz (22050 Hz; e.g. {first}); resampling them"]
    with pytest.warns(UserWarning) as rec:  # one file: its own warning
        assert main(["predict", str(kws_run), str(tmp_path / "c1.wav")]) == 0
    assert [str(w.message) for w in rec if "resampling" in str(w.message)] == [
        f"{tmp_path / 'c1.wav'}: sample rate 22050 Hz, expected 16000 Hz; resampling"]



@pytest.mark.slow
def test_predict_channel_mean_of_files_at_another_rate_warns_once_for_all_of_them(kws_run, tmp_path, capsys):
    # --channel mean reads every channel of each file: still one resampling warning for all the files.
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp_path / f"s{i}.wav", rng.uniform(-0.3, 0.3, (22050, 2)).astype(np.float32), 22050)
    with pytest.warns(UserWarning) as rec:
        assert main(["predict", str(kws_run), str(tmp_path), "--channel", "mean"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    resampled = [str(w.message) for w in rec if "resampling" in str(w.message)]
    assert resampled == [f"3 of 3 files are not at 16000 Hz (22050 Hz; e.g. {tmp_path / 's0.wav'}); "
                         f"resampling them"]

@pytest.mark.slow
def test_predict_and_features_of_longer_files_say_only_their_start_is_used(kws_run, tmp_path, capsys):
    # Before: a 5 s file was classified (or featurised) by its first second without a word; training warns.
    rng = np.random.default_rng(0)
    for name, seconds in (("a", 2.5), ("b", 0.5), ("c", 3.0)):
        x = rng.uniform(-0.3, 0.3, int(16000 * seconds)).astype(np.float32)
        sf.write(tmp_path / f"{name}.wav", x, 16000)
    with pytest.warns(UserWarning) as rec:
        assert main(["predict", str(kws_run), str(tmp_path)]) == 0
    assert [str(w.message) for w in rec] == [f"2 of 3 clips are longer than 1 s (e.g. {tmp_path / 'a.wav'}); "
                                             f"only their first 1 s are used"]
    one = f"{tmp_path / 'c.wav'}: longer than 1 s; only its first 1 s is used"
    features = ["features", "--preset", "honk-mfcc", "--out", str(tmp_path / "f.npy")]
    for argv in (["predict", str(kws_run)], features):
        with pytest.warns(UserWarning) as rec:
            assert main([*argv, str(tmp_path / "c.wav")]) == 0
        assert [str(w.message) for w in rec] == [one]
    capsys.readouterr()


def test_a_dcase_run_that_records_its_band_statistics_needs_no_cache(tmp_path):
    """Its waveform path is the preset's features, then its own standardisation: no data is read, so a run
    copied without its cache still predicts and exports; --data is then not read, and says so."""
    from types import SimpleNamespace

    from audionas.features.normalize import BandStandardize
    from audionas.inference import waveform_frontend

    gone = tmp_path / "moved-cache"
    cfg = SimpleNamespace(data=DataConfig(kind="dcase2018", root=str(gone), feature="dcase-logmel"), seed=0)
    band = BandStandardize(torch.full((40,), -30.0), torch.full((40,), 8.0))
    lm = SimpleNamespace(band_frontend=band, split_sizes={"train": 5}, path=tmp_path / "final.pt")
    front = waveform_frontend(cfg, None, lm)
    assert front[1] is band and not gone.exists()
    wave = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (1, 160000)).astype(np.float32))
    assert torch.equal(front(wave), band(front[0](wave)))
    with pytest.warns(UserWarning, match=rf"--data {tmp_path}: not read; .*final.pt records its band stat"):
        assert waveform_frontend(cfg, str(tmp_path), lm)[1] is band


def test_a_dcase_run_without_its_cache_is_told_to_pass_data(tmp_path):
    """Before: 'CACHE: no such folder (expected a DCASE2018 feature cache)', naming a cache predict and export
    were never given, without saying that --data passes it."""
    from types import SimpleNamespace

    from audionas.inference import waveform_frontend

    gone = tmp_path / "moved-cache"
    cfg = SimpleNamespace(data=DataConfig(kind="dcase2018", root=str(gone), feature="dcase-logmel"), seed=0)
    with pytest.raises(UserError) as e:
        waveform_frontend(cfg, None)
    assert str(e.value) == (f"{gone}: no such folder; it is the data.root of this run: pass the feature "
                            f"cache whose training split gives the band statistics with --data CACHE")
    with pytest.raises(UserError, match=r"nowhere: no such folder \(expected a DCASE2018 feature cache\)"):
        waveform_frontend(cfg, str(tmp_path / "nowhere"))  # --data given: the cache's own message


@pytest.mark.slow
def test_predict_prints_nothing_when_a_later_file_fails_to_decode(kws_run, speech_commands_root, tmp_path,
                                                                  capsys):
    # Before, the first batches' lines were printed, then the NaN file's error came with exit 2.
    import shutil

    clip = next(speech_commands_root.glob("yes/*.wav"))
    for i in range(3):
        shutil.copy(clip, tmp_path / f"a{i}.wav")
    sf.write(tmp_path / "z_nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    assert main(["predict", str(kws_run), str(tmp_path), "--batch-size", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "z_nan.wav" in err


def test_files_of_other_formats_in_folders_named_are_warned_about(tmp_path):
    # Before: predict DIR skipped them without a word (training warns of the same files).
    for name in ("a/1.wav", "a/2.aiff", "a/notes.txt", "a/.DS_Store"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    said = r"^2 file\(s\) in the folders named are not audio files \(.*\) and are not used \(\.aiff, \.txt; "
    with pytest.warns(UserWarning, match=said + r"e\.g\. .*2\.aiff\)$"):
        assert [p.name for p in audio_files([str(tmp_path)])] == ["1.wav"]


@pytest.mark.slow
def test_an_unfinished_run_is_predicted_and_exported_from_its_last_checkpoint_with_a_warning(
        kws_run, tmp_path, capsys):
    # Before: predict and export used checkpoints/last.pt without a word (QA); a checkpoint named on the
    # command line is the user's choice and is not warned about.
    import shutil
    import warnings

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    (run / "final.pt").unlink()
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    said = (f"{run}: no final.pt (the run has not finished); using its last checkpoint, "
            f"{run / 'checkpoints' / 'last.pt'}")
    for argv in (["predict", str(run), str(wav)], ["export", str(run)]):
        with pytest.warns(UserWarning) as rec:
            assert main(argv) == 0
        assert [str(w.message) for w in rec].count(said) == 1, argv  # export: thrice before (a review)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["predict", str(run / "checkpoints" / "last.pt"), str(wav)]) == 0
    capsys.readouterr()


def test_predict_files_names_the_waveform_path_when_given_the_features_one(kws_run, speech_commands_root):
    # Before (API QA): load_inference_model(run) (features in) given to predict_files: an IndexError.
    from audionas.inference import audio_files, load_inference_model, predict_files

    files = audio_files([str(next(speech_commands_root.glob("yes/*.wav")))])
    model, lm = load_inference_model(kws_run)
    with pytest.raises(UserError, match=r"load it with load_inference_model\(run, waveform=True\)"):
        list(predict_files(model, lm.config.data.feature, files))
    model, lm = load_inference_model(kws_run, waveform=True)
    (path, probs), = predict_files(model, lm.config.data.feature, files)
    assert path == files[0] and abs(float(probs.sum()) - 1.0) < 1e-5
    # Before (API QA 2): one path as text was iterated as its characters ("/: a folder, expected ...").
    (path, again), = predict_files(model, lm.config.data.feature, str(files[0]))
    assert path == files[0] and np.array_equal(again, probs)
    (path, again), = predict_files(model, lm.config.data.feature, os.fsencode(files[0]))  # bytes too
    assert path == files[0] and np.array_equal(again, probs)
    with pytest.raises(UserError, match="predict_files: an empty path; expected audio files"):
        list(predict_files(model, lm.config.data.feature, ""))  # before: "." is a folder


def test_an_inference_model_refuses_input_of_another_shape_than_its_runs(kws_run):
    # Before (API QA): a 2 s waveform went through the pooled network and came out as a confident answer.
    from audionas.inference import load_inference_model

    model, lm = load_inference_model(kws_run, waveform=True)
    with torch.no_grad():
        assert model(torch.zeros(3, 16000)).shape == (3, len(lm.classes))
        assert model(torch.zeros(3, 1, 16000)).shape == (3, len(lm.classes))  # the frontend's other form
        with pytest.raises(UserError, match=r"input of shape \(1, 32000\): this model takes waveforms of "
                                            r"shape \(batch, 16000\)"):
            model(torch.zeros(1, 32000))
        features, _ = load_inference_model(kws_run)
        shape = tuple(lm.input_shape)
        assert features(torch.zeros(2, *shape)).shape == (2, len(lm.classes))
        with pytest.raises(UserError, match=r"this model takes features of shape \(batch, 1, 101, 40\)"):
            features(torch.zeros(2, 1, 90, 40))


def test_a_dcase_run_trained_without_normalize_takes_the_features_alone(tmp_path):
    # data.normalize=false: no band statistics, so neither a checkpoint's nor a cache's are looked for.
    data = DataConfig(kind="dcase2018", feature="dcase-logmel", normalize=False, root=str(tmp_path / "none"))
    frontend = waveform_frontend(SimpleNamespace(data=data, seed=0), None)
    assert isinstance(frontend, FeatureFrontend) and frontend.spec.name == "dcase-logmel"


def test_predict_files_takes_a_model_that_does_not_say_what_it_takes(tmp_path):
    # waveform=None ("not said"): only a model known to take features (waveform=False) is refused.
    spec = get_spec("honk-mfcc")
    sf.write(tmp_path / "a.wav", np.zeros(spec.clip_samples, np.float32), spec.sample_rate)
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 3))
    model = InferenceModel(net, build_frontend("honk-mfcc"), waveform=None).eval()
    [(path, probs)] = list(predict_files(model, "honk-mfcc", [tmp_path / "a.wav"]))
    assert path == tmp_path / "a.wav" and probs.shape == (3,) and abs(float(probs.sum()) - 1) < 1e-6
    with pytest.raises(UserError, match="^predict_files: the model takes features, not the waveforms"):
        next(predict_files(InferenceModel(net, waveform=False), "honk-mfcc", [tmp_path / "a.wav"]))


def test_predict_files_names_every_channel_choice_for_one_file_as_for_several(tmp_path):
    # The library call with one multi-channel file offered --channel mean only when given two files or more.
    spec = get_spec("honk-mfcc")
    sf.write(tmp_path / "st.wav", np.zeros((spec.clip_samples, 2), np.float32), spec.sample_rate)
    sf.write(tmp_path / "mono.wav", np.zeros(spec.clip_samples, np.float32), spec.sample_rate)
    model = InferenceModel(nn.Identity(), waveform=True)
    said = "st.wav: 2 channels, expected one: choose it with --channel 0..1, --channel mean to average"
    for files in (["st.wav"], ["st.wav", "mono.wav"]):
        with pytest.raises(UserError, match=said):
            next(predict_files(model, "honk-mfcc", [tmp_path / f for f in files]))
