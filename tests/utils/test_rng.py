import pytest

from audionas.cli import main


@pytest.mark.parametrize("cmd", [["train", "--preset", "kws-tc-resnet-cpu"],
                                 ["search", "supernet", "--preset", "kws-fairnas-cpu"],
                                 ["search", "darts", "--preset", "kws-nas1-cpu"]])
@pytest.mark.parametrize("seed,expected", [(2**32, "an integer in 0..4294967295"),
                                           (10**20, "a 64-bit integer")])
def test_a_seed_numpy_cannot_take_is_a_config_error(tmp_path, capsys, cmd, seed, expected):
    assert main([*cmd, "--data", str(tmp_path), "--out", str(tmp_path / "run"), f"seed={seed}"]) == 2
    err = capsys.readouterr().err
    assert err == f"audionas: error: config field 'seed': expected {expected}, got {seed}\n"
    assert not (tmp_path / "run").exists()
