import os
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf

from audionas.data.audio import load_wav, save_wav
from audionas.errors import UserError


def _wav(path, n=1600, sr=16000, channels=1):
    x = 0.5 * np.sin(np.linspace(0, 100, n * channels)).reshape(n, channels).astype(np.float32)
    sf.write(path, x if channels > 1 else x[:, 0], sr, subtype="PCM_16")
    return path


def test_roundtrip_pcm16(tmp_path):
    x = (0.3 * np.sin(np.arange(4000) / 7)).astype(np.float32)
    save_wav(tmp_path / "a.wav", x, 16000)
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    y = load_wav(tmp_path / "a.wav", 16000, expected_frames=4000)
    assert y.dtype == np.float32 and y.shape == (4000,)
    assert np.abs(y - x).max() < 1e-4
    assert not list(tmp_path.glob(".*tmp"))
    (tmp_path / "plain").write_bytes(b"")  # the umask's permissions (before: owner-only 0600)
    assert (tmp_path / "a.wav").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_missing_file_names_path(tmp_path):
    with pytest.raises(UserError, match="nope.wav: audio file not found"):
        load_wav(tmp_path / "nope.wav", 16000)
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(UserError, match=r"dir\.wav: a folder, expected an audio file"):
        load_wav(tmp_path / "dir.wav", 16000)
    # before: "audio file not found", of a path that is there
    with pytest.raises(UserError, match=r"^/dev/null: not a regular file, expected an audio file$"):
        load_wav("/dev/null", 16000)
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    with pytest.raises(UserError, match=r"gone\.wav: audio file not found$"):
        load_wav(tmp_path / "gone.wav", 16000)
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")  # QA: a loop was "audio file not found"
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(UserError, match=r"a\.wav: its path runs through a loop of links$"):
        load_wav(tmp_path / "a.wav", 16000)


def test_truncated_wav_names_path(tmp_path):
    p = _wav(tmp_path / "cut.wav")
    data = p.read_bytes()
    p.write_bytes(data[:-1001])
    with pytest.raises(UserError, match=r"cut\.wav: truncated wav"):
        load_wav(p, 16000)


def test_garbage_and_header_only(tmp_path):
    p = tmp_path / "junk.wav"
    p.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(UserError, match="junk.wav"):
        load_wav(p, 16000)
    q = _wav(tmp_path / "head.wav")
    q.write_bytes(q.read_bytes()[:30])
    with pytest.raises(UserError, match="head.wav"):
        load_wav(q, 16000)


def test_an_undecodable_mp3_is_not_called_missing(tmp_path):
    # Before: libsndfile's MP3 reader says "File does not exist or is not a regular file" of a file it holds.
    from audionas.data.audio import check_audio

    p = tmp_path / "x.mp3"
    p.write_bytes(np.random.default_rng(0).bytes(3000))
    for read in (check_audio, lambda f: load_wav(f, 16000)):
        with pytest.raises(UserError, match=r"x\.mp3: not a readable audio file \(format not recognised\)$"):
            read(p)


def test_a_damaged_mp3_is_one_line_on_stderr(tmp_path, capfd):
    # Before: libmpg123 wrote its own notes on the bad ID3 tag to file descriptor 2, from C, around the error.
    from audionas.cli import main

    p = tmp_path / "x.mp3"
    p.write_bytes(b"ID3" + np.random.default_rng(0).bytes(3000))
    argv = ["features", "--preset", "honk-mfcc", str(p), "--out", str(tmp_path / "o.npy")]
    for extra in ([], ["--channel", "0"]):
        assert main(argv + extra) == 2
        err = capfd.readouterr().err
        assert err == f"audionas: error: {p}: not a readable audio file (format not recognised)\n"
    os.write(2, b"after\n")  # file descriptor 2 is back
    assert capfd.readouterr().err == "after\n"


def test_a_truncated_mp3_that_states_its_length_is_named(tmp_path):
    # Before: libsndfile decoded the first 13,295 of 32,000 frames of a cut MP3 and said nothing.
    from audionas.data.audio import check_decodes

    whole = tmp_path / "whole.mp3"
    sf.write(whole, 0.3 * np.sin(np.arange(32000) / 10), 16000, format="MP3")
    body = whole.read_bytes()
    assert b"Xing" in body[:64]  # libsndfile's encoder (LAME) states the length
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(body[: len(body) // 2])
    assert len(load_wav(whole, 16000)) == 32000
    for read in (check_decodes, lambda f: load_wav(f, 16000)):
        with pytest.raises(UserError, match=r"cut\.mp3: truncated mp3 \(header announces 32000 frames, file "
                                            r"holds 1\d{4}\)$"):
            read(cut)
    tagless = tmp_path / "tagless.mp3"  # no stated length: the frame count is only libsndfile's estimate
    tagless.write_bytes(body[: len(body) // 2].replace(b"Xing", b"\0\0\0\0", 1))
    assert 0 < len(load_wav(tagless, 16000)) < 32000


def test_a_float_file_beyond_the_unit_range_is_warned_about_and_read_as_it_is(tmp_path):
    # Before: a float WAV holding integer-scaled samples (peak 16384) was read without a word; its MFCCs are
    # offset by a constant the model never saw.
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.array([0.0, 16384.0, -3.0] * 100, np.float32), 16000, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"loud\.wav: samples reach 1\.638e\+04, beyond \[-1, 1\] \(a float "
                                         r"file scaled as integers\?\); used as they are$"):
        assert load_wav(loud, 16000).max() == 16384.0
    barely = tmp_path / "barely.wav"  # a float file clipping just past full scale
    sf.write(barely, np.array([0.0, 1.01, -1.0] * 100, np.float32), 16000, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"barely\.wav: samples reach 1\.01, beyond \[-1, 1\]"):
        load_wav(barely, 16000)
    full = tmp_path / "full.wav"  # a full-scale integer file reads as exactly -1: no warning
    sf.write(full, np.array([-32768, 32767] * 100, np.int16), 16000, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_wav(full, 16000).min() == -1.0


def test_wrong_channel_count(tmp_path):
    p = _wav(tmp_path / "stereo.wav", channels=2)
    # A background noise file is read this way: before, it was not told how to fix it.
    with pytest.raises(UserError, match=r"stereo\.wav: expected 1 channel\(s\), got 2; mix it down to mono "
                                        r"first$"):
        load_wav(p, 16000)
    assert load_wav(p, 16000, channels=2).shape == (2, 1600)
    with pytest.raises(UserError, match=r"stereo\.wav: expected 4 channel\(s\), got 2$"):
        load_wav(p, 16000, channels=4)
    mono = _wav(tmp_path / "mono.wav", channels=1)  # mixdown reads several channels as one, not one as two
    with pytest.raises(UserError, match=r"mono\.wav: expected 2 channel\(s\), got 1"):
        load_wav(mono, 16000, channels=2, mixdown=True)


def test_wrong_rate_is_resampled_with_warning(tmp_path):
    p = _wav(tmp_path / "r8k.wav", n=8000, sr=8000)
    with pytest.warns(UserWarning, match=r"r8k\.wav: sample rate 8000 Hz"):
        y = load_wav(p, 16000)
    assert y.shape == (16000,) and y.dtype == np.float32


def test_expected_frames(tmp_path):
    p = _wav(tmp_path / "short.wav", n=1000)
    with pytest.raises(UserError, match=r"short\.wav: expected 1600 frames"):
        load_wav(p, 16000, expected_frames=1600)


def test_nan_or_infinite_samples_name_the_file(tmp_path, capsys):
    from audionas.cli import main

    x = np.zeros(16000, np.float32)
    x[[10, 20]] = [np.nan, np.inf]
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match=r"nan\.wav: 2 sample\(s\) are NaN or infinite \(expected finite"):
        load_wav(tmp_path / "nan.wav", 16000)
    out = tmp_path / "nan.npy"
    assert main(["features", "--preset", "honk-mfcc", str(tmp_path / "nan.wav"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()


def test_samples_too_loud_for_the_features_name_the_file(tmp_path, capsys):
    # Before (QA): a float file at 1e30 gave all-NaN log-mels (predict printed NaN, invalid JSON) and
    # all-zero MFCCs (read as digital silence), after a warning that the samples were used as they are.
    from audionas.cli import main

    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    sf.write(tmp_path / "loud.wav", x * 1e30, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match=r"loud\.wav: samples reach .*e\+30, beyond what the features can"):
        load_wav(tmp_path / "loud.wav", 16000)
    out = tmp_path / "loud.npy"
    assert main(["features", "--preset", "dcase-logmel", str(tmp_path / "loud.wav"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()
    sf.write(tmp_path / "int.wav", x * 2**31, 16000, subtype="FLOAT")  # integer-scaled: read, with a warning
    with pytest.warns(UserWarning, match="beyond \\[-1, 1\\]"):
        assert np.isfinite(load_wav(tmp_path / "int.wav", 16000)).all()


def test_check_decodes_sees_what_the_header_check_cannot(tmp_path):
    from audionas.data.audio import check_audio, check_decodes

    rng = np.random.default_rng(0)
    flac = tmp_path / "damaged.flac"
    sf.write(flac, rng.uniform(-0.5, 0.5, 48000).astype(np.float32), 16000)
    body = bytearray(flac.read_bytes())
    body[2000:] = rng.integers(0, 256, len(body) - 2000, dtype=np.uint8).tobytes()  # header intact
    flac.write_bytes(bytes(body))
    nan = tmp_path / "nan.wav"
    x = np.zeros(16000, np.float32)
    x[3] = np.inf
    sf.write(nan, x, 16000, subtype="FLOAT")
    assert check_audio(flac) == check_audio(nan) == 16000
    with pytest.raises(UserError, match=r"damaged\.flac: not a readable audio file"):
        check_decodes(flac)
    with pytest.raises(UserError, match=r"nan\.wav: 1 sample\(s\) are NaN or infinite"):
        check_decodes(nan)
    check_decodes(_wav(tmp_path / "good.wav", sr=8000))  # another rate: decoded, not resampled


def _riff(*chunks):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chunk(cid, data, size=None):
    pad = b"\0" if len(data) % 2 else b""  # RIFF: an odd-sized chunk is followed by one pad byte
    return cid + struct.pack("<I", len(data) if size is None else size) + data + pad


FMT = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)  # PCM, mono, 16 kHz, 16 bit
PCM = (np.arange(100, dtype=np.int16) * 100).tobytes()


def test_an_odd_sized_chunk_before_the_data_is_skipped_with_its_pad_byte(tmp_path):
    p = tmp_path / "odd.wav"
    p.write_bytes(_riff(_chunk(b"fmt ", FMT), _chunk(b"LIST", b"abc"), _chunk(b"data", PCM)))
    y = load_wav(p, 16000)
    np.testing.assert_array_equal(y, np.arange(100, dtype=np.float32) * 100 / 32768)


def test_a_streamed_wav_header_is_left_to_libsndfile(tmp_path):
    # data size 0xFFFFFFFF: written while recording, length unknown; not a truncated file
    p = tmp_path / "stream.wav"
    p.write_bytes(_riff(_chunk(b"fmt ", FMT)) + b"data" + struct.pack("<I", 0xFFFFFFFF) + PCM)
    np.testing.assert_array_equal(load_wav(p, 16000), np.arange(100, dtype=np.float32) * 100 / 32768)


def test_a_wav_without_frames_is_named(tmp_path):
    from audionas.data.audio import check_audio

    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000, subtype="PCM_16")
    for read in (check_audio, lambda f: load_wav(f, 16000)):
        with pytest.raises(UserError, match=r"empty\.wav: no audio frames \(an empty file, or one cut short"):
            read(tmp_path / "empty.wav")


def test_a_resampled_wav_gets_one_frame_of_slack(tmp_path):
    # 1001 frames at 22050 Hz are 726.35 frames at 16 kHz: 726 and 727 are accepted, 725 is not
    p = _wav(tmp_path / "r22k.wav", n=1001, sr=22050)
    for n in (726, 727):
        assert len(load_wav(p, 16000, expected_frames=n, warn_resample=False)) == 727
    with pytest.raises(UserError, match=r"r22k\.wav: expected 725 frames at 16000 Hz, got 727 once resampled "
                                        r"from its 22050 Hz \(0\.04544 s; 0\.04531 s expected\)$"):
        load_wav(p, 16000, expected_frames=725, warn_resample=False)
    q = _wav(tmp_path / "same.wav", n=1001)
    with pytest.raises(UserError, match=r"same\.wav: expected 1000 frames at 16000 Hz, got 1001$"):
        load_wav(q, 16000, expected_frames=1000)  # no resampling: no slack


def test_save_wav_clips_to_the_unit_range_in_float_files_too(tmp_path):
    save_wav(tmp_path / "f.wav", np.array([0.0, 1.5, -3.0, 0.25]), 16000, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(tmp_path / "f.wav", dtype="float32")[0], [0.0, 1.0, -1.0, 0.25])


def test_audio_below_skips_hidden_names_and_other_files(tmp_path):
    from audionas.data.audio import audio_below

    for rel in ("a.wav", "._a.wav", ".hidden/b.wav", "sub/c.FLAC", "sub/.DS_Store", "notes.txt", "d.mp3"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert audio_below(tmp_path) == ["a.wav", "d.mp3", "sub/c.FLAC"]


def test_check_audio_measures_a_resampled_length_as_load_wav_does(tmp_path):
    # 1001 frames at 22050 Hz: librosa makes 727 frames at 16 kHz (rounded up), so 725 is refused by both
    from audionas.data.audio import check_audio

    p = _wav(tmp_path / "r22k.wav", n=1001, sr=22050)
    for n in (726, 727, 728):
        assert check_audio(p, 1, 16000, n) == 22050
    with pytest.raises(UserError, match=r"r22k\.wav: expected 725 frames at 16000 Hz, got 727"):
        check_audio(p, 1, 16000, 725)


def test_check_clips_measures_the_length_at_the_run_rate(tmp_path):
    # Pinned: "longer than the input" compares the clip's length once resampled to the run's rate, not its
    # frame count (1.5 s at 8 kHz is longer than 1 s at 16 kHz; 1 s at 32 kHz is not).
    import warnings

    from audionas.data.audio import check_clips

    slow = _wav(tmp_path / "slow.wav", n=12000, sr=8000)
    fast = _wav(tmp_path / "fast.wav", n=32000, sr=32000)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_clips([fast, slow], 16000, 16000, "x: ")
    longer = [str(w.message) for w in record if "longer" in str(w.message)]
    assert longer == [f"x: 1 of 2 clips are longer than 1 s (e.g. {slow}); only their first 1 s are used"]


def test_clips_mostly_under_half_the_input_length_are_warned_about_once(tmp_path):
    # Before (own-sounds QA): 1-4 s clips zero-padded to dcase-logmel's 10 s trained an mbnet (pool=last) to
    # chance without a word.
    import warnings

    from audionas.data.audio import check_clips

    short = [_wav(tmp_path / f"s{k}.wav", n=4000 + 1000 * k, sr=16000) for k in range(3)]  # 0.25-0.375 s
    full = [_wav(tmp_path / f"f{k}.wav", n=16000, sr=16000) for k in range(2)]

    def said(paths):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            check_clips(paths, 16000, 16000, "x: ")
        return [str(w.message) for w in record if "zero-padded" in str(w.message)]

    assert said(short + full) == [
        "x: 3 of 5 clips are shorter than half the 1 s input (median 0.38 s): each is zero-padded at its "
        "end, so padding fills most inputs; an mbnet model then needs model_args.pool=mean (pool=last reads "
        "the GRU's state after all that padding); data.feature=NAME@Xs sets an input of the clips' length "
        "(e.g. honk-mfcc@2s)"]
    assert said(short[:1] + full) == []  # the median clip fills its input
