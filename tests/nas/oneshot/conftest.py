"""Fixtures of the one-shot tests."""

import pytest
from oneshot_helpers import TINY_SPACE

from audionas.nas.oneshot.space import space_from_dict


@pytest.fixture
def tiny_space():
    return space_from_dict(TINY_SPACE)
