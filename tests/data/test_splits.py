import hashlib
import re

import numpy as np
import pytest

from audionas.data.splits import group_ratio_split, ratio_split, search_split, which_set


def _tf_reference(name, val=10, test=10):
    base = re.sub(r"_nohash_.*$", "", name)
    pct = (int(hashlib.sha1(base.encode()).hexdigest(), 16) % (2**27)) * (100.0 / (2**27 - 1))
    return "validation" if pct < val else "testing" if pct < val + test else "training"


def test_which_set_follows_the_tf_rule_and_keeps_speakers_together():
    # upper-case ids too (a folder of the user's own): TF hashes the name as written
    names = [f"{i:08{x}}_nohash_{j}.wav" for i in range(0, 4000, 7) for x in "xX" for j in range(2)]
    got = [which_set(f"yes/{n}") for n in names]
    assert got == [_tf_reference(n) for n in names]
    assert got[0::2] == got[1::2]
    share = np.mean([g == "validation" for g in got])
    assert 0.05 < share < 0.15


# Lines of the official Speech Commands v0.01 testing_list.txt and validation_list.txt (Google's archive), an
# outside check of which_set: the hash rule above is the project's reading of TensorFlow's input_data.py.
OFFICIAL_TESTING = ["cat/2aa787cf_nohash_0.wav", "cat/ffa76c4a_nohash_0.wav", "cat/24ad3ebe_nohash_1.wav",
                    "go/0ea0e2f4_nohash_1.wav", "go/85834399_nohash_0.wav", "go/c7124b73_nohash_0.wav",
                    "four/27c30960_nohash_0.wav", "four/bb31b82b_nohash_1.wav", "four/9ba34294_nohash_0.wav"]
OFFICIAL_VALIDATION = ["cat/8b775397_nohash_0.wav", "cat/2643992f_nohash_1.wav", "cat/060cd039_nohash_2.wav",
                       "go/6a27a9bf_nohash_0.wav", "go/989a2213_nohash_0.wav", "four/605ed0ff_nohash_0.wav",
                       "four/57cb3575_nohash_0.wav", "four/e14a99a5_nohash_1.wav"]


def test_which_set_puts_official_list_lines_in_their_lists():
    assert [which_set(n) for n in OFFICIAL_TESTING] == ["testing"] * len(OFFICIAL_TESTING)
    assert [which_set(n) for n in OFFICIAL_VALIDATION] == ["validation"] * len(OFFICIAL_VALIDATION)


def test_ratio_split_is_per_class_deterministic_and_grouped():
    labels = np.repeat([0, 1, 2], 100)
    groups = [f"s{i // 2}" for i in range(300)]
    a = ratio_split(labels, [0.4, 0.4, 0.2], seed=1, groups=groups)
    b = ratio_split(labels, [0.4, 0.4, 0.2], seed=1, groups=groups)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(300))
    for c in range(3):
        assert abs(np.sum(labels[a[0]] == c) - 40) <= 2
    owner = {}
    for s, idx in enumerate(a):
        for i in idx:
            assert owner.setdefault(groups[i], s) == s
    assert not all(np.array_equal(x, y) for x, y in zip(a, ratio_split(labels, [0.4, 0.4, 0.2], seed=2)))
    # the seed also orders the groups: another seed, other speakers in each split
    other = ratio_split(labels, [0.4, 0.4, 0.2], seed=2, groups=groups)
    assert not all(np.array_equal(x, y) for x, y in zip(a, other))


def test_ratio_split_keeps_its_splits_for_a_seed_and_a_clip_its_own_group_is_a_clip():
    # The grouping was rewritten (QA: a mask per group was quadratic when each clip is its own group, as in
    # a folder without _nohash_ names): the splits of a seed are those the first version drew.
    labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    groups = ["a", "b", "a", "c", "d", "a", "b", "b", "c", "e", "f", "x", "y", "z"]
    got = ratio_split(labels, [0.4, 0.4, 0.2], seed=3, groups=groups)
    assert [x.tolist() for x in got] == [[3, 4, 5, 9, 12], [1, 6, 7, 8, 11], [0, 2, 10, 13]]
    clips = ratio_split(labels, [0.4, 0.4, 0.2], seed=3)
    assert [x.tolist() for x in clips] == [[2, 4, 8, 10, 12], [1, 3, 5, 6, 7, 11], [0, 9, 13]]
    alone = ratio_split(labels, [0.4, 0.4, 0.2], seed=3, groups=[f"clip{i:02d}" for i in range(len(labels))])
    assert all(np.array_equal(x, y) for x, y in zip(alone, clips))


def test_ratio_split_rejects_bad_ratios():
    with pytest.raises(ValueError):
        ratio_split([0, 1], [0.5, 0.6], seed=0)


def test_bad_ratios_are_named_as_plain_numbers():
    with pytest.raises(ValueError, match=r"got \[0\.5, 0\.6, 0\.1\]$"):
        ratio_split([0, 1, 0, 1], [0.5, 0.6, 0.1], seed=0)


def test_group_ratio_split_keeps_each_group_in_one_split_and_is_seeded():
    rng = np.random.default_rng(0)
    groups = [f"s{g}" for g in rng.integers(0, 200, size=2000)]  # 200 speakers with uneven clip counts
    a = group_ratio_split(groups, [0.4, 0.4, 0.2], seed=1)
    assert sorted(np.concatenate(a).tolist()) == list(range(2000))
    owner = {}
    for s, idx in enumerate(a):
        for i in idx:
            assert owner.setdefault(groups[i], s) == s  # speaker-disjoint across the three splits
    shares = [len(x) / 2000 for x in a]
    assert np.allclose(shares, [0.4, 0.4, 0.2], atol=0.02)
    same, other = (group_ratio_split(groups, [0.4, 0.4, 0.2], seed=s) for s in (1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a, same))
    assert not all(np.array_equal(x, y) for x, y in zip(a, other))
    with pytest.raises(ValueError):
        group_ratio_split(groups, [0.5, 0.6, 0.1], seed=0)


def test_ratio_split_rounds_each_cumulative_share():
    # 7 items per class at 0.4/0.4/0.2: cumulative 2.8, 5.6, 7 -> bounds 3, 6, 7 -> 3, 3, 1 items
    labels = np.repeat([0, 1], 7)
    parts = ratio_split(labels, [0.4, 0.4, 0.2], seed=0)
    assert [np.bincount(labels[p], minlength=2).tolist() for p in parts] == [[3, 3], [3, 3], [1, 1]]


def test_group_ratio_split_assigns_a_group_by_its_middle_clip():
    # a 4-clip and an 8-clip group at 50/50 (bound at 6 clips): taken a then b, b starts at clip 4 but its
    # middle (8) is past the bound, so it goes to the second split; by its first clip both would go first
    groups = ["a"] * 4 + ["b"] * 8
    for seed in range(6):
        parts = group_ratio_split(groups, [0.5, 0.5], seed=seed)
        assert sorted(len({groups[i] for i in p}) for p in parts) == [1, 1], seed


def test_a_group_whose_middle_lies_on_a_bound_goes_to_the_later_split():
    # shares are half-open, [lo, hi): at 25/75 over 4 clips the bound is 1, where the first 2-clip group's
    # middle lies, whichever group the seed takes first
    for seed in range(4):
        parts = group_ratio_split(["a", "a", "b", "b"], [0.25, 0.75], seed=seed)
        assert [len(p) for p in parts] == [0, 4], seed


def test_which_set_hashes_a_name_that_is_not_utf8_by_its_bytes():
    # Before (data QA): UnicodeEncodeError on a Latin-1 file name (Python reads it surrogate-escaped).
    def rule(name: bytes) -> str:
        pct = int(hashlib.sha1(name).hexdigest(), 16) % 2**27 * (100.0 / (2**27 - 1))
        return "validation" if pct < 10 else "testing" if pct < 20 else "training"

    names = [f"spk{i}" for i in range(40)]
    latin1 = [which_set(f"bed/{n}\udce9_nohash_3.wav") for n in names]
    assert latin1 == [rule(n.encode() + b"\xe9") for n in names]
    utf8 = [which_set(f"bed/{n}\u00e9_nohash_3.wav") for n in names]
    assert utf8 == [rule(f"{n}\u00e9".encode()) for n in names]
    assert len({which_set(f"bed/{n}\udce9_nohash_3.wav") for n in names}) == 3


def test_search_split_single_session_class_is_split_by_segment():
    labels = [0] * 10 + [1] * 4
    groups = ["a"] * 10 + ["b", "b", "c", "d"]
    tr, va = search_split(labels, groups, seed=0)
    assert np.sum(np.asarray(labels)[tr] == 0) == 7 and np.sum(np.asarray(labels)[va] == 0) == 3


def test_search_split_keeps_a_session_on_each_side_of_every_class():
    # a 5-segment and a 1-segment session: 70% of 6 is 4.2, and taking both (6) is closer than the 1-segment
    # one alone (1), but the validation part must keep a session of every class
    labels = [0] * 6 + [1] * 6
    groups = ["a"] * 5 + ["b"] + ["c"] * 5 + ["d"]
    lab = np.asarray(labels)
    for seed in range(8):
        tr, va = search_split(labels, groups, seed)
        assert sorted(tr.tolist() + va.tolist()) == list(range(12))
        for c in (0, 1):
            assert np.sum(lab[tr] == c) >= 1 and np.sum(lab[va] == c) >= 1, (seed, c)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 10, 13])
def test_search_split_single_session_class_takes_the_rounded_70_percent(n):
    # one session of n segments: round(0.7 n) to training, at least one on each side (by hand: 2 -> 1,
    # 3 -> 2, 4 -> 3, 5 -> 4 (3.5 rounds to even 4), 6 -> 4, 10 -> 7, 13 -> 9)
    want = {2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 10: 7, 13: 9}[n]
    labels = [0] * n + [1] * 4
    groups = ["a"] * n + ["b", "c", "d", "e"]
    for seed in range(3):
        tr, va = search_split(labels, groups, seed)
        assert int(np.sum(tr < n)) == want and int(np.sum(va < n)) == n - want
