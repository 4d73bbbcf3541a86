"""Helpers shared by the DCASE2018 loader and feature-cache tests (their fixtures: tests/data/conftest.py)."""

from __future__ import annotations

from fixture_names import SHORT_DCASE

from audionas.data import DataConfig
from audionas.data.dcase_cache import prepare_cache

SHORT = SHORT_DCASE


def _prep(root, out, **kw):
    kw.setdefault("feature", SHORT)
    kw.setdefault("seconds", 0.5)
    kw.setdefault("progress", False)
    return prepare_cache(root, out, **kw)


def _cfg(cache, **kw) -> DataConfig:
    return DataConfig(**{"kind": "dcase2018", "root": str(cache), "feature": SHORT, "augment": False, **kw})
