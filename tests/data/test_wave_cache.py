"""Decoded clips cached in shared memory across epochs and DataLoader workers (audionas.data.wave_cache)."""

import shutil

import numpy as np
import pytest
import torch

from audionas.data import DataConfig, build_data
from audionas.data.wave_cache import SHM_RESERVE, SHM_SHARE, WaveCache, cache_rows, make_wave_cache
from audionas.errors import UserError
from audionas.train.batches import epoch_loader
from audionas.utils.dist import DistInfo

WORDS = ["yes", "no", "up"]


@pytest.fixture
def root(speech_commands_root, tmp_path):
    return shutil.copytree(speech_commands_root, tmp_path / "sc")


def _train(root, **kw):
    return build_data(DataConfig(root=str(root), split="hash", words=WORDS, **kw), seed=0).train


def _epoch(ds, epoch, workers=0):
    """Every item of one epoch, in index order."""
    ds.set_epoch(epoch)
    return [ds[i] for i in range(len(ds))] if workers == 0 else [
        b for b in epoch_loader(ds, 1, 0, epoch, DistInfo(), torch.device("cpu"), workers)]


def _remove_clips(root):
    for word in WORDS:
        shutil.rmtree(root / word)


def test_cache_rows_stay_within_the_budget_and_a_share_of_free_shared_memory():
    clip = 16000 * 4  # bytes of a 1 s clip
    assert cache_rows(10, 16000, 1, None, 1) == 10  # 1 MB holds 16 clips
    assert cache_rows(100, 16000, 1, None, 1) == 2**20 // clip
    free = SHM_RESERVE + int(40 * clip / SHM_SHARE)  # 40 clips in the share beyond the batches' reserve
    assert cache_rows(100, 16000, 4096, free, 1) == 40
    assert cache_rows(100, 16000, 4096, free, 2) == 20  # shared by the ranks of a node
    assert cache_rows(100, 16000, 0, None, 1) == 0
    # QA: a 24 MB /dev/shm (Docker's default: 64 MB) cached into the space DataLoader batches need
    assert cache_rows(100, 16000, 4096, 64 * 2**20, 1) == 0


def test_a_cached_epoch_reads_no_file_and_gives_the_items_of_a_decoded_one(root):
    cached, decoded = _train(root), _train(root, wave_cache_mb=0)
    for epoch in (0, 1):  # epoch 0 decodes and fills the cache; epoch 1 reads it
        if epoch == 1:
            _remove_clips(root)
            with pytest.raises(UserError, match="audio file not found"):  # no cache: decodes every epoch
                _epoch(decoded, epoch)
            decoded = None
        got = _epoch(cached, epoch)
        if decoded is not None:
            want = _epoch(decoded, epoch)
            assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(got, want))
    assert len(got) == len(cached) > 0


def test_clips_decoded_by_dataloader_workers_fill_the_main_processs_cache(root):
    # The workers are new processes every epoch: what they decode must outlive them.
    ds = _train(root)
    first = _epoch(ds, 0, workers=2)
    assert bool(ds._cache.filled[[i for i, (p, _) in enumerate(ds.items) if p is not None]].all())
    _remove_clips(root)
    again = _epoch(ds, 0, workers=2)  # the same epoch again: the same items, from the cache
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))


def test_the_training_splits_scoring_view_reads_its_cache(root):
    # eval_split=train scores the training items each epoch: they are the fitted clips the cache holds.
    cached = _train(root)
    want = _epoch(_train(root, wave_cache_mb=0).scoring_view(), 0)
    _epoch(cached, 0)
    _remove_clips(root)
    got = _epoch(cached.scoring_view(), 0)
    assert len(got) == len(want) > 0
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(got, want))


def test_a_budget_smaller_than_the_split_caches_its_first_clips_only(root, monkeypatch):
    monkeypatch.setattr("audionas.data.wave_cache.cache_rows", lambda n, *_: 3)
    ds = _train(root)
    _epoch(ds, 0)
    assert len(ds._cache) == 3
    _remove_clips(root)
    later = next(i for i, (p, _) in enumerate(ds.items) if i >= 3 and p is not None)
    with pytest.raises(UserError, match="audio file not found"):
        ds[later]


def test_no_cache_without_budget_or_shared_memory(monkeypatch):
    assert make_wave_cache(10, 16000, 0) is None
    monkeypatch.setattr("audionas.data.wave_cache.shm_free_bytes", lambda: 0)  # a full /dev/shm
    assert make_wave_cache(10, 16000, 4096) is None
    monkeypatch.setattr("audionas.data.wave_cache.shm_free_bytes", lambda: None)  # none to measure
    assert len(make_wave_cache(10, 16000, 4096)) == 10


def test_a_negative_budget_is_a_config_error(speech_commands_root):
    with pytest.raises(UserError, match=r"'data.wave_cache_mb': expected an integer >= 0, got -1"):
        _train(speech_commands_root, wave_cache_mb=-1)


def test_a_cached_clip_is_handed_out_as_a_copy():
    # Catches (get() without .copy()): an item changed in place (augmentation, a caller) must not change
    # what later epochs read from the cache
    cache = WaveCache(2, 4)
    cache.put(0, np.arange(4, dtype=np.float32))
    got = cache.get(0)
    got[:] = -1
    assert cache.get(0).tolist() == [0.0, 1.0, 2.0, 3.0] and cache.get(1) is None
    cache.put(5, np.zeros(4, np.float32))  # no row for it: not kept, no error
    assert cache.get(5) is None


def test_the_ranks_of_a_node_share_the_shared_memory(monkeypatch):
    # Catches (LOCAL_WORLD_SIZE ignored): two ranks on a node each take half of the share
    free = SHM_RESERVE + int(40 * 16000 * 4 / SHM_SHARE)  # 40 clips in the share beyond the reserve
    monkeypatch.setattr("audionas.data.wave_cache.shm_free_bytes", lambda: free)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert len(make_wave_cache(100, 16000, 4096)) == 40
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert len(make_wave_cache(100, 16000, 4096)) == 20
