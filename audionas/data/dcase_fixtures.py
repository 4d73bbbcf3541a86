"""Tiny DCASE2018 Task 5 datasets in the official on-disk layout, with learnable class-dependent sounds.

`make_dcase2018_fixture(root)` writes `root/DCASE2018-task5-dev` (meta.txt, audio/DevNode{n}_ex{s}_{g}.wav,
evaluation_setup/fold{1-4}_{train,test,evaluate}.txt) and, with `with_eval`, `root/DCASE2018-task5-eval`
(meta.txt, audio/{n}.wav, evaluation_setup/{test,evaluate,map}.txt). Files are 4-channel 16-bit 16 kHz wavs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from audionas.data.audio import holds_samples
from audionas.data.dcase2018 import CHANNELS, CLASSES, DEV_DIRNAME, EVAL_DIRNAME, SAMPLE_RATE
from audionas.errors import UserError
from audionas.utils.atomic import failed_writes_named
from audionas.utils.jsonio import json_object_or_none
from audionas.utils.rundir import lock_run_dir, run_dir_locks

# A fixture is never bigger than the real development set: 72,984 segments of 10 s.
MAX_SEGMENTS, MAX_SECONDS = 72984, 10.0
# In each folder a fixture writes, with the settings it was made with: a folder without it (the real dataset
# has the same file names) is never written into; one with it is left alone when asked for again with the
# same settings, refused with others, and rewritten from scratch with --force.
FIXTURE_MARKER = ".audionas-fixture"
_FLAGS = {"sessions": "--sessions", "segments": "--segments", "nodes": "--nodes", "seconds": "--seconds",
          "with_eval": "--with-eval", "seed": "--seed"}
STAGE_DIRNAME = ".make-dcase-fixture.partial"


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec /= f ** (exponent / 2.0)
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def synth_segment(label: int, rng: np.random.Generator, frames: int) -> np.ndarray:
    """(4, frames) float32: a class-specific tone + noise colour + amplitude modulation, per-channel gains."""
    # Choice: class c = tone at 250 * 1.45^c Hz (250 Hz .. 4.9 kHz) + noise of colour c % 3 + tremolo of
    # (1 + c) Hz, so every class differs in the log-mel image; level and phase vary per session/segment.
    t = np.arange(frames) / SAMPLE_RATE
    freq = 250.0 * 1.45**label * rng.uniform(0.97, 1.03)
    tone = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    trem = 0.6 + 0.4 * np.sin(2 * np.pi * (1.0 + label) * t + rng.uniform(0, 2 * np.pi))
    noise = _coloured_noise(rng, frames, float(label % 3))
    mono = 0.25 * tone * trem + 0.08 * noise
    gains = rng.uniform(0.7, 1.0, size=(CHANNELS, 1))
    out = gains * mono[None, :] + 0.005 * rng.standard_normal((CHANNELS, frames))
    out *= rng.uniform(0.5, 1.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _write_wav(path: Path, data: np.ndarray) -> None:
    sf.write(str(path), data.T, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _write_lines(path: Path, rows: list[tuple[str, ...]]) -> None:
    path.write_text("".join("\t".join(r) + "\n" for r in rows))


def _made_with(root: Path) -> dict | None:
    """The settings of the fixture at `root` (None: no fixture there; {}: one that did not record them)."""
    marker = root / DEV_DIRNAME / FIXTURE_MARKER
    if not marker.is_file():
        return None
    data = json_object_or_none(marker)
    settings = data.get("settings") if data is not None else None
    return settings if isinstance(settings, dict) else {}


def _whole(folder: Path) -> bool:
    """Whether a fixture set is all there: its marker, and every wav its meta.txt lists, each more than a
    header (a wav deleted or emptied since would fail prepare-dcase2018 with advice for the real dataset)."""
    try:
        names = [line.split("\t", 1)[0] for line in (folder / "meta.txt").read_text().splitlines() if line]
    except OSError:
        return False
    marked = (folder / FIXTURE_MARKER).is_file()
    return marked and bool(names) and all(holds_samples(folder / n) for n in names)


def _describe(settings: dict, keys: list[str]) -> str:
    flags = []
    for k in keys:
        v = settings.get(k)
        if k == "with_eval":
            flags.append("--with-eval" if v else "without --with-eval")
        else:
            flags.append(f"{_FLAGS[k]} {v:g}" if isinstance(v, float) else f"{_FLAGS[k]} {v}")
    return " and ".join(flags)


@run_dir_locks()
def make_dcase2018_fixture(root: str | Path, sessions_per_class: int = 4, segments_per_session: int = 2,
                           seconds: float = 10.0, nodes: int = 4, with_eval: bool = False,
                           seed: int = 0, force: bool = False) -> Path:
    """Write a small DCASE2018 Task 5 dataset under `root`; returns `root`.

    Session j of each class is recorded by `nodes` sensor nodes (DevNode1..n, same `ex` id, as in SINS) and
    belongs to the test list of fold (j % 4) + 1, so folds keep sessions together. A fixture already at
    `root` with the same settings is kept; one with other settings is a UserError unless `force` (then it
    is replaced whole, its evaluation set too).
    """
    if sessions_per_class < 1 or segments_per_session < 1 or not 1 <= nodes <= 4 or seconds <= 0:
        raise UserError("make-dcase-fixture: expected sessions >= 1, segments >= 1, 1 <= nodes <= 4, "
                        "seconds > 0")
    n_segments = len(CLASSES) * sessions_per_class * segments_per_session * nodes
    if seconds > MAX_SECONDS or n_segments > MAX_SEGMENTS:
        raise UserError(f"make-dcase-fixture: {n_segments} segments of {seconds:g} s; expected at most "
                        f"{MAX_SEGMENTS} segments (9 classes x sessions x segments x nodes) of at most "
                        f"{MAX_SECONDS:g} s, the real development set's size")
    frames = int(round(seconds * SAMPLE_RATE))
    if frames < 1:  # a wav of no samples: an FFT ValueError traceback once the first folder was made
        raise UserError(f"make-dcase-fixture: {seconds:g} s is no sample at {SAMPLE_RATE} Hz; expected "
                        f"seconds >= {1 / SAMPLE_RATE:g}")
    root = Path(root)
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{root}: cannot write there ({e.strerror or e})") from None
    lock_run_dir(root)  # one make-dcase-fixture per --out at a time: a second is refused in one line
    rng = np.random.default_rng(seed)
    for d in (root / DEV_DIRNAME, *([root / EVAL_DIRNAME] if with_eval else [])):
        if d.exists() and not (d / FIXTURE_MARKER).is_file() and (not d.is_dir() or any(d.iterdir())):
            raise UserError(f"{d}: exists and was not written by make-dcase-fixture (the real dataset, or a "
                            f"fixture of an audionas from before 2026-12-04?); choose another --out")
    settings = {"sessions": sessions_per_class, "segments": segments_per_session, "nodes": nodes,
                "seconds": float(seconds), "with_eval": bool(with_eval), "seed": seed}
    made = _made_with(root)
    if made is not None and not force:
        # A rerun keeps the fixture it made (and its evaluation set); other settings need force=True.
        if made == settings:  # nothing to do, unless a set asked for was removed or damaged since: rebuilt
            if all(_whole(root / d) for d in (DEV_DIRNAME, *([EVAL_DIRNAME] if with_eval else []))):
                return root
        differ = [k for k in _FLAGS if made.get(k) != settings[k]]
        if not made or (made != settings and not differ):  # none recorded, or ones this version does not know
            raise UserError(f"{root}: holds a fixture whose settings this audionas cannot compare (an "
                            f"earlier or later version made it); --force rebuilds it, or choose another "
                            f"--out")
        if differ:
            raise UserError(f"{root}: holds a fixture made with {_describe(made, differ)}, not "
                            f"{_describe(settings, differ)}; --force rebuilds it (both sets), or choose "
                            f"another --out")
    # Written under a staging folder and renamed into place: a killed run leaves no half fixture behind.
    stage = root / STAGE_DIRNAME
    if stage.exists():  # a killed run's (a live one would hold root's lock)
        shutil.rmtree(stage)
    placed: list[str] | None = []  # the new sets being renamed into root (None once all are)
    def undo() -> None:  # Ctrl-C or an error: no staging folder left, nor a --out this call created
        for name in placed or ():  # stopped mid-swap: the new sets out, the earlier ones back in place
            if not (stage / name).exists():  # renamed
                shutil.rmtree(root / name)
        for name in (DEV_DIRNAME, EVAL_DIRNAME) if placed is not None else ():
            if (stage / "replaced" / name).is_dir():
                (stage / "replaced" / name).rename(root / name)
        shutil.rmtree(stage, ignore_errors=True)
        if created and root.is_dir() and not any(root.iterdir()):
            root.rmdir()

    # A full disk or a read-only one: named in one line (read before undo frees the space).
    with failed_writes_named(f"{root}: cannot write there", root, cleanup=undo):
        _start_folder(stage / DEV_DIRNAME, settings)
        meta: list[tuple[str, str, str]] = []
        fold_of: dict[str, int] = {}
        ex = 0
        for c, label in enumerate(CLASSES):
            for j in range(sessions_per_class):
                ex += 1
                for node in range(1, nodes + 1):
                    session = f"DevNode{node}_ex{ex}"
                    for g in range(1, segments_per_session + 1):
                        name = f"audio/DevNode{node}_ex{ex}_{g}.wav"
                        _write_wav(stage / DEV_DIRNAME / name, synth_segment(c, rng, frames))
                        meta.append((name, label, session))
                        fold_of[name] = j % 4 + 1
        setup = stage / DEV_DIRNAME / "evaluation_setup"
        _write_lines(stage / DEV_DIRNAME / "meta.txt", meta)
        for k in range(1, 5):
            train = [m for m in meta if fold_of[m[0]] != k]
            test = [m for m in meta if fold_of[m[0]] == k]
            _write_lines(setup / f"fold{k}_train.txt", train)
            _write_lines(setup / f"fold{k}_test.txt", [(m[0],) for m in test])
            _write_lines(setup / f"fold{k}_evaluate.txt", [(m[0], m[1]) for m in test])
        if with_eval:
            _make_eval(stage / EVAL_DIRNAME, max(1, sessions_per_class // 2), segments_per_session, frames,
                       nodes, rng, first_ex=ex + 1, settings=settings)
        # An earlier fixture is replaced whole (no stale eval set). Renames only, the old sets moved into the
        # staging folder first and deleted last: the swap takes microseconds, not the length of an rmtree.
        trash = stage / "replaced"
        trash.mkdir()
        for name in (DEV_DIRNAME, EVAL_DIRNAME):
            old = root / name
            if (old / FIXTURE_MARKER).is_file():
                old.rename(trash / name)
            elif old.is_dir() and (stage / name).is_dir():
                old.rmdir()  # empty: checked above
        for name in (DEV_DIRNAME, EVAL_DIRNAME):
            if (stage / name).is_dir():
                placed.append(name)  # before the rename: a stop right after it must still undo it
                (stage / name).rename(root / name)
        placed = None  # swapped: from here on, only the earlier sets are deleted
        shutil.rmtree(stage)
    return root


def _start_folder(out: Path, settings: dict) -> None:
    """`out` with its marker (the settings) and its subfolders."""
    out.mkdir(parents=True)
    marker = {"written_by": "audionas data make-dcase-fixture", "settings": settings}
    (out / FIXTURE_MARKER).write_text(json.dumps(marker) + "\n")
    (out / "audio").mkdir()
    (out / "evaluation_setup").mkdir()


def _make_eval(out: Path, sessions_per_class: int, segments_per_session: int, frames: int, nodes: int,
               rng: np.random.Generator, first_ex: int, settings: dict) -> None:
    _start_folder(out, settings)
    items = []
    ex = first_ex
    for c, label in enumerate(CLASSES):
        for _ in range(sessions_per_class):
            for node in range(1, nodes + 1):
                for g in range(1, segments_per_session + 1):
                    items.append((c, label, f"EvaNode{node}_ex{ex}", f"EvaNode{node}_ex{ex}_{g}.wav"))
            ex += 1
    order = rng.permutation(len(items))  # the evaluation set numbers its files in a shuffled order
    meta, test, evaluate, mapping = [], [], [], []
    for n, i in enumerate(order, start=1):
        c, label, session, orig = items[i]
        name = f"audio/{n}.wav"
        _write_wav(out / name, synth_segment(c, rng, frames))
        meta.append((name, label, session))
        test.append((name,))
        evaluate.append((name, label))
        mapping.append((name, f"audio/{orig}"))
    _write_lines(out / "meta.txt", meta)
    _write_lines(out / "evaluation_setup" / "test.txt", test)
    _write_lines(out / "evaluation_setup" / "evaluate.txt", evaluate)
    _write_lines(out / "evaluation_setup" / "map.txt", mapping)
