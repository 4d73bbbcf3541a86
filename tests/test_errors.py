import sys
import textwrap
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from audionas.errors import ReadWarning, UserError, warn


class _BadClip(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise UserError("clips/2.wav: 2 sample(s) are NaN or infinite (expected finite audio)")
        return torch.zeros(3)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_user_error_in_a_dataloader_worker_keeps_its_one_line(workers):
    with pytest.raises(UserError) as e:
        list(DataLoader(_BadClip(), batch_size=2, num_workers=workers))
    assert str(e.value) == "clips/2.wav: 2 sample(s) are NaN or infinite (expected finite audio)"


def test_warn_names_the_first_line_outside_audionas_and_contextlib(tmp_path, monkeypatch):
    # a module inside the package (as audionas's own code is) that warns from under a contextmanager
    import audionas

    inner = tmp_path / "audionas_inner.py"
    inner.write_text(textwrap.dedent("""\
        import contextlib

        from audionas.errors import ReadWarning, warn


        @contextlib.contextmanager
        def held():
            yield
            warn("at exit", ReadWarning)


        def deep():
            warn("deep")


        def outer():
            deep()
        """))
    monkeypatch.setattr("audionas.errors._PASSED", (str(tmp_path) + "/", *audionas.errors._PASSED))
    monkeypatch.syspath_prepend(str(tmp_path))
    import audionas_inner

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        audionas_inner.outer(); here = sys._getframe().f_lineno  # noqa: E702
        with audionas_inner.held():
            pass
        after = sys._getframe().f_lineno - 2
        warn("direct"); direct = sys._getframe().f_lineno  # noqa: E702
    assert [(str(w.message), w.filename, w.lineno) for w in rec] == [
        ("deep", __file__, here), ("at exit", __file__, after), ("direct", __file__, direct)]
    assert rec[1].category is ReadWarning
