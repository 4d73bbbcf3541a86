"""Running epoch sums (audionas.train.epoch_sums)."""

import pytest
import torch

from audionas.train.epoch_sums import EpochSums


def test_sums_add_by_name_in_float64():
    sums = EpochSums(("loss_sum", "count"), torch.device("cpu"))
    sums.add(loss_sum=torch.tensor(0.1, dtype=torch.float32) * 3, count=3)
    sums.add(count=2)
    assert sums.values.dtype == torch.float64
    assert sums.total() == pytest.approx({"loss_sum": 0.3, "count": 5.0})
    with pytest.raises(ValueError):
        sums.add(correct=1)


def test_a_restored_epoch_continues_from_the_saved_partial_sums():
    names = ("loss_sum", "correct", "count")
    whole = EpochSums(names, torch.device("cpu"))
    for loss, hit in [(0.5, 1), (0.25, 0), (0.125, 1)]:
        whole.add(loss_sum=loss, correct=hit, count=1)
    first = EpochSums(names, torch.device("cpu"))
    first.add(loss_sum=0.5, correct=1, count=1)
    saved = first.partial()  # one process: the mean over ranks is its own sums
    assert saved == {"loss_sum": 0.5, "correct": 1.0, "count": 1.0}
    rest = EpochSums(names, torch.device("cpu"), saved)
    for loss, hit in [(0.25, 0), (0.125, 1)]:
        rest.add(loss_sum=loss, correct=hit, count=1)
    assert rest.total() == whole.total()
    assert first.partial() == saved  # partial() and total() leave the running sums alone


def test_two_ranks_checkpoint_the_mean_and_total_the_sum(monkeypatch):
    """A mid-epoch checkpoint holds the mean over ranks (each rank resumes from it); the epoch's sums add
    both ranks' counts."""
    import audionas.utils.dist as d

    other = torch.tensor([3.0, 10.0], dtype=torch.float64)  # the other rank's loss_sum, count
    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(d.dist, "all_reduce", lambda t, op=None: t.add_(other))
    sums = EpochSums(("loss_sum", "count"), torch.device("cpu"))
    sums.add(loss_sum=1.0, count=6)
    assert sums.partial() == {"loss_sum": 2.0, "count": 8.0}
    assert sums.total() == {"loss_sum": 4.0, "count": 16.0}
    assert sums.total() == sums.partial() | {"loss_sum": 4.0, "count": 16.0}  # the running sums untouched
