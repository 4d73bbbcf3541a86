"""Per-band statistics and standardisation of cached log-mels, against numpy."""

import numpy as np
import pytest
import torch

from audionas.errors import UserError
from audionas.features.normalize import BandStandardize, band_statistics


class Items:
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), 0


def test_band_statistics_are_numpys_over_every_channel_and_frame():
    rng = np.random.default_rng(0)
    # 2 channels, 3 bands with their own offsets and scales, 7 frames
    scale, offset = np.array([2.0, 0.5, 1.0])[:, None], np.array([-30.0, 4.0, 0.0])[:, None]
    x = (rng.normal(size=(5, 2, 3, 7)) * scale + offset).astype(np.float32)
    mean, std = band_statistics(Items(x))
    per_band = x.transpose(2, 0, 1, 3).reshape(3, -1)
    np.testing.assert_allclose(mean.numpy(), per_band.mean(1), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), per_band.std(1), rtol=1e-4)  # population std (ddof 0)


def test_band_statistics_use_evenly_spaced_items_first_and_last_included():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((1, 1, 2, 4), np.float32)
    mean, _ = band_statistics(Items(x), max_items=3)  # items 0, 4.5 -> 4 (round half to even), 9
    np.testing.assert_allclose(mean.numpy(), [13 / 3, 13 / 3])
    mean, _ = band_statistics(Items(x), max_items=100)  # all of them
    np.testing.assert_allclose(mean.numpy(), [4.5, 4.5])


def test_band_standardize_gives_zero_mean_unit_std_and_stays_finite_on_a_constant_band():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 1, 3, 50)).astype(np.float32) * 3 + 7
    x[:, :, 2] = -40.0  # a silent band: std 0
    mean, std = band_statistics(Items(x))
    out = BandStandardize(mean, std)(torch.from_numpy(x)).numpy()
    per_band = out.transpose(2, 0, 1, 3).reshape(3, -1)
    np.testing.assert_allclose(per_band[:2].mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(per_band[:2].std(1), 1, rtol=1e-4)
    assert np.isfinite(out).all() and np.abs(per_band[2]).max() < 1e-2


def test_a_constant_band_whose_float64_variance_rounds_below_zero_gets_std_0_not_nan():
    # E[x^2] - E[x]^2 of 501 frames at -79.955 comes out at -9.1e-13 (checked below): sqrt would give NaN
    v = np.float32(-79.955)
    n = 501
    x = np.full((1, 1, 2, n), v, np.float32)
    x[0, 0, 1] = np.linspace(-1, 1, n)
    t = torch.from_numpy(x[0, 0, 0]).double()
    assert float((t * t).sum() / n - (t.sum() / n) ** 2) < 0  # the rounding this test is about
    mean, std = band_statistics(Items(x))
    assert std[0].item() == 0.0 and np.isfinite(std.numpy()).all()
    out = BandStandardize(mean, std)(torch.from_numpy(x))
    assert torch.isfinite(out).all()


def test_a_quiet_band_with_a_small_but_real_spread_is_scaled_to_unit_std():
    # std 0.01 is far above the 1e-5 guard for constant bands: it must be divided out, not clamped
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(4, 1, 2, 64)) * np.array([1.0, 0.01])[:, None] - 20).astype(np.float32)
    mean, std = band_statistics(Items(x))
    out = BandStandardize(mean, std)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out.transpose(2, 0, 1, 3).reshape(2, -1).std(1), [1, 1], rtol=1e-3)


def test_band_statistics_round_the_evenly_spaced_positions_to_the_nearest_item():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((1, 1, 1, 2), np.float32)
    # linspace(0, 9, 7) = 0, 1.5, 3, 4.5, 6, 7.5, 9 -> items 0, 2, 3, 4, 6, 8, 9 (half to even)
    mean, _ = band_statistics(Items(x), max_items=7)
    np.testing.assert_allclose(mean.numpy(), [32 / 7], rtol=1e-6)


def test_recorded_statistics_rebuild_the_same_standardisation_exactly():
    """A checkpoint keeps statistics() as lists; from_statistics must give back the same buffers, bit for bit
    (rebuilding std as 1 / inv_std could round)."""
    rng = np.random.default_rng(3)
    mean, std = rng.normal(-30, 5, 7), rng.uniform(0.3, 9, 7)
    module = BandStandardize(torch.from_numpy(mean), torch.from_numpy(std))
    entry = module.statistics()
    assert set(entry) == {"mean", "inv_std"} and all(isinstance(v, float) for v in entry["inv_std"])
    again = BandStandardize.from_statistics(entry, 7, "ck.pt")
    assert torch.equal(again.mean, module.mean) and torch.equal(again.inv_std, module.inv_std)
    x = torch.from_numpy(rng.normal(-30, 8, (2, 1, 7, 5)).astype(np.float32))
    assert torch.equal(again(x), module(x))


def test_malformed_recorded_statistics_are_a_user_error_naming_the_checkpoint():
    """Too few or too many numbers (too many would end in a reshape traceback), NaN, strings: one message."""
    good = BandStandardize(torch.zeros(3), torch.ones(3)).statistics()
    bad = [None, [1, 2], {"mean": good["mean"]}, {**good, "mean": [0.0, 0.0]}, {**good, "inv_std": [1.0] * 4},
           {**good, "inv_std": [1.0, float("nan"), 1.0]}, {**good, "mean": ["0", 0.0, 0.0]}]
    for entry in bad:
        with pytest.raises(UserError, match=r"^ck.pt: field 'band_statistics': expected 'mean' and "
                                            r"'inv_std', 3 finite numbers each \(one per band\)$"):
            BandStandardize.from_statistics(entry, 3, "ck.pt")
