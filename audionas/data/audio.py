"""Checked audio I/O: `load_wav` (UserError naming the file, resampled with a warning), atomic `save_wav`;
which files count as audio (`AUDIO_SUFFIXES`, `audio_below`) and the dataset-folder check `check_root`."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from audionas.errors import ReadWarning, UserError, warn
from audionas.utils.atomic import open_mode
from audionas.utils.text import nfc

# Choice: the formats libsndfile reads that people keep sounds in; the official sets hold only .wav.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
AUDIO_FILES = "audio files (" + ", ".join(AUDIO_SUFFIXES) + ")"


def holds_samples(path: Path) -> bool:
    """Whether `path` is a file longer than a canonical 44-byte wav header: a clip a dataset this package
    wrote still holds (not deleted or emptied since). A cheap stat, not a decode."""
    return path.is_file() and path.stat().st_size > 44


def _riff_problem(path: Path, size: int) -> str | None:
    """Why a RIFF/WAVE file of `size` bytes is damaged (data chunk longer than the file), or None.

    libsndfile silently reads a truncated wav as a shorter one, so the header is checked here.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None  # not plain RIFF (RF64, other formats): leave it to libsndfile
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, csize = struct.unpack("<4sI", f.read(8))
                if cid == b"data":
                    if csize in (0, 0xFFFFFFFF):  # streamed header: length unknown
                        return None
                    if pos + 8 + csize > size:
                        return (f"truncated wav (header announces {csize} data bytes, "
                                f"file holds {size - pos - 8})")
                    return None
                pos += 8 + csize + (csize & 1)
            return "truncated wav (no complete 'data' chunk)"
    except OSError as e:
        return f"cannot read ({e.strerror})"


def _check_file(path: str | os.PathLike) -> Path:
    """`path` as a Path; a folder, a missing file or a truncated wav is a UserError naming it."""
    path = Path(path)
    try:
        mode, size = (st := path.stat()).st_mode, st.st_size  # one stat: every clip is checked at each read
    except OSError as e:  # missing or a broken link (as pathlib's is_file); else its error
        if e.errno == errno.ELOOP:
            raise UserError(f"{path}: its path runs through a loop of links") from None
        if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EBADF):
            raise
        mode, size = 0, 0
    if stat.S_ISDIR(mode):
        raise UserError(f"{path}: a folder, expected an audio file")
    if not stat.S_ISREG(mode):  # /dev/null, a pipe: there, but no file
        raise UserError(f"{path}: " + ("not a regular file, expected an audio file" if mode
                                       else "audio file not found"))
    if path.suffix.lower() in (".wav", ".wave"):
        problem = _riff_problem(path, size)
        if problem:
            raise UserError(f"{path}: {problem}")
    return path


def unreadable(path: Path, e: Exception) -> UserError:
    """The one-line error for a file soundfile cannot open or decode."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "does not exist or is not a regular file" in msg and path.is_file():
        msg = "format not recognised"  # what libsndfile's MP3 reader says of a file it cannot decode
    return UserError(f"{path}: not a readable audio file ({msg})")


@contextlib.contextmanager
def _quiet_decoder(path: Path) -> Iterator[None]:
    """Silence file descriptor 2 while libsndfile opens an MP3: its libmpg123 prints notes about a damaged
    file there, from C, around our one-line error. Other formats print nothing and are left alone."""
    if path.suffix.lower() != ".mp3":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class AudioHeader(NamedTuple):
    """What audionas reads of an audio file's header."""

    samplerate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


def sound_info(path: str | os.PathLike) -> AudioHeader:
    """The header of an audio file; a missing, unreadable or truncated file is a UserError naming it. Read
    with soundfile.SoundFile, not soundfile.info: its format descriptions and log text cost a third more."""
    path = _check_file(path)
    try:
        with _quiet_decoder(path), sf.SoundFile(os.fsencode(path)) as f:  # bytes: a name not in UTF-8 too
            return AudioHeader(f.samplerate, f.channels, f.frames)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise unreadable(path, e) from None


def warn_other_rates(files: list, rates: list[int | None], sample_rate: int, what: str = "files",
                     where: str = "", when: str = "") -> bool:
    """One warning for all `files` whose rate is not `sample_rate` (None: unknown, skipped), so their loads
    can pass warn_resample=False instead of one warning per file; True when there is any."""
    other = [(f, sr) for f, sr in zip(files, rates) if sr is not None and sr != sample_rate]
    if other:
        found = sorted({sr for _, sr in other})
        warn(f"{where}{len(other)} of {len(files)} {what} are not at {sample_rate} Hz "
             f"({', '.join(f'{sr} Hz' for sr in found)}; e.g. {other[0][0]}); resampling them{when}")
    return bool(other)


def mono_remedy(training: bool) -> str:
    """What follows "mix it down to mono first" for a file of several channels while data.mixdown is off: a
    training run can turn data.mixdown on; a scoring (evaluate, a search over a supernet) reads files as its
    network was trained to."""
    if training:
        return ", or train with data.mixdown=true (each file read as the mean of its channels)"
    return (": the network was trained without data.mixdown (which reads each file as the mean of its "
            "channels), so it reads mono files only")


def _check_layout(path: Path, got_channels: int, frames: int, channels: int, mixdown: bool = False,
                  mono_fix: str = "mix it down to mono first") -> None:
    """Another channel count than `channels` (any count with `mixdown` to one channel; else a mono file is
    told `mono_fix`), or no frames at all, is a UserError naming the file."""
    if got_channels != channels and not (mixdown and channels == 1):
        mono = f"; {mono_fix}" if channels == 1 else ""
        raise UserError(f"{path}: expected {channels} channel(s), got {got_channels}{mono}")
    if frames == 0:
        raise UserError(f"{path}: no audio frames (an empty file, or one cut short)")


def _check_length(path: Path, frames: int, sr: int, sample_rate: int, expected_frames: int) -> None:
    """A UserError unless `frames` at `sr` Hz (the length at `sample_rate` once resampled) is
    `expected_frames`."""
    # Choice: one frame of slack after resampling (rounding of the resampled length), none otherwise.
    slack = 1 if sr != sample_rate else 0
    if abs(frames - expected_frames) > slack:
        # At another rate the file's own frame count differs: the rate and both durations say what is wrong.
        other = "" if sr == sample_rate else (f" once resampled from its {sr} Hz ({frames / sample_rate:.4g} "
                                              f"s; {expected_frames / sample_rate:.4g} s expected)")
        raise UserError(f"{path}: expected {expected_frames} frames at {sample_rate} Hz, got {frames}{other}")


def _checked_info(path: str | os.PathLike, channels: int, mixdown: bool = False,
                  mono_fix: str = "mix it down to mono first") -> AudioHeader:
    """The header of an audio file (sound_info), refused as `_check_layout` says."""
    info = sound_info(path)
    _check_layout(Path(path), info.channels, info.frames, channels, mixdown, mono_fix)
    return info


def check_audio(path: str | os.PathLike, channels: int = 1, sample_rate: int | None = None,
                expected_frames: int | None = None, mixdown: bool = False,
                mono_fix: str = "mix it down to mono first") -> int:
    """The sample rate of an audio file, from its header alone; a file `load_wav` would refuse for its
    header (missing, unreadable, truncated, no frames, another channel count, with `expected_frames` another
    length at `sample_rate`) is the same UserError.

    Cheap enough to check a whole dataset before any work; a damaged body needs `check_decodes`. `mixdown`,
    `mono_fix`: as in `_check_layout`.
    """
    info = _checked_info(path, channels, mixdown, mono_fix)
    sr = int(info.samplerate)
    if expected_frames is not None and sample_rate is not None:
        frames = info.frames if sr == sample_rate else math.ceil(info.frames * sample_rate / sr)  # librosa's
        _check_length(Path(path), frames, sr, sample_rate, expected_frames)
    return sr


def check_clips(paths: list[Path], sample_rate: int, clip_samples: int, where: str = "",
                padding: bool = True, mixdown: bool = False, training: bool = True) -> None:
    """Read the header of every clip a run will read, before any training: the UserError `check_audio` gives
    for a bad one, then one warning for all clips at another rate (resampled at each read) and one for all
    clips longer than `clip_samples` (cut to their start), instead of one per clip and epoch or none; and,
    with `padding`, one when most clips are under half that length (zero padding then fills most inputs).
    Clips of several channels are refused, all named at once, unless `mixdown` (data.mixdown) averages
    them (`training`: whether the remedy may be to turn it on, mono_remedy)."""
    rates, longer, multi, seconds = [], [], [], []
    for path in paths:
        info = sound_info(path)
        if info.channels != 1 and not mixdown:  # all named at once: a user mixes a folder down, not a file
            multi.append((path, info.channels))
            continue
        _check_layout(Path(path), info.channels, info.frames, 1, mixdown)
        sr = int(info.samplerate)
        rates.append(sr)
        seconds.append(info.frames / sr)
        if info.frames * sample_rate > clip_samples * sr:  # longer once resampled to sample_rate
            longer.append(path)
    if multi:
        more = (f" ({len(multi) - 1} more clip(s) have several channels too); mix them" if len(multi) > 1
                else "; mix it")
        raise UserError(f"{multi[0][0]}: expected 1 channel(s), got {multi[0][1]}{more} down to mono "
                        f"first{mono_remedy(training)}")
    warn_other_rates(paths, rates, sample_rate, "clips", where, " each time they are read")
    warn_longer(longer, len(paths), clip_samples / sample_rate, where)
    if padding:
        warn_mostly_padding(seconds, clip_samples / sample_rate, where)


def warn_mostly_padding(seconds: list[float], length: float, where: str = "") -> None:
    """One warning when the median clip (of `seconds`) is under half the `length` s input: most of each input
    is then zero padding, all of its end, which a model reading only the last time step never gets past."""
    median = float(np.median(seconds)) if seconds else length
    if median < length / 2:
        short = sum(s < length / 2 for s in seconds)
        warn(f"{where}{short} of {len(seconds)} clips are shorter than half the {length:g} s input (median "
             f"{median:.2g} s): each is zero-padded at its end, so padding fills most inputs; an mbnet model "
             f"then needs model_args.pool=mean (pool=last reads the GRU's state after all that padding); "
             f"data.feature=NAME@Xs sets an input of the clips' length (e.g. honk-mfcc@2s)")


def warn_longer(longer: list, total: int, seconds: float, where: str = "") -> None:
    """One warning naming how many of `total` clips are longer than `seconds` (only their start is used)."""
    if total == 1 and longer:
        warn(f"{where}{longer[0]}: longer than {seconds:g} s; only its first {seconds:g} s is used")
    elif longer:
        warn(f"{where}{len(longer)} of {total} clips are longer than {seconds:g} s (e.g. "
             f"{longer[0]}); only their first {seconds:g} s are used")


MP3_FRAME = 1152  # samples per MPEG-1 Layer III frame: a cut inside the last frame loses less than this


def _mp3_states_length(path: Path) -> bool:
    """Whether an MP3 gives its length in a Xing / Info / VBRI header (LAME and ffmpeg write one); only then
    is the frame count libsndfile reports exact rather than estimated from the file's size."""
    with open(path, "rb") as f:
        head = f.read(10)
        start = 0
        if len(head) == 10 and head[:3] == b"ID3":  # skip an ID3v2 tag: its size is a 28-bit syncsafe int
            start = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7
                          | head[9] & 0x7F)
        f.seek(start)
        first = f.read(64)  # the tag sits 13-36 bytes after the first frame's 4-byte header
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


# Choice: float files up to 1e12 are read (integer-scaled ones reach 2**31); the power spectrum of a
# 2048-point frame stays far below float32's 3.4e38 there.
MAX_PEAK = 1e12


def _decode(path: Path, channels: int, warn_range: bool = True, mixdown: bool = False,
            head: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """(frames, channels) float32 samples and the sample rate of a checked file (with `mixdown` and one
    channel wanted, a multi-channel file's channels averaged); an undecodable body, a truncated MP3 whose
    header states its length, another channel count, no frames, NaN / infinite samples or samples beyond
    MAX_PEAK is a UserError naming it. Samples beyond [-1, 1] are warned about unless `warn_range` is
    false. `head` = (frames, rate): read only what gives that many frames at that rate (the checks then
    cover that part)."""
    try:
        with _quiet_decoder(path), sf.SoundFile(os.fsencode(path)) as f:
            announced, sr = f.frames, f.samplerate
            if head is not None:
                announced = min(announced, _head_frames(*head, sr))
            data = f.read(announced if head is not None else -1, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise unreadable(path, e) from None
    # libsndfile decodes a cut MP3 as a shorter one without a word (a cut WAV is caught by _riff_problem).
    if (path.suffix.lower() == ".mp3" and len(data) < announced - MP3_FRAME
            and _mp3_states_length(path)):
        raise UserError(f"{path}: truncated mp3 (header announces {announced} frames, file holds "
                        f"{len(data)})")
    _check_layout(path, data.shape[1], data.shape[0], channels, mixdown)
    if mixdown and channels == 1 and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:  # float wavs can hold them; the features would turn them into silence or nan
        raise UserError(f"{path}: {bad} sample(s) are NaN or infinite (expected finite audio)")
    peak = float(np.abs(data).max())
    if peak > MAX_PEAK:  # float32 spectra of louder samples overflow: NaN log-mels, all-zero MFCCs
        raise UserError(f"{path}: samples reach {peak:.4g}, beyond what the features can hold (at most "
                        f"{MAX_PEAK:g}; expected audio in [-1, 1], or integer-scaled)")
    if peak > 1.0 and warn_range:  # only a float file can: some tools store integer-scaled samples as float
        warn(f"{path}: samples reach {peak:.4g}, beyond [-1, 1] (a float file scaled as integers?); "
             f"used as they are", ReadWarning)
    return data, int(sr)


def _head_frames(frames: int, rate: int, file_rate: int) -> int:
    """Frames of a file at `file_rate` that give its first `frames` at `rate` as the whole file resampled
    would (the resampler's filter reads ahead, soxr_hq a few hundred frames: one second is kept), and one
    more, so that a longer file is seen to be longer."""
    if file_rate == rate:
        return frames + 1
    return math.ceil(frames * file_rate / rate) + file_rate


def check_decodes(path: str | os.PathLike, channels: int = 1, mixdown: bool = False) -> None:
    """Decode a whole audio file and drop it: the UserError `load_wav` would give, without resampling. Sees
    what `check_audio`'s header read cannot (a damaged body, NaN samples), at the cost of a full read."""
    _decode(_check_file(path), channels, mixdown=mixdown)


def load_wav(path: str | os.PathLike, sample_rate: int, channels: int = 1,
             expected_frames: int | None = None, warn_resample: bool = True, warn_range: bool = True,
             mixdown: bool = False, head: int | None = None) -> np.ndarray:
    """Read an audio file as float32 at `sample_rate` (in [-1, 1] but for a float file that is not: warned).

    Returns (frames,) for `channels == 1`, else (channels, frames). A missing, unreadable or truncated file, a
    wrong channel count, NaN or infinite samples or (with `expected_frames`, counted at `sample_rate`) a wrong
    length is a UserError naming the file; a different sample rate is resampled with librosa and (unless
    `warn_resample` is false: the caller said so once for many files) a warning naming the file. Samples
    beyond [-1, 1] are a warning too, unless `warn_range` is false (the caller warned about this file before).
    With `mixdown` and `channels == 1`, a multi-channel file is read as the mean of its channels. With
    `head`, only about that many frames (at `sample_rate`) are read: the first `head` are those of the whole
    file, and a longer file still returns more than `head` (a clip cut from an hour-long file reads seconds).
    """
    path = _check_file(path)
    data, sr = _decode(path, channels, warn_range, mixdown, None if head is None else (head, sample_rate))
    data = np.ascontiguousarray(data.T)  # (channels, frames)
    if sr != sample_rate:
        if warn_resample:
            warn(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz; resampling")
        import librosa

        data = librosa.resample(data, orig_sr=sr, target_sr=sample_rate, axis=-1).astype(np.float32)
    if expected_frames is not None:
        _check_length(path, data.shape[1], sr, sample_rate, expected_frames)
    return data[0] if channels == 1 else data


def save_wav(path: str | os.PathLike, data: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write (frames,) or (channels, frames) float audio as WAV via a temporary file and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.T
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, open_mode())
    os.close(fd)
    try:
        sf.write(tmp, np.clip(data, -1.0, 1.0), sample_rate, subtype=subtype, format="WAV")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip", ".gz", ".7z")


def _link_loop(path: Path) -> bool:
    """Whether following the link `path` goes round in a loop (rather than ending at a missing target)."""
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def check_root(root: str | Path, what: str = "dataset folder") -> Path:
    """`root` as a Path; a file (an archive not yet extracted?) or a missing folder is a UserError."""
    root = Path(root).expanduser()
    if root.is_file():
        archive = " (an archive? extract it and pass its folder)" if root.name.endswith(ARCHIVES) else ""
        raise UserError(f"{root}: a file, expected a {what}{archive}")
    if not root.is_dir():
        raise UserError(f"{root}: {what} not found")
    return root


def warn_other_files(others: list[Path], where: str, prefix: str = "") -> None:
    """One warning for the files of other formats audio_below passed over in `where` ("the class folders"):
    an .aiff or .opus collection would otherwise shrink a dataset without a word; one for the linked
    folders it did not enter."""
    files = [p for p in others if not p.is_dir()]
    linked = [p for p in others if p.is_dir()]
    if files:
        kinds = ", ".join(sorted({p.suffix.lower() or "no extension" for p in files}))
        warn(f"{prefix}{len(files)} file(s) in {where} are not {AUDIO_FILES} and are not used "
             f"({kinds}; e.g. {files[0]})")
    if linked:
        warn(f"{prefix}{len(linked)} link(s) to folders in {where} are not followed and their clips are not "
             f"used (e.g. {linked[0]}); copy the folder there, or link its files")


def audio_below(d: Path, others: list[Path] | None = None) -> list[str]:
    """Audio files in folder `d` and its subfolders, as sorted POSIX paths relative to `d`; names starting
    with '.' (.DS_Store, ._x.wav, .git/) are skipped; a broken link named like audio is a UserError. The other
    files skipped (another extension) and the linked folders not entered are appended to `others` when given.
    Sorted by the NFC name: a copy a Mac wrote in NFD lists its clips in the same order."""
    found = []

    def unlistable(e: OSError):  # os.walk skips a folder it cannot list: its clips would be missing silently
        raise UserError(f"{e.filename}: cannot read ({e.strerror})")

    # Choice: symlinked subfolders are not entered (no loops, no clips of another class folder); said once.
    for dirpath, dirnames, filenames in os.walk(d, onerror=unlistable):
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
        if others is not None:
            others.extend(Path(dirpath) / n for n in dirnames if os.path.islink(Path(dirpath) / n))
        sub = Path(dirpath).relative_to(d)
        for n in filenames:
            path = Path(dirpath) / n
            if n.startswith("."):
                continue
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                if others is not None:
                    others.append(path)
                continue
            if path.is_file():
                found.append((sub / n).as_posix())
            else:  # a broken link, a FIFO, a device or a socket: left out silently before
                raise not_a_file(path)
    return sorted(found, key=lambda rel: (nfc(rel), rel))


def not_a_file(path: Path) -> UserError:
    """The one-line error for an entry named like audio that is no regular file: a broken link, a FIFO, a
    device or a socket (a link to one too)."""
    if path.is_symlink() and not path.exists():
        return broken_link(path)
    return UserError(f"{path}: named like audio but not a regular file (a FIFO, device or socket)")


def broken_link(path: Path) -> UserError:
    """The one-line error for a link `path` that leads nowhere (a missing target, or a loop of links)."""
    why = ("a link that leads back to itself (a loop of links)" if _link_loop(path)
           else f"a broken link (its target {os.readlink(path)} does not exist)")
    return UserError(f"{path}: {why}")
