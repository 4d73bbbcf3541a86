"""Both search strategies end to end on the ASC paper's data (a DCASE2018 cache) and on a user's own folder.

(Speech Commands is covered by tests/nas/darts and tests/nas/oneshot.)
"""

import json

import pytest

from audionas.cli import main
from audionas.data.fixtures import make_folder_fixture
from audionas.nas.darts.genotype import Genotype

# No list files in the folder: every data build warns that it falls back to the hash split.
pytestmark = pytest.mark.filterwarnings("ignore:.*using the hash split:UserWarning")

CLASSES = ("dog_bark", "alarm", "clap")

TINY_DARTS = ["channels=4", "cells=2", "layout=NR", "epochs=1", "max_steps_per_epoch=2", "data.batch_size=4",
              "data.eval_batch_size=16", "unrolled=false", "threads=1"]

ASC_SPACE = """name: asc-tiny
task: asc
num_classes: 9
input_shape: [1, 40, 26]
model_args: {stem_channels: 4, head_channels: 8, gru_hidden: 8, gru_layers: 1, fc_hidden: 8}
layers:
  - ir_e6_k3t_s2x2_c4
  - ir_e6_k3f_s2x2_c8
"""

TINY_SPACE = """name: own-tiny
task: kws
num_classes: {n}
input_shape: [1, 101, 40]
model_args: {{time_axis: h, stem_channels: 4, head_channels: 8, gru_hidden: 8, gru_layers: 1, fc_hidden: 8}}
layers:
  - ir_e6_k3t_s4x4_c4
  - ir_e6_k3f_s2x2_c8
"""


@pytest.fixture(scope="module")
def own_root(tmp_path_factory):
    return make_folder_fixture(tmp_path_factory.mktemp("own"), classes=CLASSES)


@pytest.mark.slow
def test_darts_search_on_own_folder(own_root, tmp_path):
    out = tmp_path / "darts"
    assert main(["search", "darts", "--preset", "kws-nas2-cpu", "--data", str(own_root), "--out", str(out),
                 *TINY_DARTS, "data.kind=folder"]) == 0
    Genotype.load(out / "genotype.json")
    alphas = json.loads((out / "alphas.json").read_text())
    assert alphas  # the search ran and wrote its architecture weights
    assert "val_acc" in json.loads((out / "epochs.jsonl").read_text().splitlines()[-1])
    # The demo's next step: retrain the found cell at 6 cells. The search's 2-cell layout names no rule for 6
    # (before, the retraining was refused): the default layout, with a warning.
    run = tmp_path / "retrain"
    with pytest.warns(UserWarning, match="the search's layout 'NR' is for 2 cells; the 6 cells retrained"):
        assert main(["train", "--preset", "kws-darts-retrain-cpu", "--data", str(own_root), "--out", str(run),
                     "--genotype", str(out / "genotype.json"), "--channels", "4", "data.kind=folder",
                     "epochs=1", "max_steps_per_epoch=1", "data.batch_size=4",
                     "data.eval_batch_size=16"]) == 0
    saved = (run / "config.yaml").read_text()
    assert "layout" not in saved and "ops: nas2" in saved


@pytest.mark.slow
def test_oneshot_search_and_retrain_on_own_folder(own_root, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(TINY_SPACE.format(n=12))
    run = tmp_path / "supernet"
    args = ["search", "supernet", "--preset", "kws-fairnas-cpu", "--data", str(own_root), "--out", str(run),
            "epochs=1", "data.kind=folder", f"space={space}"]
    assert main(args) == 2  # a 12-class space on 3-class data: the error says what to set
    err = capsys.readouterr().err
    assert "num_classes 12 but the data has 3 classes (add space.num_classes=3)" in err
    assert main([*args, "space.num_classes=3"]) == 0
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "bad"),
                 "--metric", "paper_f1"]) == 2  # keyword clips have no microphone channels
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "nsga"),
                 "--population", "4", "--generations", "1"]) == 0
    assert main(["train", "--preset", "kws-oneshot-retrain-cpu", "--chromosome", f"{tmp_path / 'nsga'}#0",
                 "--data", str(own_root), "--out", str(tmp_path / "rt"), "data.kind=folder", "epochs=1"]) == 0
    test = json.loads((tmp_path / "rt" / "test_metrics.json").read_text())
    assert sorted(test["per_class_f1"]) == sorted(CLASSES)
    # profile the front member before training and the trained run: both equal the search's exact cost
    front = json.loads((tmp_path / "nsga" / "pareto.json").read_text())["front"][0]
    capsys.readouterr()
    for target in (f"{tmp_path / 'nsga'}#0", str(tmp_path / "rt")):
        assert main(["profile", target, "--json", "--repeats", "0"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert (got["params"], got["macs"]) == (front["params"], front["macs"]), target
    assert main(["profile", str(tmp_path / "rt"), "--classes", "12", "--repeats", "0"]) == 2
    assert main(["profile", f"{tmp_path / 'nsga'}#0", "--arch", "[0, 0]", "--repeats", "0"]) == 2
    assert "the architecture is fixed" in capsys.readouterr().err


@pytest.mark.slow
def test_darts_search_on_dcase(dcase_cache, short_dcase_preset, tmp_path, capsys):
    args = ["search", "darts", "--preset", "asc-nas1-cpu", "--data", str(dcase_cache), "--out",
            str(tmp_path / "darts"), *TINY_DARTS, f"data.feature={short_dcase_preset}", "data.augment=false"]
    assert main([*args, "data.search_split=false"]) == 2  # all of the development set trains: no alpha half
    assert "use data.search_split=true" in capsys.readouterr().err
    assert main(args) == 0
    Genotype.load(tmp_path / "darts" / "genotype.json")


@pytest.mark.slow
def test_oneshot_search_on_dcase(dcase_cache, short_dcase_preset, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(ASC_SPACE)
    run = tmp_path / "supernet"
    assert main(["search", "supernet", "--preset", "asc-fairnas", "--data", str(dcase_cache), "--out",
                 str(run), f"space={space}", f"data.feature={short_dcase_preset}", "data.augment=false",
                 "epochs=1", "data.batch_size=8", "data.eval_batch_size=16"]) == 0
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "nsga"),
                 "--population", "4", "--generations", "1"]) == 0
    pareto = json.loads((tmp_path / "nsga" / "pareto.json").read_text())
    assert pareto["task"] == "asc" and pareto["front"] and pareto["metric"] == "paper_f1"
    # --val-limit keeps evenly spaced items, and paper_f1 the microphone channel of each kept item
    assert main(["search", "random", "--supernet", str(run), "--out", str(tmp_path / "lim"), "--evaluations",
                 "2", "--batch", "2", "--val-limit", "10"]) == 0
    meta = json.loads((tmp_path / "lim" / "search.json").read_text())
    assert meta["val_items"] == 10 and meta["metric"] == "paper_f1"


def test_oneshot_search_on_another_cache_uses_the_supernets_band_statistics(
        dcase_root, dcase_cache, short_dcase_preset, tmp_path, capsys, monkeypatch):
    """The supernet records them; a checkpoint from before that is refused on a cache of another size."""
    import audionas.nas.oneshot.search as search
    from audionas.data.dcase_cache import prepare_cache
    from audionas.utils.checkpoint import load_checkpoint, save_atomic

    space = tmp_path / "space.yaml"
    space.write_text(ASC_SPACE)
    run = tmp_path / "supernet"
    assert main(["search", "supernet", "--preset", "asc-fairnas", "--data", str(dcase_cache), "--out",
                 str(run), f"space={space}", f"data.feature={short_dcase_preset}", "data.augment=false",
                 "epochs=1", "max_steps_per_epoch=1", "data.batch_size=8", "data.eval_batch_size=16"]) == 0
    other = tmp_path / "other"  # the same dataset cached with fewer segments: other band statistics
    prepare_cache(dcase_root, other, feature=short_dcase_preset, seconds=0.5, limit=2, progress=False)
    seen, real = [], search.cache_features

    def recording(ds, frontend, *args, **kwargs):
        seen.append(frontend.statistics())
        return real(ds, frontend, *args, **kwargs)

    monkeypatch.setattr(search, "cache_features", recording)
    with pytest.warns(UserWarning, match=f"{other}: its training split holds other clips than the one the "
                                         f"supernet {run} was trained on"):
        assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "ok"), "--data",
                     str(other), "--population", "2", "--generations", "1", "--bn", "recalibrate"]) == 0
    ck = run / "checkpoints" / "last.pt"
    recorded = load_checkpoint(ck)["band_statistics"]
    assert len(seen) == 2 and all(stats == recorded for stats in seen)  # validation, BN calibration
    save_atomic({k: v for k, v in load_checkpoint(ck).items() if k != "band_statistics"}, ck)
    capsys.readouterr()
    assert main(["search", "nsga2", "--supernet", str(run), "--out", str(tmp_path / "nsga"), "--data",
                 str(other), "--population", "2", "--generations", "1"]) == 2
    assert "training split holds" in capsys.readouterr().err and not (tmp_path / "nsga").exists()
