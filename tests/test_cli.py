import argparse
import itertools

import numpy as np
import pytest
import soundfile as sf

from audionas.cli import _discover, _parse, build_parser, main


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_every_subcommand_has_help(capsys):
    paths = [c.path for c in _discover()]
    assert len(paths) == len(set(paths)), "a subcommand is defined twice"
    for path in paths:
        with pytest.raises(SystemExit) as e:
            main([*path, "--help"])
        assert e.value.code == 0, path
        assert capsys.readouterr().out.strip(), path


def _subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """prog ('audionas train', 'audionas search nsga2', ...) -> its parser, groups included."""
    from audionas.cli import build_parser

    parsers = {}
    for action in build_parser()._subparsers._group_actions[0].choices.values():
        parsers[action.prog] = action
        for a in action._actions:
            if isinstance(getattr(a, "choices", None), dict):
                parsers.update({p.prog: p for p in a.choices.values()})
    return parsers


def test_every_option_with_a_default_names_it_in_its_help():
    """Before: search nsga2/random hid --population 64, --batch 64, --seed 0 ..., which the README's pairing
    of random search with NSGA-II leans on."""
    parsers = _subcommand_parsers()
    helps = {}
    for sub in parsers.values():
        formatter = sub._get_formatter()
        for a in sub._actions:
            if a.option_strings and not a.required and not any(
                    a.default is v for v in (None, False, argparse.SUPPRESS)):
                # help=None would print no line at all: no default shown
                helps[(sub.prog, a.option_strings[-1])] = a.help and formatter._get_help_string(a)
    assert [k for k, text in helps.items() if not text or "default" not in text] == []
    # the search's flags default to its preset's values, which default to SearchConfig's: the help says both
    random = " ".join(parsers["audionas search random"].format_help().split())
    nsga2 = " ".join(parsers["audionas search nsga2"].format_help().split())
    assert "one state checkpoint (default: 64, or the preset's)" in random
    assert "(default: 0, or the preset's)" in nsga2
    assert "I, the paper: 70 (default: 70, or the preset's)" in nsga2


def test_group_without_subcommand_prints_help_and_fails(capsys):
    # the help goes to stderr, as any usage error (QA: it was on stdout, with exit 2)
    groups = {c.path[0] for c in _discover() if len(c.path) == 2}
    for g in [*groups, None]:
        assert main([g] if g else []) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"usage: audionas {g or ''}".rstrip())


def test_groups_are_described_and_epilog_presets_exist():
    import re
    from pathlib import Path

    import audionas
    from audionas.cli import EPILOG, GROUP_HELP

    assert {c.path[0] for c in _discover() if len(c.path) == 2} == set(GROUP_HELP)
    presets = Path(audionas.__file__).parent / "presets"
    for name in re.findall(r"--preset (\S+)", EPILOG):
        assert (presets / f"{name}.yaml").is_file(), name


def test_overrides_may_follow_options_and_other_stray_arguments_fail_in_one_line(capsys):
    from audionas.cli import _parse, build_parser

    args = _parse(build_parser(), ["train", "--preset", "kws-tc-resnet-cpu", "epochs=1", "--out", "r",
                                   "optim.lr=0.01"])
    assert args.overrides == ["epochs=1", "optim.lr=0.01"] and args.out == "r"
    with pytest.raises(SystemExit) as e:
        _parse(build_parser(), ["train", "--out", "r", "epochs=1", "--nope"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audionas train: error: unrecognized arguments: --nope" in err
    with pytest.raises(SystemExit):  # a command without overrides takes no key=value
        _parse(build_parser(), ["report", "r", "--out", "x", "a=1"])


@pytest.mark.parametrize("flag", ["--quiet", "--no-progress"])
def test_every_data_command_with_a_progress_bar_takes_both_spellings_of_no_progress(flag):
    # Before (help audit): synth-speech-commands took only --quiet, the DCASE commands only --no-progress.
    from audionas.cli import _parse, build_parser

    for argv, dest in ((["data", "synth-speech-commands", "--out", "d"], "quiet"),
                       (["data", "prepare-dcase2018", "--root", "r", "--out", "c"], "no_progress")):
        assert getattr(_parse(build_parser(), [*argv, flag]), dest) is True
        assert getattr(_parse(build_parser(), argv), dest) is False


def test_bad_flag_values_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "synth-speech-commands", "--out", "x", "--seed", "-1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed: expected an integer >= 0" in err


@pytest.mark.parametrize("argv, needle", [
    # before: named the config field 'population', not the flag typed
    (["search", "random", "--supernet", "s", "--out", "o", "--batch", str(10**20)],
     "argument --batch: expected a 64-bit integer"),
    (["search", "nsga2", "--supernet", "s", "--out", "o", "--generations", "0"],
     "argument --generations: expected an integer >= 1, got '0'"),
    (["search", "nsga2", "--supernet", "s", "--out", "o", "--candidates-per-pass", "1e3"],
     "argument --candidates-per-pass: expected an integer >= 1, got '1e3'"),
    # before: 0 quietly meant data.eval_batch_size
    (["evaluate", "run", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got '0'"),
    (["predict", "run", "a.wav", "--top", "-2"], "argument --top: expected an integer >= 1, got '-2'"),
    # before: "expected >= 1", though 0 (the default) is accepted
    (["data", "synth-speech-commands", "--out", "x", "--workers", "-1"],
     "argument --workers: expected an integer >= 0, got '-1'"),
    # before: one message for all four flags, "expected --workers >= 0, --limit >= 0 and positive sizes"
    (["data", "prepare-dcase2018", "--root", "r", "--out", "o", "--limit", "-1"],
     "argument --limit: expected an integer >= 0, got '-1'"),
    (["data", "prepare-dcase2018", "--root", "r", "--out", "o", "--chunk", "0"],
     "argument --chunk: expected an integer >= 1, got '0'"),
    (["data", "prepare-dcase2018", "--root", "r", "--out", "o", "--checkpoint-every", "0"],
     "argument --checkpoint-every: expected an integer >= 1, got '0'"),
    (["data", "make-dcase-fixture", "--out", "x", "--segments", "0"],
     "argument --segments: expected an integer >= 1, got '0'"),
    (["train", "--genotype", "DARTS_V2", "--cells", "-3"], "argument --cells: expected an integer >= 1"),
    (["profile", "darts", "--channels", "0"], "argument --channels: expected an integer >= 1, got '0'"),
])
def test_count_flags_name_themselves_and_their_range(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "o.npy"  # its parent is a file
    assert main(["features", "--preset", "honk-mfcc", str(wav), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audionas: error:" in err and "Traceback" not in err


def test_a_name_with_a_newline_is_still_one_line(tmp_path, capsys):
    # Before (QA): `audionas: error: x` and `y.wav: audio file not found` on two lines.
    missing = tmp_path / "x\ny.wav"
    assert main(["features", "--preset", "honk-mfcc", str(missing), "--out", str(tmp_path / "o.npy")]) == 2
    assert capsys.readouterr().err == f"audionas: error: {tmp_path}/x\\ny.wav: audio file not found\n"
    assert main(["profile", "x\ny"]) == 2
    assert capsys.readouterr().err.startswith("audionas: error: model 'x\\ny': unknown (known: ")


@pytest.mark.parametrize("name", ["a.wav", "a\nb.wav"])
def test_warnings_print_in_one_line(tmp_path, monkeypatch, name):
    import warnings

    import numpy as np
    import soundfile as sf

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    wav = tmp_path / name
    sf.write(wav, np.zeros(8000, np.float32), 8000, subtype="PCM_16")  # 8 kHz: resampled with a warning
    with pytest.warns(UserWarning, match="resampling") as seen:
        assert main(["features", "--preset", "honk-mfcc", str(wav), "--out", str(tmp_path / "o.npy")]) == 0
    w = seen[0]
    line = warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
    assert line.startswith("audionas: warning: ") and line.count("\n") == 1 and "resampling" in line


def test_a_warning_is_printed_once_however_often_it_comes(tmp_path, monkeypatch, capfd):
    # Before: Python's once-per-place memory is reset by every filter change (catch_warnings), so torch's
    # "This DataLoader will create 2 worker processes" came again each epoch on a 1-core machine.
    import sys
    import warnings

    from audionas import cli

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    monkeypatch.setattr(cli, "_SHOWN", set(), raising=False)
    assert main(["profile", "res15", "--json"]) == 0
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda *w, **_: sys.stderr.write(warnings.formatwarning(*w[:4]))  # as Python's
        for text in ("same", "other", "same"):
            with warnings.catch_warnings():  # a filter change: Python alone would say "same" twice
                warnings.simplefilter("ignore", DeprecationWarning)
            warnings.warn(text, UserWarning, stacklevel=1)
    assert capfd.readouterr().err == "audionas: warning: same\naudionas: warning: other\n"
    from audionas.errors import ReadWarning

    monkeypatch.setenv("RANK", "1")
    assert warnings.formatwarning("new", UserWarning, "f.py", 1) == "audionas: warning: new\n"  # no torchrun
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun: its ranks build the same data and model; rank 0 says it
    assert warnings.formatwarning("newer", UserWarning, "f.py", 1) == ""
    # but a file is read by the rank whose batch holds it
    assert warnings.formatwarning("a.wav", ReadWarning, "f.py", 1) == "audionas: warning: a.wav\n"
    monkeypatch.setenv("RANK", "0")
    assert warnings.formatwarning("newer", UserWarning, "f.py", 1) == "audionas: warning: newer\n"


@pytest.mark.parametrize("cmd, what", [
    (["train", "--preset", "kws-tc-resnet-cpu"], "training run"),
    (["search", "supernet", "--preset", "kws-fairnas-cpu"], "supernet run"),
    (["search", "darts", "--preset", "kws-nas1-cpu"], "DARTS search")])
def test_out_that_is_another_folder_or_below_a_file_is_refused(tmp_path, capsys, cmd, what):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    argv = [*cmd, "--data", str(tmp_path / "no-data")]
    assert main([*argv, "--out", str(other)]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --out {other}: folder is not empty and holds no "
                                       f"{what}; use another --out\n")
    assert [p.name for p in other.iterdir()] == ["thesis.tex"]
    assert main([*argv, "--out", str(other / "thesis.tex" / "run")]) == 2
    assert f"--out {other / 'thesis.tex' / 'run'}: cannot be a folder ({other / 'thesis.tex'} is a file)" in (
        capsys.readouterr().err)
    killed = tmp_path / "killed"  # a kill during the first atomic write left only its hidden temp file
    killed.mkdir()
    (killed / ".config.yaml.x1y2.tmp").write_text("half")
    assert main([*argv, "--out", str(killed)]) == 2
    assert "--out" not in capsys.readouterr().err  # got past the --out check, to the missing data


@pytest.mark.parametrize("cmd", [
    ["train", "--preset", "kws-tc-resnet-cpu"], ["search", "darts", "--preset", "kws-nas1-cpu"],
    ["data", "make-dcase-fixture"], ["data", "synth-speech-commands"], ["report", "RUN"],
    ["plot-search", "SEARCH"], ["evaluate", "RUN"]])
def test_an_out_that_is_a_broken_link_is_named_as_one(tmp_path, capsys, cmd):
    # Before (QA): "dangling: File exists", "dangling/confusion_test.png: cannot write (File exists)", or a
    # temporary folder's name ("dangling.tmp-nk96kk24: Not a directory").
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "gone")
    assert main([*cmd, "--out", str(link)]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --out {link}: a broken link (its target "
                                       f"{tmp_path / 'gone'} does not exist); mend the link or choose "
                                       f"another --out\n")
    assert not (tmp_path / "gone").exists()


def test_an_out_through_a_loop_of_links_is_one_line(tmp_path, capsys):
    # Before (QA): pathlib's "RuntimeError: Symlink loop from ..." traceback (exit 1), and --out on the loop
    # itself said "a broken link (its target loopB does not exist)" though loopB exists.
    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, dtype=np.float32), 16000)
    out = tmp_path / "loopA" / "x.npy"
    assert main(["features", "--preset", "honk-mfcc", str(wav), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {tmp_path / 'loopA' / 'x.npy'}: its path runs "
                                       f"through a loop of links\n")
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out",
                 str(tmp_path / "loopA")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: --out {tmp_path / 'loopA'}: a link that leads "
                                       f"back to itself (a loop of links); mend the link or choose another "
                                       f"--out\n")


KIND_CMDS = {"training run": ["train"], "supernet run": ["search", "supernet"],
             "DARTS search": ["search", "darts"]}
KIND_PRESETS = {"training run": "kws-tc-resnet-cpu", "supernet run": "kws-fairnas-cpu",
                "DARTS search": "kws-nas1-cpu"}


@pytest.mark.parametrize("kind, other", list(itertools.permutations(KIND_CMDS, 2)))
def test_out_holding_another_kind_of_run_is_named(tmp_path, capsys, kind, other):
    """Before: `train --out SUPERNET_RUN` failed with "config field 'kind': unknown; did you mean data.kind?"
    (resume, no --preset) or "unreadable run config (...)" (with --preset)."""
    from audionas.config import dump_yaml, load_config
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.nas.oneshot.space import space_mapping
    from audionas.train.config import TrainConfig

    cls = {"training run": TrainConfig, "supernet run": SupernetConfig, "DARTS search": DartsSearchConfig}
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(cls[other], KIND_PRESETS[other], expand={"space": space_mapping})
    (run / "config.yaml").write_text(dump_yaml(cfg))
    before = sorted(p.name for p in run.iterdir())
    for preset in ([], ["--preset", KIND_PRESETS[kind]]):
        assert main([*KIND_CMDS[kind], *preset, "--data", str(tmp_path), "--out", str(run)]) == 2
        assert capsys.readouterr().err == (f"audionas: error: {run}: holds a {other}, not a {kind}; "
                                           f"choose another --out\n")
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.parametrize("cmd", [["report", "RUN"], ["plot-search", "SEARCH"],
                                 ["data", "synth-speech-commands", "--speakers", "1"],
                                 ["data", "prepare-dcase2018", "--root", "ROOT"]])
def test_folder_outputs_below_a_file_name_the_file_before_any_work(tmp_path, capsys, cmd):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    assert main([*cmd, "--out", str(file / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"audionas: error: --out {file / 'out'}: cannot be a folder ({file} is a file)\n"
    assert main([*cmd, "--out", str(file)]) == 2
    assert capsys.readouterr().err == f"audionas: error: --out {file}: exists and is not a folder\n"
    assert file.read_text() == "keep me"


def test_features_and_predict_of_a_multichannel_file_without_channel_name_the_option(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "node.wav"
    sf.write(wav, np.zeros((16000, 4), np.float32), 16000, subtype="PCM_16")
    out = tmp_path / "o.npy"
    assert main(["features", "--preset", "dcase-logmel", str(wav), "--out", str(out)]) == 2
    want = f"audionas: error: {wav}: 4 channels, expected one: choose it with --channel 0..3\n"
    assert capsys.readouterr().err == want.replace("\n", ", or --channel mix to average their samples\n")
    assert main(["features", "--preset", "dcase-logmel", str(wav), "--out", str(out), "--channel", "3"]) == 0
    assert out.is_file()
    assert main(["predict", str(tmp_path / "run"), str(tmp_path)]) == 2  # the folder holds node.wav
    assert capsys.readouterr().err == want.replace("\n", ", --channel mean to average their predictions or "
                                                   "--channel mix to average their samples (as "
                                                   "data.mixdown=true trains)\n")


def test_predict_checks_channel_against_every_file_before_any_output(tmp_path, capsys):
    """--channel 2 fits the 4-channel file but not the stereo one: the error comes before the run is even
    read. A mono file takes any --channel (before, QA: one mono file stopped a folder that mixes both)."""
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "a_quad.wav", np.zeros((16000, 4), np.float32), 16000, subtype="PCM_16")
    sf.write(tmp_path / "b_mono.wav", np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    sf.write(tmp_path / "c_stereo.wav", np.zeros((16000, 2), np.float32), 16000, subtype="PCM_16")
    assert main(["predict", str(tmp_path / "no-run"), str(tmp_path), "--channel", "2"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    stereo = tmp_path / "c_stereo.wav"
    assert err == f"audionas: error: --channel: expected 0..1 for {stereo} (2 channel(s)), got 2\n"
    stereo.unlink()
    assert main(["predict", str(tmp_path / "no-run"), str(tmp_path), "--channel", "2"]) == 2
    assert "no-run" in capsys.readouterr().err  # past the channel check: the missing run is what stops it


def test_features_out_must_be_a_npy_file(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    for out in (tmp_path / "a.txt", tmp_path / ".npy"):  # ".npy": was written as a hidden file
        assert main(["features", "--preset", "honk-mfcc", str(wav), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err == f"audionas: error: --out {out}: expected a .npy file name (numpy.load reads it)\n"
        assert not out.exists()


@pytest.mark.parametrize("cmd,module,name", [
    (["search", "darts", "--preset", "kws-nas1-cpu"], "audionas.nas.darts.search", "search"),
    (["search", "supernet", "--preset", "kws-fairnas-cpu"], "audionas.nas.oneshot.fairnas", "train_supernet"),
    (["train", "--preset", "kws-tc-resnet-cpu"], "audionas.train.trainer", "train")])
def test_run_commands_leave_the_process_group_even_when_they_fail(tmp_path, monkeypatch, cmd, module, name):
    """Under torchrun (NCCL on GPUs) every command that joins the process group destroys it on the way out
    (before: only `train` did; `search darts` and `search supernet` left it to the interpreter's exit)."""
    import importlib

    import audionas.utils.dist as dist_utils
    from audionas.errors import UserError

    def fail(*args, **kwargs):
        raise UserError("stopped")

    cleaned = []
    monkeypatch.setattr(importlib.import_module(module), name, fail)
    monkeypatch.setattr(dist_utils, "cleanup", lambda: cleaned.append(True))
    assert main([*cmd, "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert cleaned == [True]


def test_a_reader_that_stops_early_is_no_error(tmp_path):
    """`audionas predict RUN DIR | head`: before, 'audionas: error: Broken pipe (set AUDIONAS_DEBUG=1...)' and
    exit 2; now quiet, with the exit code of a Unix tool stopped by SIGPIPE."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = subprocess.run([sys.executable, "-m", "audionas", "profile", "res8", "--repeats", "0"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_number_flag_types_take_their_whole_range_and_refuse_its_edges():
    import argparse

    from audionas.commands import nonnegative_int, positive_float, positive_int

    top = 2**63 - 1  # numpy / torch seeds and sizes are 64-bit
    assert nonnegative_int(str(top)) == top and positive_int(str(top)) == top and nonnegative_int("0") == 0
    for f, text in ((nonnegative_int, str(top + 1)), (positive_int, str(top + 1)), (nonnegative_int, "-1"),
                    (positive_int, "0"), (positive_int, "1.0")):
        with pytest.raises(argparse.ArgumentTypeError):
            f(text)
    assert positive_float("1e-3") == 0.001 and positive_float("2") == 2.0
    for text in ("inf", "nan", "0", "-1", "ten"):  # --seconds inf would render forever
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive number, got '{text}'"):
            positive_float(text)


def test_one_process_commands_refuse_torchrun(monkeypatch, capsys, tmp_path):
    # before: `torchrun -m audionas evaluate|export|search nsga2 ...` ran once per rank, each rank writing the
    # same files: one failed on the other's temporary file
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == ("audionas: error: evaluate: runs in one process; start it without "
                                       "torchrun (torchrun runs train, search darts, search supernet)\n")
    assert main(["search", "nsga2", "--supernet", "s", "--out", str(tmp_path / "o")]) == 2
    assert "search nsga2: runs in one process" in capsys.readouterr().err
    assert main(["train", "--preset", "no-such-preset", "--out", str(tmp_path / "r")]) == 2
    assert "runs in one process" not in capsys.readouterr().err  # train splits its work over the ranks
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


GLOO_PEER_GONE = ("[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
                  "[127.0.0.1]:29500")
NCCL_PEER_GONE = ("NCCL error in: /pytorch/torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:3356, remote "
                  "process exited or there was a network error, NCCL version 2.27.3\nncclRemoteError: A call "
                  "failed possibly due to a network error or a remote process exiting prematurely.")


@pytest.mark.parametrize("message", [GLOO_PEER_GONE, NCCL_PEER_GONE])
def test_a_torchrun_process_whose_peer_stopped_says_so_in_one_line(monkeypatch, capsys, tmp_path, message):
    # before: the other rank's error line, then this rank's gloo (or NCCL) traceback
    import audionas.commands.train as train_cmd

    def peer_gone(*a, **k):
        raise RuntimeError(message)

    monkeypatch.setattr(train_cmd, "run_job", peer_gone)
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    with pytest.raises(RuntimeError):  # one process: a real error, with its traceback
        main(argv)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(argv) == 2
    assert capsys.readouterr().err == ("audionas: error: process 1 of this torchrun job stops: another one "
                                       "stopped first (its error is above, unless it was killed)\n")

    def other(*a, **k):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(train_cmd, "run_job", other)
    with pytest.raises(RuntimeError, match="shapes"):  # any other error keeps its traceback
        main(argv)


@pytest.mark.parametrize("message", ["Broken pipe", "[gloo] Connection closed by peer"])
def test_other_pipe_errors_and_debug_mode_keep_the_traceback_under_torchrun(monkeypatch, tmp_path, message):
    # a broken pipe outside gloo / NCCL is not a stopped peer; AUDIONAS_DEBUG=1 asks for the traceback
    import audionas.commands.train as train_cmd

    def fail(*a, **k):
        raise RuntimeError(message)

    monkeypatch.setattr(train_cmd, "run_job", fail)
    monkeypatch.setenv("WORLD_SIZE", "2")
    if "gloo" in message:
        monkeypatch.setenv("AUDIONAS_DEBUG", "1")
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    with pytest.raises(RuntimeError, match="Broken pipe|Connection closed by peer"):
        main(argv)


def test_a_preset_mixing_two_kinds_is_not_named_as_one_of_them(tmp_path, capsys):
    # A preset with both `model` (training) and `space` (supernet) fields given to DARTS is no preset of
    # one other command: the config loader names its unknown field, not an arbitrary one of the two kinds.
    preset = tmp_path / "mixed.yaml"
    preset.write_text("model: res8\nspace: kws-tiny\n")
    assert main(["search", "darts", "--preset", str(preset), "--data", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown" in err and " preset (`audionas " not in err
    assert not (tmp_path / "o").exists()


def test_a_preset_of_another_command_is_named_as_such(tmp_path, capsys):
    # Before: "config field 'kind': unknown; did you mean data.kind?" for a supernet preset given to DARTS.
    cases = ((["search", "darts"], "kws-fairnas-cpu",
              "a supernet run preset (`audionas search supernet`), not a DARTS search one"),
             (["train"], "kws-nas1-cpu",
              "a DARTS search preset (`audionas search darts`), not a training run one"),
             (["search", "supernet"], "kws-res15-cpu",
              "a training run preset (`audionas train`), not a supernet run one"))
    for cmd, preset, want in cases:
        assert main([*cmd, "--preset", preset, "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err == f"audionas: error: --preset {preset}: {want}\n"
        assert not (tmp_path / "o").exists()


def test_a_runs_config_as_preset_needs_an_out(tmp_path, capsys, monkeypatch):
    # Before: `train --preset RUN/config.yaml` trained into runs/config, whichever run the config came from.
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "r1"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 1\n")  # a field of every kind of run
    for cmd in (["train"], ["search", "darts"], ["search", "supernet"]):
        assert main([*cmd, "--preset", str(run / "config.yaml"), "--data", str(tmp_path)]) == 2
        assert capsys.readouterr().err == (f"audionas: error: --out: required with --preset {run}/config.yaml"
                                           f" (a run's config: --out {run} resumes that run, another folder "
                                           "starts a new one)\n")
    assert not (tmp_path / "runs").exists()


def test_an_override_of_a_field_a_flag_sets_is_refused(tmp_path, capsys, monkeypatch):
    # Before, `--data X data.root=Y` trained on Y, and `--genotype G model=res15` failed as "model 'res15':
    # unknown argument(s) genotype".
    out = str(tmp_path / "o")
    cases = ((["train", "--preset", "kws-tc-resnet-cpu", "--data", "X", "data.root=Y"], "data.root=Y",
              "data.root is set by --data"),
             (["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "DARTS_V2", "model=res15"],
              "model=res15", "model is set by --genotype"),
             (["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "DARTS_V2", "--cells", "4",
               "model_args={cells: 6}"], "model_args={cells: 6}", "model_args.cells is set by --cells"),
             (["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "DARTS_V2", "model_args=5"],
              "model_args=5", "model_args.genotype is set by --genotype"),
             (["search", "darts", "--preset", "kws-nas1-cpu", "--data", "X", "data.root=Y"], "data.root=Y",
              "data.root is set by --data"),
             (["search", "supernet", "--preset", "kws-fairnas-cpu", "--data", "X", "data.root=Y"],
              "data.root=Y", "data.root is set by --data"))
    for args, item, want in cases:
        assert main([*args, "--out", out]) == 2
        assert capsys.readouterr().err == f"audionas: error: override '{item}': {want} too; give it once\n"
    # the flag's own value again, or a model argument no flag sets, is fine
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path / "nowhere"),
                 f"data.root={tmp_path / 'nowhere'}", "--out", out]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    # a mapping above a flag's field that does not name it merges (before (QA): refused as setting genotype)
    assert main(["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "DARTS_V2", "--data",
                 str(tmp_path / "nowhere"), "model_args={auxiliary: true}", "data={batch_size: 8}",
                 "--out", out]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    # a number-like folder name given both ways is the same value (before: data.root=010 was YAML's octal 8)
    monkeypatch.chdir(tmp_path)
    args = ["train", "--preset", "kws-tc-resnet-cpu", "--data", "010", "data.root=010", "--out", out]
    assert main(args) == 2
    assert capsys.readouterr().err.endswith("/010: dataset folder not found\n")
    # a field that is not text reads 010 as YAML does (8): not the flag's value (review)
    args = ["train", "--preset", "kws-darts-retrain-cpu", "--genotype", "010", "model_args.genotype=010"]
    assert main([*args, "--out", out]) == 2
    assert capsys.readouterr().err.endswith("model_args.genotype is set by --genotype too; give it once\n")
    assert not (tmp_path / "o").exists()


def test_ctrl_c_while_starting_up_is_one_line(monkeypatch, capsys):
    # Before: an interrupt while the command modules (and torch) were imported printed a traceback (QA: in 5
    # of 8 tries within the first second).
    import audionas.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["--help"]) == 130
    assert capsys.readouterr().err == "audionas: interrupted\n"


def test_ctrl_c_in_the_middle_of_a_checkpoint_write_is_one_line(monkeypatch, capsys, tmp_path):
    # Before: torch.save's zip writer, closed after the KeyboardInterrupt, raised "unexpected pos", printed
    # with its traceback (exit 1); the temporary file is removed.
    import io

    import torch

    import audionas.commands.train as train_cmd
    from audionas.utils.atomic import atomic_write

    class InterruptedFile(io.RawIOBase):
        def __init__(self, f):
            self.f, self.calls = f, 0

        def writable(self):
            return True

        def write(self, b):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return self.f.write(b)

    def save_interrupted(*a, **k):
        atomic_write(tmp_path / "last.pt", lambda f: torch.save({"w": torch.zeros(1000)}, InterruptedFile(f)))

    monkeypatch.setattr(train_cmd, "run_job", save_interrupted)
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    assert main(argv) == 130
    assert capsys.readouterr().err == "audionas: interrupted\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, name", [
    (["train", "--preset", "kws-tc-resnet-cpu", "--out", ""], "--out"),
    (["export", "RUN", "--out", ""], "--out"),
    (["evaluate", ""], "RUN_OR_CHECKPOINT"),
    (["profile", "res15", "--input", ""], "--input"),  # was: the default shape, without a word
    (["search", "nsga2", "--supernet", "", "--out", "S"], "--supernet"),
    (["train", "--preset", "kws-tc-resnet-cpu", "epochs=1", ""], "key=value"),
])
def test_an_empty_argument_is_refused_not_read_as_the_default_or_current_folder(capsys, tmp_path, monkeypatch,
                                                                               argv, name):
    # Before: `--out "$RUN"` with RUN unset trained into runs/<preset> (resuming whatever was there), and
    # export wrote RUN/model.pt2.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {name}: expected a non-empty value, got ''" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_every_preset_a_help_text_names_exists_and_each_command_names_its_own():
    # Before (QA): `search random --help` offered asc-nsga2 presets it refuses; `train --preset` named none.
    import re

    from audionas.config import list_presets, load_preset_dict
    from audionas.utils.rundir import config_kind

    known = set(list_presets())
    kind_of = {"train": "training run", "search darts": "DARTS search", "search supernet": "supernet run",
               "search nsga2": "one-shot search", "search random": "one-shot search"}
    parsers = _subcommand_parsers()
    for command, kind in kind_of.items():
        sub = parsers[f"audionas {command}"]
        preset = next(a for a in sub._actions if "--preset" in a.option_strings)
        shown = sub._get_formatter()._expand_help(preset)  # the help as printed
        named = re.findall(r"\b((?:kws|asc)-[a-z0-9-]*[a-z0-9])\b", shown)
        assert named and set(named) <= known, (command, named)
        assert {config_kind(load_preset_dict(n)) for n in named} == {kind}, command


def test_a_leading_tilde_names_the_home_folder_in_arguments_and_data_paths(tmp_path, monkeypatch, capsys,
                                                                        speech_commands_root):
    # Before (QA): `--out '~/run'` made a folder named "~" here, and `data.root=~/sc` (which the shell does
    # not expand: "data.root" is no variable name) read "./~/sc": "dataset folder not found".
    import shutil

    home, here = tmp_path / "home", tmp_path / "here"
    here.mkdir()
    shutil.copytree(speech_commands_root, home / "sc")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    assert main(["train", "--preset", "kws-tc-resnet-cpu", "--out", "~/run", "data.root=~/sc", "epochs=1",
                 "max_steps_per_epoch=1", "data.batch_size=4", "model=tc-resnet8", "device=cpu"]) == 0
    assert not list(here.iterdir())
    config = (home / "run" / "config.yaml").read_text()
    assert f"root: {home / 'sc'}\n" in config
    capsys.readouterr()
    assert main(["evaluate", "~/run", "--data", "~/sc", "--json"]) == 0 and not list(here.iterdir())


def test_a_write_failing_in_a_side_thread_is_one_warning_line(capfd, monkeypatch):
    # Before (QA): on a full disk, TensorBoard's writer thread printed "Exception in thread Thread-1:" and a
    # traceback after the command's one-line error.
    import errno
    import os
    import threading

    from audionas import cli

    monkeypatch.setattr(threading, "excepthook", cli._side_thread_failed)

    def full():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "run/tb/events.out.tfevents.1")

    def read_only():  # TensorBoard's writer names its file in bytes (QA: the warning showed b'...')
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), b"run/tb/events.out.tfevents.2")

    for fails in (full, read_only):
        t = threading.Thread(target=fails)
        t.start()
        t.join()
    said = "audionas: warning: a background writer stopped: run/tb/events.out.tfevents."
    assert capfd.readouterr().err == f"{said}1: No space left on device\n{said}2: Permission denied\n"
    passed_on = []  # a bug goes to the hook before (Python's prints its traceback)
    monkeypatch.setattr(cli, "_THREAD_HOOK", lambda args: passed_on.append(args.exc_type))
    t = threading.Thread(target=lambda: 1 / 0)
    t.start()
    t.join()
    assert passed_on == [ZeroDivisionError] and capfd.readouterr().err == ""


@pytest.mark.parametrize("cmd, fields", [
    (["train"], ["max_steps_per_epoch", "test_weights", "data.{kind, root", "optim.{name, lr"]),
    (["search", "darts"], ["unrolled", "a_lr", "data.{kind, root"]),
    (["search", "supernet"], ["sampler", "space", "optim.{name, lr"]),
])
def test_the_help_of_a_configured_command_lists_its_config_fields(capsys, cmd, fields):
    # Before (QA): only three example overrides; a field was found by misspelling one
    with pytest.raises(SystemExit):
        main([*cmd, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f in text for f in fields), text


@pytest.mark.parametrize("flag", [["--import", "mymod.py"], ["--import=mymod.py"]])
def test_import_after_the_command_says_where_it_goes(capsys, flag):
    # Before (QA): "unrecognized arguments: --import mymod.py" without a word on where --import belongs
    with pytest.raises(SystemExit) as e:
        main(["profile", "res15", *flag])
    assert e.value.code == 2
    assert capsys.readouterr().err.endswith("; --import goes before the command (audionas --import MODULE "
                                            "COMMAND ...) (see audionas profile --help)\n")


@pytest.mark.parametrize("cmd, flag, hint", [
    (["train"], ["--seed=3"], "seed is a config field: set it as seed=3"),
    (["train"], ["--data.batch-size", "4"], "data.batch_size is a config field: set it as data.batch_size=4"),
    (["train"], ["--epochs"], "epochs is a config field: set it as epochs=VALUE"),
    (["train"], ["--model_args.width=2"], "model_args.width is a config field: set it as model_args.width=2"),
    (["search", "darts"], ["--epochs=2"], "epochs is a config field: set it as epochs=2"),
    (["search", "supernet"], ["--optim.lr=0.1"], "optim.lr is a config field: set it as optim.lr=0.1"),
])
def test_a_config_field_given_as_a_flag_says_how_to_set_it(capsys, cmd, flag, hint):
    # Before (QA): `train --seed 3` said only "unrecognized arguments: --seed" (search nsga2 takes --seed)
    with pytest.raises(SystemExit) as e:
        main([*cmd, *flag])
    assert e.value.code == 2
    assert f"; {hint} (see audionas {' '.join(cmd)} --help)" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--bogus", "--optim.bogus=1", "--seed.x=1"])
def test_an_unknown_flag_that_names_no_config_field_gets_no_hint(capsys, flag):
    with pytest.raises(SystemExit):
        main(["train", flag])
    assert "config field" not in capsys.readouterr().err


def test_a_leading_tilde_names_the_home_folder_in_each_of_several_paths(tmp_path, monkeypatch):
    # `audionas predict '~/run' '~/a.wav' b.wav`: every path of a list argument, as a single one
    monkeypatch.setenv("HOME", str(tmp_path))
    args = _parse(build_parser(), ["predict", "~/run", "~/a.wav", "b.wav", "~/c"])
    assert args.run == str(tmp_path / "run")
    assert args.inputs == [str(tmp_path / "a.wav"), "b.wav", str(tmp_path / "c")]


def test_a_warning_said_by_one_command_is_said_again_by_the_next_in_the_same_process(monkeypatch):
    # "once" is per command: a program running several commands sees each command's own warnings
    import warnings

    from audionas import cli

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    monkeypatch.setattr(cli, "_SHOWN", set(), raising=False)
    assert cli.main(["profile", "res8", "--repeats", "0", "--json"]) == 0
    assert warnings.formatwarning("same", UserWarning, "f.py", 1) == "audionas: warning: same\n"
    assert warnings.formatwarning("same", UserWarning, "f.py", 1) == ""  # once in this command
    assert cli.main(["profile", "res8", "--repeats", "0", "--json"]) == 0
    assert warnings.formatwarning("same", UserWarning, "f.py", 1) == "audionas: warning: same\n"


def test_a_broken_pipe_not_on_stdout_is_a_one_line_error_not_a_quiet_exit(monkeypatch, capsys, tmp_path):
    # 141 (a reader of stdout that stopped early) only when stdout is the pipe that broke
    import audionas.commands.train as train_cmd

    def fail(*a, **k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(train_cmd, "run_job", fail)
    monkeypatch.delenv("AUDIONAS_DEBUG", raising=False)
    argv = ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert capsys.readouterr().err == "audionas: error: Broken pipe (set AUDIONAS_DEBUG=1 for a traceback)\n"


def test_an_out_named_as_a_file_in_capitals_is_refused_as_a_file_name(tmp_path):
    from audionas.commands import check_out_folder
    from audionas.errors import UserError

    with pytest.raises(UserError, match=r"expected a folder .*, not a \.MD file name"):
        check_out_folder(tmp_path / "TABLE2.MD")
    assert not (tmp_path / "TABLE2.MD").exists()


def test_count_flags_take_their_least_value_and_refuse_one_less():
    from audionas.commands import population_size, positive_int

    assert positive_int("1") == 1 and population_size("2") == 2
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 2, got '1'"):
        population_size("1")


def test_a_run_config_naming_no_kind_is_not_called_another_kind(tmp_path):
    # a config.yaml with no field of any one kind (hand-made, or mixing two) is left to the config loader,
    # which names its field: not "holds a None"
    from audionas.commands import check_run_kind

    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    check_run_kind(tmp_path, "training run")
