"""`evaluate_runs`: rebuilt model, ensemble of posteriors, ASC scores when items carry segment/channel ids."""

import json
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import audionas.data
from audionas.config import load_config
from audionas.errors import UserError
from audionas.train import metrics as M
from audionas.train.config import TrainConfig
from audionas.train.evaluate import evaluate_runs
from audionas.train.predict import predict
from audionas.train.trained_run import load_model
from audionas.train.trainer import train


def cfg(*extra):
    return load_config(TrainConfig, None, ["model=tiny-test", "epochs=1", "data.batch_size=8", "device=cpu",
                                           "optim.lr=0.05", "data.root=unused", *extra])


def test_ensemble_and_asc_scores(tmp_path, tiny_bundle, monkeypatch):
    train(cfg(), tmp_path / "a", bundle=tiny_bundle())
    train(cfg("seed=1"), tmp_path / "b", bundle=tiny_bundle())
    bundle = tiny_bundle()
    # 12 test items = 3 "segments" x 4 "channels"
    bundle.test.segment_ids = np.repeat([0, 1, 2], 4)
    bundle.test.channel_ids = np.tile([0, 1, 2, 3], 3)
    bundle.test.y = np.repeat(bundle.test.y[:3], 4)  # a segment's channels share the label
    monkeypatch.setattr(audionas.data, "build_data", lambda c, seed=0, **_: bundle)
    rep = evaluate_runs([str(tmp_path / "a"), str(tmp_path / "b")], out=str(tmp_path / "ev"))
    pa, labels, _ = predict(load_model(tmp_path / "a").model, bundle.frontend, bundle.test, "cpu")
    pb, _, _ = predict(load_model(tmp_path / "b").model, bundle.frontend, bundle.test, "cpu")
    probs = (pa + pb) / 2
    assert rep["accuracy"] == pytest.approx(M.accuracy(probs, labels))
    assert rep["paper_f1"] == pytest.approx(M.paper_f1(probs, labels, bundle.test.channel_ids))
    assert rep["official_f1"] == pytest.approx(M.official_f1(probs, labels, bundle.test.segment_ids))
    assert len(rep["members"]) == 2
    table = (tmp_path / "ev" / "classwise_f1_test.csv").read_text().splitlines()
    assert table[0].startswith("Class,") and table[-1].startswith("F1 score,") and len(table) == 5
    assert table[0].split(",")[1:] == ["ensemble (official)", "ensemble (paper)"]
    assert (tmp_path / "ev" / "confusion_test.png").is_file()
    assert (tmp_path / "ev" / "eval_test.json").is_file()


def test_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="no such run"):
        evaluate_runs([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="final.pt"):
        evaluate_runs([str(tmp_path / "empty")])
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "search.json").write_text("{}")
    msg = r"search: a search folder, not a trained run; .*--chromosome .*search/pareto.json#k"
    with pytest.raises(UserError, match=msg):
        evaluate_runs([str(tmp_path / "search")])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="checkpoint"):
        evaluate_runs([str(tmp_path / "junk.pt")])
    for key, hint in (("primitives", "--genotype RUN/genotype.json"), ("sampler", "--chromosome")):
        torch.save({key: [], "model": {}}, tmp_path / f"{key}.pt")
        with pytest.raises(UserError, match=f"a search run, not a trained network; .*{hint}"):
            evaluate_runs([str(tmp_path / f"{key}.pt")])


def test_a_darts_run_keeps_its_genotype_when_the_file_changes(tmp_path, tiny_bundle, monkeypatch):
    """`--genotype FILE` is read into the run's config: the search may rewrite or remove the file later."""
    import yaml

    from audionas.nas.darts.genotype import GENOTYPES
    from audionas.report import run_row

    search = tmp_path / "search"
    search.mkdir()
    gfile = search / "genotype.json"
    gfile.write_text(json.dumps(GENOTYPES["DARTS_V2"].to_dict()))
    monkeypatch.chdir(tmp_path)
    run_cfg = cfg("model=darts", "model_args={genotype: search/genotype.json, cells: 2, channels: 4}")
    bundle = tiny_bundle()
    train(run_cfg, tmp_path / "run", bundle=bundle)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model_args"]["genotype"]
    assert saved == {**GENOTYPES["DARTS_V2"].to_dict(), "source": "search/genotype.json"}
    monkeypatch.setattr(audionas.data, "build_data", lambda c, seed=0, **_: bundle)
    before = evaluate_runs([str(tmp_path / "run")], out=str(tmp_path / "ev1"))
    gfile.write_text(json.dumps(GENOTYPES["DARTS_V1"].to_dict()))  # a resumed search rewrote it...
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # ...and the relative path no longer resolves from here
    after = evaluate_runs([str(tmp_path / "run")], out=str(tmp_path / "ev2"))
    assert after["accuracy"] == before["accuracy"] and after["confusion"] == before["confusion"]
    assert run_row(tmp_path / "run")["model"] == "DARTS (search/genotype)"


def test_a_darts_run_saved_with_a_genotype_path_still_resumes(tmp_path, tiny_bundle, monkeypatch):
    """Runs from before genotypes were stored inline: the same command still finds the same config."""
    import yaml

    from audionas.nas.darts.genotype import GENOTYPES

    (tmp_path / "genotype.json").write_text(json.dumps(GENOTYPES["DARTS_V2"].to_dict()))
    monkeypatch.chdir(tmp_path)
    run_cfg = cfg("model=darts", "model_args={genotype: genotype.json, cells: 2, channels: 4}")
    train(run_cfg, tmp_path / "run", bundle=tiny_bundle())
    config = tmp_path / "run" / "config.yaml"
    old = yaml.safe_load(config.read_text())
    old["model_args"]["genotype"] = "genotype.json"  # as such a run saved it
    config.write_text(yaml.safe_dump(old))
    train(run_cfg, tmp_path / "run", bundle=tiny_bundle())  # the finished run is recognised, not refused
    assert yaml.safe_load(config.read_text())["model_args"]["genotype"]["source"] == "genotype.json"


@pytest.fixture(scope="module")
def fold_runs(short_dcase_preset, tmp_path_factory):
    """Two tiny runs on folds 1 and 2 of a DCASE cache that also holds an evaluation set."""
    from audionas.data.dcase_cache import prepare_cache
    from audionas.data.dcase_fixtures import make_dcase2018_fixture

    tmp = tmp_path_factory.mktemp("folds")
    root = make_dcase2018_fixture(tmp / "fx", sessions_per_class=4, segments_per_session=1, seconds=0.5,
                                  nodes=1, with_eval=True)
    cache = tmp / "cache"
    prepare_cache(root, cache, feature=short_dcase_preset, seconds=0.5, progress=False)
    runs = []
    for k in (1, 2):
        c = cfg("data.kind=dcase2018", f"data.root={cache}", f"data.feature={short_dcase_preset}",
                f"data.fold={k}", "data.augment=false", "data.cutout=false", "data.batch_size=16")
        train(c, tmp / f"fold{k}")
        runs.append(str(tmp / f"fold{k}"))
    train(replace(c, seed=1, data=replace(c.data, fold=1)), tmp / "fold1-seed1")
    return runs, cache, str(tmp / "fold1-seed1")


def test_mixed_rows_added_after_training_are_not_other_clips(fold_runs, short_dcase_preset, tmp_path):
    # Before (QA): `prepare-dcase2018 --augment` after training made evaluate warn that the scored clips may
    # include ones the run learned from, though the new rows are made of its own training segments.
    import shutil

    from audionas.data.dcase_cache import prepare_augmentation

    _, cache, _ = fold_runs
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    c = cfg("data.kind=dcase2018", f"data.root={copy}", f"data.feature={short_dcase_preset}", "data.fold=1",
            "data.augment=true", "data.cutout=false", "data.batch_size=16")
    with pytest.warns(UserWarning, match="no shuffle-and-mix segments"):
        train(c, tmp_path / "run")
    prepare_augmentation(copy, scopes=("fold1",), scale=0.05, progress=False)

    def other_clips(data):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            evaluate_runs([str(tmp_path / "run")], data=str(data), out=str(tmp_path / "ev" / data.name))
        return [str(w.message) for w in record if "other clips" in str(w.message)]

    assert other_clips(copy) == []
    other = _fewer_segments_cache(tmp_path, short_dcase_preset)  # another training split, mixed rows or not
    prepare_augmentation(other, scopes=("fold1",), scale=0.05, progress=False)
    assert len(other_clips(other)) == 1


def test_fold_runs_ensemble_only_on_a_common_set(fold_runs, tmp_path):
    runs, *_ = fold_runs
    # fold 1's test list is training data of the fold-2 run: not an ensemble set
    with pytest.raises(UserError, match="not the same clips.*--split val.*--cross-val"):
        evaluate_runs(runs, split="test", out=str(tmp_path))
    # ... also where a report of other runs would be overwritten: the set is what to fix first (before, the
    # file clash was said, and after --out elsewhere, the set; own-sounds QA)
    (tmp_path / "eval_test.json").write_text(json.dumps({"runs": ["/elsewhere/final.pt"], "data": []}))
    with pytest.raises(UserError, match="not the same clips.*--split val.*--cross-val"):
        evaluate_runs(runs, split="test", out=str(tmp_path))
    (tmp_path / "eval_test.json").unlink()
    rep = evaluate_runs(runs, split="val", out=str(tmp_path))  # the evaluation set, shared
    assert len(rep["members"]) == 2 and "official_f1" in rep


def test_an_ensemble_of_runs_on_other_datasets_is_told_to_name_one_with_data(fold_runs, short_dcase_preset,
                                                                              tmp_path):
    # Before: "(another fold or split) ... use --split val", which the user had given (QA).
    import shutil

    import torch

    from audionas.data.dcase_cache import prepare_cache
    from audionas.data.dcase_fixtures import make_dcase2018_fixture
    from audionas.utils.checkpoint import save_atomic

    runs, cache, _ = fold_runs
    root = make_dcase2018_fixture(tmp_path / "fx", sessions_per_class=4, segments_per_session=1, seconds=0.5,
                                  nodes=1, with_eval=True, seed=7)
    other = tmp_path / "cache"
    prepare_cache(root, other, feature=short_dcase_preset, seconds=0.5, progress=False)
    moved = tmp_path / "fold2"
    shutil.copytree(runs[1], moved)
    ck = torch.load(moved / "final.pt", weights_only=True)
    ck["config"]["data"]["root"] = str(other)  # as a run trained on the other cache records it
    save_atomic(ck, moved / "final.pt")
    said = (f"{moved / 'final.pt'}: its 'val' split is not the same clips as that of {runs[0]}/final.pt: it "
            f"reads {other}, that run {cache}; an ensemble needs one common set: name it with --data")
    with pytest.raises(UserError, match=re.escape(said) + "$"):
        evaluate_runs([runs[0], str(moved)], split="val", out=str(tmp_path / "e"))


def test_each_member_uses_its_own_band_statistics(fold_runs, tmp_path):
    from audionas.data import build_data

    runs, *_ = fold_runs
    rep = evaluate_runs(runs, split="val", out=str(tmp_path))
    models = [load_model(r) for r in runs]
    bundles = [build_data(m.config.data, m.config.seed, training=False) for m in models]
    assert not torch.equal(bundles[0].frontend.mean, bundles[1].frontend.mean)  # different training rows
    ds = bundles[0].val
    own = [predict(m.model, b.frontend, ds, "cpu")[0] for m, b in zip(models, bundles)]
    probs = np.mean(own, axis=0)
    labels = predict(models[0].model, bundles[0].frontend, ds, "cpu")[1]
    assert rep["accuracy"] == pytest.approx(M.accuracy(probs, labels))
    assert rep["members"][1]["macro_f1"] == pytest.approx(M.macro_f1(own[1], labels))


def test_cross_val_averages_each_run_on_its_own_fold(fold_runs, tmp_path):
    runs, *_ = fold_runs
    said = r"^--cross-val over data.fold 1, 2: the DCASE2018 development protocol averages folds 1-4, one run"
    with pytest.warns(UserWarning, match=said):
        rep = evaluate_runs(runs, split="test", out=str(tmp_path), cross_val=True)
    singles = [evaluate_runs([r], split="test", out=str(tmp_path / str(i))) for i, r in enumerate(runs)]
    for key in ("accuracy", "macro_f1", "paper_f1", "official_f1"):
        assert rep[key] == pytest.approx(np.mean([s[key] for s in singles])), key
    assert [f["n"] for f in rep["folds"]] == [s["n"] for s in singles]
    assert rep["n"] == sum(s["n"] for s in singles)
    assert np.array_equal(rep["confusion"], np.sum([s["confusion"] for s in singles], axis=0))
    assert (tmp_path / "eval_test_crossval.json").is_file()
    table = (tmp_path / "classwise_f1_test_crossval.csv").read_text().splitlines()
    assert table[-1].startswith("F1 score,") and f"{100 * rep['official_f1']:.1f}" in table[-1]
    # the class rows (official and paper columns) are the folds' class F1s averaged (each csv rounds to 0.1)
    single = [np.array([r.split(",")[1:] for r in (tmp_path / str(i) / "classwise_f1_test.csv").read_text()
                        .splitlines()[1:-1]], float) for i in range(len(runs))]
    mean = np.array([r.split(",")[1:] for r in table[1:-1]], float)
    assert mean.shape == single[0].shape == (9, 2) and not np.allclose(single[0], single[1], atol=0.2)
    np.testing.assert_allclose(mean, np.mean(single, axis=0), atol=0.1 + 1e-9)


def test_a_run_counts_once_and_warnings_for_a_shared_run_or_split(fold_runs, tmp_path):
    runs, _, fold1_again = fold_runs
    with pytest.raises(UserError, match="given twice"):
        evaluate_runs([runs[0], runs[0] + "/final.pt"], split="val", out=str(tmp_path))
    last = f"{runs[0]}/checkpoints/last.pt"  # before: ensembled with the same run's final.pt without a word
    with pytest.warns(UserWarning, match=r"last.pt: a checkpoint of the same run as .*fold1/final.pt; the "
                                         r"ensemble counts that run twice"):
        evaluate_runs([runs[0], last], split="val", out=str(tmp_path))
    with pytest.warns(UserWarning, match="the cross-validation counts that run twice"):
        evaluate_runs([runs[0], last], split="test", out=str(tmp_path), cross_val=True)
    with pytest.warns(UserWarning, match="same clips as .*fold1"):
        evaluate_runs([runs[0], fold1_again], split="test", out=str(tmp_path / "again"), cross_val=True)


def test_clip_keys_do_not_depend_on_where_the_cache_lies(tmp_path):
    from audionas.data import clip_keys
    from audionas.data.dcase2018 import FeatureRows

    a, b = (FeatureRows([tmp_path / d / "dev" / "features.npy"], [0, 0], [3, 5], [1, 2])
            for d in ("c1", "c2"))
    assert clip_keys(a) == clip_keys(b) == [("dev", 3, 1), ("dev", 5, 2)]


def test_a_run_given_a_relative_data_path_evaluates_from_another_folder(speech_commands_root, tmp_path,
                                                                        monkeypatch):
    import yaml

    from audionas.cli import main

    monkeypatch.chdir(speech_commands_root.parent)
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", speech_commands_root.name, "--out",
                 str(tmp_path / "run"), "model=tc-resnet8", "epochs=1", "data.batch_size=16",
                 "max_steps_per_epoch=2"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["root"] == str(speech_commands_root.resolve())
    monkeypatch.chdir(tmp_path)
    assert evaluate_runs(["run"], out="ev")["n"] > 0


def test_scoring_on_a_dataset_with_another_training_split_warns(kws_run, speech_commands_root, tmp_path):
    # Before: a dataset of the same classes and split sizes was scored without a word, though its val and
    # test clips could be ones the run trained on.
    import shutil
    import warnings

    def said(data=None):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            evaluate_runs([str(kws_run)], data=data, out=str(tmp_path / "ev" / str(data).replace("/", "_")))
        return [str(w.message) for w in record if "other clips" in str(w.message)]

    assert said() == [] and said(str(speech_commands_root)) == []
    copy = tmp_path / "sc"
    shutil.copytree(speech_commands_root, copy)
    listed = {line for name in ("validation_list.txt", "testing_list.txt")
              for line in (copy / name).read_text().split()}
    clip = next(f for f in sorted((copy / "yes").iterdir()) if f"yes/{f.name}" not in listed)
    clip.rename(clip.with_name("fffffff0_nohash_7.wav"))  # still a training clip: as many, but another
    assert said(str(copy)) == [f"{copy}: its training split holds other clips than the one {kws_run}/final.pt"
                               " was trained on (another dataset, cache or split setting): the clips scored "
                               "here may include ones it learned from"]


def test_evaluate_reads_the_headers_of_the_scored_splits_clips_only(kws_run, speech_commands_root, tmp_path):
    # Before: every split's clips were checked, so a damaged training clip stopped `evaluate --split test`.
    import shutil

    copy = tmp_path / "sc"
    shutil.copytree(speech_commands_root, copy)
    listed = {line for name in ("validation_list.txt", "testing_list.txt")
              for line in (copy / name).read_text().split()}
    clip = next(f for f in sorted((copy / "yes").iterdir()) if f"yes/{f.name}" not in listed)
    clip.write_bytes(b"RIFX not audio at all" * 10)  # a training clip
    report = evaluate_runs([str(kws_run)], data=str(copy), split="test", out=str(tmp_path / "ev"))
    assert report["n"] > 0
    with pytest.raises(UserError, match=re.escape(f"{clip}: not a readable audio file")):
        evaluate_runs([str(kws_run)], data=str(copy), split="train", out=str(tmp_path / "ev"))


def test_a_stereo_clip_in_a_scoring_is_refused_without_the_training_advice(kws_run, speech_commands_root,
                                                                            tmp_path):
    # Before (QA): evaluate said "or train with data.mixdown=true", which a scoring cannot do.
    import shutil

    import soundfile as sf

    copy = tmp_path / "sc"
    shutil.copytree(speech_commands_root, copy)
    listed = (copy / "testing_list.txt").read_text().split()
    clip = copy / next(rel for rel in listed if rel.startswith("yes/"))  # a command word: always scored
    x, sr = sf.read(clip, dtype="float32")
    sf.write(clip, np.stack([x, x], axis=1), sr)
    said = (f"{clip}: expected 1 channel(s), got 2; mix it down to mono first: the network was trained "
            f"without data.mixdown (which reads each file as the mean of its channels), so it reads mono "
            f"files only")
    with pytest.raises(UserError, match=re.escape(said) + "$"):
        evaluate_runs([str(kws_run)], data=str(copy), split="test", out=str(tmp_path / "ev"))


def test_evaluate_without_out_refuses_to_overwrite_the_evaluation_of_other_runs_or_data(
        fold_runs, tmp_path, capsys, monkeypatch):
    # Before: `evaluate A B` then `evaluate A C` (or two caches of the same folder name) wrote the same
    # A/eval_val_ensemble.json etc., the second silently replacing the first.
    from audionas.cli import main

    runs, cache, fold1_again = fold_runs
    made = [Path(runs[0]) / f"{stem}_val_ensemble{ext}" for stem, ext in
            (("eval", ".json"), ("confusion", ".png"), ("classwise_f1", ".md"), ("classwise_f1", ".csv"))]
    try:
        assert main(["evaluate", runs[0], runs[1], "--split", "val"]) == 0
        before = made[0].read_text()
        assert main(["evaluate", runs[0], runs[1], "--split", "val"]) == 0  # the same evaluation: rewritten
        monkeypatch.chdir(Path(runs[0]).parent)  # the same runs by relative paths: the same evaluation
        assert main(["evaluate", Path(runs[0]).name, Path(runs[1]).name, "--split", "val"]) == 0
        assert json.loads(made[0].read_text())["runs"] == json.loads(before)["runs"]  # absolute paths
        before = made[0].read_text()
        assert main(["evaluate", runs[0], fold1_again, "--split", "val"]) == 2
        assert capsys.readouterr().err.endswith(
            f"audionas: error: {made[0]}: holds the evaluation of {runs[0]}/final.pt, {runs[1]}/final.pt, "
            f"which this one would overwrite; pass --out DIR to keep both (or delete it)\n")
        assert made[0].read_text() == before
        assert main(["evaluate", runs[0], fold1_again, "--split", "val", "--out", str(tmp_path / "o")]) == 0
    finally:
        for f in made:
            f.unlink(missing_ok=True)


def test_evaluate_without_out_refuses_another_dataset_of_the_same_folder_name(kws_run, speech_commands_root,
                                                                              tmp_path, capsys):
    # Pinned: the data are compared too (the suffix names only the folder), for --cross-val as well.
    import shutil

    from audionas.cli import main

    run, twin = tmp_path / "run", tmp_path / "twin"
    shutil.copytree(kws_run, run)
    shutil.copytree(kws_run, twin)
    a, b = tmp_path / "a" / "other", tmp_path / "b" / "other"
    shutil.copytree(speech_commands_root, a)
    shutil.copytree(speech_commands_root, b)
    for extra, name in (([], "eval_test_other.json"),
                        ([str(twin), "--cross-val"], "eval_test_crossval_other.json")):
        assert main(["evaluate", str(run), *extra, "--data", str(a)]) == 0
        before = (run / name).read_text()
        assert json.loads(before)["data"][0] == str(a)
        capsys.readouterr()
        assert main(["evaluate", str(run), *extra, "--data", str(b)]) == 2
        assert capsys.readouterr().err == (f"audionas: error: {run / name}: holds the evaluation of data "
                                           f"{', '.join([str(a)] * (1 + len(extra) // 2))}, which this one "
                                           "would overwrite; pass --out DIR to keep both (or delete it)\n")
        assert (run / name).read_text() == before


def test_evaluate_out_refuses_to_overwrite_the_evaluation_of_other_runs_there(fold_runs, tmp_path, capsys):
    # Before: only the default location was checked; `--out DIR` for A, then for B, replaced A's report.
    from audionas.cli import main

    runs, _, _ = fold_runs
    out = tmp_path / "o"
    report = out / "eval_val.json"
    assert main(["evaluate", runs[0], "--split", "val", "--out", str(out)]) == 0
    assert main(["evaluate", runs[0], "--split", "val", "--out", str(out)]) == 0  # the same one: rewritten
    before = report.read_text()
    capsys.readouterr()
    assert main(["evaluate", runs[1], "--split", "val", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"audionas: error: {report}: holds the evaluation of {runs[0]}/final.pt, which this one "
                   "would overwrite; pass another --out DIR to keep both (or delete it)\n")
    assert report.read_text() == before


def test_evaluate_out_in_another_runs_folder_is_refused_and_in_its_own_is_the_default(fold_runs, capsys):
    # Before (QA): --out naming another run's folder replaced that run's training confusion_test.png.
    from audionas.cli import main

    runs, _, _ = fold_runs
    other = Path(runs[1])
    png = other / "confusion_test.png"
    before = png.read_bytes()
    capsys.readouterr()
    assert main(["evaluate", runs[0], "--split", "val", "--out", str(other)]) == 2
    assert capsys.readouterr().err == (
        f"audionas: error: {other}: the folder of another run (it holds config.yaml), whose training's "
        f"confusion_test.png and tables this evaluation would overwrite; pass an --out folder of its own\n")
    assert png.read_bytes() == before and not (other / "eval_val.json").exists()
    own = Path(runs[0])
    stems = ("eval_val", "confusion_val", "classwise_f1_val")
    made = [own / f"{stem}{kind}{ext}" for stem in stems for kind in ("", "_ensemble")
            for ext in (".json", ".png", ".md", ".csv")]
    kept = {p: p.read_bytes() for p in made if p.exists()}
    try:
        assert main(["evaluate", runs[0], "--split", "val", "--out", str(own)]) == 0
        assert (own / "eval_val.json").is_file()
        assert main(["evaluate", runs[0], runs[1], "--split", "val", "--out", str(own)]) == 0
        assert (own / "eval_val_ensemble.json").is_file()  # named as without --out
    finally:  # the runs are shared by this module's tests: leave their folders as they were
        for p in made:
            p.unlink(missing_ok=True)
            if p in kept:
                p.write_bytes(kept[p])


@pytest.mark.parametrize("cross_val", [False, True])
def test_a_report_written_meanwhile_into_the_same_folder_is_not_overwritten(fold_runs, tmp_path, capsys,
                                                                           monkeypatch, cross_val):
    # Before: the report's name was checked only before predicting, so an evaluation of other runs into the
    # same --out that ended meanwhile (two started at once) was overwritten by the later one.
    import audionas.train.evaluate as evaluate
    from audionas.cli import main

    runs, _, _ = fold_runs
    out = tmp_path / "o"
    mode = ["--cross-val"] if cross_val else []
    report = out / f"eval_val{'_crossval' if cross_val else ''}.json"
    assert main(["evaluate", runs[0], "--split", "val", "--out", str(out), *mode]) == 0
    theirs = report.read_text()
    report.unlink()
    predict = evaluate.predict

    def the_other_ends_meanwhile(*args, **kwargs):
        report.write_text(theirs)
        return predict(*args, **kwargs)

    monkeypatch.setattr(evaluate, "predict", the_other_ends_meanwhile)
    capsys.readouterr()
    assert main(["evaluate", runs[1], "--split", "val", "--out", str(out), *mode]) == 2
    assert f"{report}: holds the evaluation of {runs[0]}/final.pt" in capsys.readouterr().err
    assert report.read_text() == theirs


def test_a_default_report_file_that_is_no_report_is_overwritten(tmp_path):
    # Pinned: a file at the report's name that is no JSON object is not an evaluation to keep (no traceback).
    from audionas.train.evaluate import check_not_another

    for text in ("[1, 2]", "{not json", ""):
        (tmp_path / "eval_test.json").write_text(text)
        check_not_another(tmp_path / "eval_test.json", ["r/final.pt"], ["/d"])
    # while a report of other runs is kept (so the calls above did look at the file)
    (tmp_path / "eval_test.json").write_text(json.dumps({"runs": ["/other/final.pt"], "data": ["/d"]}))
    with pytest.raises(UserError, match="holds the evaluation of /other/final.pt"):
        check_not_another(tmp_path / "eval_test.json", ["/r/final.pt"], ["/d"], out_given=True)


def test_evaluate_out_that_is_a_file_is_a_one_line_error(kws_run, tmp_path, capsys):
    from audionas.cli import main

    out = tmp_path / "report.txt"
    out.write_text("keep me")
    assert main(["evaluate", str(kws_run), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"audionas: error: --out {out}: exists and is not a folder"
    assert main(["evaluate", str(kws_run), "--out", str(out / "sub")]) == 2
    assert f"--out {out / 'sub'}: cannot be a folder ({out} is a file)" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["evaluate", str(kws_run), "--out", str(tmp_path / "new" / "eval")]) == 0
    assert (tmp_path / "new" / "eval" / "eval_test.json").is_file()


def test_evaluate_batch_size_beyond_64_bits_is_a_one_line_error(kws_run, tmp_path, capsys):
    from audionas.cli import main

    # Before, --batch-size 100000000000000000000 passed the flag check and failed in the DataLoader's islice.
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(kws_run), "--batch-size", str(10**20), "--out", str(tmp_path / "ev")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch-size: expected a 64-bit integer" in err
    assert not (tmp_path / "ev").exists()


def test_predict_gives_posteriors_and_the_mean_loss_per_clip_and_restores_train_mode():
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Dropout(0.5))
    x, y = torch.randn(10, 5), torch.randint(0, 3, (10,))
    for mode in (True, False):
        model.train(mode)
        probs, labels, loss = predict(model, torch.nn.Identity(), TensorDataset(x, y), "cpu", batch_size=4)
        assert model.training is mode
        with torch.no_grad():
            logits = model.eval()(x)
        np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), rtol=1e-5)
        assert np.array_equal(labels, y.numpy())
        # batches of 4, 4, 2: the mean over clips, not over batches
        assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)


def test_an_ensemble_averages_the_members_posteriors(tmp_path, tiny_bundle, monkeypatch):
    """Two constant members: one always says b (softmax of logits [0, 2, 0]), the other always a ([3, 0, 0]).
    Their mean posterior is [0.51, 0.42, 0.08]: a, which neither the first member nor a vote would say."""
    from audionas.utils.checkpoint import load_checkpoint, save_atomic

    train(cfg(), tmp_path / "run", bundle=tiny_bundle())
    final = load_checkpoint(tmp_path / "run" / "final.pt")
    paths = []
    for name, bias in (("says_b", [0.0, 2.0, 0.0]), ("says_a", [3.0, 0.0, 0.0])):
        weights = {**final["model"], "fc.weight": torch.zeros_like(final["model"]["fc.weight"]),
                   "fc.bias": torch.tensor(bias)}
        save_atomic({**final, "model": weights}, tmp_path / f"{name}.pt")
        paths.append(str(tmp_path / f"{name}.pt"))
    bundle = tiny_bundle()
    monkeypatch.setattr(audionas.data, "build_data", lambda c, seed=0, **_: bundle)
    rep = evaluate_runs(paths, out=str(tmp_path / "ev"))
    labels = np.array([bundle.test[i][1] for i in range(len(bundle.test))])
    counts = np.bincount(labels, minlength=3)
    assert rep["confusion"] == [[int(c), 0, 0] for c in counts]  # every clip predicted a
    assert rep["accuracy"] == pytest.approx(counts[0] / len(labels))
    assert [m["accuracy"] for m in rep["members"]] == pytest.approx([counts[1] / 12, counts[0] / 12])


def test_cross_val_per_class_f1_averages_only_the_folds_that_score_the_class(tmp_path):
    """A class with no clips in a fold and never predicted there has no F1 in that fold: the mean is over the
    other folds, not a 0 for it."""
    from types import SimpleNamespace

    from audionas.train.evaluate import ReportFiles, _cross_val

    onehot = np.eye(3)[[0, 1, 1, 0]], np.eye(3)[[0, 2, 2, 1]]
    folds = [SimpleNamespace(probs=onehot[0], labels=np.array([0, 1, 1, 1])),  # no c: clips nor predictions
             SimpleNamespace(probs=onehot[1], labels=np.array([0, 2, 1, 1]))]
    runs = [SimpleNamespace(path=tmp_path / f"fold{k}.pt") for k in (1, 2)]
    rep = _cross_val(runs, [(None, None)] * 2, folds, lambda lm, b, ds, dcfg: (ds.probs, ds.labels, 0.0),
                     ["a", "b", "c"], ReportFiles(tmp_path, "test", "_crossval"))
    f1 = [M.classification_report(f.probs, f.labels, ["a", "b", "c"])["per_class_f1"] for f in folds]
    assert f1[0]["c"] is None and f1[1]["c"] == pytest.approx(2 / 3)
    assert rep["per_class_f1"]["c"] == pytest.approx(2 / 3)
    assert rep["per_class_f1"]["b"] == pytest.approx((f1[0]["b"] + f1[1]["b"]) / 2)


def test_the_class_wise_table_puts_each_f1_definition_under_its_own_heading(tmp_path, monkeypatch):
    from audionas.train.evaluate import ReportFiles, _classwise_table

    seen = {}
    monkeypatch.setattr(M, "class_f1_table", lambda systems, classes, totals: seen.update(
        systems=systems, totals=totals) or ("", ""))
    _classwise_table("net", [0.1, 0.2], [0.3, 0.4], ["a", "b"], {"official_f1": 0.15, "paper_f1": 0.35},
                     ReportFiles(tmp_path, "test", ""))
    assert seen["systems"] == {"net (official)": {"a": 0.1, "b": 0.2}, "net (paper)": {"a": 0.3, "b": 0.4}}
    assert seen["totals"] == {"net (official)": 0.15, "net (paper)": 0.35}


def test_cross_val_averages_folds_plainly_not_by_their_clip_counts(tmp_path):
    """The DCASE development protocol: the mean of the four folds' scores, whatever their sizes."""
    from types import SimpleNamespace

    from audionas.train.evaluate import ReportFiles, _cross_val

    folds = [SimpleNamespace(probs=np.eye(2)[[0, 1]], labels=np.array([0, 1])),  # 2 clips, accuracy 1
             SimpleNamespace(probs=np.eye(2)[[0] * 6], labels=np.array([0, 0, 0, 1, 1, 1]))]  # 6, 0.5
    runs = [SimpleNamespace(path=tmp_path / f"fold{k}.pt") for k in (1, 2)]
    rep = _cross_val(runs, [(None, None)] * 2, folds, lambda lm, b, ds, dcfg: (ds.probs, ds.labels, 0.0),
                     ["a", "b"], ReportFiles(tmp_path, "test", "_crossval"))
    assert rep["accuracy"] == pytest.approx(0.75) and rep["n"] == 8  # weighted: 5 / 8


def test_cross_val_of_runs_on_other_data_says_nothing_of_dcase_folds(tmp_path):
    """data.fold is DCASE2018's: runs on a folder dataset (fold 0 by default) are not single-mode runs."""
    import warnings
    from types import SimpleNamespace

    from audionas.train.evaluate import ReportFiles, _cross_val

    fold = SimpleNamespace(probs=np.eye(2)[[0, 1]], labels=np.array([0, 1]))
    for kind, fold_ids in (("folder", (0, 0)), ("dcase2018", (1, 2, 3, 4))):
        runs = [SimpleNamespace(path=tmp_path / f"r{k}.pt", config=SimpleNamespace(
            data=SimpleNamespace(kind=kind, fold=k))) for k in fold_ids]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _cross_val(runs, [(None, None)] * len(runs), [fold] * len(runs),
                       lambda lm, b, ds, dcfg: (ds.probs, ds.labels, 0.0), ["a", "b"],
                       ReportFiles(tmp_path, "test", "_crossval"))


def test_members_with_other_classes_or_input_shape_are_refused(tmp_path, tiny_bundle, monkeypatch):
    """Averaging posteriors needs the same classes in the same order and the same input: refused with the
    member named, before any data is read; a checkpoint whose classes are not its data's is refused too."""
    from audionas.utils.checkpoint import load_checkpoint, save_atomic

    train(cfg(), tmp_path / "run", bundle=tiny_bundle())
    final = load_checkpoint(tmp_path / "run" / "final.pt")
    save_atomic({**final, "classes": ["a", "c", "b"]}, tmp_path / "swapped.pt")
    save_atomic({**final, "input_shape": [1, 8, 9]}, tmp_path / "wider.pt")  # TinyNet pools: it still loads
    monkeypatch.setattr(audionas.data, "build_data", lambda c, seed=0, **_: tiny_bundle())
    run = str(tmp_path / "run")
    for other, what in (("swapped", "classes differ"), ("wider", "features/input shape differ")):
        for cross_val, verb in ((False, "ensemble"), (True, "score them together")):
            with pytest.raises(UserError, match=rf"{other}.pt: {what} from .*run/final.pt; cannot {verb}"):
                evaluate_runs([run, str(tmp_path / f"{other}.pt")], out=str(tmp_path), cross_val=cross_val)
    with pytest.raises(UserError, match=r"dataset classes \['a', 'b', 'c'\] differ from the checkpoint's "
                                        r"\['a', 'c', 'b'\]"):
        evaluate_runs([str(tmp_path / "swapped.pt")], out=str(tmp_path))


def _fewer_segments_cache(tmp_path, preset) -> Path:
    """The fold_runs layout cached with fewer segments: another training split, other band statistics."""
    from audionas.data.dcase_cache import prepare_cache
    from audionas.data.dcase_fixtures import make_dcase2018_fixture

    root = make_dcase2018_fixture(tmp_path / "fx", sessions_per_class=4, segments_per_session=1, seconds=0.5,
                                  nodes=1, with_eval=True)
    prepare_cache(root, tmp_path / "other", feature=preset, seconds=0.5, limit=2, progress=False)
    return tmp_path / "other"


def _without_band_statistics(run, dest: Path) -> Path:
    """The run's final.pt as checkpoints were saved before they recorded the band statistics."""
    from audionas.utils.checkpoint import load_checkpoint, save_atomic

    final = load_checkpoint(Path(run) / "final.pt")
    del final["band_statistics"]
    save_atomic(final, dest)
    return dest


def test_a_dcase_run_keeps_its_band_statistics_on_any_cache(fold_runs, short_dcase_preset, tmp_path):
    """final.pt records the training split's statistics; evaluation uses them, not the given cache's."""
    from audionas.data import build_data
    from audionas.train.evaluate import _member_data

    runs, cache, _ = fold_runs
    lm = load_model(runs[0])
    own = build_data(lm.config.data, lm.config.seed, training=False).frontend
    assert torch.equal(lm.band_frontend.mean, own.mean) and torch.equal(lm.band_frontend.inv_std, own.inv_std)
    other = _fewer_segments_cache(tmp_path, short_dcase_preset)
    theirs = build_data(replace(lm.config.data, root=str(other)), lm.config.seed, training=False).frontend
    assert not torch.equal(theirs.mean, own.mean)
    _, bundle = _member_data(lm, str(other), None, "test")
    assert bundle.frontend is lm.band_frontend
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # val = the evaluation set: no training split holds its clips
        assert evaluate_runs(runs[:1], data=str(other), split="val", out=str(tmp_path))["n"] > 0
    assert not [w for w in record if "other clips" in str(w.message)]
    with pytest.warns(UserWarning, match=r"its training split holds other clips than the one .*fold1"):
        evaluate_runs(runs[:1], data=str(other), split="test", out=str(tmp_path))  # fold 1's dev clips


def test_a_dcase_run_without_recorded_statistics_scored_on_another_training_split_is_refused(
        fold_runs, short_dcase_preset, tmp_path):
    from audionas.inference import load_inference_model

    runs, cache, _ = fold_runs
    old = str(_without_band_statistics(runs[0], tmp_path / "old.pt"))
    assert load_model(old).band_frontend is None
    other = _fewer_segments_cache(tmp_path, short_dcase_preset)
    with pytest.raises(UserError, match=r"training split holds \d+ items, .* was trained on \d+ .*band stat"):
        evaluate_runs([old], data=str(other), split="val", out=str(tmp_path))
    with pytest.raises(UserError, match="band statistics"):
        load_inference_model(old, waveform=True, data=str(other))
    assert evaluate_runs([old], data=str(cache), split="val", out=str(tmp_path))["n"] > 0


def test_only_a_standardising_dcase_run_without_a_record_is_held_to_its_training_split_size():
    """The size check guards band statistics: a KWS run or a data.normalize=false DCASE run evaluated on data
    with another training split has none to lose, and must not be refused; a record is used as it is."""
    from types import SimpleNamespace

    from audionas.data import DataConfig
    from audionas.train.trained_run import trained_frontend

    bundle = SimpleNamespace(train=[0] * 3, frontend=torch.nn.Identity())
    sizes = {"train": 5}
    for data_cfg in (DataConfig(kind="speech_commands"), DataConfig(kind="dcase2018", normalize=False)):
        assert trained_frontend(data_cfg, bundle, "other", None, sizes, "run") is bundle.frontend
    dcase = DataConfig(kind="dcase2018")
    recorded = torch.nn.Identity()
    assert trained_frontend(dcase, bundle, "other", recorded, sizes, "run") is recorded
    assert trained_frontend(dcase, bundle, "other", None, {"train": 3}, "run") is bundle.frontend
    with pytest.raises(UserError, match=r"^other: its training split holds 3 items, run was trained on 5 "):
        trained_frontend(dcase, bundle, "other", None, sizes, "run")


def test_evaluate_without_out_overwrites_neither_training_nor_the_runs_own(kws_run, speech_commands_root,
                                                                          tmp_path):
    # Before, every evaluation wrote RUN/confusion_test.png and RUN/eval_test.json: another dataset, another
    # checkpoint or an ensemble replaced the training's confusion matrix and the run's own evaluation.
    import shutil

    from audionas.cli import main

    run, twin, other = tmp_path / "run", tmp_path / "twin", tmp_path / "other_set"
    shutil.copytree(kws_run, run)
    shutil.copytree(kws_run, twin)
    shutil.copytree(speech_commands_root, other)
    trained_png = (run / "confusion_test.png").read_bytes()
    own = evaluate_runs([str(run)])
    assert own["confusion_png"] == str(run / "confusion_test.png")
    assert json.loads((run / "eval_test.json").read_text())["accuracy"] == own["accuracy"]
    assert main(["evaluate", str(run), "--data", str(other)]) == 0
    assert main(["evaluate", str(run), "--data", str(speech_commands_root)]) == 0  # its own data: no suffix
    assert main(["evaluate", str(run / "checkpoints" / "last.pt")]) == 0
    assert main(["evaluate", str(run), str(twin)]) == 0
    assert main(["evaluate", str(run), str(twin), "--cross-val"]) == 0
    assert (run / "confusion_test.png").read_bytes() == trained_png
    names = {p.name for p in run.iterdir() if p.name.startswith(("eval_", "confusion_"))}
    assert names == {f"{kind}_test{suffix}.{ext}" for kind, ext in (("eval", "json"), ("confusion", "png"))
                     for suffix in ("", "_other_set", "_last", "_ensemble", "_crossval")}
    assert json.loads((run / "eval_test.json").read_text())["accuracy"] == own["accuracy"]
    assert json.loads((run / "eval_test_ensemble.json").read_text())["runs"] == [str(run / "final.pt"),
                                                                               str(twin / "final.pt")]
    twin_names = [p.name for p in twin.iterdir() if p.name.startswith(("eval_", "confusion_"))]
    assert twin_names == ["confusion_test.png"]  # training's


def test_evaluate_out_inside_the_dataset_is_refused(kws_run, speech_commands_root, tmp_path, capsys):
    # Before, the PNG and JSON went into DATA/evout, a class folder without audio for every later run.
    import shutil

    from audionas.cli import main

    for data in ([], ["--data", str(speech_commands_root)]):
        out = speech_commands_root / "evout"
        assert main(["evaluate", str(kws_run), *data, "--out", str(out)]) == 2
        assert f"--out {out}: inside the dataset folder" in capsys.readouterr().err
        assert not out.exists()
    other = tmp_path / "other"
    shutil.copytree(speech_commands_root, other)
    assert main(["evaluate", str(kws_run), "--data", str(other), "--out", str(other / "evout")]) == 2


def test_a_moved_dataset_and_an_export_name_the_fix(kws_run, speech_commands_root, tmp_path, capsys):
    # Before: "...: dataset folder not found" without the way out, and a .pt2 was "(RuntimeError)".
    import shutil

    import yaml

    from audionas.cli import main

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    gone = tmp_path / "moved_away"
    cfg["data"]["root"] = str(gone)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    ck = torch.load(run / "final.pt", weights_only=True)
    ck["config"]["data"]["root"] = str(gone)
    torch.save(ck, run / "final.pt")
    assert main(["evaluate", str(run), "--out", str(tmp_path / "ev")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {gone}: no such folder; it is the data.root of "
                                       f"{run / 'final.pt'}: pass the dataset's new place with --data DIR\n")
    ev = tmp_path / "ev"
    assert main(["evaluate", str(run), "--data", str(speech_commands_root), "--out", str(ev)]) == 0
    recorded = json.loads((tmp_path / "ev" / "eval_test.json").read_text())["data"]
    assert recorded == [str(speech_commands_root.resolve())]
    assert main(["export", str(run)]) == 0
    capsys.readouterr()
    assert main(["predict", str(run / "model.pt2"), str(next(speech_commands_root.glob("yes/*.wav")))]) == 2
    assert "model.pt2: not a readable audionas checkpoint (an exported program: give the run folder or its " \
           "final.pt)" in capsys.readouterr().err


def test_a_missing_data_folder_given_with_data_is_not_told_to_pass_data(kws_run, tmp_path, capsys):
    # The moved-dataset hint ("pass the dataset's new place with --data DIR") is for a run's own data.root;
    # a typo in --data itself gets the data loader's own error, naming that folder.
    from audionas.cli import main

    typo = tmp_path / "speech_comands"
    assert main(["evaluate", str(kws_run), "--data", str(typo), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert str(typo) in err and "--data DIR" not in err and "it is the data.root of" not in err


def test_one_run_given_from_python_as_a_path_is_one_run(kws_run, tmp_path):
    # Before (API QA): evaluate_runs("RUN") iterated the string's characters ("/: no final.pt ...").
    from pathlib import Path

    from audionas.train.evaluate import evaluate_runs

    one = evaluate_runs(Path(kws_run), out=str(tmp_path / "a"))
    assert one["runs"] == [str((Path(kws_run) / "final.pt").resolve())]
    assert evaluate_runs(str(kws_run), out=str(tmp_path / "b"))["accuracy"] == one["accuracy"]


def test_a_moved_run_evaluates_itself_again_in_its_own_folder(kws_run, tmp_path, capsys):
    # Before (QA): its eval_test.json named the run's old path, so the repeat was refused as "the evaluation
    # of <old path>, which this one would overwrite".
    import shutil

    from audionas.cli import main

    run = tmp_path / "a#b"
    shutil.copytree(kws_run, run)
    assert main(["evaluate", str(run)]) == 0
    moved = run.rename(tmp_path / "moved")
    assert main(["evaluate", str(moved)]) == 0
    assert json.loads((moved / "eval_test.json").read_text())["runs"] == [str(moved / "final.pt")]
    other = tmp_path / "other"  # a run still where the report says is another run: refused as before
    shutil.copytree(moved, other)
    capsys.readouterr()
    assert main(["evaluate", str(other)]) == 2
    assert "holds the evaluation of" in capsys.readouterr().err
    # in an --out folder, a run that has moved away is not this one: its report there is kept
    out = tmp_path / "o"
    assert main(["evaluate", str(other), "--out", str(out)]) == 0
    other.rename(tmp_path / "archived")
    assert main(["evaluate", str(moved), "--out", str(out)]) == 2
    assert "holds the evaluation of" in capsys.readouterr().err


def test_report_names_too_long_for_the_file_system_name_the_fix(kws_run, speech_commands_root, tmp_path,
                                                                capsys):
    # Before (QA): a data folder of a long name made the suffix of the report's file names, past the 255 bytes
    # a file name can have: "File name too long" once the predictions were made.
    import shutil

    from audionas.cli import main

    run, other = tmp_path / "run", tmp_path / ("d" * 240)
    shutil.copytree(kws_run, run)
    shutil.copytree(speech_commands_root, other)
    assert main(["evaluate", str(run), "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "file names would be longer than 255 bytes" in err and "--out DIR" in err
    assert not list(run.glob("*_" + "d" * 240 + "*"))
    assert main(["evaluate", str(run), "--data", str(other), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "eval_test.json").is_file()


def test_a_name_only_the_asc_table_would_overflow_is_kept_for_kws(kws_run, speech_commands_root, tmp_path):
    # Before (review): the check measured classwise_f1_<split><suffix>.csv, a table only ASC data gets, so a
    # KWS data folder of 234-236 bytes was refused though every file written fits in 255 bytes.
    import shutil

    from audionas.cli import main

    run, other = tmp_path / "run", tmp_path / ("d" * 236)
    shutil.copytree(kws_run, run)
    shutil.copytree(speech_commands_root, other)
    assert main(["evaluate", str(run), "--data", str(other)]) == 0
    assert len((run / f"confusion_test_{other.name}.png").name) == 255
    assert (run / f"eval_test_{other.name}.json").is_file()


def test_a_python_callers_home_relative_paths_are_expanded(kws_run, speech_commands_root, tmp_path,
                                                            monkeypatch):
    # Before (Python API QA): train(cfg, "~/runs/a") made a folder named "~" in the working folder, while
    # data.root expanded "~"; load_model and evaluate_runs refused "~/..." ("no such run directory").
    import shutil

    from audionas.config import load_config
    from audionas.train.config import TrainConfig
    from audionas.train.trained_run import load_model
    from audionas.train.trainer import train

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir(parents=True)
    shutil.copytree(kws_run, home / "trained")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    cfg = load_config(TrainConfig, "kws-tc-resnet-cpu", ["model=tc-resnet8"],
                      {"data": {"root": str(speech_commands_root)}})
    train(cfg, "~/new", _stop_after_steps=1)
    assert (home / "new" / "config.yaml").is_file() and not (cwd / "~").exists()
    assert load_model("~/trained").path == home / "trained" / "final.pt"
    report = evaluate_runs("~/trained", out="~/report")
    assert report["confusion_png"] == str(home / "report" / "confusion_test.png")
    assert not (cwd / "~").exists()


def test_report_names_hold_the_class_wise_table_for_asc_data_only(tmp_path):
    from audionas.train.evaluate import ReportFiles

    files = ReportFiles(tmp_path, "test", "_x")
    assert files.names(asc=False) == ["eval_test_x.json", "confusion_test_x.png"]
    assert files.report == tmp_path / "eval_test_x.json"
    assert files.confusion == tmp_path / "confusion_test_x.png"
    assert ReportFiles(tmp_path, "val", "").names(asc=True)[2:] == ["classwise_f1_val.md",
                                                                   "classwise_f1_val.csv"]


@pytest.mark.slow
def test_a_run_trained_with_mixdown_is_scored_on_its_stereo_clips_the_same_way(tmp_path):
    # evaluate rebuilds the data from the run's config, so data.mixdown comes with it (diff review).
    import soundfile as sf

    from audionas.cli import main
    from audionas.data.fixtures import make_folder_fixture

    data = make_folder_fixture(tmp_path / "mine", per_class=12)
    for clip in sorted(data.glob("*/*.wav"))[::2]:
        mono = sf.read(clip, dtype="float32")[0]
        sf.write(clip, np.stack([mono, 0.5 * mono], axis=1), 16000, subtype="FLOAT")
    run = tmp_path / "run"
    args = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(data), "--out", str(run),
            "data.kind=folder", "model=tc-resnet8", "epochs=1", "data.batch_size=8", "data.split=ratio"]
    assert main(args) == 2  # stereo clips without data.mixdown
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "data.mixdown=true"]) == 0
        rep = evaluate_runs([str(run)], out=str(tmp_path / "eval"))
    trained = json.loads((run / "test_metrics.json").read_text())
    assert rep["n"] == trained["n"] > 0 and rep["accuracy"] == pytest.approx(trained["accuracy"])


def test_a_failed_report_write_leaves_no_new_figure_or_table(tmp_path, tiny_bundle, monkeypatch, capsys):
    # Before (QA): the PNG and the class-wise tables were written first, each on its own, so a report that
    # could not be written (here a folder at its name) left them new beside the old report.
    train(cfg(), tmp_path / "a", bundle=tiny_bundle())
    bundle = tiny_bundle()
    bundle.test.segment_ids = np.repeat([0, 1, 2], 4)
    bundle.test.channel_ids = np.tile([0, 1, 2, 3], 3)
    bundle.test.y = np.repeat(bundle.test.y[:3], 4)
    monkeypatch.setattr(audionas.data, "build_data", lambda c, seed=0, **_: bundle)
    ev = tmp_path / "ev"
    (ev / "eval_test.json").mkdir(parents=True)
    with pytest.raises(UserError, match="eval_test.json: is a directory"):
        evaluate_runs([str(tmp_path / "a")], out=str(ev))
    assert [p.name for p in ev.iterdir()] == ["eval_test.json"]
    (ev / "eval_test.json").rmdir()
    rep = evaluate_runs([str(tmp_path / "a")], out=str(ev))
    assert sorted(p.name for p in ev.iterdir()) == ["classwise_f1_test.csv", "classwise_f1_test.md",
                                                    "confusion_test.png", "eval_test.json"]
    assert json.loads((ev / "eval_test.json").read_text()) == rep
    assert rep["tables"] == [str(ev / "classwise_f1_test.md"), str(ev / "classwise_f1_test.csv")]


def test_paper_adds_the_asc_papers_table_2_columns_to_a_dcase_class_wise_table(fold_runs, kws_run, tmp_path):
    # Before (paper QA): no ASC figure of the paper was set beside a run's, as `report --paper` does for KWS.
    from audionas.papers import ASC_TABLE2

    runs, *_ = fold_runs
    # a fold run's test split is its fold's evaluate list (development data); its val split the evaluation set
    with pytest.warns(UserWarning, match=r"--paper: the paper's columns score the DCASE2018 evaluation set; "
                                         r"this evaluation's test split is development data"):
        evaluate_runs(runs[0], split="test", out=str(tmp_path / "dev"), paper=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="--paper")
        rep = evaluate_runs(runs[0], split="val", out=str(tmp_path / "a"), paper=True)
    header, *rows, total = (tmp_path / "a" / "classwise_f1_val.csv").read_text().splitlines()
    assert header.split(",")[3:] == ["B-s (ASC paper)", "N-s (ASC paper)", "N-e (ASC paper)"]
    assert [r.split(",")[0] for r in rows] == rep["classes"]
    for j, system in enumerate(ASC_TABLE2):  # the paper's printed numbers, the F1 score last
        assert [float(r.split(",")[3 + j]) for r in (*rows, total)] == ASC_TABLE2[system]
    assert total.split(",")[1] == f"{100 * rep['official_f1']:.1f}"  # the run's own columns stay first
    plain = evaluate_runs(runs[0], split="val", out=str(tmp_path / "b"))
    assert (tmp_path / "b" / "classwise_f1_val.csv").read_text().splitlines()[0].count(",") == 2
    assert plain["official_f1"] == rep["official_f1"]
    with pytest.raises(UserError, match=r"--paper: the ASC paper's Table 2 scores the 9 DCASE2018 classes; "):
        evaluate_runs(kws_run, out=str(tmp_path / "c"), paper=True)
    assert not (tmp_path / "c").exists()
