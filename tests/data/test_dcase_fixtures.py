import soundfile as sf

from audionas.cli import main
from audionas.data.dcase_fixtures import DEV_DIRNAME, EVAL_DIRNAME

ARGS = ["data", "make-dcase-fixture", "--sessions", "1", "--segments", "1", "--nodes", "1",
        "--seconds", "0.1"]


def test_a_dataset_the_fixture_did_not_write_is_never_overwritten(tmp_path, capsys):
    """Before: --out on the folder holding the real DCASE2018-task5-dev wrote synthetic noise over its wavs
    (same file names) and its meta.txt, exit 0."""
    dev = tmp_path / "DCASE2018" / DEV_DIRNAME
    (dev / "audio").mkdir(parents=True)
    (dev / "meta.txt").write_text("audio/DevNode1_ex1_1.wav\tabsence\tDevNode1_ex1\n")
    (dev / "audio" / "DevNode1_ex1_1.wav").write_bytes(b"real recording")
    assert main([*ARGS, "--out", str(tmp_path / "DCASE2018")]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {dev}: exists and was not written by "
                                       f"make-dcase-fixture (the real dataset, or a fixture of an audionas "
                                       f"from before 2026-12-04?); choose another --out\n")
    assert (dev / "audio" / "DevNode1_ex1_1.wav").read_bytes() == b"real recording"
    assert sorted(p.name for p in (dev / "audio").iterdir()) == ["DevNode1_ex1_1.wav"]


def test_a_fixture_asked_for_again_is_kept_and_other_settings_are_refused(tmp_path, capsys):
    """Before: any rerun rewrote the fixture, dropping its evaluation set and changing its wavs' length."""
    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out), "--with-eval"]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    said = capsys.readouterr()  # before: the folder alone, no word of what it holds or what comes next
    assert said.out == f"{out}\n" and said.err == (
        f"{out}: {len(before)} wavs ({sum(p.stat().st_size for p in before) / 2**20:.1f} MB) in the "
        f"DCASE2018 Task 5 layout; next: audionas data prepare-dcase2018 --root {out} --out CACHE "
        f"--seconds 0.1\n")
    assert main([*ARGS, "--out", str(out), "--with-eval"]) == 0  # the same settings: nothing to do
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out), "--seconds", "0.2"]) == 2
    assert capsys.readouterr().err == (f"audionas: error: {out}: holds a fixture made with --seconds 0.1 "
                                       f"and --with-eval, not --seconds 0.2 and without --with-eval; --force "
                                       f"rebuilds it "
                                       f"(both sets), or choose another --out\n")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before and (out / EVAL_DIRNAME).is_dir()


def test_a_fixture_whose_settings_cannot_be_compared_is_refused_in_words(tmp_path, capsys):
    """A marker with a setting this version does not know (or none at all): no 'made with , not' message."""
    import json

    from audionas.data.dcase_fixtures import FIXTURE_MARKER

    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out)]) == 0
    marker = out / DEV_DIRNAME / FIXTURE_MARKER
    for text in (json.dumps({"settings": {**json.loads(marker.read_text())["settings"], "later": 1}}),
                 "written by audionas data make-dcase-fixture\n"):
        marker.write_text(text)
        capsys.readouterr()
        assert main([*ARGS, "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"audionas: error: {out}: holds a fixture whose settings this "
                                           f"audionas cannot compare (an earlier or later version made it); "
                                           f"--force rebuilds it, or choose another --out\n")


def test_a_fixture_whose_evaluation_set_was_removed_is_rebuilt_when_asked_for_again(tmp_path):
    import shutil

    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out), "--with-eval"]) == 0
    shutil.rmtree(out / EVAL_DIRNAME)
    assert main([*ARGS, "--out", str(out), "--with-eval"]) == 0
    assert (out / EVAL_DIRNAME / "meta.txt").is_file()
    # before (QA): a dev wav deleted or emptied since was "nothing to do"; prepare-dcase2018 then advised
    # extracting the whole real archive
    wavs = sorted((out / DEV_DIRNAME / "audio").iterdir())
    whole = {w.name: w.read_bytes() for w in wavs}
    wavs[0].unlink()
    wavs[1].write_bytes(b"")
    assert main([*ARGS, "--out", str(out), "--with-eval"]) == 0
    assert {w.name: w.read_bytes() for w in sorted((out / DEV_DIRNAME / "audio").iterdir())} == whole


def test_a_fixture_is_rewritten_from_scratch_with_force(tmp_path):
    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out), "--with-eval", "--sessions", "2"]) == 0
    assert main([*ARGS, "--out", str(out), "--seconds", "0.2", "--force"]) == 0  # no stale eval set or wavs
    assert sorted(p.name for p in out.iterdir()) == [DEV_DIRNAME]
    wavs = sorted((out / DEV_DIRNAME / "audio").iterdir())
    assert len(wavs) == 9 and {sf.info(str(w)).frames for w in wavs} == {3200}
    assert not (out / EVAL_DIRNAME).exists()


def test_a_killed_rewrite_leaves_the_earlier_fixture_whole(tmp_path, monkeypatch):
    """Before: the old fixture was deleted first and the new one written in place, so a kill left half a
    dataset (some wavs, no meta.txt) under the official folder name."""
    from audionas.data import dcase_fixtures

    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def killed(path, rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(dcase_fixtures, "_write_lines", killed)
    assert main([*ARGS, "--out", str(out), "--seconds", "0.2", "--force"]) == 130
    # before: the half-written staging folder (.make-dcase-fixture.partial) was left beside it
    assert sorted(p.name for p in out.iterdir()) == [DEV_DIRNAME]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    fresh = tmp_path / "new"  # a --out the interrupted call created is removed too
    assert main([*ARGS, "--out", str(fresh)]) == 130 and not fresh.exists()
    monkeypatch.undo()
    assert main([*ARGS, "--out", str(out), "--seconds", "0.2", "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [DEV_DIRNAME]
    assert {sf.info(str(w)).frames for w in (out / DEV_DIRNAME / "audio").iterdir()} == {3200}


def test_a_rewrite_stopped_while_swapping_the_sets_in_puts_the_earlier_fixture_back(tmp_path, monkeypatch):
    """Before: the earlier sets were deleted one by one between the renames, so a stop there left the dev set
    new and the evaluation set gone (or neither)."""
    from pathlib import Path

    out = tmp_path / "fx"
    assert main([*ARGS, "--out", str(out), "--with-eval"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    rename = Path.rename

    def stopped_at_the_second_set(self, target):
        if Path(target) == out / EVAL_DIRNAME and self.parent.name != "replaced":
            raise KeyboardInterrupt
        return rename(self, target)

    def stopped_right_after_the_first_set(self, target):
        done = rename(self, target)
        if Path(target) == out / DEV_DIRNAME and self.parent.name != "replaced":
            raise KeyboardInterrupt  # a signal handled as the rename returns
        return done

    for stop in (stopped_at_the_second_set, stopped_right_after_the_first_set):
        monkeypatch.setattr(Path, "rename", stop)
        assert main([*ARGS, "--out", str(out), "--with-eval", "--seconds", "0.2", "--force"]) == 130
        monkeypatch.undo()
        assert sorted(p.name for p in out.iterdir()) == sorted([DEV_DIRNAME, EVAL_DIRNAME])
        assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    from audionas.data import dcase_fixtures  # stopped once swapped, deleting the earlier sets: the new stay

    rmtree = dcase_fixtures.shutil.rmtree

    def stopped_deleting(path, *args, **kwargs):
        if Path(path).name == dcase_fixtures.STAGE_DIRNAME and not kwargs.get("ignore_errors"):
            raise KeyboardInterrupt
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(dcase_fixtures.shutil, "rmtree", stopped_deleting)
    assert main([*ARGS, "--out", str(out), "--with-eval", "--seconds", "0.2", "--force"]) == 130
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == sorted([DEV_DIRNAME, EVAL_DIRNAME])
    assert {sf.info(str(w)).frames for w in out.rglob("*.wav")} == {3200}


def test_a_real_evaluation_set_beside_a_fixture_is_left_alone(tmp_path):
    from audionas.data.dcase_fixtures import make_dcase2018_fixture

    out = tmp_path / "fx"
    (out / EVAL_DIRNAME).mkdir(parents=True)
    (out / EVAL_DIRNAME / "meta.txt").write_text("real\n")
    make_dcase2018_fixture(out, sessions_per_class=1, segments_per_session=1, seconds=0.1, nodes=1)
    assert (out / EVAL_DIRNAME / "meta.txt").read_text() == "real\n"
    assert (out / DEV_DIRNAME / "meta.txt").is_file()


def test_a_fixture_another_process_is_writing_is_refused(tmp_path, held_elsewhere, capsys):
    # Before (QA): two make-dcase-fixture runs on one --out shared one staging folder; each deleted the
    # other's, and one could die with a libsndfile traceback.
    out = tmp_path / "fx"
    out.mkdir()
    with held_elsewhere(out):
        assert main([*ARGS, "--out", str(out)]) == 2
        assert capsys.readouterr().err.startswith(f"audionas: error: {out}: in use by another audionas")
    assert not any(out.iterdir())
    assert main([*ARGS, "--out", str(out)]) == 0  # its lock ended with it


def test_a_full_disk_names_the_out_folder_not_a_libsndfile_traceback(small_disk, capsys):
    out = small_disk(128) / "fx"
    assert main([*ARGS, "--out", str(out), "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"audionas: error: {out}: cannot write there (No space left on device)\n"
    assert not out.exists()
