"""Shared pytest fixtures (add new ones additively)."""

from __future__ import annotations

import pytest

from audionas.utils.allocator import tune_allocator

# The test process trains small models, like the CLI: reuse freed memory instead of re-faulting it.
tune_allocator()


@pytest.fixture(scope="session")
def speech_commands_root(tmp_path_factory):
    """A tiny Speech Commands v0.01 dataset (30 words x 5 speakers, tones + noise) in the official layout."""
    from audionas.data.fixtures import make_speech_commands_fixture

    return make_speech_commands_fixture(tmp_path_factory.mktemp("speech_commands"))


SHORT_DCASE = "test-dcase-logmel-0.5s"


@pytest.fixture(scope="session")
def short_dcase_preset():
    """dcase-logmel on 0.5 s clips (40 x 26): the same recipe, 20x cheaper, for fast DCASE tests."""
    import dataclasses

    from audionas.features import FEATURE_PRESETS

    FEATURE_PRESETS[SHORT_DCASE] = dataclasses.replace(FEATURE_PRESETS["dcase-logmel"], name=SHORT_DCASE,
                                                       clip_samples=8000)
    yield SHORT_DCASE
    del FEATURE_PRESETS[SHORT_DCASE]
