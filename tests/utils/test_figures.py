import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from audionas.utils.figures import save_figures  # noqa: E402


def test_the_same_figure_gives_the_same_bytes(tmp_path):
    # Before (QA): two identical searches wrote SVGs that differed in their date and random element ids.
    written = []
    for k in range(2):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, 0, 2], label="front")
        ax.legend()
        written.append(save_figures(fig, {tmp_path / f"{k}.{ext}": 50 for ext in ("svg", "png")}))
        plt.close(fig)
    assert written[0][0].read_text().startswith("<?xml")
    assert [p.read_bytes() for p in written[0]] == [p.read_bytes() for p in written[1]]
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_packages_figures_leave_the_callers_backend_alone(tmp_path):
    # Before (API QA): a confusion PNG, a cell drawing or Figure 4 switched a notebook's backend to Agg.
    import numpy as np

    from audionas.nas.darts.genotype import GENOTYPES
    from audionas.nas.darts.plot import plot_genotype
    from audionas.train.plots import save_confusion_png

    matplotlib.use("svg")
    try:
        save_confusion_png(np.eye(2, dtype=int), ["a", "b"], tmp_path / "cm.png")
        plot_genotype(GENOTYPES["DARTS_V2"], tmp_path)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use("Agg")
    assert (tmp_path / "cm.png").is_file() and (tmp_path / "cell_normal.svg").is_file()
