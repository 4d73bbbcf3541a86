import soundfile as sf

from audionas.cli import main
from audionas.data.dcase_fixtures import DEV_DIRNAME, EVAL_DIRNAME

ARGS = ["data", "make-dcase-fixture", "--sessions", "1", "--segments", "1", "--nodes", "1",
        "--seconds", "0.1"]


def test_a_dataset_the_fixture_did_not_write_is_never_overwritten(tmp_path, capsys):
    """Before: --out on the folder holding the real DCASE2018-task5-dev wrote synthetic noise over its wavs
    (same file names) and its meta.txt, exit 0."""
    dev = tmp_path / "DCASE2018" / DEV_DIRNAME
    (dev / "audio").mkdir(parents=True)
    (dev / "meta.txt").write_text("audio/DevNode1_ex1_1.wav\tabsence\tDevNode1_ex1\n")
    (dev / "audio" / "DevNode1_ex1_1.wav").write_bytes(b"real recording")
    assert main([*ARGS, "--out", str(tmp_path / "DCASE2018")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {dev}: exists and was not written by "
                                       f"make-dcase-fixture (the real dataset?); choose another --out\n")
    assert (dev / "audio" / "DevNode1_ex1_1.wav").read_bytes() == b"real recording"
    assert sorted(p.name for p in (dev / "audio").iterdir()) == ["DevNode1_ex1_1.wav"]


def test_a_fixture_is_rewritten_from_scratch(tmp_path):
    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out), "--with-eval", "--sessions", "2"]) == 0
    assert main([*ARGS, "--out", str(out), "--seconds", "0.2"]) == 0  # no stale eval set or wavs left
    assert sorted(p.name for p in out.iterdir()) == [DEV_DIRNAME]
    wavs = sorted((out / DEV_DIRNAME / "audio").iterdir())
    assert len(wavs) == 9 and {sf.info(str(w)).frames for w in wavs} == {3200}
    assert not (out / EVAL_DIRNAME).exists()
