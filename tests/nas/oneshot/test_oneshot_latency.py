"""The latency lookup table of a search space (latency.py)."""

import json

import pytest
import torch
from oneshot_helpers import TINY_SPACE

from audionas.errors import UserError
from audionas.nas.oneshot import latency
from audionas.nas.oneshot.space import space_from_dict


def test_the_table_times_each_choice_block_and_the_stem_and_head_once(monkeypatch):
    # Each call of measure_latency is recorded with its module and input shape: the stem on the input, the
    # head on the last block's output, every choice of a layer on that layer's input; one thread each.
    space = space_from_dict(TINY_SPACE)
    calls = []

    def fake(module, shape, repeats, warmup, num_threads=None):
        calls.append((type(module).__name__, tuple(shape), num_threads))
        return float(len(calls))

    monkeypatch.setattr(latency, "measure_latency", fake)
    rng = torch.get_rng_state()
    table = latency.measure_table(space)
    assert torch.equal(torch.get_rng_state(), rng)  # building the modules left the caller's RNG alone
    names = [c[0] for c in calls]
    assert names == ["Sequential", "GRUHead"] + ["InvertedResidual"] * sum(space.n_choices)
    assert calls[0][1] == (1, 8, 12) and calls[1][1] == (8, 4, 6)  # (freq, time) after the time_axis swap
    assert [c[1] for c in calls[2:2 + space.n_choices[0]]] == [(4, 8, 12)] * space.n_choices[0]
    assert {c[2] for c in calls} == {1}
    assert table["fixed"] == 3.0 and table["blocks"][0][0] == 3.0 and table["blocks"][-1][-1] == len(calls)
    genes = [n - 1 for n in space.n_choices]
    assert latency.chromosome_latency(table, genes) == 3.0 + sum(r[-1] for r in table["blocks"])
    lo, hi = latency.latency_range(table)
    assert lo == 3.0 + sum(min(r) for r in table["blocks"]) and hi == latency.chromosome_latency(table, genes)


def test_the_latency_range_sums_each_layers_fastest_and_slowest_choice():
    table = {"fixed": 1.0, "blocks": [[3.0, 1.0, 2.0], [5.0, 4.0]]}  # neither extreme at choice 0 alone
    assert latency.latency_range(table) == (6.0, 9.0)


def test_the_table_is_measured_once_into_the_run_and_checked_against_the_space(tmp_path, monkeypatch):
    space = space_from_dict(TINY_SPACE)
    table = latency.measure_table(space, repeats=2, warmup=0)
    monkeypatch.setattr(latency, "measure_table", lambda s: table)
    assert latency.latency_table(tmp_path, space) == json.loads(json.dumps(table))
    monkeypatch.setattr(latency, "measure_table", lambda s: pytest.fail("measured again"))
    assert latency.latency_table(tmp_path, space)["blocks"] == table["blocks"]  # read back, not remeasured
    other = space_from_dict({**TINY_SPACE, "name": "other"})
    with pytest.raises(UserError, match=r"latency_cpu.json: not the latency table of space 'other'"):
        latency.latency_table(tmp_path, other)
    bad = {**table, "fixed": -1.0}
    (tmp_path / latency.LATENCY_FILE).write_text(json.dumps(bad))
    with pytest.raises(UserError, match="delete it to measure again"):
        latency.latency_table(tmp_path, space)


def test_two_searches_measuring_at_once_share_the_table_written_first(tmp_path, monkeypatch):
    # Before, each wrote its own table over the other's, and one search then failed its resume.
    space = space_from_dict(TINY_SPACE)
    mine = latency.measure_table(space, repeats=1, warmup=0)
    theirs = {**mine, "fixed": mine["fixed"] + 1.0}

    def other_search_first(s):
        (tmp_path / latency.LATENCY_FILE).write_text(json.dumps(theirs))
        return mine

    monkeypatch.setattr(latency, "measure_table", other_search_first)
    assert latency.latency_table(tmp_path, space)["fixed"] == theirs["fixed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [latency.LATENCY_FILE]  # no temporary file left


def test_measuring_tunes_the_allocator_as_the_cli_does(monkeypatch):
    # Untuned, glibc maps a block's activations afresh on every pass: 1.2 instead of 0.36 ms for one block.
    called = []
    monkeypatch.setattr(latency, "tune_allocator", lambda: called.append(True) or True)
    latency.measure_table(space_from_dict(TINY_SPACE), repeats=1, warmup=0)
    assert called == [True]


def test_measuring_on_a_gpu_machine_leaves_the_gpus_alone(monkeypatch):
    """The table is a CPU measurement: forking every GPU's RNG would open a context on each (or fail)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(latency, "measure_latency", lambda *a, **k: 1.0)
    assert latency.measure_table(space_from_dict(TINY_SPACE))["fixed"] == 2.0
