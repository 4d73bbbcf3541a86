"""When progress bars show (audionas.utils.progress)."""

import pytest

from audionas.utils.progress import progress_off


@pytest.mark.parametrize(("env", "off"), [(None, False), ("", False), ("0", False), ("false", False),
                                          ("1", True), ("True", True), ("yes", True)])
def test_tqdm_disable_hides_every_bar_and_the_callers_reason_still_does(monkeypatch, env, off):
    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    assert progress_off() is off
    assert progress_off(True) is True
