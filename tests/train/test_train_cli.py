"""`audionas train` config resolution (presets, overrides, sugar flags) and the end-to-end CLI run."""

import json
import threading

import pytest
import torch

from audionas.cli import build_parser, main
from audionas.commands.train import resolve_config
from audionas.config import load_config
from audionas.errors import UserError
from audionas.train.config import TrainConfig
from audionas.train.optim import LRSchedule
from audionas.utils.checkpoint import load_checkpoint


def resolve(argv):
    return resolve_config(build_parser().parse_args(["train", *argv]))


@pytest.mark.parametrize("name", ["kws-res15", "kws-tc-resnet", "kws-res15-cpu", "kws-tc-resnet-cpu"])
def test_presets_load(name):
    cfg = load_config(TrainConfig, name)
    assert cfg.model in ("res15", "tc-resnet14-1.5") and cfg.data.kind == "speech_commands"


def test_paper_recipes():
    res = load_config(TrainConfig, "kws-res15")
    o = res.optim
    assert (o.name, o.lr, o.momentum, o.weight_decay) == ("sgd", 0.1, 0.9, 1e-5)
    assert (res.epochs, res.data.batch_size, res.optim.schedule) == (26, 64, "step")
    # Honk's --schedule 3000 6000 (steps) at v0.01's 22,246 training clips, batch 64, last batch dropped
    assert LRSchedule(o, 22246 // 64, res.epochs).milestone_steps == [3000, 6000]
    tc = load_config(TrainConfig, "kws-tc-resnet")
    assert (tc.optim.lr, tc.optim.weight_decay, tc.data.batch_size, tc.optim.milestones) == (0.1, 1e-3, 100,
                                                                                              [45, 90])
    # hyperconnect/TC-ResNet: slim's weights_regularizer puts the L2 term on the conv weights only
    assert (res.optim.weight_decay_on, tc.optim.weight_decay_on) == ("all", "weights")
    cpu = load_config(TrainConfig, "kws-tc-resnet-cpu")
    assert cpu.optim.weight_decay_on == "all"  # the CPU recipe as measured
    assert (tc.model_args, cpu.model_args) == ({"bn_momentum": 0.003, "bn_eps": 1e-3},
                                               {"bn_momentum": 0.1, "bn_eps": 1e-5})
    assert cpu.optim.schedule == "cosine" and cpu.optim.warmup_epochs > 0 and cpu.model == "tc-resnet14-1.5"


def test_tc_resnets_reference_recipe_tests_its_best_dev_model_and_the_others_their_last():
    for preset, weights in [("kws-res15", "last"), ("kws-tc-resnet", "best"), ("kws-res15-cpu", "last"),
                            ("kws-tc-resnet-cpu", "last"), ("kws-oneshot-retrain-cpu", "last"),
                            ("kws-darts-retrain", "last"), ("asc-baseline", "last")]:
        assert load_config(TrainConfig, preset, []).test_weights == weights, preset


def test_the_asc_baseline_preset_is_the_papers_recipe():
    # REFERENCE.md section 3: Adam, wd 1e-6, lr warmed up 0 -> 0.003 over 3 epochs then constant, EMA 0.9986,
    # batch 192, 10 epochs, the last checkpoint evaluated; shuffle-and-mix rows and Cutout.
    c = load_config(TrainConfig, "asc-baseline")
    o = c.optim
    assert (o.name, o.lr, o.weight_decay, o.warmup_epochs, o.schedule, o.ema_decay) == (
        "adam", 3e-3, 1e-6, 3.0, "constant", 0.9986)
    assert (c.model, c.epochs, c.data.batch_size, c.save_best) == ("asc-baseline", 10, 192, False)
    assert (c.data.kind, c.data.feature, c.data.augment, c.data.cutout) == ("dcase2018", "dcase-logmel", True,
                                                                           True)


def test_overrides_and_flags(tmp_path):
    cfg, out = resolve(["--preset", "kws-res15", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                        "optim.lr=0.01", "epochs=3", "data.words=[up, down]"])
    assert (cfg.optim.lr, cfg.epochs, cfg.data.words) == (0.01, 3, ["up", "down"])
    assert cfg.data.root == str(tmp_path)
    assert out == tmp_path / "r"
    cfg, out = resolve(["--preset", "kws-res15", "--genotype", "NAS1", "--cells", "6", "--channels", "16"])
    assert cfg.model == "darts" and cfg.model_args == {"genotype": "NAS1", "cells": 6, "channels": 16}
    assert out.name == "kws-res15"


def test_a_preset_file_naming_no_model_warns_that_the_default_trains(tmp_path, recwarn):
    # before (API QA): a preset without model: (nor a base: that names one) silently trained Res15
    (tmp_path / "mine.yaml").write_text("epochs: 1\ndata: {kind: folder}\n")
    said = r"mine.yaml: names no model \(nor does a base: preset\); training the default model, res15$"
    with pytest.warns(UserWarning, match=said):
        resolve(["--preset", str(tmp_path / "mine.yaml"), "--data", str(tmp_path)])
    recwarn.clear()
    for named in (["model=tc-resnet8"], ["--genotype", "NAS1"]):
        resolve(["--preset", str(tmp_path / "mine.yaml"), "--data", str(tmp_path), *named])
    (tmp_path / "child.yaml").write_text("base: kws-tc-resnet-cpu\nepochs: 1\n")
    resolve(["--preset", str(tmp_path / "child.yaml"), "--data", str(tmp_path)])
    assert not [w for w in recwarn if "names no model" in str(w.message)]


def test_genotype_keeps_a_darts_presets_network_arguments(tmp_path):
    g = tmp_path / "genotype.json"
    cfg, _ = resolve(["--preset", "kws-darts-retrain-cpu", "--genotype", str(g)])
    preset, _ = resolve(["--preset", "kws-darts-retrain-cpu"])
    assert cfg.model_args == {**preset.model_args, "genotype": str(g)}
    assert cfg.model_args["cells"] == 6 and cfg.model_args["auxiliary"] is False  # from the base preset
    cfg, _ = resolve(["--preset", "kws-darts-retrain-cpu", "--genotype", "NAS1", "--channels", "4"])
    assert cfg.model_args == {**preset.model_args, "genotype": "NAS1", "channels": 4}
    # a Genotype as DARTS prints it (before, taken for a file name: "File name too long")
    from audionas.models import freeze_model_args
    from audionas.nas.darts.genotype import DARTS_V2

    cfg, _ = resolve(["--preset", "kws-darts-retrain-cpu", "--genotype", repr(DARTS_V2), "--cells", "3"])
    assert cfg.model_args == {**preset.model_args, "genotype": repr(DARTS_V2), "cells": 3}
    assert freeze_model_args("darts", cfg.model_args)["genotype"] == DARTS_V2.to_dict()


def test_unknown_key_and_bad_preset_exit_2(capsys):
    assert main(["train", "--preset", "kws-res15", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "optim.lrr" in err
    assert main(["train", "--preset", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    assert main(["train", "--preset", "kws-res15", "epochs=many"]) == 2
    with pytest.raises(UserError, match="--cells"):
        resolve(["--preset", "kws-res15", "--cells", "6"])
    with pytest.raises(UserError, match="--genotype and --chromosome: choose one"):
        resolve(["--preset", "kws-res15", "--genotype", "DARTS_V2", "--chromosome", "s/pareto.json#0"])


def test_absurd_epochs_are_refused_before_anything_runs(tmp_path, capsys):
    # Before, epochs=1e20 trained on for ever and, with a step_size schedule, hung listing its milestones.
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out",
                 str(tmp_path / "r"), "epochs=1000000"]) == 2
    assert capsys.readouterr().err == ("audionas: error: config field 'epochs': expected an integer in "
                                       "1..100,000, got 1000000\n")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("preset, override, field, low", [
    ("kws-tc-resnet-cpu", "max_steps_per_epoch=-2", "max_steps_per_epoch", 0),
    ("kws-tc-resnet-cpu", "log_every=0", "log_every", 1),
    ("kws-fairnas-cpu", "checkpoint_every_steps=-1", "checkpoint_every_steps", 0),
    ("kws-nas1-cpu", "channels=-2", "channels", 1),
    ("kws-nas1-cpu", "threads=-1", "threads", 0)])
def test_a_count_below_its_range_names_the_one_field_and_its_value(preset, override, field, low):
    """Before: one message for several fields ("config fields 'checkpoint_every_steps'/'max_steps_per_epoch'
    must be >= 0 and 'log_every' >= 1"), without the value given."""
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SupernetConfig

    cls = {"kws-tc-resnet-cpu": TrainConfig, "kws-fairnas-cpu": SupernetConfig,
           "kws-nas1-cpu": DartsSearchConfig}[preset]
    value = override.split("=")[1]
    with pytest.raises(UserError) as e:
        load_config(cls, preset, [override])
    assert str(e.value) == f"config field '{field}': expected an integer >= {low}, got {value}"


@pytest.mark.parametrize("weight", ["-0.4", "1e9"])
def test_aux_weight_outside_0_1_is_a_config_error(capsys, weight):
    argv = ["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "NAS1", f"aux_weight={weight}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config field 'aux_weight': expected 0 <= weight <= 1" in err


def test_an_auxiliary_head_without_its_loss_is_a_config_error(capsys):
    """Its parameters would get no gradient: wasted work in one process, a failure at step 2 under DDP."""
    argv = ["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "NAS1", "model_args.auxiliary=true",
            "aux_weight=0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config field 'aux_weight': 0 trains no auxiliary loss" in err


def test_chromosome_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"pareto.json: file not found \(expected a search's pareto.json\)"):
        resolve(["--preset", "kws-res15", "--chromosome", str(tmp_path / "pareto.json#0")])


def test_a_chromosome_input_warning_names_a_retraining_preset_only_when_its_space_has_one():
    """A pareto.json without a preset_hint must not print "its space's retraining preset is 'None'"."""
    from audionas.commands.train import warn_if_searched_on_other_input

    spec = {"task": "kws", "input_shape": [1, 101, 40]}
    with pytest.warns(UserWarning) as rec:
        warn_if_searched_on_other_input(spec, "s#0", "dcase-logmel")
    assert [str(w.message) for w in rec] == [
        "--chromosome s#0: searched on kws inputs [1, 101, 40], but this run's data.feature 'dcase-logmel' "
        "gives [1, 40, 501]"]


def test_a_preset_that_is_not_the_spaces_retraining_recipe_warns(tmp_path, recwarn):
    # Before (ASC walkthrough QA): `--preset asc-baseline --chromosome` on a CPU space's front trained the
    # paper's recipe (batch 192, EMA 0.9986) on a fixture without a word; its pareto.json names asc-cpu.
    from audionas.commands.train import warn_if_other_recipe

    cpu_space = {"preset_hint": "asc-cpu"}
    with pytest.warns(UserWarning, match=r"^--chromosome s#0: its space's retraining preset is 'asc-cpu'; "
                                         r"--preset asc-baseline is another recipe \(give --preset asc-cpu"):
        warn_if_other_recipe(cpu_space, "s#0", "asc-baseline")
    recwarn.clear()
    warn_if_other_recipe(cpu_space, "s#0", "asc-cpu")
    warn_if_other_recipe({"preset_hint": "asc-baseline"}, "s#0", "asc-baseline-fold")  # built on the hint
    (tmp_path / "mine.yaml").write_text("base: asc-cpu\nepochs: 1\n")  # a file of one's own, built on it
    warn_if_other_recipe(cpu_space, "s#0", str(tmp_path / "mine.yaml"))
    warn_if_other_recipe(cpu_space, "s#0", str(tmp_path / "run" / "config.yaml"))  # a resume
    warn_if_other_recipe({"preset_hint": ""}, "s#0", "asc-baseline")
    assert not [w for w in recwarn if "retraining preset" in str(w.message)]


def test_help_of_train_and_evaluate(capsys):
    for cmd in ("train", "evaluate"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: audionas " + cmd in capsys.readouterr().out


def test_a_model_reading_time_along_the_other_axis_than_the_data_is_refused(speech_commands_root, tmp_path,
                                                                             capsys):
    """MFCCs are time x coefficient: TC-ResNet told time runs along W would convolve over the coefficients."""
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root), "--out",
            str(tmp_path / "r"), "model_args.time_axis=w"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("config field 'model_args.time_axis': 'w' reads the input as C x freq x "
                                     "time, but this data's features are C x time x freq; set "
                                     "model_args.time_axis=h") in err
    assert not (tmp_path / "r" / "config.yaml").exists()


@pytest.mark.slow
def test_end_to_end_train_then_evaluate(speech_commands_root, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root), "--out", str(run),
            "model=tc-resnet8", "epochs=2", "data.batch_size=16", "data.num_workers=0", "optim.lr=0.01"]
    assert main(argv) == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["n"] > 0 and len(test["per_class_f1"]) == 12 and test["split_rule"] == "lists"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--out", str(tmp_path / "ev")]) == 0
    rep = json.loads(capsys.readouterr().out)
    # the evaluate command rebuilds the model from the saved config and reproduces the trainer's test score
    assert rep["accuracy"] == pytest.approx(test["accuracy"]) and rep["n"] == test["n"]
    assert (tmp_path / "ev" / "confusion_test.png").is_file()
    # two runs = an ensemble of posteriors; the checkpoint path works as well as the run directory
    assert main(["evaluate", str(run), str(run / "checkpoints" / "last.pt"), "--data",
                 str(speech_commands_root), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "member" in out
    # the same command again: the run is complete, nothing is retrained
    before = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert main(argv) == 0
    after = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert main(argv[:-1] + ["optim.lr=0.02"]) == 2


def test_a_diverging_run_stops_with_one_line(speech_commands_root, tmp_path, capsys, monkeypatch):
    import audionas.train.trainer as trainer

    forward_loss = trainer._forward_loss

    def nan_loss(*args):  # what an lr that blows the weights up ends in
        logits, loss = forward_loss(*args)
        return logits, loss * float("nan")

    monkeypatch.setattr(trainer, "_forward_loss", nan_loss)
    run = tmp_path / "run"
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root), "--out", str(run),
            "model=tc-resnet8", "epochs=2", "data.batch_size=16"]
    threads = set(threading.enumerate())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{run}: training diverged in epoch 1 (train_loss nan); lower optim.lr" in err
    assert not run.exists()  # nothing of worth was written: no run folder is left
    # Before: TensorBoard's writer thread lived on (tqdm's monitor thread lives on by design).
    assert [t for t in set(threading.enumerate()) - threads if t.name != "tqdm_monitor"] == []


def test_a_python_call_that_fails_before_its_first_checkpoint_leaves_no_run_behind(speech_commands_root,
                                                                                 tmp_path, monkeypatch):
    # Before (Python API QA): only the command cleaned up; train() from Python left config.yaml and tb/.
    import audionas.train.trainer as trainer

    forward_loss = trainer._forward_loss

    def nan_loss(*args):
        logits, loss = forward_loss(*args)
        return logits, loss * float("nan")

    monkeypatch.setattr(trainer, "_forward_loss", nan_loss)
    cfg = load_config(TrainConfig, "kws-tc-resnet-cpu", ["model=tc-resnet8", "epochs=2",
                                                         "data.batch_size=16"],
                      {"data": {"root": str(speech_commands_root)}})
    with pytest.raises(UserError, match="training diverged in epoch 1"):
        trainer.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(UserError, match="training diverged in epoch 1"):
        trainer.train(cfg, tmp_path / "mine")
    assert list((tmp_path / "mine").iterdir()) == []  # an empty folder of the caller's own stays


def test_a_python_call_with_a_file_as_its_run_folder_is_a_user_error(tmp_path):
    # Before (API QA): train(), train_supernet() and run_oneshot_search() raised a bare FileExistsError.
    from audionas.nas.oneshot.config import SearchConfig, SupernetConfig
    from audionas.nas.oneshot.fairnas import train_supernet
    from audionas.nas.oneshot.search import run_oneshot_search
    from audionas.train.trainer import train

    f = tmp_path / "notes.txt"
    f.write_text("keep")
    for call in (lambda: train(TrainConfig(), f), lambda: train_supernet(SupernetConfig(), f),
                 lambda: run_oneshot_search(tmp_path, f, SearchConfig()),
                 lambda: train(TrainConfig(), f / "r")):
        with pytest.raises(UserError, match=rf"^--out {f}(/r: cannot be a folder \({f} is a file\)|: exists "
                                            rf"and is not a folder)$"):
            call()
    assert f.read_text() == "keep"


def test_the_genotype_of_an_unfinished_darts_search_warns(tmp_path):
    # before: the best-so-far cell of a stopped search trained without a word
    import warnings

    from audionas.nas.darts.genotype import DARTS_V2

    search = tmp_path / "search"
    search.mkdir()
    DARTS_V2.save(search / "genotype.json")
    (search / "config.yaml").write_text("ops: nas1\nepochs: 50\n")
    said = (rf"^{search / 'genotype.json'}: the DARTS search in {search} is unfinished \(no summary.json\): "
            rf"this is its best cell so far; rerunning the search resumes it$")
    with pytest.warns(UserWarning, match=said):
        resolve(["--preset", "kws-darts-retrain-cpu", "--genotype", str(search / "genotype.json")])
    (search / "summary.json").write_text(json.dumps({"epoch": 50}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve(["--preset", "kws-darts-retrain-cpu", "--genotype", str(search / "genotype.json")])
        (search / "config.yaml").write_text("model: res15\n")  # a training run's folder: not a search
        (search / "summary.json").unlink()
        resolve(["--preset", "kws-darts-retrain-cpu", "--genotype", str(search / "genotype.json")])


def test_a_model_name_typo_is_said_before_the_data_is_read(tmp_path, monkeypatch):
    # before (API QA): said after the dataset scan and its warnings (~30 s on Speech Commands v0.02); an
    # argument typo is still found when the factory runs (each checks its own **kwargs)
    import audionas.train.run_start as run_start
    from audionas.train.trainer import train

    def no_scan(*args, **kwargs):
        raise AssertionError("the data was read first")

    monkeypatch.setattr(run_start, "build_data", no_scan)
    cfg = load_config(TrainConfig, "kws-tc-resnet-cpu", ["model=tc-resnet99"],
                      {"data": {"root": str(tmp_path)}})
    with pytest.raises(UserError, match=r"^model 'tc-resnet99': unknown \(known: "):
        train(cfg, tmp_path / "run")


@pytest.mark.parametrize("cmd", [["train", "--preset", "kws-tc-resnet-cpu"],
                                 ["search", "darts", "--preset", "kws-nas1-cpu"],
                                 ["search", "supernet", "--preset", "kws-fairnas-cpu"]])
def test_an_out_that_is_not_utf8_is_refused_before_the_data_is_read(tmp_path, capsys, cmd):
    # Before (QA): TensorBoard's UnicodeEncodeError traceback, after the data scan
    import os

    out = tmp_path / os.fsdecode(b"bad\xffname")
    assert main([*cmd, "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"audionas: error: --out {tmp_path}/bad\\udcffname: not UTF-8 text, and TensorBoard "
                   f"writes only under UTF-8 paths; choose another --out\n")
    assert not out.exists()


def test_genotype_over_another_models_preset_drops_that_models_arguments(tmp_path):
    # kws-tc-resnet-cpu sets model_args {bn_momentum, bn_eps} for TC-ResNet: not arguments of a DARTS network
    cfg, _ = resolve(["--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                      "--genotype", "NAS1", "--cells", "4"])
    assert (cfg.model, cfg.model_args) == ("darts", {"genotype": "NAS1", "cells": 4})


def test_the_default_run_folder_of_a_preset_file_is_its_name_without_the_suffix(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("base: kws-tc-resnet-cpu\n")
    _, out = resolve(["--preset", str(tmp_path / "mine.yaml"), "--data", str(tmp_path)])
    assert out == Path("runs") / "mine"


@pytest.mark.parametrize("flag", ["--cells", "--channels"])
def test_a_darts_size_flag_without_genotype_is_refused_not_ignored(tmp_path, flag):
    with pytest.raises(UserError, match=r"^--cells/--channels: only valid together with --genotype$"):
        resolve(["--preset", "kws-res15", "--data", str(tmp_path), "--out", str(tmp_path / "r"), flag, "8"])
