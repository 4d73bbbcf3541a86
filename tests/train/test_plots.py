import numpy as np
import pytest

from audionas.errors import UserError
from audionas.train.plots import save_confusion_png


def test_confusion_png(tmp_path):
    cm = np.array([[3, 1, 0], [0, 3, 1], [1, 3, 4]])
    path = save_confusion_png(cm, ["absence", "cooking", "other"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError, match="confusion matrix \\(3, 3\\) does not match 2 classes"):
        save_confusion_png(cm, ["absence", "cooking"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_class_names_the_font_cannot_draw_give_one_warning(tmp_path):
    # Before: one matplotlib line per missing character (a QA run's CJK class folders: dozens of lines).
    import warnings

    cm = np.array([[3, 1], [0, 4]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_confusion_png(cm, ["dog \ue000\ue001", "siren \ue002"], tmp_path / "cm.png")  # private use
    said = [str(w.message) for w in caught]
    assert said == [f"{tmp_path / 'cm.png'}: the plot's font has no glyph for 3 character(s) of the class "
                    f"names; they are drawn as boxes"]
    assert (tmp_path / "cm.png").stat().st_size > 0


def test_a_confusion_png_of_many_classes_stays_a_bounded_image(tmp_path, monkeypatch):
    # Before (QA): 200 classes drew an 11,200 x 11,200 px PNG with a number in each of its 40,000 cells
    # (4.8 GB of memory, 94 s); 400 classes would have run out of memory.
    from matplotlib.axes import Axes
    from PIL import Image

    from audionas.train import plots

    numbered = []
    text = Axes.text
    monkeypatch.setattr(Axes, "text", lambda self, *a, **kw: numbered.append(a[2]) or text(self, *a, **kw))
    sides = {}
    for k in (3, 40, 41, 200):
        numbered.clear()
        cm = np.random.default_rng(k).integers(0, 9, (k, k))
        path = save_confusion_png(cm, [f"class{i}" for i in range(k)], tmp_path / f"cm{k}.png")
        with Image.open(path) as im:
            sides[k] = im.size
        assert len(numbered) == (k * k if k <= plots.NUMBERED_CLASSES else 0)
    assert sides[3][0] < sides[40][0] <= 100 * plots.MAX_INCHES
    assert sides[200] == sides[41] and max(sides[200]) <= 100 * plots.MAX_INCHES
