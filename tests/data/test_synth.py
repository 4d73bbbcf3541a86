import hashlib
import json
import re
import subprocess

import numpy as np
import pytest
import soundfile as sf

import audionas.data.synth as synth
from audionas.cli import main
from audionas.data import DataConfig, build_data
from audionas.data.fixtures import BACKGROUND_NOISE_NAMES
from audionas.data.splits import which_set
from audionas.errors import UserError

WORDS = ["yes", "sheila", "seven"]
needs_espeak = pytest.mark.skipif(synth.shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def digest(root):
    h = hashlib.sha1()
    for p in sorted(f for f in root.rglob("*") if f.is_file()):  # the lists, README and marker too
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def silent_espeak(monkeypatch):
    """synthesize() without espeak-ng: one English voice, every clip 0.1 s of silence (a test may replace
    `render`)."""
    monkeypatch.setattr(synth, "render", lambda exe, u: np.zeros(1600, np.float32))
    monkeypatch.setattr(synth, "espeak_binary", lambda: "espeak-ng")
    monkeypatch.setattr(synth, "list_voices", lambda exe: (["gmw/en-US"], [""]))


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "sc"
    # 3 speakers, all hashed into training: the set is built, with a warning that names the empty lists.
    with pytest.warns(UserWarning, match=r"/sc: the hash rule put no clip in the validation or the testing "
                                         r"list \(3 speakers; .* use more --speakers"):
        s = synth.synthesize(out, speakers=3, seed=7, noise_seconds=1.5, words=WORDS, progress=False)
    assert not s["already_complete"] and s["files"] >= 9
    return out


@needs_espeak
def test_layout_names_format(synth_root, tmp_path):
    root = synth_root
    (tmp_path / "plain").mkdir()  # the dataset folder gets the umask's permissions (before: 0700)
    assert root.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    assert sorted(d.name for d in root.iterdir() if d.is_dir()) == sorted([*WORDS, "_background_noise_"])
    assert sorted(p.stem for p in (root / "_background_noise_").iterdir()) == sorted(BACKGROUND_NOISE_NAMES)
    speakers = set()
    per_word = []
    for w in WORDS:
        files = sorted((root / w).iterdir())
        assert files
        for f in files:
            m = re.fullmatch(r"([0-9a-f]{8})_nohash_(\d+)\.wav", f.name)
            assert m, f.name
            speakers.add(m.group(1))
            info = sf.info(f)
            assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
            assert 0 < info.frames <= 16000
            x, _ = sf.read(f)
            assert np.abs(x).max() > 0.05  # there is speech in it
        per_word.append({f.name.split("_")[0] for f in files if f.name.endswith("_nohash_0.wav")})
    assert len(speakers) == 3 and all(s == speakers for s in per_word)  # every speaker says every word
    for p in (root / "_background_noise_").iterdir():
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == int(1.5 * 16000)
    marker = json.loads((root / synth.MARKER).read_text())
    assert marker["complete"] and len(marker["speakers"]) == 3


@needs_espeak
def test_list_files_follow_hash_rule(synth_root):
    root = synth_root
    rels = sorted(f"{w}/{f.name}" for w in WORDS for f in (root / w).iterdir())
    for name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "testing")):
        listed = (root / name).read_text().split()
        assert listed == sorted(r for r in rels if which_set(r, 10, 10) == split)


def test_list_files_of_many_speakers_follow_hash_rule_repeats_included(silent_espeak, tmp_path):
    # The espeak fixture's 3 speakers all hash into training (its lists are empty): 40 silent speakers here.
    root = tmp_path / "sc"
    synth.synthesize(root, speakers=40, words=WORDS, noise_seconds=1, progress=False, workers=1)
    rels = sorted(f"{w}/{f.name}" for w in WORDS for f in (root / w).iterdir())
    assert any(not r.endswith("_nohash_0.wav") for r in rels)
    for name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "testing")):
        listed = (root / name).read_text().split()
        assert listed and listed == sorted(r for r in rels if which_set(r, 10, 10) == split)


def test_a_speakers_voice_variant_reaches_espeak(monkeypatch):
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 1, b"", b"stop here")

    monkeypatch.setattr(synth.subprocess, "run", run)
    u = synth.make_utterances(synth.make_speakers(1, 0, ["gmw/en"], ["f1"]), ["yes"], 0)[0]
    with pytest.raises(UserError, match=r"voice gmw/en\+f1"):
        synth._speak("espeak-ng", u, 150)
    assert calls[0][calls[0].index("-v") + 1] == "gmw/en+f1"


@needs_espeak
def test_deterministic_and_rerun(synth_root, tmp_path):
    again = synth.synthesize(tmp_path / "again", speakers=3, seed=7, noise_seconds=1.5, words=WORDS,
                             progress=False, workers=1)
    assert digest(tmp_path / "again") == digest(synth_root)
    assert again["files"] == len(list(synth_root.rglob("*_nohash_*.wav"))) and again["seconds"] >= 0
    s = synth.synthesize(synth_root, speakers=3, seed=7, noise_seconds=1.5, words=WORDS, progress=False)
    assert s["already_complete"]
    other = synth.synthesize(tmp_path / "other", speakers=3, seed=8, noise_seconds=1.5, words=WORDS[:1],
                             progress=False)
    assert other["files"] >= 3 and digest(tmp_path / "other") != digest(synth_root)
    forced = synth.synthesize(tmp_path / "other", speakers=2, seed=9, noise_seconds=1, words=WORDS[:1],
                              progress=False, force=True)
    assert not forced["already_complete"]
    files = list((tmp_path / "other" / WORDS[0]).iterdir())
    assert len(files) == forced["files"] and len({f.name[:8] for f in files}) == 2  # the old 3 speakers gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "other"]  # no temporary folders left


@needs_espeak
def test_loads_as_speech_commands(synth_root):
    b = build_data(DataConfig(root=str(synth_root), split="hash", words=["yes", "seven"],
                              val_pct=34, test_pct=33), seed=0)
    assert b.classes == ["_silence_", "_unknown_", "yes", "seven"]
    x, y = b.train[0]
    assert x.shape == (16000,)


def test_interrupted_run_leaves_nothing(silent_espeak, tmp_path, monkeypatch):
    calls = []

    def boom(exe, u):
        calls.append(u)
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "render", boom)
    with pytest.raises(KeyboardInterrupt):
        synth.synthesize(tmp_path / "sc", speakers=2, words=WORDS, noise_seconds=1, progress=False, workers=1)
    assert calls and list(tmp_path.iterdir()) == []


def test_a_rerun_removes_the_half_dataset_of_a_killed_run(silent_espeak, tmp_path):
    # a kill -9 skips the cleanup (old: a --force run killed between its two renames); scx is another --out
    for name in ("sc.tmp-k1ll3d00", "sc.old-k1ll3d00", "scx.tmp-k1ll3d00"):
        (tmp_path / name / "yes").mkdir(parents=True)
        (tmp_path / name / "yes" / "half.wav").write_bytes(b"RIFF")
    synth.synthesize(tmp_path / "sc", speakers=1, words=WORDS, noise_seconds=1, progress=False, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc", "scx.tmp-k1ll3d00"]


def test_an_out_that_is_a_link_is_written_where_it_leads_and_stays_a_link(silent_espeak, tmp_path):
    # Before (QA): the finished dataset was renamed onto the link, replacing it with a folder; the folder it
    # led to stayed empty (with --force, the old dataset stayed there and the link was gone).
    for target in ("empty", "not-yet"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        link = tmp_path / f"to-{target}"
        link.symlink_to(target)
        synth.synthesize(link, speakers=1, words=WORDS, noise_seconds=1, progress=False, workers=1)
        assert link.is_symlink() and (tmp_path / target / "validation_list.txt").is_file()
    before = (tmp_path / "empty" / "yes").stat().st_mtime_ns
    synth.synthesize(tmp_path / "to-empty", speakers=2, words=WORDS, noise_seconds=1, progress=False,
                     workers=1, force=True)
    assert (tmp_path / "to-empty").is_symlink() and (tmp_path / "empty" / "yes").stat().st_mtime_ns != before


def test_a_second_synthesis_into_the_same_out_is_refused_not_let_delete_the_first(silent_espeak, tmp_path,
                                                                                  held_elsewhere):
    # Before, it removed the live run's sc.tmp-* folder as a killed run's leftover: the first crashed with a
    # LibsndfileError traceback.
    live = tmp_path / "sc.tmp-l1ve0000"
    (live / "yes").mkdir(parents=True)
    with held_elsewhere(live), pytest.raises(UserError, match=r"sc: another synthesis is writing it \(into "
                                                               r"sc.tmp-l1ve0000\); wait for it to end"):
        synth.synthesize(tmp_path / "sc", speakers=1, words=WORDS, noise_seconds=1, progress=False, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.tmp-l1ve0000"]
    synth.synthesize(tmp_path / "sc", speakers=1, words=WORDS, noise_seconds=1, progress=False, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc"]  # its process ended: a leftover now


def test_an_out_inside_a_speech_commands_set_is_refused(silent_espeak, tmp_path):
    # Before, it was made there, and the outer set then read it as one more word (background noise included).
    synth.synthesize(tmp_path / "sc", speakers=1, words=WORDS, noise_seconds=1, progress=False, workers=1)
    for inner in (tmp_path / "sc" / "extra", tmp_path / "sc" / "yes" / "deeper"):
        with pytest.raises(UserError, match=rf"^--out {inner}: inside the Speech Commands dataset "
                                            rf"{tmp_path / 'sc'}, where it would be read as a word folder"):
            synth.synthesize(inner, speakers=1, words=WORDS, noise_seconds=1, progress=False, workers=1)
        assert not inner.exists()


def test_bad_inputs(tmp_path, monkeypatch):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "something.txt").write_text("x")
    with pytest.raises(UserError, match=r"busy: exists and is not a complete synthetic dataset; choose "
                                        r"another --out \(a new or empty folder\)$"):  # not "remove it"
        synth.synthesize(tmp_path / "busy", speakers=1, words=WORDS)
    with pytest.raises(UserError, match="busy: exists and is not a complete synthetic dataset"):
        synth.synthesize(tmp_path / "busy", speakers=1, words=WORDS, force=True)
    assert (tmp_path / "busy" / "something.txt").is_file()
    with pytest.raises(UserError, match="--speakers"):
        synth.synthesize(tmp_path / "x", speakers=0)
    with pytest.raises(UserError, match="--noise-seconds"):
        synth.synthesize(tmp_path / "x", noise_seconds=0.5)
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="espeak-ng: program not found; install it with"):
        synth.synthesize(tmp_path / "y", speakers=1, words=WORDS)
    assert not (tmp_path / "y").exists()


def test_noises_are_distinct_and_bounded():
    xs = {n: synth.make_noise(n, 2.0, 0) for n in BACKGROUND_NOISE_NAMES}
    for n, x in xs.items():
        assert x.dtype == np.float32 and len(x) == 32000 and np.abs(x).max() <= 1.0 and x.std() > 0.01, n
    assert np.array_equal(xs["pink_noise"], synth.make_noise("pink_noise", 2.0, 0))
    assert len({x.tobytes() for x in xs.values()}) == 6


@pytest.mark.parametrize("speakers", ["0", "100001", "100000000000000000000"])  # 1e20 hung building speakers
def test_cli_bad_input_exit_code(tmp_path, capsys, speakers):
    assert main(["data", "synth-speech-commands", "--out", str(tmp_path / "o"), "--speakers", speakers]) == 2
    assert capsys.readouterr().err == f"audionas: error: --speakers: expected 1 to 100,000, got {speakers}\n"
    assert not (tmp_path / "o").exists()


@needs_espeak
def test_an_out_that_cannot_be_written_is_named_not_its_temp_folder(tmp_path, capsys, monkeypatch):
    # before: "audionas: error: /sys/x.tmp-_4b71xp8: Operation not permitted (set AUDIONAS_DEBUG=1 ...)"
    def refused(dir, prefix):
        raise PermissionError(1, "Operation not permitted", f"{dir}/{prefix}abc")

    monkeypatch.setattr(synth.tempfile, "mkdtemp", refused)
    out = tmp_path / "o"
    assert main(["data", "synth-speech-commands", "--out", str(out), "--speakers", "1"]) == 2
    want = f"audionas: error: {out}: cannot write there (Operation not permitted)\n"
    assert capsys.readouterr().err == want


def test_thread_counts_beyond_4_per_core_here_are_refused(tmp_path, capsys):
    from audionas.utils.dist import available_cores

    want = f"--workers: 99999 threads for {available_cores()} CPU core(s) here; expected at most "
    assert main(["data", "synth-speech-commands", "--out", str(tmp_path / "o"), "--workers", "99999"]) == 2
    assert want in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main(["data", "prepare-dcase2018", "--root", str(tmp_path), "--out", str(tmp_path / "c"),
                 "--workers", "99999"]) == 2
    assert want in capsys.readouterr().err


@needs_espeak
def test_cli_one_speaker_then_already_complete(tmp_path, capsys):
    out = tmp_path / "sc"
    args = ["data", "synth-speech-commands", "--out", str(out), "--speakers", "1", "--noise-seconds", "1",
            "--quiet"]
    assert main(args) == 0
    assert len([d for d in out.iterdir() if d.is_dir()]) == 31
    assert main(args) == 0
    assert "already holds a complete synthetic dataset" in capsys.readouterr().out
    # before (QA): a clip removed or emptied since was "nothing to do", and training failed on a list file
    clips = sorted(out.glob("yes/*.wav"))
    clips[0].write_bytes(b"")
    assert main(args) == 2
    files = json.loads((out / synth.MARKER).read_text())["summary"]["files"]
    said = f"{out}: holds {files - 1} of the {files} clips this synthetic dataset was made with (removed or "
    assert capsys.readouterr().err == f"audionas: error: {said}emptied since?); --force rebuilds it\n"
    assert main([*args, "--force"]) == 0 and clips[0].stat().st_size > 44


@pytest.mark.parametrize("text", ["[1]", "{bad", '{"complete": true, "summary": 3}'])
def test_a_damaged_completion_marker_is_not_a_crash(tmp_path, text):
    from audionas.data.synth import MARKER, _marker, is_complete

    (tmp_path / MARKER).write_text(text)
    assert is_complete(tmp_path) is (text.startswith('{"complete"'))
    assert isinstance(_marker(tmp_path), dict)


def test_a_complete_dataset_made_with_other_settings_is_not_nothing_to_do(tmp_path, capsys):
    """Before: a rerun with another --speakers/--seed/--noise-seconds printed 'nothing to do' (exit 0) and
    left the set made with the old settings."""
    out = tmp_path / "sc"
    out.mkdir()
    summary = {"files": 90, "speakers": 3, "words": 30, "seed": 0, "noise_seconds": 2.0}
    (out / synth.MARKER).write_text(json.dumps({"complete": True, "summary": summary}))
    (out / "yes").mkdir()
    for i in range(90):  # the clips the marker counts (a rerun checks they are all there)
        (out / "yes" / f"{i:08x}_nohash_0.wav").write_bytes(bytes(100))
    args = ["data", "synth-speech-commands", "--out", str(out), "--quiet", "--noise-seconds", "2"]
    assert main([*args, "--speakers", "3"]) == 0
    assert "already holds a complete synthetic dataset (90 clips)" in capsys.readouterr().out
    assert main([*args, "--speakers", "1", "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert err == (f"audionas: error: {out}: holds a synthetic dataset made with --speakers 3, --seed 0, not "
                   f"--speakers 1, --seed 5; --force rebuilds it, or choose another --out\n")
    assert sorted(p.name for p in out.iterdir()) == [synth.MARKER, "yes"]
    assert len(list(out.glob("yes/*"))) == 90


def test_speakers_draw_their_settings_from_the_documented_ranges():
    voices, variants = ["gmw/en", "gmw/en-US", "gmw/en-GB-scotland"], ["", "f1", "m3"]
    spk = synth.make_speakers(3000, 5, voices, variants)
    assert spk == synth.make_speakers(3000, 5, voices, variants)
    assert len({s.id for s in spk}) == 3000 and all(re.fullmatch(r"[0-9a-f]{8}", s.id) for s in spk)
    # pitch 15..85, speed 120..200 wpm, amplitude 50..150, all inclusive; 3000 draws reach both ends
    assert (min(s.pitch for s in spk), max(s.pitch for s in spk)) == (15, 85)
    assert (min(s.speed for s in spk), max(s.speed for s in spk)) == (120, 200)
    assert (min(s.amplitude for s in spk), max(s.amplitude for s in spk)) == (50, 150)
    assert {s.voice for s in spk} == set(voices) and {s.variant for s in spk} == set(variants)


def test_utterances_repeat_a_word_1_2_or_3_times_with_small_jitter():
    spk = synth.make_speakers(600, 1, ["gmw/en"], [""])
    spk[0] = synth.Speaker(spk[0].id, "gmw/en", "", 97, 150, 100)  # near the pitch ceiling: clipped to 99
    utts = synth.make_utterances(spk, ["yes", "no"], seed=2)
    reps: dict = {}
    for u in utts:
        reps.setdefault((u.speaker.id, u.word), []).append(u.rep)
    assert all(r == list(range(len(r))) for r in reps.values())
    share = np.bincount([len(r) for r in reps.values()], minlength=4)[1:] / len(reps)
    np.testing.assert_allclose(share, [0.7, 0.2, 0.1], atol=0.04)  # 1200 (speaker, word) pairs
    for u in utts:
        assert u.rel == f"{u.word}/{u.speaker.id}_nohash_{u.rep}.wav"
        assert max(0, u.speaker.pitch - 4) <= u.pitch <= min(99, u.speaker.pitch + 4)
        assert round(u.speaker.speed * 0.94) <= u.speed <= round(u.speaker.speed * 1.06)
        assert 0.8 <= u.gain <= 1.2 and 10 ** -3.7 <= u.noise_std <= 10 ** -2.5
    assert max(u.pitch for u in utts if u.speaker.id == spk[0].id) == 99
    assert len({u.seed for u in utts}) == len(utts)  # every clip its own onset and noise
    assert 0.05 < np.mean([u.short for u in utts]) < 0.15


def test_list_voices_keeps_english_voices_and_drops_mbrola_and_whisper(monkeypatch):
    head = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
    out = {"--voices=en": head + " 2  en-gb          --/M      English_(Great_Britain) gmw/en\n"
                                 " 5  en-us          --/M      English_(America)  gmw/en-US\n"
                                 " 5  en             --/M      en-mbrola-1        mb/mb-en1\n",
           "--voices=variant": head + " 5  variant        --/M      Alex               !v/Alex\n"
                                      " 5  variant        --/F      f1                 !v/f1\n"
                                      " 5  variant        --/M      whisper            !v/whisper\n"
                                      " 5  variant        --/F      Whisper female     !v/whisperf\n"}
    monkeypatch.setattr(synth, "_run", lambda args: out[args[1]])
    assert synth.list_voices("espeak-ng") == (["gmw/en", "gmw/en-US"], ["", "Alex", "f1"])


def test_render_speaks_faster_until_the_word_fits_and_never_clips(monkeypatch):
    speeds = []

    def speak(exe, u, speed):  # a loud tone that lasts 1.5 s at 175 wpm, shorter when spoken faster
        speeds.append(speed)
        n = int(24000 * 175 / speed)
        return (2.0 * np.sin(2 * np.pi * 200 * np.arange(n) / 16000)).astype(np.float32), 16000

    monkeypatch.setattr(synth, "_speak", speak)
    spk = synth.Speaker("0123abcd", "gmw/en", "", 50, 175, 100)
    u = synth.Utterance("yes", spk, 0, 50, 175, 1.0, 1e-3, False, (0, 3, 0, 0, 0),
                        "yes/0123abcd_nohash_0.wav")
    x = synth.render("espeak-ng", u)
    # 24000 samples > 0.96 s (15360): speed ceil(175 * 24000 / (0.9 * 15360)) = 304, 13815 samples, fits
    assert speeds == [175, 304]
    assert x.shape == (16000,) and x.dtype == np.float32
    assert abs(float(np.abs(x).max()) - 0.99) < 1e-6  # scaled down to a 0.99 peak, not clipped
    loud = np.flatnonzero(np.abs(x) > 0.5)
    assert loud[-1] - loud[0] > 13815 - 100  # the whole word is in the clip


def test_a_full_disk_names_the_out_folder_not_a_libsndfile_traceback(silent_espeak, small_disk, monkeypatch):
    # Before (QA): "soundfile.LibsndfileError: System error." with a traceback, exit 1.
    monkeypatch.setattr(synth, "render", lambda exe, u: np.zeros(16000, np.float32))
    disk = small_disk(128)
    with pytest.raises(UserError) as e:
        synth.synthesize(disk / "sc", speakers=4, words=WORDS, noise_seconds=1, progress=False, workers=1)
    assert str(e.value) == f"{disk / 'sc'}: cannot write there (No space left on device)"
    assert not list(disk.iterdir())
