import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from audionas.utils.figures import save_figure  # noqa: E402


def test_the_same_figure_gives_the_same_bytes(tmp_path):
    # Before (QA): two identical searches wrote SVGs that differed in their date and random element ids.
    written = []
    for k in range(2):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, 0, 2], label="front")
        ax.legend()
        written.append([save_figure(fig, tmp_path / f"{k}.{ext}", dpi=50) for ext in ("svg", "png")])
        plt.close(fig)
    assert written[0][0].read_text().startswith("<?xml")
    assert [p.read_bytes() for p in written[0]] == [p.read_bytes() for p in written[1]]
    assert not list(tmp_path.glob(".*.tmp"))
