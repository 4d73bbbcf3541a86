"""DataConfig: a `data.` field set by hand that the dataset never reads is said, not silently ignored."""

import os
import warnings

import pytest
from cache_split import dev_and_mixed

from audionas.cli import main
from audionas.config import load_config
from audionas.data import DataConfig, with_absolute_paths
from audionas.train.config import TrainConfig


def unread(preset, overrides, cls=TrainConfig):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(cls, preset, overrides)
    return [str(w.message) for w in caught if "not used" in str(w.message)]


def test_fields_the_dataset_does_not_read_are_said_when_set_by_hand():
    # Before (QA): data.fold on Speech Commands, data.words on a folder set, data.val_pct beside the list
    # files were accepted without a word and changed nothing.
    assert unread("kws-tc-resnet-cpu", ["data.fold=2", "data.val_pct=20", "data.ratios=[0.5,0.3,0.2]"]) == [
        "config field 'data.fold': not used: a speech_commands dataset does not read it (only dcase2018 "
        "does)",
        "config field 'data.val_pct': not used: only data.split=hash reads it (this split: lists)",
        "config field 'data.ratios': not used: only data.split=ratio or speaker_ratio reads it (this split: "
        "lists)"]
    assert unread("kws-tc-resnet-cpu", ["data.kind=folder", "data={words: [a], split: hash}",
                                        "data.test_pct=5"]) == [
        "config field 'data.words': not used: a folder dataset does not read it (only speech_commands does)"]
    assert unread("kws-tc-resnet-cpu", ["data.kind=folder", "data.split=ratio", "data.test_pct=5"]) == [
        "config field 'data.test_pct': not used: only data.split=hash reads it (this split: ratio)"]
    assert unread("asc-cpu", ["data.shift_ms=50"]) == [
        "config field 'data.shift_ms': not used: a dcase2018 dataset does not read it (only speech_commands "
        "and folder do)"]


@pytest.mark.parametrize("preset, overrides", [
    ("asc-cpu", ["data.kind=folder"]),  # the README's own-sounds recipe: the preset's DCASE fields are quiet
    ("kws-tc-resnet-cpu", ["data.kind=folder", "data.split=ratio", "data.ratios=[0.6,0.2,0.2]"]),
    ("kws-tc-resnet-cpu", ["data.kind=folder", "data.val_pct=20"]),  # a folder without list files: hash
    ("kws-tc-resnet-cpu", ["data.words=[yes, no]", "data.split=hash", "data.val_pct=5",
                           "data.augment=false"]),
    ("asc-cpu", ["data.fold=2", "data.cutout=false", "data.normalize=false", "data.batch_size=8"]),
])
def test_fields_the_dataset_reads_and_preset_fields_are_quiet(preset, overrides):
    assert unread(preset, overrides) == []


def test_a_search_preset_built_on_another_kinds_preset_is_quiet():
    from audionas.nas.darts.config import DartsSearchConfig

    # asc-nas1 takes kws-nas1's data.ratios as its base: set by a preset, not by hand
    assert unread("asc-nas1-cpu", ["data.search_split=true"], DartsSearchConfig) == []
    assert unread("asc-nas1-cpu", ["data.ratios=[0.5,0.3,0.2]"], DartsSearchConfig) == [
        "config field 'data.ratios': not used: a dcase2018 dataset does not read it (only speech_commands "
        "and folder do)"]


def test_the_cli_says_it_before_reading_the_data(tmp_path, capsys):
    with pytest.warns(UserWarning, match="config field 'data.fold': not used"):
        assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path / "none"), "--out",
                     str(tmp_path / "run"), "data.fold=2"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_ratios_no_split_could_use_are_refused_whatever_the_split():
    # Before (QA): data.ratios=[0.5,0.6,-0.1] trained (split=lists) and was saved in the run's config.
    from audionas.errors import UserError

    with pytest.raises(UserError, match=r"^config field 'data.ratios': split ratios must be >= 0 and sum to "
                                        r"1, got \[0.5, 0.6, -0.1\]$"):
        load_config(TrainConfig, "kws-tc-resnet-cpu", ["data.ratios=[0.5,0.6,-0.1]"])


def test_build_data_checks_a_python_data_config_as_a_preset_is(speech_commands_root):
    # Before (API QA 2): build_data(DataConfig(...)) skipped the checks train() applies: a tuple of ratios
    # was refused, words="yes" read as the folders y, e, s, and batch_size="8" was a TypeError.
    import numpy as np

    from audionas.data import DataConfig, build_data
    from audionas.errors import UserError

    root = str(speech_commands_root)
    bundle = build_data(DataConfig(root=root, split="ratio", ratios=(0.6, 0.2, 0.2), batch_size=np.int64(8)))
    assert len(bundle.train) > len(bundle.test) > 0
    with pytest.raises(UserError, match=r"config field 'data.words': expected a list"):
        build_data(DataConfig(root=root, words="yes"))
    with pytest.raises(UserError, match=r"config field 'data.batch_size': expected an integer, got '8'"):
        build_data(DataConfig(root=root, batch_size="8"))
    for seed in ("3", 1.5, None):
        with pytest.raises(UserError, match=f"build_data: seed {seed!r}: expected an integer"):
            build_data(DataConfig(root=root), seed=seed)


def test_ratios_set_by_hand_beside_the_hash_split_are_said():
    # Catches (the ratios warning only for split=lists): the hash split reads no ratios either
    assert unread("kws-tc-resnet-cpu", ["data.split=hash", "data.ratios=[0.5,0.3,0.2]"]) == [
        "config field 'data.ratios': not used: only data.split=ratio or speaker_ratio reads it (this split: "
        "hash)"]


def test_root_and_cache_are_made_absolute_with_home_expanded(tmp_path, monkeypatch):
    # Catches (data.cache left relative): a run's saved config must find its DCASE cache from any folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    got = with_absolute_paths(DataConfig(kind="dcase2018", root="~/dcase", cache="feats"))
    assert got.root == os.path.join(str(tmp_path), "home", "dcase")
    assert got.cache == os.path.join(str(tmp_path), "feats")
    assert with_absolute_paths(DataConfig(root="r")).cache == ""  # an unset cache stays unset


def test_the_digest_without_mixed_rows_leaves_out_only_the_aug_sets():
    # Catches (mixed=False and mixed=True swapped): the shuffle-and-mix rows are what mixed=False drops
    from audionas.data import clips_digest

    dev, mixed = dev_and_mixed()
    assert clips_digest(mixed, mixed=False) == clips_digest(dev) == clips_digest(dev, mixed=False)
    assert clips_digest(mixed) != clips_digest(dev)
