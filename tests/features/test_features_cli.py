import numpy as np
import pytest
import soundfile as sf

from audionas.cli import main
from audionas.features import compute_features


def test_features_cli_prints_an_out_path_escaped(tmp_path, speech_yes, capsys):
    # Before (QA): a name not in UTF-8 was a UnicodeEncodeError traceback under a UTF-8 stdout, after the
    # file was written; a newline split the line in two.
    import os

    wav = tmp_path / "yes.wav"
    sf.write(str(wav), speech_yes, 16000)
    out = tmp_path / os.fsdecode(b"o\xff\nx.npy")
    assert main(["features", "--preset", "honk-mfcc", str(wav), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{tmp_path}/o\\udcff\\nx.npy: honk-mfcc features 101x40\n"
    assert np.load(out).shape == (101, 40)


def test_features_cli_writes_matrix(tmp_path, speech_yes, capsys):
    wav = tmp_path / "yes.wav"
    sf.write(str(wav), speech_yes, 16000, subtype="FLOAT")
    out = tmp_path / "sub" / "yes.npy"
    assert main(["features", "--preset", "honk-mfcc", str(wav), "--out", str(out)]) == 0
    feats = np.load(out)
    assert feats.shape == (101, 40) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, compute_features(speech_yes, "honk-mfcc"), atol=1e-6)
    assert sorted(p.name for p in out.parent.iterdir()) == ["yes.npy"]  # no temp file left
    assert "101x40" in capsys.readouterr().out
    # --feature, as prepare-dcase2018 and a run's data.feature name it, is the same option.
    assert main(["features", "--feature", "honk-mfcc", str(wav), "--out", str(out.with_name("f.npy"))]) == 0
    np.testing.assert_array_equal(np.load(out.with_name("f.npy")), feats)


def test_features_cli_logmel_picks_channel(tmp_path):
    rng = np.random.default_rng(0)
    stereo = np.stack([np.zeros(16000), rng.normal(scale=0.1, size=16000)], axis=1).astype(np.float32)
    wav = tmp_path / "two.wav"
    sf.write(str(wav), stereo, 16000, subtype="FLOAT")
    out = tmp_path / "two.npy"
    assert main(["features", "--preset", "dcase-logmel", str(wav), "--out", str(out), "--channel", "1"]) == 0
    feats = np.load(out)
    assert feats.shape == (40, 501)
    np.testing.assert_allclose(feats, compute_features(stereo[:, 1], "dcase-logmel"), atol=1e-6)
    assert main(["features", "--preset", "dcase-logmel", str(wav), "--out", str(out), "--channel", "2"]) == 2
    assert main(["features", "--preset", "dcase-logmel", str(wav), "--out", str(out)]) == 2  # not mono
    assert main(["features", "--preset", "dcase-logmel", str(wav), "--out", str(out), "--channel",
                 "mix"]) == 0
    np.testing.assert_allclose(np.load(out), compute_features(stereo.mean(axis=1), "dcase-logmel"), atol=1e-6)
    mono = tmp_path / "mono.wav"  # read as it is, whatever --channel says (before: refused for 1)
    sf.write(str(mono), stereo[:, 1], 16000, subtype="FLOAT")
    assert main(["features", "--preset", "dcase-logmel", str(mono), "--out", str(out), "--channel", "1"]) == 0
    np.testing.assert_array_equal(np.load(out), feats)
    for cmd in (["features", "--preset", "dcase-logmel", str(mono), "--out", str(out)],
                ["predict", "RUN", str(mono)]):
        with pytest.raises(SystemExit, match="2"):  # a negative channel is no channel of any file
            main([*cmd, "--channel", "-1"])


def test_features_cli_fill_repeat_gives_a_dcase_cache_row(tmp_path, short_dcase_preset):
    # A DCASE cache repeats short clips; its export expects such features. Before, `features` could only
    # zero-pad them (a log-mel up to 35 apart, and another predicted class).
    from audionas.data.dcase_cache import prepare_cache
    from audionas.data.dcase_fixtures import DEV_DIRNAME, make_dcase2018_fixture

    root = make_dcase2018_fixture(tmp_path / "fx", sessions_per_class=1, segments_per_session=1,
                                  seconds=0.125, nodes=1)
    prepare_cache(root, tmp_path / "cache", feature=short_dcase_preset, seconds=0.125, progress=False)
    lines = (tmp_path / "cache" / "dev" / "index.tsv").read_text().splitlines()[1:]
    index, name = next((int(r[0]), r[1]) for r in (line.split("\t") for line in lines) if r[4] == "2")
    row = np.load(tmp_path / "cache" / "dev" / "features.npy", mmap_mode="r")[index].astype(np.float32)
    wav, out = root / DEV_DIRNAME / name, tmp_path / "f.npy"
    args = ["features", "--preset", short_dcase_preset, str(wav), "--out", str(out), "--channel", "2"]
    assert main([*args, "--fill", "repeat"]) == 0
    np.testing.assert_allclose(np.load(out), row, atol=0.02)  # float16 in the cache
    assert main(args) == 0
    assert np.abs(np.load(out) - row).max() > 1.0  # zero padding: the old and still default rule


def test_features_cli_user_errors(tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert main(["features", "--preset", "honk-mfcc", str(tmp_path / "missing.wav"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing.wav" in err and err.startswith("audionas: error:")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert main(["features", "--preset", "honk-mfcc", str(bad), "--out", str(out)]) == 2
    assert "bad.wav" in capsys.readouterr().err
    wav = tmp_path / "ok.wav"
    sf.write(str(wav), np.zeros(100, np.float32), 16000)
    assert main(["features", "--preset", "nope", str(wav), "--out", str(out)]) == 2
    assert "nope" in capsys.readouterr().err
    assert not out.exists()
