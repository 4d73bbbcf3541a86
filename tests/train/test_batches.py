"""The per-epoch batch order: a seeded permutation, sharded by rank, capped by max_steps."""

from audionas.train.batches import epoch_batches, steps_in_epoch


def test_sampler_is_a_seeded_partition():
    n, bs = 23, 4
    one = epoch_batches(n, bs, seed=5, epoch=2)
    assert one == epoch_batches(n, bs, seed=5, epoch=2)
    assert one != epoch_batches(n, bs, seed=5, epoch=3)
    assert len(one) == steps_in_epoch(n, bs) == 5 and all(len(b) == bs for b in one)
    r0 = epoch_batches(n, bs, 5, 2, rank=0, world=2)
    r1 = epoch_batches(n, bs, 5, 2, rank=1, world=2)
    assert len(r0) == len(r1) == steps_in_epoch(n, bs, world=2) == 3
    flat0, flat1 = sum(r0, []), sum(r1, [])
    assert not set(flat0) & set(flat1) - {flat0[0]}  # disjoint shards (one wrapped index may repeat)
    assert epoch_batches(n, bs, 5, 2, max_steps=2) == one[:2]
