"""DCASE2018 task 5: official layout parsing, folds, splits, datasets, errors (cache: test_dcase_cache.py)."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from dcase_helpers import _cfg

from audionas.cli import main
from audionas.data import DataConfig, build_data
from audionas.data.dcase2018 import (
    CLASSES,
    locate_dataset,
    read_dev,
    read_eval,
)
from audionas.data.dcase_fixtures import DEV_DIRNAME, EVAL_DIRNAME, make_dcase2018_fixture
from audionas.data.splits import search_split
from audionas.errors import UserError

pytestmark = pytest.mark.usefixtures("short_dcase_preset")


# ------------------------------------------------------------------------------------------- layout
def test_fixture_is_official_layout(fixture_root):
    dev = fixture_root / DEV_DIRNAME
    info = sf.info(str(dev / "audio" / "DevNode2_ex3_1.wav"))
    assert (info.channels, info.samplerate, info.subtype, info.frames) == (4, 16000, "PCM_16", 8000)
    meta = (dev / "meta.txt").read_text().splitlines()
    assert meta[0].split("\t") == ["audio/DevNode1_ex1_1.wav", "absence", "DevNode1_ex1"]
    for k in range(1, 5):
        for s in ("train", "test", "evaluate"):
            assert (dev / "evaluation_setup" / f"fold{k}_{s}.txt").is_file()
    ev = fixture_root / EVAL_DIRNAME
    assert (ev / "audio" / "1.wav").is_file()
    for name in ("test.txt", "evaluate.txt", "map.txt"):
        assert (ev / "evaluation_setup" / name).is_file()


def test_read_dev_counts_and_folds(fixture_root):
    dev, ev = locate_dataset(fixture_root)
    seg = read_dev(dev)
    assert len(seg.files) == 9 * 4 * 2
    assert np.bincount(seg.labels, minlength=9).tolist() == [8] * 9
    tests = []
    for k in range(1, 5):
        train, test = seg.folds[k]
        assert not set(train) & set(test)
        assert len(train) + len(test) == len(seg.files)
        # one session (2 nodes) per class in each fold's test list
        assert np.bincount([seg.labels[i] for i in test], minlength=9).tolist() == [2] * 9
        assert not {seg.groups[i] for i in train} & {seg.groups[i] for i in test}
        tests += test
    assert sorted(tests) == list(range(len(seg.files)))
    # both nodes of a session share one group (the ex id)
    assert seg.groups[seg.files.index("audio/DevNode1_ex3_1.wav")] == \
        seg.groups[seg.files.index("audio/DevNode2_ex3_1.wav")] == "ex3"
    e = read_eval(ev)
    assert len(e.files) == 9 * 2 * 2
    assert np.bincount(e.labels, minlength=9).tolist() == [4] * 9
    assert all(o.startswith("audio/EvaNode") for o in e.origs)


# ------------------------------------------------------------------------------------------- build
def test_nan_in_a_cache_row_is_named_when_read(cache, tmp_path):
    # Before: read as is, it poisoned the band statistics and every loss after it.
    bad = tmp_path / "bad"
    shutil.copytree(cache, bad)
    feats = np.load(bad / "dev" / "features.npy", mmap_mode="r+")
    feats[5, 3, 7] = np.nan
    feats.flush()
    del feats
    msg = (f"{bad / 'dev' / 'features.npy'}: row 5 holds NaN or infinite values (a damaged cache: delete it "
           f"and run audionas data prepare-dcase2018 again)")
    with pytest.raises(UserError, match=re.escape(msg)):
        b = build_data(_cfg(bad), 0)  # the band statistics read training rows; else reading every item
        for ds in (b.train, b.val, b.test):
            for i in range(len(ds)):
                ds[i]


def test_folds_single_mode_and_ids(cache):
    seg_files = json.loads((cache / "dev" / "set.json").read_text())["files"]
    for k in range(1, 5):
        b = build_data(_cfg(cache, fold=k), 0)
        assert len(b.val) == 36 * 4 and hasattr(b.val, "segment_ids")  # the evaluation set
        assert len(b.train) == 54 * 4 and len(b.test) == 18 * 4
        test_sessions = {seg_files[s].split("_")[1] for s in b.test.segment_ids}
        assert len(test_sessions) == 9
        assert b.test.channel_ids.tolist()[:8] == [0, 1, 2, 3, 0, 1, 2, 3]
        assert np.all(np.bincount(b.test.segment_ids)[np.unique(b.test.segment_ids)] == 4)
        assert np.bincount(b.test.labels, minlength=9).tolist() == [8] * 9
        x, y = b.test[5]
        assert y == b.test.labels[5]
    b = build_data(_cfg(cache, fold=0), 0)
    assert len(b.train) == 72 * 4 and b.val is None
    with pytest.raises(UserError, match=r"split 'val': not available for this dataset \(single mode "
                                        r"\(data.fold=0\) has no val split; .*\); available: train, test$"):
        b.split("val")
    assert len(b.test) == 36 * 4 and hasattr(b.test, "segment_ids")  # the evaluation set
    assert b.classes == CLASSES == sorted(CLASSES)
    b.train_augment.train()
    x = torch.stack([b.train[i][0] for i in range(4)])
    assert b.train_augment(x).shape == x.shape


def test_fixture_classes_are_learnable(cache):
    """The synthetic sounds differ per class: nearest class-mean of band energies gets fold 1's test right."""
    b = build_data(_cfg(cache, fold=1), 0)

    def bands(ds):
        return np.stack([ds[i][0].numpy()[0].mean(axis=1) for i in range(len(ds))]), ds.labels

    xtr, ytr = bands(b.train)
    xte, yte = bands(b.test)
    centroids = np.stack([xtr[ytr == c].mean(0) for c in range(9)])
    pred = np.argmin(((xte[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == yte) >= 0.9


def test_search_split_per_class_deterministic(cache):
    info = json.loads((cache / "dev" / "set.json").read_text())
    labels, groups = info["labels"], info["groups"]
    tr1, va1 = search_split(labels, groups, seed=3)
    tr2, va2 = search_split(labels, groups, seed=3)
    assert tr1.tolist() == tr2.tolist() and va1.tolist() == va2.tolist()
    tr3, _ = search_split(labels, groups, seed=4)
    assert tr1.tolist() != tr3.tolist()
    assert sorted(tr1.tolist() + va1.tolist()) == list(range(len(labels)))
    lab = np.asarray(labels)
    for c in range(9):  # 4 sessions of 2 segments: 3 sessions (75%) is the closest to 70%
        assert np.sum(lab[tr1] == c) == 6 and np.sum(lab[va1] == c) == 2
    g = np.asarray(groups)
    assert not set(g[tr1]) & set(g[va1])
    b = build_data(_cfg(cache, search_split=True, split_seed=3), 0)  # data.split_seed, not the run seed
    assert len(b.train) == len(tr1) * 4 and len(b.val) == len(va1) * 4
    assert sorted(set(b.val.segment_ids.tolist())) == va1.tolist()


def test_search_split_picks_follow_split_seed_not_the_run_seed(cache):
    # limit_per_class picks segments of the 30% part too; like the split, they follow data.split_seed
    cfg = _cfg(cache, search_split=True, split_seed=3, limit_per_class=4)
    a, b = build_data(cfg, 0), build_data(cfg, 7)
    assert np.array_equal(a.val.segment_ids, b.val.segment_ids)
    assert np.array_equal(a.train.rows, b.train.rows)
    assert len(a.val) == 9 * 4  # one whole segment per class


def test_limit_per_class_picks_are_seeded_by_split_seed(cache):
    # _cap keeps ceil(limit / 4) whole segments per class, a seeded random choice, not the first ones
    picks = [build_data(_cfg(cache, fold=1, limit_per_class=4, split_seed=s), 0).train.rows for s in (0, 1)]
    assert len(picks[0]) == len(picks[1]) == 9 * 4
    assert not np.array_equal(picks[0], picks[1])


def test_band_normalisation_uses_the_training_split(cache):
    from audionas.features.normalize import band_statistics

    b = build_data(_cfg(cache, search_split=True, normalize=True), 0)
    mean, std = band_statistics(b.train)
    assert torch.allclose(b.frontend.mean.flatten(), mean)
    assert torch.allclose(b.frontend.inv_std.flatten(), 1 / std.clamp_min(1e-5))
    assert not torch.allclose(band_statistics(b.val)[0], mean)  # the fixture's val part differs


def test_limit_per_class(cache):
    b = build_data(_cfg(cache, fold=1, limit_per_class=5), 0)
    # 5 channel items -> 2 whole segments per class
    assert np.bincount(b.train.labels, minlength=9).tolist() == [8] * 9
    assert np.bincount(b.test.labels, minlength=9).tolist() == [8] * 9


def test_build_errors(fixture_root, cache):
    with pytest.raises(UserError, match="prepare-dcase2018"):
        build_data(_cfg(fixture_root), 0)
    with pytest.raises(UserError, match="data.feature"):
        build_data(DataConfig(kind="dcase2018", root=str(cache), feature="dcase-logmel"), 0)
    with pytest.raises(UserError, match="data.fold"):
        build_data(_cfg(cache, fold=5), 0)
    with pytest.raises(UserError, match="search_split"):
        build_data(_cfg(cache, fold=2, search_split=True), 0)


# ------------------------------------------------------------------------------------------- bad input
def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_missing_meta_and_fold_files(small_root):
    dev = small_root / DEV_DIRNAME
    (dev / "evaluation_setup" / "fold3_evaluate.txt").unlink()
    with pytest.raises(UserError, match="fold3_evaluate.txt: file not found"):
        read_dev(dev)
    (dev / "meta.txt").unlink()
    with pytest.raises(UserError, match="meta.txt: file not found"):
        read_dev(dev)


def test_unknown_label(small_root):
    dev = small_root / DEV_DIRNAME
    _rewrite(dev / "meta.txt", "\tcooking\t", "\tbaking\t")
    with pytest.raises(UserError, match=r"meta.txt line \d+: unknown label 'baking'"):
        read_dev(dev)


@pytest.mark.parametrize("which", ["train", "evaluate"])
def test_a_fold_label_that_disagrees_with_meta_is_named(small_root, which):
    setup = small_root / DEV_DIRNAME / "evaluation_setup"
    path = setup / f"fold2_{which}.txt"
    lines = path.read_text().splitlines()
    first = lines[0].split("\t")
    other = "cooking" if first[1] != "cooking" else "eating"
    path.write_text("\n".join(["\t".join([first[0], other, *first[2:]]), *lines[1:]]) + "\n")
    msg = rf"fold2_{which}.txt line 1: label '{other}' of '{first[0]}' disagrees with meta.txt " \
          rf"\('{first[1]}'\)"
    with pytest.raises(UserError, match=msg):
        read_dev(small_root / DEV_DIRNAME)


def test_session_split_across_fold(small_root):
    dev = small_root / DEV_DIRNAME
    setup = dev / "evaluation_setup"
    # move one fold-1 test segment's session into fold 1's train list while its twin stays in test
    make_dcase2018_fixture(small_root, sessions_per_class=4, segments_per_session=2, seconds=0.5, nodes=1,
                           force=True)
    line = "audio/DevNode1_ex1_2.wav\tabsence\tDevNode1_ex1\n"
    (setup / "fold1_train.txt").write_text((setup / "fold1_train.txt").read_text() + line)
    for s in ("test", "evaluate"):
        p = setup / f"fold1_{s}.txt"
        p.write_text("".join(x + "\n" for x in p.read_text().splitlines() if "DevNode1_ex1_2" not in x))
    # a warning, not an error: grouping nodes by their ex id is the loader's reading, the official lists rule
    msg = (r"fold1_evaluate.txt: 1 segment\(s\) share a session with fold1_train.txt \(first: "
           r"'audio/DevNode1_ex1_1.wav', session 'ex1'\)")
    with pytest.warns(UserWarning, match=msg):
        seg = read_dev(dev)
    assert seg.files.index("audio/DevNode1_ex1_2.wav") in seg.folds[1][0]


def test_a_segment_in_both_lists_of_a_fold_is_named(small_root):
    setup = small_root / DEV_DIRNAME / "evaluation_setup"
    first = (setup / "fold1_evaluate.txt").read_text().splitlines()[0]
    (setup / "fold1_train.txt").write_text((setup / "fold1_train.txt").read_text() + first + "\tsession\n")
    name = first.split("\t")[0]
    with pytest.raises(UserError, match=f"fold1_evaluate.txt: '{name}' is also in fold1_train.txt"):
        read_dev(small_root / DEV_DIRNAME)


# ------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("flags, msg", [
    (["--seconds", "1e9"], r"36 segments of 1e\+09 s; expected at most 72984 segments"),
    (["--sessions", "1000000"], r"9000000 segments of 10 s; expected at most 72984 segments"),
    # before: an FFT ValueError traceback, with the dataset folder already made
    (["--seconds", "1e-300"], r"1e-300 s is no sample at 16000 Hz; expected seconds >= 6.25e-05")])
def test_make_dcase_fixture_refuses_more_than_the_real_set(tmp_path, capsys, flags, msg):
    out = tmp_path / "fx"
    assert main(["data", "make-dcase-fixture", "--out", str(out), "--nodes", "1", "--segments", "1",
                 *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(msg, err) and not out.exists()


def test_make_dcase_fixture_is_not_mixed_into_another_folder(tmp_path, capsys):
    other = tmp_path / "run"
    other.mkdir()
    (other / "config.yaml").write_text("model: res15\n")
    argv = ["data", "make-dcase-fixture", "--sessions", "1", "--segments", "1", "--nodes", "1", "--seconds",
            "0.1"]
    assert main([*argv, "--out", str(other)]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --out {other}: folder is not empty and holds no "
                                       f"DCASE2018 fixture ({DEV_DIRNAME}); use another --out\n")
    assert [p.name for p in other.iterdir()] == ["config.yaml"]
    assert main([*argv, "--out", str(tmp_path / "fx")]) == 0
    assert main([*argv, "--out", str(tmp_path / "fx")]) == 0  # a fixture folder is written again


def test_missing_shuffle_and_mix_warns_only_for_training(cache):
    """A cache without --augment rows: training is told; scoring (evaluate, predict, export) is not."""
    with pytest.warns(UserWarning, match="no shuffle-and-mix segments"):
        build_data(_cfg(cache, augment=True), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(build_data(_cfg(cache, augment=True), 0, training=False).train) == 72 * 4


def test_a_segment_listed_twice_in_meta_is_named(small_root):
    dev = small_root / DEV_DIRNAME
    lines = (dev / "meta.txt").read_text().splitlines()
    (dev / "meta.txt").write_text("\n".join([*lines, lines[3]]) + "\n")
    name = lines[3].split("\t")[0]
    with pytest.raises(UserError, match=rf"meta.txt line {len(lines) + 1}: '{name}' is listed twice"):
        read_dev(dev)


@pytest.fixture
def eval_root(tmp_path) -> Path:
    return make_dcase2018_fixture(tmp_path / "ev", sessions_per_class=4, segments_per_session=1, seconds=0.5,
                                  nodes=1, with_eval=True)


def _repeat_line(path: Path, k: int) -> tuple[int, str]:
    """Append line k of a list again; (its new line number, its first field)."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[k]]) + "\n")
    return len(lines) + 1, lines[k].split("\t")[0]


@pytest.mark.parametrize("which", ["dev/fold2_train.txt", "dev/fold2_test.txt", "dev/fold2_evaluate.txt",
                                   "eval/test.txt", "eval/evaluate.txt", "eval/map.txt"])
def test_a_file_listed_twice_in_any_list_is_named(eval_root, which):
    # before: kept, so the segment was trained or scored twice (only meta.txt was checked)
    folder, name = which.split("/")
    top = eval_root / (DEV_DIRNAME if folder == "dev" else EVAL_DIRNAME)
    lineno, first = _repeat_line(top / "evaluation_setup" / name, 3)
    with pytest.raises(UserError, match=rf"{re.escape(name)} line {lineno}: '{re.escape(first)}' is listed "
                                        rf"twice$"):
        read_dev(top) if folder == "dev" else read_eval(top)


def test_lists_starting_with_a_byte_order_mark_read_as_without(eval_root):
    # before: "fold1_test.txt line 1: ... is not listed in meta.txt" (the BOM glued to meta.txt's first name),
    # and the eval set's first session and map name silently empty
    dev, ev = eval_root / DEV_DIRNAME, eval_root / EVAL_DIRNAME
    before = read_dev(dev), read_eval(ev)
    assert before[1].sessions[0] and before[1].origs[0]
    for path in (dev / "meta.txt", dev / "evaluation_setup" / "fold1_test.txt", ev / "meta.txt",
                 ev / "evaluation_setup" / "test.txt", ev / "evaluation_setup" / "evaluate.txt",
                 ev / "evaluation_setup" / "map.txt"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert (read_dev(dev), read_eval(ev)) == before


def test_a_fold_evaluate_list_with_other_files_than_its_test_list_is_named(small_root):
    setup = small_root / DEV_DIRNAME / "evaluation_setup"
    p = setup / "fold3_test.txt"
    p.write_text("".join(x + "\n" for x in p.read_text().splitlines()[1:]))  # one segment fewer
    with pytest.raises(UserError, match=r"fold3_evaluate.txt: lists other files than fold3_test.txt"):
        read_dev(small_root / DEV_DIRNAME)


def _eval_copy(fixture_root, tmp_path):
    ev = tmp_path / EVAL_DIRNAME
    shutil.copytree(fixture_root / EVAL_DIRNAME, ev, ignore=shutil.ignore_patterns("audio"))
    return ev


def test_an_evaluation_segment_without_a_label_is_named(fixture_root, tmp_path):
    ev = _eval_copy(fixture_root, tmp_path)
    lines = (ev / "evaluation_setup" / "evaluate.txt").read_text().splitlines()
    (ev / "evaluation_setup" / "evaluate.txt").write_text("".join(x + "\n" for x in lines[1:]))
    name = lines[0].split("\t")[0]
    msg = rf"evaluate.txt: no label for '{re.escape(name)}' \(listed in test.txt\)"
    with pytest.raises(UserError, match=msg):
        read_eval(ev)


def test_the_evaluation_readme_name_evaluation_txt_is_read(fixture_root, tmp_path):
    ev = _eval_copy(fixture_root, tmp_path)
    setup = ev / "evaluation_setup"
    rows = [x.split("\t") for x in (setup / "evaluate.txt").read_text().splitlines()]
    (setup / "evaluate.txt").rename(setup / "evaluation.txt")
    e = read_eval(ev)
    assert e.files == [r[0] for r in rows]
    assert e.labels == [CLASSES.index(r[1]) for r in rows]


def test_a_fold_with_an_empty_train_or_evaluate_list_is_named(tmp_path):
    from dcase_helpers import _prep

    # one session per class, all in fold 1's test list: fold 1 lists no training segments, fold 2 no
    # evaluation segments
    root = make_dcase2018_fixture(tmp_path / "ds", sessions_per_class=1, segments_per_session=1, seconds=0.5,
                                  nodes=1, with_eval=True)
    cache = tmp_path / "c"
    _prep(root, cache)
    with pytest.raises(UserError, match=r"data.fold': fold 1 .* no training segments .*fold1_train.txt"):
        build_data(_cfg(cache, fold=1), 0)
    b = build_data(_cfg(cache, fold=2), 0)
    assert b.test is None and len(b.val) == 9 * 4  # not the evaluation set in the fold's test place
    with pytest.raises(UserError, match=r"split 'test': .*fold2_evaluate.txt is empty"):
        b.split("test")


def test_a_dataset_extracted_one_folder_too_deep_is_pointed_at(small_root, tmp_path):
    # before: ".../DCASE2018-task5-dev/meta.txt: file not found" without a word on the extra folder
    top = tmp_path / "dl"
    (top / DEV_DIRNAME).mkdir(parents=True)
    shutil.move(str(small_root / DEV_DIRNAME), str(top / DEV_DIRNAME / DEV_DIRNAME))
    dev, _ = locate_dataset(top)
    inner = top / DEV_DIRNAME / DEV_DIRNAME
    with pytest.raises(UserError, match=rf"meta.txt: file not found, but {re.escape(str(inner))} holds one "
                                        rf"\(the archive was extracted one folder deeper\): move its "
                                        rf"contents up \(passing .* as --root would leave the evaluation set "
                                        rf"out unless --eval-root names it\)$"):
        read_dev(dev)
    assert len(read_dev(locate_dataset(inner)[0]).files) == 36


GARBAGE = bytes(range(128, 256)) * 3


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
        build_data(_cfg(bad, feature=short_dcase_preset), 0)


def test_progress_beyond_the_set_is_refused(dcase_root, dcase_cache, short_dcase_preset, tmp_path, capsys):
    # Before: `prepare-dcase2018` said nothing and exit 0 leaving the set incomplete, and reading it asked
    # for that same rerun (a loop with no way out).
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    (bad / "dev" / "progress.json").write_text(json.dumps({"done_files": 10**20}))
    msg = "progress.json: field 'done_files': expected an integer in 0..36 (the set's segments)"
    with pytest.raises(UserError, match=re.escape(msg)):
        build_data(_cfg(bad, feature=short_dcase_preset), 0)
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
        build_data(_cfg(bad, feature=short_dcase_preset), 0)


@pytest.mark.parametrize("key, value, msg", [
    ("n_segments", "9", "set.json: field 'n_segments'"),
    ("labels", [0], "set.json: field 'labels'"),
    ("files", ["a.wav"], "set.json: field 'files'"),
    ("folds", {"1": {"train": [10 ** 6], "test": []}}, r"set.json: field 'folds.1.train'"),
    # one past the end (the bounds are exclusive): label 9 is no class, segment n of n no segment
    ("labels", lambda info: [9] * len(info["labels"]),
     r"set.json: field 'labels': expected a list of \d+ integers in 0\.\.8, got a list of \d+ items"),
    ("folds", lambda info: {"1": {"train": [len(info["labels"])], "test": []}},
     r"set.json: field 'folds.1.train': expected a list of integers in 0\.\.\d+"),
])
def test_hand_edited_set_fields(dcase_cache, short_dcase_preset, tmp_path, key, value, msg):
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    p = bad / "dev" / "set.json"
    info = json.loads(p.read_text())
    info[key] = value(info) if callable(value) else value
    p.write_text(json.dumps(info))
    with pytest.raises(UserError, match=msg):
        build_data(_cfg(bad, feature=short_dcase_preset), 0)


def test_cli_train_on_a_corrupt_manifest_is_one_line(dcase_cache, short_dcase_preset, tmp_path, capsys):
    bad = tmp_path / "c"
    shutil.copytree(dcase_cache, bad)
    (bad / "manifest.json").write_text("{bad")
    assert main(["train", "--preset", "asc-cpu", "--data", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"audionas: error: {bad / 'manifest.json'}: invalid JSON")


def test_mixdown_is_said_to_do_nothing_for_dcase_when_training_only(cache):
    # QA: data.mixdown=true trained a DCASE run without a word; its cache holds one item per channel.
    with pytest.warns(UserWarning, match=r"^config field 'data.mixdown': not used for DCASE2018"):
        mixed = build_data(_cfg(cache, mixdown=True), 0)
    assert len(mixed.train) == len(build_data(_cfg(cache), 0).train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_data(_cfg(cache, mixdown=True), 0, training=False)  # scoring: said at training already


@pytest.mark.parametrize("kind", ["dcase2018", "folder", "speech_commands"])
@pytest.mark.parametrize("level", ["parent", "dev"])
def test_a_raw_download_read_as_any_dataset_kind_points_at_prepare(small_root, kind, level):
    # before (QA): data.kind=folder trained a 2-class model, DCASE2018-task5-dev vs DCASE2018-task5-eval
    root = small_root if level == "parent" else small_root / DEV_DIRNAME
    with pytest.raises(UserError, match=rf"^{re.escape(str(root))}: a raw DCASE2018 dataset, not .*; run "
                                        rf"`audionas data prepare-dcase2018 --root {re.escape(str(root))} "
                                        rf"--out CACHE` first and pass --data CACHE"):
        build_data(DataConfig(kind=kind, root=str(root)), seed=0)


def test_class_folders_beside_a_meta_txt_of_ones_own_are_not_taken_for_dcase(tmp_path):
    from audionas.data.fixtures import make_folder_fixture

    root = make_folder_fixture(tmp_path / "own", per_class=4)
    (root / "meta.txt").write_text("notes\n")
    b = build_data(DataConfig(kind="folder", root=str(root), split="ratio", ratios=[0.5, 0.25, 0.25]), seed=0)
    assert b.classes == ["alarm", "clap", "dog_bark"]


def test_an_evaluation_meta_label_that_disagrees_with_evaluate_txt_is_named(eval_root):
    # before (QA): a corrupted evaluation meta.txt went unnoticed (labels are read from evaluate.txt)
    meta = eval_root / EVAL_DIRNAME / "meta.txt"
    lines = meta.read_text().splitlines()
    first = lines[0].split("\t")
    other = "cooking" if first[1] != "cooking" else "eating"
    meta.write_text("\n".join(["\t".join([first[0], other, *first[2:]]), *lines[1:]]) + "\n")
    with pytest.raises(UserError, match=rf"meta.txt line 1: label '{other}' of '{first[0]}' disagrees with "
                                        rf"evaluate.txt \('{first[1]}'\)$"):
        read_eval(eval_root / EVAL_DIRNAME)


def test_a_list_line_with_an_empty_field_is_named(small_root):
    # an empty session (or label) between the tabs is a malformed line, not a session named ''
    meta = small_root / DEV_DIRNAME / "meta.txt"
    _rewrite(meta, "\tabsence\tDevNode1_ex2\n", "\tabsence\t\n")
    msg = "meta.txt line 2: expected 3 tab-separated field(s), got 'audio/DevNode1_ex2_1.wav\tabsence'"
    with pytest.raises(UserError, match=re.escape(msg)):
        read_dev(small_root / DEV_DIRNAME)


def test_fold_lists_in_another_order_give_the_same_folds(small_root):
    # folds hold segment indices in file-list order whatever the order of the lines of a fold list
    dev = small_root / DEV_DIRNAME
    before = read_dev(dev).folds
    for s in ("train", "test", "evaluate"):
        p = dev / "evaluation_setup" / f"fold1_{s}.txt"
        p.write_text("".join(x + "\n" for x in reversed(p.read_text().splitlines())))
    assert read_dev(dev).folds == before


def test_search_augmentation_made_for_another_split_seed_is_refused(cache, tmp_path):
    # aug-search mixes only the 70% part of one split seed; another seed's val part would leak into training
    from audionas.data.dcase_cache import prepare_augmentation

    c = tmp_path / "c"
    shutil.copytree(cache, c)
    summary = prepare_augmentation(c, ["search"], scale=0.001, seed=1, progress=False)
    assert summary["search"]["new_segments"] > 0
    with pytest.raises(UserError, match=r"aug-search was made for the split of seed 1, this run splits with "
                                        r"data.split_seed=0; rerun prepare-dcase2018"):
        build_data(_cfg(c, search_split=True, augment=True, split_seed=0), 0)
    b = build_data(_cfg(c, search_split=True, augment=True, split_seed=1), 0)
    assert len(b.train.paths) == 2  # the matching seed reads the mixed rows


@pytest.mark.parametrize("flag, value", [("--seed", "3"), ("--augment-scale", "0.5"),
                                         ("--augment-scope", "dev")])
def test_an_augment_setting_without_augment_is_refused_before_any_work(tmp_path, capsys, flag, value):
    assert main(["data", "prepare-dcase2018", "--root", str(tmp_path), "--out", str(tmp_path / "c"),
                 flag, value]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {flag}: only used with --augment "
                                       f"(shuffle-and-mix); add --augment or drop it\n")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("scopes", [",", " , ", "dev,train9"])
def test_an_augment_scope_list_of_no_known_scope_is_refused_before_any_work(tmp_path, capsys, scopes):
    assert main(["data", "prepare-dcase2018", "--root", str(tmp_path), "--out", str(tmp_path / "c"),
                 "--augment", "--augment-scope", scopes]) == 2
    err = capsys.readouterr().err
    assert err.startswith("audionas: error: --augment-scope: expected a comma list of dev, ")
    assert err.endswith(f", got '{scopes}'\n")
    assert not (tmp_path / "c").exists()
