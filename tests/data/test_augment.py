"""Shuffle-and-mix (targets, same-class sources, linear-domain mixing, no leakage) and batched Cutout."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from audionas.data import DataConfig, build_data
from audionas.data.augment import (
    N_PIECES,
    Cutout,
    augment_targets,
    plan_shuffle_mix,
    shuffle_and_mix,
)
from audionas.data.dcase2018 import CLASSES
from audionas.data.dcase_cache import prepare_augmentation, prepare_cache
from audionas.data.dcase_fixtures import make_dcase2018_fixture
from audionas.data.splits import search_split
from audionas.errors import UserError
from audionas.features import FEATURE_PRESETS

SHORT = "test-dcase-logmel-aug"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    spec = FEATURE_PRESETS["dcase-logmel"]
    FEATURE_PRESETS[SHORT] = dataclasses.replace(spec, name=SHORT, clip_samples=4000)
    root = make_dcase2018_fixture(tmp_path_factory.mktemp("ds"), sessions_per_class=4, segments_per_session=1,
                                  seconds=0.25, nodes=2, seed=2)
    out = tmp_path_factory.mktemp("cache") / "c"
    prepare_cache(root, out, feature=SHORT, seconds=0.25, progress=False)
    yield out
    del FEATURE_PRESETS[SHORT]


def test_targets_follow_the_paper():
    counts = [18860, 5124, 1424, 2308, 2060, 4944, 972, 18648, 18644]  # development set
    new = augment_targets(counts, CLASSES, 1.0)
    assert (np.asarray(counts) + new).tolist() == [28000, 14000, 14000, 14000, 14000, 14000, 14000, 28000,
                                                   28000]
    small = augment_targets([10, 3, 0, 200, 1, 1, 1, 1, 1], CLASSES, 0.01)
    assert small.tolist() == [270, 137, 0, 0, 139, 139, 139, 279, 279]


def test_plan_uses_two_segments_of_the_same_class_from_the_pool():
    labels = np.repeat(np.arange(9), 5)
    pool = np.arange(0, 45, 1)[np.arange(45) % 5 != 4]  # segment 4 of each class is held out
    y, a, b = plan_shuffle_mix(labels, pool, CLASSES, 0.001, seed=1)
    assert np.bincount(y, minlength=9).tolist() == [24, 10, 10, 10, 10, 10, 10, 24, 24]
    assert np.all(labels[a] == y) and np.all(labels[b] == y)
    assert np.all(a != b)
    assert set(a) | set(b) <= set(pool)
    y2, a2, b2 = plan_shuffle_mix(labels, pool, CLASSES, 0.001, seed=1)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    _, a3, _ = plan_shuffle_mix(labels, pool, CLASSES, 0.001, seed=2)
    assert not np.array_equal(a, a3)


def test_shuffle_and_mix_mixes_energies_of_permuted_pieces():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 40, 501)).astype(np.float32)
    b = rng.normal(size=(4, 40, 501)).astype(np.float32) - 3
    out = shuffle_and_mix(a, b, np.random.default_rng(5))
    assert out.shape == a.shape and out.dtype == np.float32
    r = np.random.default_rng(5)
    w = r.uniform(0.2, 0.8)
    pa, pb = r.permutation(N_PIECES), r.permutation(N_PIECES)
    assert sorted(pa.tolist()) == [0, 1, 2]
    piece = 501 // N_PIECES
    sa = np.concatenate([a[..., p * piece:(p + 1) * piece] for p in pa], -1)
    sb = np.concatenate([b[..., p * piece:(p + 1) * piece] for p in pb], -1)
    np.testing.assert_allclose(out, np.log(w * np.exp(sa) + (1 - w) * np.exp(sb)), rtol=1e-5, atol=1e-5)
    # the weights sum to one in the energy domain: a constant clip mixed with itself is unchanged
    const = np.full((4, 40, 501), 1.5, dtype=np.float32)
    np.testing.assert_allclose(shuffle_and_mix(const, const, np.random.default_rng(1)), const, rtol=1e-6)


def test_prepare_augmentation_targets_labels_and_no_leak(cache):
    info = json.loads((cache / "dev" / "set.json").read_text())
    labels = np.asarray(info["labels"])
    dev_before = (cache / "dev" / "features.npy").read_bytes()
    summary = prepare_augmentation(cache, ["fold1", "search"], scale=0.001, seed=3, progress=False)
    assert (cache / "dev" / "features.npy").read_bytes() == dev_before
    for scope in ("fold1", "search"):
        counts = summary[scope]["training_segments_per_class"]
        assert counts == {c: (14 if c in ("cooking", "dishwashing", "eating", "other", "social_activity",
                                          "vacuum_cleaner") else 28) for c in CLASSES}
    aug = json.loads((cache / "aug-fold1" / "set.json").read_text())
    train1 = set(info["folds"]["1"]["train"])
    assert set(aug["src_a"]) | set(aug["src_b"]) <= train1  # never a fold-1 test segment
    assert np.all(labels[aug["src_a"]] == aug["labels"]) and np.all(labels[aug["src_b"]] == aug["labels"])
    tr, _ = search_split(info["labels"], info["groups"], seed=3)
    aug_s = json.loads((cache / "aug-search" / "set.json").read_text())
    assert set(aug_s["src_a"]) | set(aug_s["src_b"]) <= set(tr.tolist())
    idx = (cache / "aug-fold1" / "index.tsv").read_text().splitlines()
    assert len(idx) == 1 + 4 * aug["n_segments"]
    row, label, src_a, _, ch = idx[1 + 4 * 7 + 1].split("\t")
    assert label == CLASSES[aug["labels"][7]] and ch == "1"
    assert src_a == info["files"][aug["src_a"][7]]
    feats = np.load(cache / "aug-fold1" / "features.npy")
    assert feats.shape == (4 * aug["n_segments"], 40, 13) and np.isfinite(feats).all()

    cfg = DataConfig(kind="dcase2018", root=str(cache), feature=SHORT, fold=1)
    b = build_data(cfg, 0)
    n_train = len(info["folds"]["1"]["train"])
    assert len(b.train) == 4 * (n_train + aug["n_segments"])
    assert len(b.test) == 4 * len(info["folds"]["1"]["test"])  # test untouched
    per_class = summary["fold1"]["training_segments_per_class"]
    assert np.bincount(b.train.labels, minlength=9).tolist() == [4 * per_class[c] for c in CLASSES]
    x, y = b.train[len(b.train) - 1]
    assert y == aug["labels"][-1] and x.shape == (1, 40, 13)
    with pytest.warns(UserWarning, match="no shuffle-and-mix"):
        build_data(DataConfig(kind="dcase2018", root=str(cache), feature=SHORT, fold=2), 0)
    with pytest.raises(UserError, match="seed 3.*data.split_seed=0"):
        build_data(DataConfig(kind="dcase2018", root=str(cache), feature=SHORT, search_split=True), 3)
    # the split follows data.split_seed, whatever the run's seed
    for run_seed in (0, 7):
        b = build_data(DataConfig(kind="dcase2018", root=str(cache), feature=SHORT, search_split=True,
                                  split_seed=3), run_seed)
        assert len(b.train) == 4 * (len(tr) + aug_s["n_segments"])


def test_augmented_rows_are_the_shuffle_and_mix_of_their_two_listed_sources(cache):
    from audionas.data.dcase_cache import AUG_SCOPES

    prepare_augmentation(cache, ["fold1"], scale=0.001, seed=3, progress=False)  # as the test above
    aug = json.loads((cache / "aug-fold1" / "set.json").read_text())
    src = np.load(cache / "dev" / "features.npy")
    feats = np.load(cache / "aug-fold1" / "features.npy")
    code = AUG_SCOPES.index("fold1")
    for j in (0, 7, aug["n_segments"] - 1):
        a, b = aug["src_a"][j], aug["src_b"][j]
        assert a != b
        want = np.empty((4, *src.shape[1:]), dtype=np.float16)
        rng = np.random.default_rng([3, code, j])  # per segment and scope
        want[:] = shuffle_and_mix(src[4 * a:4 * a + 4], src[4 * b:4 * b + 4], rng)
        assert np.array_equal(feats[4 * j:4 * j + 4], want), j


def test_augmentation_resume_equal_bytes(cache, tmp_path):
    import shutil

    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        shutil.copytree(cache, d)
        shutil.rmtree(d / "aug-dev", ignore_errors=True)
    prepare_augmentation(one, ["dev"], scale=0.002, seed=0, chunk=4, checkpoint_every=8, progress=False)
    prepare_augmentation(two, ["dev"], scale=0.002, seed=0, chunk=4, checkpoint_every=8, progress=False,
                         stop_after=10)
    assert json.loads((two / "aug-dev" / "progress.json").read_text())["done_files"] == 16
    with pytest.raises(UserError, match="aug-dev' is incomplete"):
        build_data(DataConfig(kind="dcase2018", root=str(two), feature=SHORT, fold=0), 0)
    with pytest.warns(UserWarning, match="no shuffle-and-mix"):  # other scopes are not blocked by it
        build_data(DataConfig(kind="dcase2018", root=str(two), feature=SHORT, fold=2), 0)
    prepare_augmentation(two, ["dev"], scale=0.002, seed=0, chunk=4, checkpoint_every=8, progress=False)
    assert (one / "aug-dev" / "features.npy").read_bytes() == (two / "aug-dev" / "features.npy").read_bytes()
    with pytest.raises(UserError, match=r"aug-dev: this cache was built with --augment-scale 0.002 \(now"):
        prepare_augmentation(two, ["dev"], scale=0.003, seed=0, progress=False)
    with pytest.raises(UserError, match=r"aug-dev: this cache was built with --seed 0 \(now 1\)"):
        prepare_augmentation(two, ["dev"], scale=0.002, seed=1, progress=False)


def test_cutout_training_only_and_deterministic():
    x = torch.randn(6, 1, 40, 501)
    cut = Cutout()
    cut.eval()
    assert torch.equal(cut(x), x)
    cut.train()
    torch.manual_seed(0)
    y1 = cut(x)
    torch.manual_seed(0)
    y2 = cut(x)
    assert torch.equal(y1, y2)
    y3 = cut(x)
    assert not torch.equal(y1, y3)
    changed = (y1 != x)[:, 0]
    for i in range(6):
        rows = changed[i].any(dim=1).nonzero().flatten()
        cols = changed[i].any(dim=0).nonzero().flatten()
        assert 0 < len(rows) <= 20 and 0 < len(cols) <= 250
        # one rectangle, filled with the example's mean
        assert changed[i, rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert torch.allclose(y1[i, 0][changed[i]], x[i].mean().expand(int(changed[i].sum())))


def test_an_empty_pool_is_named_as_the_reason_for_no_new_segments(cache, monkeypatch):
    # before: "each class of its pool already holds its target" of a scope whose training list is empty
    import audionas.data.dcase_cache as dc

    monkeypatch.setattr(dc, "scope_pool", lambda seg, scope, seed: np.zeros(0, dtype=np.int64))
    said = (r"no new segments for 'fold4': its pool is empty \(the scope's training list names no "
            r"segments\); runs on it train on the originals")
    with pytest.warns(UserWarning, match=said):
        assert prepare_augmentation(cache, ["fold4"], seed=0, progress=False)["fold4"]["new_segments"] == 0


def test_a_scale_that_adds_no_segments_warns_when_prepared_and_when_trained_on(cache):
    """Before: aug-<scope> with 0 segments was written silently, and a run on it trained on the originals
    without the warning a missing aug-<scope> gives."""
    with pytest.warns(UserWarning, match=r"--augment-scale 0.0001: no new segments for 'fold3': each class"):
        summary = prepare_augmentation(cache, ["fold3"], scale=0.0001, seed=0, progress=False)
    assert summary["fold3"]["new_segments"] == 0
    cfg = DataConfig(kind="dcase2018", root=str(cache), feature=SHORT, fold=3)
    with pytest.warns(UserWarning, match=r"aug-fold3 holds no shuffle-and-mix segments \(its --augment-scale "
                                         r"0.0001 added none\); training on the original segments only"):
        trained = build_data(cfg, 0)
    assert len(trained.train) == len(build_data(dataclasses.replace(cfg, augment=False), 0).train)
