"""Fixtures of the DCASE2018 loader and feature-cache tests (module-scoped: one copy per test module)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dcase_helpers import _prep

from audionas.data.dcase_fixtures import make_dcase2018_fixture


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dcase")
    return make_dcase2018_fixture(root, sessions_per_class=4, segments_per_session=1, seconds=0.5, nodes=2,
                                  with_eval=True, seed=1)


@pytest.fixture(scope="module")
def cache(fixture_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "c"
    _prep(fixture_root, out, chunk_files=4, checkpoint_every=8)
    return out


@pytest.fixture
def small_root(tmp_path) -> Path:
    return make_dcase2018_fixture(tmp_path / "ds", sessions_per_class=4, segments_per_session=1, seconds=0.5,
                                  nodes=1)
