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
