"""`audionas export`: the .pt2 program reproduces the evaluation path of a run, on KWS and on DCASE runs."""

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from audionas.cli import main
from audionas.data import build_data
from audionas.data.dcase_fixtures import DEV_DIRNAME
from audionas.export import META_FILE
from audionas.features import build_frontend
from audionas.inference import InferenceModel
from audionas.train.predict import predict
from audionas.train.trained_run import load_model


def _load(path):
    """Test-written files only: torch.export.load unpickles."""
    extra = {META_FILE: ""}
    program = torch.export.load(str(path), extra_files=extra)
    return program.module(), json.loads(extra[META_FILE])


@pytest.mark.slow
def test_waveform_program_equals_evaluation(kws_run, capsys):
    assert main(["export", str(kws_run), "--waveform"]) == 0
    assert "max abs diff 0.0e+00" in capsys.readouterr().out
    program, meta = _load(kws_run / "model-waveform.pt2")
    lm = load_model(kws_run)
    assert meta["classes"] == lm.classes and meta["input"] == {"kind": "waveform", "shape": ["batch", 16000],
                                                               "sample_rate": 16000,
                                                               "shorter_clips": "zero-pad at the end",
                                                               "longer_clips": "crop"}
    bundle = build_data(lm.config.data, lm.config.seed)  # the test split is never augmented
    probs, _, _ = predict(lm.model, bundle.frontend, bundle.test, "cpu", 64)
    waves = torch.stack([bundle.test[i][0] for i in range(len(bundle.test))])
    with torch.no_grad():
        np.testing.assert_allclose(program(waves).numpy(), probs, atol=1e-5)
        assert program(waves[:1]).shape == (1, len(lm.classes))  # any batch size


@pytest.mark.slow
def test_features_program_and_bad_runs(kws_run, tmp_path, capsys):
    out = tmp_path / "m.pt2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a KWS run has no band statistics to miss
        assert main(["export", str(kws_run / "final.pt"), "--out", str(out)]) == 0
    program, meta = _load(out)
    lm = load_model(kws_run)
    assert meta["input"] == {"kind": "features", "shape": ["batch", *lm.input_shape]}  # not "standardised"
    assert (meta["feature"], meta["model"], meta["classes"]) == (lm.config.data.feature, lm.config.model,
                                                                 lm.classes)
    x = torch.randn(4, *lm.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(program(x), InferenceModel(lm.model).eval()(x))
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()
    for name, what in (("m.onnx", ".onnx"), ("model", "a name without extension")):
        assert main(["export", str(kws_run), "--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err == (f"audionas: error: --out {tmp_path / name}: expected a .pt2 file name (a torch.export "
                       f"program for torch.export.load, not {what})\n")
        assert not (tmp_path / name).exists()
    # before: --data was ignored without --waveform, and a features program written
    assert main(["export", str(kws_run), "--data", str(tmp_path), "--out", str(tmp_path / "d.pt2")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --data {tmp_path}: used with --waveform only; add "
                                       f"--waveform or drop --data\n")
    assert not (tmp_path / "d.pt2").exists()


def _train_res8(cache, feature: str, tmp_path, *overrides: str):
    """res8 for one epoch on the DCASE cache: a network whose output moves with its input (a check of the
    band statistics)."""
    preset = tmp_path / "asc-res8.yaml"
    preset.write_text(f"model: res8\nepochs: 1\noptim: {{name: adam, lr: 0.001}}\ndata: {{kind: dcase2018, "
                      f"feature: {feature}, augment: false, batch_size: 8}}\n")
    run = tmp_path / "asc"
    assert main(["train", "--preset", str(preset), "--data", str(cache), "--out", str(run), *overrides]) == 0
    return run


@pytest.mark.slow
def test_dcase_waveform_program_has_band_statistics(dcase_root, dcase_cache, short_dcase_preset, tmp_path):
    run = _train_res8(dcase_cache, short_dcase_preset, tmp_path)
    out = tmp_path / "asc.pt2"
    assert main(["export", str(run), "--waveform", "--out", str(out)]) == 0
    program, meta = _load(out)
    assert meta["input"]["shape"] == ["batch", 8000] and len(meta["classes"]) == 9
    # before: nothing said that a shorter clip is repeated to fill them, as predict and the cache do
    assert meta["input"]["shorter_clips"] == "repeat" and meta["input"]["longer_clips"] == "crop"
    assert main(["export", str(run), "--out", str(tmp_path / "feats.pt2")]) == 0
    features_program, meta = _load(tmp_path / "feats.pt2")  # cached log-mels in: standardisation included
    assert meta["input"] == {"kind": "features", "shape": ["batch", 1, 40, 26]}
    # A cached row (float16 log-mels) through the evaluation path vs its wav channel through the program.
    lm = load_model(run)
    bundle = build_data(lm.config.data, lm.config.seed)  # as `audionas evaluate` builds it
    feats = np.load(dcase_cache / "dev" / "features.npy", mmap_mode="r")
    rows = [line.split("\t") for line in (dcase_cache / "dev" / "index.tsv").read_text().splitlines()[1:]]
    deployed = InferenceModel(lm.model, bundle.frontend).eval()
    unstandardised = InferenceModel(lm.model, build_frontend(short_dcase_preset)).eval()
    far = 0.0
    for row, file, _, _, channel in rows[::7]:
        wave, _ = sf.read(str(dcase_root / DEV_DIRNAME / file), dtype="float32", always_2d=True)
        wave = torch.from_numpy(wave[:, int(channel)].copy())[None]
        x = torch.from_numpy(feats[int(row)].astype(np.float32))[None, None]
        with torch.no_grad():
            got = program(wave)
            torch.testing.assert_close(got, deployed(x), atol=2e-3, rtol=0)
            torch.testing.assert_close(features_program(x), deployed(x), atol=1e-5, rtol=0)
            far = max(far, float((got - unstandardised(wave)).abs().max()))
    assert far > 0.05  # without the statistics the outputs differ, so the check above can fail


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])  # off at one batch size only: each is checked (dynamic batch)
def test_a_program_that_reloads_with_other_outputs_is_not_written(kws_run, tmp_path, monkeypatch, batch):
    from types import SimpleNamespace

    from audionas.errors import UserError
    from audionas.export import export_run

    real = torch.export.load

    class Shifted(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) + (1e-3 if x.shape[0] == batch else 0.0)

    monkeypatch.setattr(torch.export, "load",
                        lambda *a, **k: SimpleNamespace(module=lambda: Shifted(real(*a, **k).module())))
    out = tmp_path / "m.pt2"
    with pytest.raises(UserError, match=r"program differs from the model by 1\.00e-03; not written"):
        export_run(kws_run, out)
    assert not out.exists()


@pytest.mark.slow
def test_a_dcase_features_program_without_recorded_statistics_says_it_takes_standardised_input(
        dcase_cache, short_dcase_preset, tmp_path):
    """A checkpoint from before the band statistics were recorded: the program is the bare network. A run
    trained with data.normalize=false records none either, but is neither flagged nor warned about."""
    from audionas.utils.checkpoint import load_checkpoint, save_atomic

    run = _train_res8(dcase_cache, short_dcase_preset, tmp_path, "max_steps_per_epoch=1")
    final = load_checkpoint(run / "final.pt")
    del final["band_statistics"]
    save_atomic(final, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match=r"old.pt records no band statistics .*takes band-standardised"):
        assert main(["export", str(tmp_path / "old.pt"), "--out", str(tmp_path / "old.pt2")]) == 0
    program, meta = _load(tmp_path / "old.pt2")
    assert meta["input"]["standardised"] is True
    x = torch.randn(2, 1, 40, 26)
    with torch.no_grad():
        torch.testing.assert_close(program(x), InferenceModel(load_model(run).model).eval()(x))
    final["config"]["data"]["normalize"] = False  # a run trained without standardisation records none either
    save_atomic(final, tmp_path / "raw.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["export", str(tmp_path / "raw.pt"), "--out", str(tmp_path / "raw.pt2")]) == 0
    assert _load(tmp_path / "raw.pt2")[1]["input"] == {"kind": "features", "shape": ["batch", 1, 40, 26]}


@pytest.mark.slow
def test_the_training_only_auxiliary_head_is_left_out_of_the_program(speech_commands_root, tmp_path, capsys):
    # Before (QA): a DARTS cell trained with model_args.auxiliary=true exported its unused head (3x the file).
    from audionas.train.trained_run import load_model

    run = tmp_path / "aux"
    assert main(["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "DARTS_V2", "--cells", "3",
                 "--channels", "4", "--data", str(speech_commands_root), "--out", str(run), "epochs=1",
                 "max_steps_per_epoch=2", "model_args.auxiliary=true"]) == 0
    assert load_model(run).model.auxiliary_head is not None
    assert main(["export", str(run)]) == 0
    capsys.readouterr()
    program, _ = _load(run / "model.pt2")
    assert not [k for k in program.state_dict() if "auxiliary" in k]
    x = 0.1 * torch.randn(3, 1, 101, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(program(x), torch.softmax(load_model(run).model(x), 1))


@pytest.mark.slow
def test_exports_of_other_checkpoints_are_named_after_them_in_the_run_folder(kws_run, tmp_path, capsys):
    # Before, best.pt and checkpoints/last.pt both went to RUN/checkpoints/model.pt2, each over the other.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    for ckpt, name in ((run / "final.pt", "model.pt2"), (run / "checkpoints" / "best.pt", "model-best.pt2"),
                       (run / "checkpoints" / "last.pt", "model-last.pt2")):
        assert main(["export", str(ckpt)]) == 0
        assert f"wrote {run / name} " in capsys.readouterr().out
    assert sorted(p.name for p in run.rglob("*.pt2")) == ["model-best.pt2", "model-last.pt2", "model.pt2"]
    assert main(["export", str(run / "checkpoints" / "best.pt"), "--waveform"]) == 0
    assert (run / "model-waveform-best.pt2").is_file()
    assert main(["export", str(run / "checkpoints" / "best.pt")]) == 0  # the same export again: rewritten
    capsys.readouterr()


def test_an_export_that_would_overwrite_another_checkpoints_or_kinds_program_is_refused(kws_run, tmp_path,
                                                                                        capsys):
    # Before: a checkpoint named waveform.pt exported its features program over final.pt's waveform one.
    import shutil

    from audionas.export import export_meta

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    assert main(["export", str(run), "--waveform"]) == 0
    program = run / "model-waveform.pt2"
    before = program.read_bytes()
    assert export_meta(program)["input"]["kind"] == "waveform"
    shutil.copy(run / "final.pt", run / "waveform.pt")
    capsys.readouterr()
    assert main(["export", str(run / "waveform.pt")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {program}: holds the export of {run}/final.pt "
                                       "(waveform input), which this one would overwrite; pass --out FILE to "
                                       "keep both (or delete it)\n")
    assert program.read_bytes() == before
    assert main(["export", str(run / "waveform.pt"), "--out", str(tmp_path / "w.pt2")]) == 0
    assert export_meta(tmp_path / "w.pt2")["input"]["kind"] == "features"
    assert export_meta(run / "final.pt") is None  # not a .pt2: nothing to read


@pytest.mark.slow
def test_a_default_export_refuses_either_another_checkpoints_or_another_kinds_program(kws_run, tmp_path,
                                                                                       capsys):
    # Pinned: one difference alone refuses (a program written there with --out from best.pt, features; or
    # from final.pt, waveform), not only both.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    program = run / "model.pt2"
    for other in ([str(run / "checkpoints" / "best.pt")], [str(run), "--waveform"]):
        assert main(["export", *other, "--out", str(program)]) == 0
        before = program.read_bytes()
        capsys.readouterr()
        assert main(["export", str(run)]) == 2
        assert "which this one would overwrite; pass --out FILE" in capsys.readouterr().err
        assert program.read_bytes() == before


def test_a_python_caller_gets_the_default_file_and_its_overwrite_check(kws_run, tmp_path):
    # Before (style review): the default name and the overwrite check lived in the command; export_run needed
    # an `out`, and a caller writing RUN/model.pt2 itself could overwrite another checkpoint's program.
    import shutil

    from audionas.errors import UserError
    from audionas.export import default_export_path, export_meta, export_run

    run = tmp_path / "run"
    shutil.copytree(kws_run, run, ignore=shutil.ignore_patterns("*.pt2"))
    best = run / "checkpoints" / "best.pt"
    assert default_export_path(best, waveform=True) == run / "model-waveform-best.pt2"
    info = export_run(run / "checkpoints" / "best.pt")
    assert info["path"] == str(run / "model-best.pt2") and export_meta(run / "model-best.pt2") is not None
    shutil.copy(run / "model-best.pt2", run / "model.pt2")
    with pytest.raises(UserError, match=r"model.pt2: holds the export of .*best.pt \(features input\)"):
        export_run(run)
    with pytest.raises(UserError, match=r"expected a .pt2 file name"):
        export_run(run, tmp_path / "m.onnx")


def test_export_meta_is_none_for_a_file_it_cannot_read(tmp_path):
    # Pinned: a non-zip file or an audionas.json that is no JSON object at the default name is no export
    # (before the check: a traceback from `export`).
    import zipfile

    from audionas.export import export_meta

    (tmp_path / "text.pt2").write_text("not a program")
    for name, text in (("list.pt2", "[1, 2]"), ("bad.pt2", "{not json")):
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            z.writestr(f"model/extra/{META_FILE}", text)
    with zipfile.ZipFile(tmp_path / "ok.pt2", "w") as z:
        z.writestr(f"model/extra/{META_FILE}", '{"run": "r/final.pt"}')
    for name in ("text.pt2", "list.pt2", "bad.pt2", "missing.pt2"):
        assert export_meta(tmp_path / name) is None, name
    assert export_meta(tmp_path / "ok.pt2") == {"run": "r/final.pt"}


@pytest.mark.parametrize("kind, file, hint", [
    ("darts", "genotype.json", "--genotype RUN/genotype.json"),
    ("supernet", "space.json", "--chromosome SEARCH/pareto.json#k"),
])
def test_a_search_run_is_named_in_one_line_without_a_not_finished_warning(tmp_path, capsys, kind, file, hint):
    """A search run never writes final.pt: before, export warned twice that it had not finished, then said it
    is a search run; predict, evaluate and profile warned once."""
    run = tmp_path / kind
    (run / "checkpoints").mkdir(parents=True)
    (run / file).write_text("{}")
    torch.save({"primitives" if kind == "darts" else "sampler": []}, run / "checkpoints" / "last.pt")
    for argv in (["export", str(run)], ["evaluate", str(run)], ["profile", str(run)]):
        assert main(argv) == 2
        assert capsys.readouterr().err == (f"audionas: error: {run}: a search run, not a trained network; "
                                           f"{'retrain its cell' if kind == 'darts' else 'search it'}"
                                           f"{'' if kind == 'darts' else ', then retrain a front member'}: "
                                           f"audionas train {hint}\n")
