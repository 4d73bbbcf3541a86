"""Corrupt or hand-edited DCASE2018 lists and cache metadata: one-line UserErrors, never a traceback."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from audionas.cli import main
from audionas.data import DataConfig, build_data
from audionas.data.dcase2018 import read_dev
from audionas.data.dcase_fixtures import DEV_DIRNAME
from audionas.errors import UserError

GARBAGE = bytes(range(128, 256)) * 3


def _cfg(cache, feature) -> DataConfig:
    return DataConfig(kind="dcase2018", root=str(cache), feature=feature, augment=False)


@pytest.mark.parametrize("name", ["meta.txt", "evaluation_setup/fold1_train.txt"])
def test_non_utf8_lists_name_the_file(dcase_root, tmp_path, name):
    root = tmp_path / "ds"
    shutil.copytree(dcase_root, root)
    (root / DEV_DIRNAME / name).write_bytes(GARBAGE)
    with pytest.raises(UserError, match=rf"{name}: not UTF-8 text"):
        read_dev(root / DEV_DIRNAME)


@pytest.mark.parametrize("rel, text, msg", [
    ("manifest.json", "{bad", "manifest.json: invalid JSON"),
    ("manifest.json", "[]", "manifest.json: expected a DCASE2018 feature cache manifest .a JSON object."),
    ("dev/set.json", "[1]", "set.json: expected a cache set description .a JSON object., got a JSON array"),
    ("dev/set.json", "{bad", "set.json: invalid JSON"),
    ("dev/progress.json", '{"done_files": "x"}', "progress.json: field 'done_files'"),
])
def test_corrupt_cache_metadata(dcase_cache, short_dcase_preset, tmp_path, rel, text, msg):
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    (bad / rel).write_text(text)
    with pytest.raises(UserError, match=msg):
        build_data(_cfg(bad, short_dcase_preset), 0)


def test_progress_beyond_the_set_is_refused(dcase_root, dcase_cache, short_dcase_preset, tmp_path, capsys):
    # Before: `prepare-dcase2018` said nothing and exit 0 leaving the set incomplete, and reading it asked
    # for that same rerun (a loop with no way out).
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    (bad / "dev" / "progress.json").write_text(json.dumps({"done_files": 10**20}))
    msg = "progress.json: field 'done_files': expected an integer in 0..36 (the set's segments)"
    with pytest.raises(UserError, match=re.escape(msg)):
        build_data(_cfg(bad, short_dcase_preset), 0)
    assert main(["data", "prepare-dcase2018", "--root", str(dcase_root), "--out", str(bad), "--seconds",
                 "0.5", "--feature", short_dcase_preset, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err


@pytest.mark.parametrize("key, value, msg", [
    ("shape", [40], "manifest.json: field 'shape'"),
    ("sets", "dev", "manifest.json: field 'sets'"),
    ("sets", ["eval"], "manifest.json: field 'sets'"),
])
def test_hand_edited_manifest_fields(dcase_cache, short_dcase_preset, tmp_path, key, value, msg):
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    m = json.loads((bad / "manifest.json").read_text())
    m[key] = value
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=msg):
        build_data(_cfg(bad, short_dcase_preset), 0)


@pytest.mark.parametrize("key, value, msg", [
    ("n_segments", "9", "set.json: field 'n_segments'"),
    ("labels", [0], "set.json: field 'labels'"),
    ("files", ["a.wav"], "set.json: field 'files'"),
    ("folds", {"1": {"train": [10 ** 6], "test": []}}, r"set.json: field 'folds.1.train'"),
])
def test_hand_edited_set_fields(dcase_cache, short_dcase_preset, tmp_path, key, value, msg):
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    p = bad / "dev" / "set.json"
    info = json.loads(p.read_text())
    info[key] = value
    p.write_text(json.dumps(info))
    with pytest.raises(UserError, match=msg):
        build_data(_cfg(bad, short_dcase_preset), 0)


def test_cli_train_on_a_corrupt_manifest_is_one_line(dcase_cache, short_dcase_preset, tmp_path, capsys):
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    (bad / "manifest.json").write_text("{bad")
    assert main(["train", "--preset", "asc-cpu", "--data", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"audionas: error: {bad / 'manifest.json'}: invalid JSON")
