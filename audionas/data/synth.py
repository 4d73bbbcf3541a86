"""Synthetic Speech Commands spoken by espeak-ng, written in exactly the Speech Commands v0.01 layout.

A speaker is (English voice/accent, voice variant, pitch, speed, amplitude), kept across the 30 words; each
speaker says each word once or a few times (`_nohash_0`, `_nohash_1`, ...) with small per-utterance jitter
(pitch, speed, gain, onset, light noise). `_background_noise_/` holds six ~60 s noises synthesised with numpy
under the official names; `validation_list.txt` / `testing_list.txt` follow the TF hash rule at 10% / 10%.
Everything is deterministic for a seed (on one espeak-ng installation). The dataset is built in a sibling
temporary folder and renamed into place, with a completion marker, so an interrupted run leaves nothing that
looks complete.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audionas.data.audio import holds_samples
from audionas.data.speech_commands import BACKGROUND_NOISE_NAMES, SPEECH_COMMANDS_V1_WORDS
from audionas.data.splits import which_set
from audionas.errors import UserError, warn
from audionas.utils.atomic import failed_writes_named, open_mode, tempfile_leftovers
from audionas.utils.dist import available_cores, check_threads
from audionas.utils.jsonio import json_object_or_none
from audionas.utils.progress import progress_off
from audionas.utils.rundir import locked_elsewhere

SAMPLE_RATE = 16000
CLIP = SAMPLE_RATE  # 1 s
MARKER = ".audionas-synth.json"
DEFAULT_SPEAKERS = 400
# Choice: at most 100,000 speakers (~4 million clips, days of synthesis here; Speech Commands v0.02 has
# ~2,600): the speaker list is built before any clip, so 1e20 hung, and 8-hex ids run out past 2^32 anyway.
MAX_SPEAKERS = 100_000
INSTALL_HINT = ("install it with 'sudo apt-get install espeak-ng' (Debian/Ubuntu), 'brew install espeak-ng' "
                "(macOS) or from https://github.com/espeak-ng/espeak-ng")
# Choice: repetitions per (speaker, word) drawn from {1: 70%, 2: 20%, 3: 10%}, like the real corpus where most
# speakers say a word once and some several times.
REPEAT_PROBS = (0.7, 0.2, 0.1)


@dataclass(frozen=True)
class Speaker:
    id: str  # 8 hex digits
    voice: str  # espeak-ng voice file, e.g. gmw/en-US
    variant: str  # espeak-ng variant name ('' = none)
    pitch: int  # espeak-ng -p, 0..99
    speed: int  # espeak-ng -s, words per minute
    amplitude: int  # espeak-ng -a, 0..200


@dataclass(frozen=True)
class Utterance:
    word: str
    speaker: Speaker
    rep: int
    pitch: int
    speed: int
    gain: float
    noise_std: float
    short: bool  # the file ends shortly after the word (< 1 s), as ~10% of the real clips
    seed: tuple[int, ...]
    rel: str  # word/<speaker>_nohash_<rep>.wav


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise UserError(f"espeak-ng: program not found; {INSTALL_HINT}")
    return exe


def _run(args: list[str]) -> str:
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise UserError(f"{args[0]}: cannot run ({e.strerror}); {INSTALL_HINT}") from None
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit code {r.returncode}"
        raise UserError(f"{args[0]}: failed ({why})")
    return r.stdout


def list_voices(exe: str) -> tuple[list[str], list[str]]:
    """(English voice files without MBROLA, variant names), both sorted, from `espeak-ng --voices`."""
    voices, variants = set(), set()
    for line in _run([exe, "--voices=en"]).splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and not cols[4].startswith(("mb/", "!v/")):
            voices.add(cols[4])
    for line in _run([exe, "--voices=variant"]).splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[4].startswith("!v/"):
            variants.add(cols[4][3:])
    if not voices:
        raise UserError(f"{exe}: no English voices found (espeak-ng --voices=en); {INSTALL_HINT}")
    # Choice: whispered variants are left out: without voicing the words are mostly unintelligible noise.
    variants = {v for v in variants if "whisper" not in v.lower()}
    return sorted(voices), [""] + sorted(variants)


def make_speakers(n: int, seed: int, voices: list[str], variants: list[str]) -> list[Speaker]:
    rng = np.random.default_rng([seed, 1])
    ids: set[str] = set()
    out = []
    while len(out) < n:
        sid = f"{int(rng.integers(0, 2**32)):08x}"
        if sid in ids:
            continue
        ids.add(sid)
        # Choice: pitch 15..85, speed 120..200 wpm around espeak-ng's defaults (50, 175); amplitude 50..150.
        out.append(Speaker(id=sid, voice=voices[int(rng.integers(len(voices)))],
                           variant=variants[int(rng.integers(len(variants)))],
                           pitch=int(rng.integers(15, 86)), speed=int(rng.integers(120, 201)),
                           amplitude=int(rng.integers(50, 151))))
    return out


def make_utterances(speakers: list[Speaker], words: list[str], seed: int) -> list[Utterance]:
    out = []
    for s_idx, spk in enumerate(speakers):
        for w_idx, word in enumerate(words):
            rng = np.random.default_rng([seed, 2, s_idx, w_idx])
            reps = 1 + int(rng.choice(len(REPEAT_PROBS), p=REPEAT_PROBS))
            for rep in range(reps):
                out.append(Utterance(
                    word=word, speaker=spk, rep=rep,
                    pitch=int(np.clip(spk.pitch + rng.integers(-4, 5), 0, 99)),
                    speed=int(round(spk.speed * rng.uniform(0.94, 1.06))),
                    gain=float(rng.uniform(0.8, 1.2)), noise_std=float(10 ** rng.uniform(-3.7, -2.5)),
                    short=bool(rng.random() < 0.1), seed=(seed, 3, s_idx, w_idx, rep),
                    rel=f"{word}/{spk.id}_nohash_{rep}.wav"))
    return out


def _speak(exe: str, u: Utterance, speed: int) -> tuple[np.ndarray, int]:
    """espeak-ng's wav for one utterance at `speed` wpm (read from --stdout: no temporary files)."""
    voice = f"{u.speaker.voice}+{u.speaker.variant}" if u.speaker.variant else u.speaker.voice
    args = [exe, "--stdout", "-v", voice, "-p", str(u.pitch), "-s", str(speed),
            "-a", str(u.speaker.amplitude), "--", u.word]
    r = subprocess.run(args, capture_output=True, timeout=60)
    if r.returncode != 0 or not r.stdout:
        why = r.stderr.decode(errors="replace").strip().replace("\n", " ") or f"exit code {r.returncode}"
        raise UserError(f"espeak-ng: failed on '{u.word}' with voice {voice} ({why})")
    y, sr = sf.read(io.BytesIO(r.stdout), dtype="float32", always_2d=True)
    return y[:, 0], sr


def _trim_bounds(y: np.ndarray, top_db: float = 45.0, frame: int = 512, hop: int = 128) -> tuple[int, int]:
    """Sample range of the frames within `top_db` of the loudest one (librosa.effects.trim without numba)."""
    n = 1 + max(0, len(y) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(np.asarray(y, np.float64)[np.minimum(idx, len(y) - 1)] ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10))
    loud = np.flatnonzero(db > -top_db)
    return int(loud[0] * hop), int(min(len(y), loud[-1] * hop + frame))


def render(exe: str, u: Utterance) -> np.ndarray:
    """One utterance at 16 kHz, <= 1 s, the word at a random onset; speed raised if the word is too long."""
    from scipy.signal import resample_poly

    max_len = int(0.96 * CLIP)
    speed = u.speed
    for _ in range(6):
        y, sr = _speak(exe, u, speed)
        if sr != SAMPLE_RATE:
            # Choice: polyphase resampling (scipy), not librosa: no numba start-up cost.
            g = math.gcd(sr, SAMPLE_RATE)
            y = resample_poly(y, SAMPLE_RATE // g, sr // g).astype(np.float32)
        if not np.any(np.abs(y) > 1e-4):
            raise UserError(f"espeak-ng: silent output for '{u.word}' with voice {u.speaker.voice}")
        a, b = _trim_bounds(y)
        margin = int(0.02 * SAMPLE_RATE)
        y = y[max(0, a - margin):b + margin]
        if len(y) <= max_len:
            break
        # Never cut speech: speak faster until the word fits into the clip.
        speed = int(np.ceil(speed * len(y) / (0.9 * max_len)))
    else:
        y = y[:max_len] * np.hanning(2 * max_len)[max_len:] ** 0.1  # last resort: fade out the tail
    rng = np.random.default_rng(list(u.seed))
    onset = int(rng.integers(0, CLIP - len(y) + 1))
    end = CLIP
    if u.short:
        end = min(CLIP, onset + len(y) + int(rng.integers(0, int(0.1 * SAMPLE_RATE))))
    x = np.zeros(end, np.float64)
    x[onset:onset + len(y)] = y * u.gain
    x += u.noise_std * rng.standard_normal(end)
    peak = np.abs(x).max()
    if peak > 0.99:
        x *= 0.99 / peak  # keep the speaker's loudness but never clip
    return x.astype(np.float32)


# -- background noises -------------------------------------------------------------------------------------

def shaped_noise(rng: np.random.Generator, n: int, exponent: float, lo: float = 0.0,
                 hi: float = 8000.0) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^exponent between lo and hi Hz, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    gain = np.where((f >= lo) & (f <= hi), 1.0 / np.maximum(f, 1.0) ** (exponent / 2), 0.0)
    x = np.fft.irfft(spec * gain, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _envelope(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """A slowly varying positive envelope (low-passed noise), mean ~1."""
    e = shaped_noise(rng, n, 0.0, 0.0, rate_hz)
    return np.clip(1.0 + 0.5 * e, 0.05, None)


def make_noise(name: str, seconds: float, seed: int) -> np.ndarray:
    """A plausible stand-in for one of the six Speech Commands background noises, float in [-1, 1]."""
    rng = np.random.default_rng([seed, 4, BACKGROUND_NOISE_NAMES.index(name)])
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if name == "white_noise":
        x = 0.15 * rng.standard_normal(n)
    elif name == "pink_noise":
        x = 0.12 * shaped_noise(rng, n, 1.0, 10.0)
    elif name == "running_tap":  # broadband hiss with fast gurgling amplitude changes
        x = 0.08 * shaped_noise(rng, n, 0.5, 300.0, 6000.0) * _envelope(rng, n, 12.0)
    elif name == "doing_the_dishes":  # quiet rumble plus random clinks (decaying partials)
        x = 0.01 * shaped_noise(rng, n, 1.0, 20.0)
        for start in np.cumsum(rng.exponential(0.5, size=int(seconds * 3))):
            i = int(start * SAMPLE_RATE)
            if i >= n:
                break
            m = min(n - i, int(0.4 * SAMPLE_RATE))
            tt = np.arange(m) / SAMPLE_RATE
            f0, tau, amp = rng.uniform(1500, 6000), rng.uniform(0.02, 0.15), rng.uniform(0.05, 0.4)
            partials = np.sin(2 * np.pi * f0 * tt) + 0.5 * np.sin(2 * np.pi * 2.76 * f0 * tt)
            x[i:i + m] += amp * np.exp(-tt / tau) * partials
    elif name == "exercise_bike":  # rhythmic whoosh, a click per pedal turn, motor hum
        cadence = rng.uniform(1.0, 1.6)
        x = 0.1 * shaped_noise(rng, n, 1.5, 30.0, 3000.0) * (0.3 + np.sin(np.pi * cadence * t) ** 2)
        x += 0.02 * sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 5))
        for c in np.arange(0, seconds, 1 / cadence):
            i = int(c * SAMPLE_RATE)
            m = min(n - i, 200)
            x[i:i + m] += 0.3 * rng.standard_normal(m) * np.exp(-np.arange(m) / 30)
    elif name == "dude_miaowing":  # brown rumble (room, voices far away) plus occasional meows
        x = 0.05 * shaped_noise(rng, n, 2.0, 20.0, 4000.0)
        start = rng.uniform(0.5, 3.0)
        while start < seconds - 1.2:
            i, dur = int(start * SAMPLE_RATE), rng.uniform(0.4, 1.0)
            m = int(dur * SAMPLE_RATE)
            u = np.linspace(0, 1, m)
            f0 = rng.uniform(450, 650) * (1 + 0.6 * np.sin(np.pi * u) - 0.2 * u)
            phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
            meow = sum(np.sin(k * phase) / k**1.5 for k in range(1, 7))
            x[i:i + m] += rng.uniform(0.1, 0.3) * np.hanning(m) * meow
            start += dur + rng.uniform(2.0, 8.0)
    else:
        raise ValueError(f"unknown noise '{name}'")
    return np.clip(x, -1.0, 1.0).astype(np.float32)


# -- the dataset -------------------------------------------------------------------------------------------

def _marker(out: Path) -> dict:
    """The completion marker's content ({} when missing or not a JSON object: not a complete dataset)."""
    return json_object_or_none(out / MARKER) or {}


def is_complete(out: Path) -> bool:
    return _marker(out).get("complete") is True


def _check_same_settings(out: Path, summary: dict, asked: dict) -> None:
    """A complete dataset made with other settings than `asked` (a key its summary lacks is not compared) is
    a UserError naming them: "nothing to do" would hand back a set other than the one asked for."""
    differ = [k for k, v in asked.items() if k in summary and summary[k] != v]
    if differ:
        flag = {"speakers": "--speakers ", "seed": "--seed ", "noise_seconds": "--noise-seconds ",
                "words": "words="}
        made = ", ".join(f"{flag[k]}{summary[k]}" for k in differ)
        now = ", ".join(f"{flag[k]}{asked[k]}" for k in differ)
        raise UserError(f"{out}: holds a synthetic dataset made with {made}, not {now}; --force rebuilds it, "
                        f"or choose another --out")


def _check_clips_there(out: Path, files) -> None:
    """UserError when a complete set no longer holds the word clips it was made with, each more than a wav
    header (one removed or emptied since): "nothing to do" would leave training to fail on a list file."""
    if not isinstance(files, int):
        return
    have = sum(1 for p in out.glob("*/*.wav") if p.parent.name != "_background_noise_" and holds_samples(p))
    if have != files:
        raise UserError(f"{out}: holds {have} of the {files} clips this synthetic dataset was made with "
                        f"(removed or emptied since?); --force rebuilds it")


def synthesize(out: str | os.PathLike, speakers: int = DEFAULT_SPEAKERS, seed: int = 0,
               noise_seconds: float = 60.0, workers: int | None = None, words: list[str] | None = None,
               force: bool = False, progress: bool = True) -> dict:
    """Build the synthetic dataset at `out`; returns a summary (files, path, already_complete; seconds: the
    build time, not kept in the dataset, when built now).

    `words` (default: all 30 v0.01 words) exists for tests and quick experiments.
    """
    out = Path(out).expanduser().absolute()
    if out.is_symlink():  # the dataset goes where the link leads (renaming onto it would replace the link)
        out = out.resolve()
    if not 1 <= speakers <= MAX_SPEAKERS:
        raise UserError(f"--speakers: expected 1 to {MAX_SPEAKERS:,}, got {speakers}")
    # Choice: at most an hour per noise file (the official ones are ~1 min); larger values exhaust memory.
    if not 1 <= noise_seconds <= 3600:
        raise UserError(f"--noise-seconds: expected 1 to 3600 (a silence crop is 1 s), got {noise_seconds}")
    words = list(words) if words is not None else list(SPEECH_COMMANDS_V1_WORDS)
    # Choice: two threads per core by default: each thread mostly waits for its espeak-ng process.
    workers = workers or 2 * available_cores()
    if workers < 1:
        raise UserError(f"--workers: expected >= 1, got {workers}")
    check_threads(workers, "--workers")
    # A set inside another Speech Commands set would be read by it as one more word folder.
    around = next((d for d in out.resolve().parents if (d / "validation_list.txt").is_file()), None)
    if around is not None:
        raise UserError(f"--out {out}: inside the Speech Commands dataset {around}, where it would be read "
                        f"as a word folder; use an --out outside it")
    if out.exists():
        if is_complete(out):
            if not force:
                summary = _marker(out).get("summary")
                summary = summary if isinstance(summary, dict) else {}
                _check_same_settings(out, summary, {"speakers": speakers, "seed": seed,
                                                    "noise_seconds": noise_seconds, "words": len(words)})
                _check_clips_there(out, summary.get("files"))
                return {"path": str(out), "already_complete": True, **summary}
        elif not out.is_dir() or any(out.iterdir()):
            # Even with --force: never delete a folder this command did not make.
            raise UserError(f"{out}: exists and is not a complete synthetic dataset; choose another --out "
                            f"(a new or empty folder)")
    exe = espeak_binary()
    voices, variants = list_voices(exe)
    spk = make_speakers(speakers, seed, voices, variants)
    utts = make_utterances(spk, words, seed)
    t0 = time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    # One synthesis per --out at a time: a live one holds its `{out}.tmp-*` folder's flock, so an unlocked
    # one is a killed run's half dataset, and a `{out}.old-*` one the dataset a killed --force run was
    # replacing.
    for kind in ("tmp", "old"):
        for stale in tempfile_leftovers(out.parent, f"{out.name}.{kind}-"):
            if locked_elsewhere(stale):
                raise UserError(f"{out}: another synthesis is writing it (into {stale.name}); wait for it to "
                                f"end, or choose another --out")
            shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.tmp-"))
    except OSError as e:  # the half dataset's folder beside --out: name --out, not a random temp name
        raise UserError(f"{out}: cannot write there ({e.strerror or e})") from None
    held = os.open(tmp, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # until the dataset is in place (the lock follows the folder's rename)
    try:
        with failed_writes_named(f"{out}: cannot write there", out.parent,
                                 cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True)):
            tmp.chmod(open_mode(folder=True))  # it becomes --out
            for w in words:
                (tmp / w).mkdir()

            def job(u: Utterance) -> None:
                sf.write(str(tmp / u.rel), render(exe, u), SAMPLE_RATE, subtype="PCM_16",
                         format="WAV")

            def noise_job(name: str) -> None:
                sf.write(str(tmp / "_background_noise_" / f"{name}.wav"),
                         make_noise(name, noise_seconds, seed), SAMPLE_RATE, subtype="PCM_16", format="WAV")

            (tmp / "_background_noise_").mkdir()
            from tqdm import tqdm

            with ThreadPoolExecutor(max_workers=workers) as pool:
                noise_futs = [pool.submit(noise_job, name) for name in BACKGROUND_NOISE_NAMES]
                for _ in tqdm(pool.map(job, utts), total=len(utts), desc="espeak-ng", unit="clip",
                              disable=progress_off(not progress), file=sys.stderr):
                    pass
                for f in noise_futs:
                    f.result()
            lists: dict[str, list[str]] = {"validation": [], "testing": []}
            for u in utts:
                s = which_set(u.rel, 10.0, 10.0)
                if s in lists:
                    lists[s].append(u.rel)
            (tmp / "validation_list.txt").write_text("".join(f"{r}\n" for r in sorted(lists["validation"])))
            (tmp / "testing_list.txt").write_text("".join(f"{r}\n" for r in sorted(lists["testing"])))
            summary = {"files": len(utts), "speakers": speakers, "words": len(words), "seed": seed,
                       "noise_seconds": noise_seconds, "validation": len(lists["validation"]),
                       "testing": len(lists["testing"])}  # no build time: equal settings, equal bytes
            (tmp / "README.md").write_text(
                "# Synthetic Speech Commands (audionas)\n\nSpoken by espeak-ng; the layout of Speech "
                "Commands v0.01. Generated by `audionas data synth-speech-commands`.\n\n"
                + "".join(f"- {k}: {v}\n" for k, v in summary.items()))
            (tmp / MARKER).write_text(json.dumps({"complete": True, "summary": summary,
                                                   "speakers": [asdict(s) for s in spk]}, indent=1) + "\n")
            if out.exists():  # --force on a complete dataset, or an empty folder: move it aside, then swap
                old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{out.name}.old-"))
                os.replace(out, old / "data")
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
    finally:
        os.close(held)
    empty = [name for name in ("validation", "testing") if not summary[name]]
    if empty:  # the hash rule splits by speaker: a handful of speakers can all land in training
        who = f"{speakers} speaker{'s' * (speakers != 1)}"
        warn(f"{out}: the hash rule put no clip in the {' or the '.join(empty)} list ({who}; each "
             f"speaker's clips go to one split): train scores epochs on the validation list and "
             f"evaluate --split test needs the testing one; use more --speakers")
    return {"path": str(out), "already_complete": False, **summary, "seconds": round(time.time() - t0, 1)}
