"""RunCheckpoint: what one process saves, a fresh one restores (weights, state holders, RNG)."""

import random

import numpy as np
import pytest
import torch

from audionas.data import split_fingerprint
from audionas.errors import UserError
from audionas.utils.checkpoint import load_checkpoint, save_atomic
from audionas.utils.rng import get_rng_state, seed_everything, seed_rank
from audionas.utils.run_checkpoint import DATA_ENTRIES, RunCheckpoint, data_entries


def _objects(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    return model, opt, sched


def _ckpt(path, model, opt, sched, rank=0, spe=5, world_size=1):
    return RunCheckpoint(path, model, {"optimizer": opt, "scheduler": sched, "ema": None}, device="cpu",
                         steps_per_epoch=spe, world_size=world_size, rank=rank,
                         fixed={"config": {"seed": 1}})


def test_save_then_restore_into_fresh_objects_gives_the_same_states(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    model, opt, sched = _objects(0)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched.step()
    seed_everything(3)
    _ckpt(path, model, opt, sched).save(step=7, epoch=1, epoch_stats=None)
    draws = (random.random(), torch.rand(2))
    ck = load_checkpoint(path)
    assert sorted(ck) == ["config", "ema", "epoch", "epoch_stats", "model", "optimizer", "rng", "scheduler",
                          "step", "steps_per_epoch", "world_size"]
    assert ck["ema"] is None and (ck["steps_per_epoch"], ck["world_size"], ck["step"]) == (5, 1, 7)

    fresh = _objects(1)
    seed_everything(99)
    got = _ckpt(path, *fresh).restore(("step",))
    assert got["step"] == 7
    new_model, new_opt, new_sched = fresh
    assert all(torch.equal(v, new_model.state_dict()[k]) for k, v in model.state_dict().items())
    assert torch.equal(opt.state_dict()["state"][0]["momentum_buffer"],
                       new_opt.state_dict()["state"][0]["momentum_buffer"])
    assert opt.state_dict()["param_groups"] == new_opt.state_dict()["param_groups"]
    assert sched.state_dict() == new_sched.state_dict()
    assert random.random() == draws[0] and torch.equal(torch.rand(2), draws[1])


def test_the_restored_rng_draws_as_the_saved_one(tmp_path):
    path = tmp_path / "last.pt"
    seed_everything(5)
    _ckpt(path, *_objects(0)).save(step=0)
    expected = torch.rand(3)
    seed_everything(6)
    _ckpt(path, *_objects(0)).restore()
    assert torch.equal(torch.rand(3), expected)


def test_each_rank_restores_its_own_rng_states_and_an_older_checkpoint_gives_rank_0s(tmp_path):
    path = tmp_path / "last.pt"
    states = []
    for seed in (5, 6):
        seed_everything(seed)
        states.append(get_rng_state())
    _ckpt(path, *_objects(0), world_size=2).save(step=0)
    ck = load_checkpoint(path)
    assert "rng_ranks" not in ck  # one process: its states are the 'rng' entry alone

    def restored_draw(rank):
        seed_everything(99)
        _ckpt(path, *_objects(0), rank=rank, world_size=2).restore()
        return torch.rand(3)

    def draw_of(seed):
        seed_everything(seed)
        return torch.rand(3)

    save_atomic({**ck, "rng": states[0], "rng_ranks": states}, path)
    assert torch.equal(restored_draw(0), draw_of(5)) and torch.equal(restored_draw(1), draw_of(6))
    save_atomic({**ck, "rng": states[0]}, path)  # saved before each rank's were: rank 0's for every rank
    assert torch.equal(restored_draw(1), draw_of(5))


def test_seed_rank_gives_ranks_streams_of_their_own_and_leaves_rank_0_alone():
    def draws(rank):
        seed_everything(7)
        seed_rank(7, rank)
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(7)
    seeds_own = random.random(), float(np.random.rand()), float(torch.rand(1))
    assert draws(0) == seeds_own  # rank 0: the seed's own streams, as without torchrun
    assert draws(1) == draws(1)  # reproducible for (seed, rank)
    firsts = [draws(r) for r in (0, 1, 2)]
    assert all(len({f[i] for f in firsts}) == 3 for i in range(3))  # each generator differs on each rank


def test_nothing_to_restore_yet_and_only_the_main_process_writes(tmp_path):
    path = tmp_path / "last.pt"
    assert _ckpt(path, *_objects(0)).restore() is None
    _ckpt(path, *_objects(0), rank=1).save(step=1)
    assert not path.exists()


def test_a_missing_entry_is_the_same_user_error_as_before(tmp_path):
    path = tmp_path / "last.pt"
    _ckpt(path, *_objects(0)).save(step=1)
    ck = load_checkpoint(path)
    del ck["optimizer"], ck["rng"]
    save_atomic(ck, path)
    # the caller's order first, then the holders and 'rng' it did not name
    with pytest.raises(UserError) as e:
        _ckpt(path, *_objects(0)).restore(("step", "rng"))
    assert str(e.value) == (f"{path}: no 'rng', 'optimizer' entry (not a checkpoint this kind of run "
                            f"writes); choose another --out")
    with pytest.raises(UserError, match=r"no 'optimizer', 'rng' entry"):
        _ckpt(path, *_objects(0)).restore(("step",))


def test_another_batch_layout_or_network_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    _ckpt(path, *_objects(0)).save(step=1)
    with pytest.raises(UserError, match="saved with 5 steps per epoch, now 6"):
        _ckpt(path, *_objects(0), spe=6).restore()
    _, opt, sched = _objects(0)
    with pytest.raises(UserError, match="does not fit this run: it holds another network's weights"):
        _ckpt(path, torch.nn.Linear(4, 2), opt, sched).restore()


def test_data_entries_are_compared_on_restore_and_skipped_when_an_old_checkpoint_lacks_them(tmp_path):
    path = tmp_path / "last.pt"

    def ckpt(**data):
        return RunCheckpoint(path, torch.nn.Linear(3, 2), {}, device="cpu", steps_per_epoch=5, world_size=1,
                             rank=0, fixed={"config": {"seed": 1}, **data})

    ckpt(classes=["a", "b"], input_shape=[1, 8, 8]).save(step=1)
    assert ckpt(classes=["a", "b"], input_shape=[1, 8, 8]).restore()["step"] == 1
    with pytest.raises(UserError, match=r"input_shape \[1, 8, 8\], the data now has \[1, 8, 9\]"):
        ckpt(classes=["a", "b"], input_shape=[1, 8, 9]).restore()
    assert ckpt(classes=["a", "b"], split_sizes={"train": 3}).restore()["step"] == 1  # saved without sizes
    ckpt(config={"seed": 2}).restore()  # config is checked by the run folder, not here


def test_other_band_statistics_are_refused_on_restore_and_named_not_printed(tmp_path):
    """A cache rebuilt with the same sizes changes only the statistics; 80 numbers would flood the line."""
    path = tmp_path / "last.pt"

    def ckpt(mean):
        stats = {"mean": [mean] * 40, "inv_std": [0.1] * 40}
        return RunCheckpoint(path, torch.nn.Linear(3, 2), {}, device="cpu", steps_per_epoch=5, world_size=1,
                             rank=0, fixed={"split_sizes": {"train": 3}, "band_statistics": stats})

    ckpt(-30.0).save(step=1)
    assert ckpt(-30.0).restore()["step"] == 1
    with pytest.raises(UserError) as e:
        ckpt(-31.0).restore()
    assert str(e.value) == (f"{path}: the run started on data with other band statistics (the dataset "
                            f"changed); restore it or choose another --out")


def test_data_entries_record_the_band_statistics_of_a_standardising_frontend_only():
    from types import SimpleNamespace

    from audionas.features.normalize import BandStandardize

    band = BandStandardize(torch.tensor([-30.0, -20.0]), torch.tensor([4.0, 8.0]))
    bundle = SimpleNamespace(train=[0] * 5, val=None, classes=["a"], input_shape=(1, 2, 3), frontend=band)
    assert data_entries(bundle) == {"classes": ["a"], "input_shape": [1, 2, 3], "split_sizes": {"train": 5},
                                    "band_statistics": {"mean": [-30.0, -20.0], "inv_std": [0.25, 0.125]}}
    bundle.frontend = torch.nn.Identity()  # features computed from waveforms: nothing to record
    assert "band_statistics" not in data_entries(bundle)
    assert "band_statistics" in DATA_ENTRIES  # compared on restore


class _Clips(list):
    """A split of clips with keys: (path, label) items, as a folder dataset holds them."""

    @property
    def items(self):
        return list(self)


def test_data_entries_record_the_split_fingerprint_of_keyed_clips():
    from types import SimpleNamespace

    bundle = SimpleNamespace(train=_Clips([("a/1.wav", 0), ("b/2.wav", 1)]), val=_Clips([("a/3.wav", 0)]),
                             classes=["a", "b"], input_shape=(1, 4, 5), frontend=torch.nn.Identity())
    entries = data_entries(bundle)
    assert entries["split_fingerprint"] == split_fingerprint(bundle)
    assert set(entries["split_fingerprint"]) == {"train", "val"}
    assert entries["split_sizes"] == {"train": 2, "val": 1}
    assert "split_fingerprint" in DATA_ENTRIES  # compared on restore
