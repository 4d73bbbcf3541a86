"""DCASE2018 Task 5 feature cache: preparation (resumable), shuffle-and-mix rows, opening and verification.

The segment lists it caches come from audionas.data.dcase2018 (read_dev, read_eval), which also builds the
datasets that read the cache; the search split from audionas.data.splits.

Feature cache (`audionas data prepare-dcase2018 --root DIR --out CACHE`):
```
CACHE/manifest.json            format, feature preset, shape, classes, which sets are present
CACHE/dev/set.json             the segment list (files, labels, sessions, groups, folds), fingerprint
CACHE/dev/index.tsv            row, file, label, session, channel (one row per channel)
CACHE/dev/features.npy         (segments * 4, 40, 501) float16, row = segment * 4 + channel
CACHE/dev/progress.json        {"done_files": k}: rows of the first k segments are final (resume point)
CACHE/eval/...                 the evaluation set, same files (if present)
CACHE/aug-<scope>/...          shuffle-and-mix segments for one training pool (dev, fold1-4, search)
```
Choice: features are stored as float16, half of float32's disk and page cache (the development set's 72,984
segments: about 11.7 GB instead of 23.4 GB); the rounding, under 0.004 for log-mels of magnitude below 16,
is far below the spread of the features.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from audionas.data.audio import AUDIO_SUFFIXES, check_root
from audionas.data.augment import MINORITY_CLASSES, TARGET_MAJORITY, TARGET_MINORITY
from audionas.data.dcase2018 import (
    CHANNELS,
    CLASSES,
    SAMPLE_RATE,
    SegmentList,
    limit_per_class,
    locate_dataset,
    raw_dataset_error,
    read_dev,
    read_eval,
)
from audionas.data.splits import search_split
from audionas.errors import UserError, warn
from audionas.utils.atomic import failed_writes_named, write_json_atomic, write_text_atomic
from audionas.utils.dist import check_threads
from audionas.utils.jsonio import is_json_int, read_json
from audionas.utils.progress import progress_off
from audionas.utils.rundir import lock_run_dir, run_dir_locks

__all__ = ["prepare_cache", "prepare_augmentation", "open_cache"]

CACHE_FORMAT = "audionas-dcase2018-cache/1"
AUG_SCOPES = ("dev", "fold1", "fold2", "fold3", "fold4", "search")


def _sha1(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _index_text(seg: SegmentList) -> str:
    lines = ["row\tfile\tlabel\tsession\tchannel"]
    for i, (f, y, s) in enumerate(zip(seg.files, seg.labels, seg.sessions)):
        lines += [f"{i * CHANNELS + ch}\t{f}\t{CLASSES[y]}\t{s}\t{ch}" for ch in range(CHANNELS)]
    return "\n".join(lines) + "\n"


def _fill_rows(set_dir: Path, n_items: int, compute: Callable[[int, int], np.ndarray], shape: tuple,
               chunk: int, every: int, desc: str, progress: bool, stop_after: int | None) -> None:
    """Write features.npy rows in order, chunk by chunk, persisting `progress.json` every `every` items.

    `compute(start, stop)` returns float16 (stop - start, CHANNELS, *shape). A rerun continues after the
    last persisted item; chunk boundaries are fixed multiples of `chunk`, so the bytes do not depend on
    where a previous run stopped.
    """
    from tqdm import tqdm

    feats_path = set_dir / "features.npy"
    prog_path = set_dir / "progress.json"
    done = 0
    if prog_path.exists() and feats_path.exists():
        done = _read_progress(set_dir, n_items)
        check_whole(feats_path, set_dir.parent)  # numpy's r+ memmap would pad a cut-short file with zeros
        mm = np.lib.format.open_memmap(feats_path, mode="r+")
        if mm.shape != (n_items * CHANNELS, *shape) or mm.dtype != np.float16:
            raise UserError(f"{feats_path}: shape {mm.shape} does not match the cache's index; delete the "
                            f"cache folder {set_dir.parent} and prepare it again")
    else:
        with failed_writes_named(f"{feats_path}: cannot write", set_dir):
            mm = np.lib.format.open_memmap(feats_path, mode="w+", dtype=np.float16,
                                           shape=(n_items * CHANNELS, *shape))
        write_json_atomic({"done_files": 0}, prog_path)
    _reserve(feats_path, fresh=done == 0)
    every = max(chunk, every - every % chunk)
    bar = tqdm(total=n_items, initial=done, desc=desc, unit="seg", disable=progress_off(not progress),
               dynamic_ncols=True)
    try:
        start = done
        while start < n_items:
            stop = min(start + chunk, n_items)
            mm[start * CHANNELS:stop * CHANNELS] = compute(start, stop).reshape(-1, *shape)
            bar.update(stop - start)
            start = stop
            if start % every == 0 or start == n_items:
                mm.flush()
                write_json_atomic({"done_files": start}, prog_path)
                if stop_after is not None and start >= stop_after and start < n_items:
                    return
    finally:
        bar.close()
        del mm


def check_whole(path: Path, cache: Path) -> None:
    """UserError when features.npy is unreadable or shorter than its header says (a copy or a full disk cut
    it short): its missing rows would read as zeros."""
    damaged = f"{path}: cut short or unreadable; delete the cache folder {cache} and prepare it again"
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(f))
            need = f.tell() + int(np.prod(shape)) * dtype.itemsize
    except (OSError, ValueError, EOFError):
        raise UserError(damaged) from None
    if path.stat().st_size < need:
        raise UserError(damaged)


def _reserve(path: Path, fresh: bool) -> None:
    """Allocate the whole of features.npy before filling it: numpy makes its memmap file sparse, and a write
    into a hole on a full disk kills the process with SIGBUS, with nothing to report. A `fresh` file that does
    not fit is deleted (a failed allocation may keep what it got); a resumed one keeps its rows."""
    st = path.stat()
    if st.st_blocks * 512 >= st.st_size:  # allocated already (a resume): glibc would touch every block again
        return
    need = f"{st.st_size / 1e9:.1f} GB" if st.st_size >= 1e8 else f"{st.st_size / 1e6:.1f} MB"

    def give_back() -> None:
        if fresh:
            path.unlink(missing_ok=True)
            (path.parent / "progress.json").unlink(missing_ok=True)

    with failed_writes_named(f"{path}: cannot write; this cache set needs {need} there", path.parent,
                             cleanup=give_back), open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, st.st_size)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # else the file system cannot: stays sparse
                raise


def _bad_field(path: Path, key: str, expected: str, got) -> UserError:
    got_s = f"a list of {len(got)} items" if isinstance(got, list) and len(got) > 4 else repr(got)
    return UserError(f"{path}: field '{key}': expected {expected}, got "
                     f"{got_s[:60] + '...' if len(got_s) > 60 else got_s}")


def _int_field(path: Path, d: dict, key: str, low: int = 0) -> int:
    if not is_json_int(d.get(key)) or d[key] < low:
        raise _bad_field(path, key, f"an integer >= {low}", d.get(key))
    return d[key]


def _index_list(path: Path, key: str, v, n: int, length: int | None = None) -> list[int]:
    """A list of integers in 0..n-1 (of `length` items if given), else a UserError naming the field."""
    if not isinstance(v, list) or not all(is_json_int(i) and 0 <= i < n for i in v) or (
            length is not None and len(v) != length):
        size = f"{length} " if length is not None else ""
        raise _bad_field(path, key, f"a list of {size}integers in 0..{n - 1}", v)
    return v


def read_manifest(path: Path) -> dict:
    """CACHE/manifest.json, checked: format, feature, shape, sets (a hand-edited file is a UserError)."""
    manifest = read_json(path, "a DCASE2018 feature cache manifest")
    if manifest.get("format") != CACHE_FORMAT:
        raise UserError(f"{path}: unknown cache format {manifest.get('format')!r}")
    if not isinstance(manifest.get("feature"), str):
        raise _bad_field(path, "feature", "a feature preset name", manifest.get("feature"))
    shape = manifest.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(is_json_int(v) and v > 0 for v in shape):
        raise _bad_field(path, "shape", "two positive integers [bands, frames]", shape)
    sets = manifest.get("sets")
    if not isinstance(sets, list) or "dev" not in sets or not all(v in ("dev", "eval") for v in sets):
        raise _bad_field(path, "sets", "a list of set names holding 'dev' (and 'eval')", sets)
    return manifest


def _read_progress(set_dir: Path, n_segments: int | None = None) -> int:
    """done_files of CACHE/<set>/progress.json; with `n_segments`, at most that (more never completes)."""
    path = set_dir / "progress.json"
    done = _int_field(path, read_json(path, 'a cache progress record {"done_files": k}'), "done_files")
    if n_segments is not None and done > n_segments:
        raise _bad_field(path, "done_files", f"an integer in 0..{n_segments} (the set's segments)", done)
    return done


def _read_set_info(set_dir: Path) -> dict:
    """CACHE/<set>/set.json, checked: n_segments, chunk_files, labels (segment lists: CacheSet.segments)."""
    path = set_dir / "set.json"
    info = read_json(path, "a cache set description")
    n = _int_field(path, info, "n_segments")
    _int_field(path, info, "chunk_files", 1)
    _index_list(path, "labels", info.get("labels"), len(CLASSES), n)
    return info


def _set_complete(set_dir: Path) -> bool:
    info = _read_set_info(set_dir)
    n = info["n_segments"]
    return (set_dir / "progress.json").exists() and _read_progress(set_dir, n) == n


# The settings a cache set records, by the prepare-dcase2018 flag that sets them.
_SETTING_FLAGS = {"feature": "--feature", "seconds": "--seconds", "limit": "--limit", "seed": "--seed",
                  "scale": "--augment-scale"}


def _start_set(set_dir: Path, info: dict, index_text: str) -> bool:
    """Create or reuse a cache set; True if it is already complete. A different source is a UserError."""
    meta_path = set_dir / "set.json"
    prog = set_dir / "progress.json"
    if meta_path.exists() and (not prog.exists() or _read_progress(set_dir) == 0):
        meta_path.unlink()  # started but nothing computed yet (e.g. a bad wav in the first chunk): restart
    if meta_path.exists():
        old = _read_set_info(set_dir)
        if old.get("fingerprint") != info["fingerprint"]:
            changed = [f"{flag} {old[k]} (now {info[k]})" for k, flag in _SETTING_FLAGS.items()
                       if k in info and k in old and old[k] != info[k]]
            built = ("with " + ", ".join(changed) if changed else
                     f"from a different source list or settings (fingerprint "
                     f"{str(old.get('fingerprint', '?'))[:12]} != {info['fingerprint'][:12]})")
            # a shuffle-and-mix set is rebuilt on its own; the dev/eval sets share the cache's manifest
            target = set_dir if set_dir.name.startswith("aug-") else set_dir.parent
            raise UserError(f"{set_dir}: this cache was built {built}; use another --out or delete {target}")
        return _set_complete(set_dir)
    set_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("features.npy", "progress.json"):
        (set_dir / stale).unlink(missing_ok=True)
    write_text_atomic(index_text, set_dir / "index.tsv")
    info["index_sha1"] = hashlib.sha1(index_text.encode()).hexdigest()
    write_json_atomic(info, meta_path)  # written last: its presence means the set was started
    return False


def _waveform_chunk(root: Path, seg: SegmentList, seconds: float, frontend: nn.Module, clip: int,
                    pool: ThreadPoolExecutor | None) -> Callable[[int, int], np.ndarray]:
    from audionas.data.audio import load_wav
    from audionas.features import repeat_to_length

    frames = int(round(seconds * SAMPLE_RATE))

    def load(i: int) -> np.ndarray:
        wave = load_wav(root / seg.files[i], SAMPLE_RATE, channels=CHANNELS, expected_frames=frames,
                        warn_resample=False)  # prepare_cache warned once for all of them
        # Choice: a clip shorter than the preset's (a fast-test fixture) is repeated to its length, so the
        # signal fills the whole 40 x 501 image (zero padding would leave the GRU's last steps silent);
        # a longer one is cropped. Real DCASE wavs are exactly 10 s and pass unchanged.
        return repeat_to_length(wave, clip)

    def compute(start: int, stop: int) -> np.ndarray:
        idx = range(start, stop)
        waves = list(pool.map(load, idx)) if pool is not None else [load(i) for i in idx]
        x = torch.from_numpy(np.stack(waves).reshape(-1, clip))
        with torch.inference_mode():
            y = frontend(x)[:, 0]
        return y.numpy().astype(np.float16).reshape(stop - start, CHANNELS, *y.shape[1:])

    return compute


def _source_fingerprint(root: Path, seg: SegmentList, extra: dict) -> str:
    sizes = []
    for f in seg.files:
        try:
            sizes.append((root / f).stat().st_size)
        except OSError:
            raise UserError(f"{root / f}: audio file not found") from None
    folds = {str(k): [tr, te] for k, (tr, te) in seg.folds.items()}
    return _sha1({"files": seg.files, "labels": seg.labels, "sessions": seg.sessions, "sizes": sizes,
                  "folds": folds, "origs": seg.origs, **extra})


@run_dir_locks()
def prepare_cache(root: str | Path, out: str | Path, workers: int = 0, limit: int = 0, seconds: float = 10.0,
                  feature: str = "dcase-logmel", chunk_files: int = 8, checkpoint_every: int = 64,
                  eval_root: str | Path | None = None, progress: bool = True,
                  stop_after: int | None = None) -> dict:
    """Compute the per-channel features of the development (and evaluation) set into `out`; resumable.

    `limit` keeps at most that many segments per class (quick runs); `seconds` is the expected clip length
    of every wav (10 s for the real data; fixtures may be shorter and are repeated to the preset's clip).
    `stop_after` stops after about that many segments (to test resuming). Returns a summary dict.
    """
    from audionas.features import build_frontend, get_spec

    spec = get_spec(feature)
    if spec.kind != "logmel" or spec.sample_rate != SAMPLE_RATE:
        raise UserError(f"feature preset '{feature}': expected a 16 kHz log-mel preset such as dcase-logmel")
    if chunk_files < 1 or checkpoint_every < 1 or workers < 0 or limit < 0 or seconds <= 0:
        raise UserError("prepare-dcase2018: expected --workers >= 0, --limit >= 0 and positive sizes")
    check_threads(workers, "--workers")
    dev_dir, ev_dir = locate_dataset(root)
    if eval_root is not None:
        _, ev_dir = locate_dataset(eval_root)
        if ev_dir is None:
            raise UserError(f"{eval_root}: not a DCASE2018 task 5 evaluation set (evaluation_setup/test.txt)")
    if dev_dir is None:
        raise UserError(f"{root}: no development set (meta.txt and evaluation_setup/fold1_train.txt)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    manifest_path = out / "manifest.json"
    kept: list[str] = []  # an evaluation set cached earlier, kept when this run's --root finds none
    if manifest_path.exists():
        old = read_json(manifest_path, "a DCASE2018 feature cache manifest")
        if old.get("format") != CACHE_FORMAT or old.get("feature") != feature:
            raise UserError(f"{out}: an existing cache of another format or feature preset; "
                            f"use another --out")
        if ev_dir is None and "eval" in (old.get("sets") or []) and (out / "eval" / "set.json").is_file():
            kept = ["eval"]
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        # hidden files do not count: a kill during the first manifest write leaves its `.manifest.json.*.tmp`
        raise UserError(f"{out}: folder is not empty and holds no DCASE2018 cache; use another --out")
    shape = tuple(spec.output_shape)
    frontend = None  # built on first need: a finished cache is verified without importing librosa
    sets = {"dev": (dev_dir, limit_per_class(read_dev(dev_dir), limit))}
    if ev_dir is not None:
        sets["eval"] = (ev_dir, limit_per_class(read_eval(ev_dir), limit))
    from audionas.data.audio import check_audio, load_wav, warn_other_rates

    for name, (src, seg) in sets.items():  # a wrong --seconds fails on the first wav, before any output
        if not seg.files:
            continue
        missing = [f for f in seg.files if not (src / f).exists()]
        if missing:  # a half-extracted archive: say how much is missing, not only the first file
            raise UserError(f"{src / missing[0]}: audio file not found ({len(missing)} of the "
                            f"{len(seg.files)} wavs of the {name} set are missing; extract the whole "
                            f"archive)")
        first = src / seg.files[0]
        n = load_wav(first, SAMPLE_RATE, CHANNELS, warn_resample=False).shape[1]  # warned per set below
        if abs(n - round(seconds * SAMPLE_RATE)) > 1:  # load_wav's slack for a resampled wav is one frame
            raise UserError(f"{first}: {n / SAMPLE_RATE:g} s long, but --seconds {seconds:g} expects every "
                            f"wav to last that long (the real segments last 10 s)")
    for name, (src, seg) in sets.items():
        if (out / name / "set.json").is_file() and _set_complete(out / name):
            continue  # reused as it is (or refused for another source by _start_set)
        # Every header before anything is written (a missing or bad wav leaves no cache behind, and fails
        # now, not hours in), and one warning for all wavs at another rate (one each would print a line per
        # segment: 72,984 on the real set).
        paths = [src / f for f in seg.files]
        frames = round(seconds * SAMPLE_RATE)  # the length the feature pass will ask of each wav
        rates = [check_audio(p, CHANNELS, SAMPLE_RATE, frames) for p in paths]
        warn_other_rates(paths, rates, SAMPLE_RATE, "wavs", f"{name} set: ")
    summary: dict = {"cache": str(out), "sets": {}}
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock_run_dir(out)  # the same preparation started twice would write every set twice over
        write_json_atomic({"format": CACHE_FORMAT, "feature": feature, "shape": list(shape),
                           "dtype": "float16", "channels": CHANNELS, "classes": CLASSES,
                           "sets": sorted([*sets, *kept])}, manifest_path)
        for name, (src, seg) in sets.items():
            set_dir = out / name
            settings = {"feature": feature, "seconds": seconds, "limit": limit}
            info = {"name": name, "source": str(src), "n_segments": len(seg.files), "seconds": seconds,
                    "limit": limit, "chunk_files": chunk_files, "feature": feature, "shape": list(shape),
                    "files": seg.files, "labels": seg.labels, "sessions": seg.sessions, "groups": seg.groups,
                    "folds": {str(k): {"train": tr, "test": te} for k, (tr, te) in seg.folds.items()},
                    "origs": seg.origs,
                    "fingerprint": _source_fingerprint(src, seg, settings)}
            complete = _start_set(set_dir, info, _index_text(seg))
            if not complete:
                # A resumed set keeps the chunking it was started with, so its bytes do not change.
                chunk = _read_set_info(set_dir)["chunk_files"]
                frontend = frontend or build_frontend(feature).eval()
                compute = _waveform_chunk(src, seg, seconds, frontend, spec.clip_samples, pool)
                _fill_rows(set_dir, len(seg.files), compute, shape, chunk, checkpoint_every,
                           f"{name} features", progress, stop_after)
            summary["sets"][name] = {"segments": len(seg.files), "rows": len(seg.files) * CHANNELS,
                                     "complete": _set_complete(set_dir), "reused": complete}
        for name in kept:
            summary["sets"][name] = {"kept": True, "complete": _set_complete(out / name)}
    finally:
        if pool is not None:
            pool.shutdown()
    return summary


def scope_pool(seg: SegmentList, scope: str, seed: int) -> np.ndarray:
    """Development segments a training scope may learn from (and so may be mixed for it)."""
    if scope == "dev":
        return np.arange(len(seg.files))
    if scope == "search":
        return search_split(seg.labels, seg.groups, seed)[0]
    if scope in AUG_SCOPES:
        return np.asarray(seg.folds[int(scope[-1])][0], dtype=np.int64)
    raise UserError(f"--augment-scope '{scope}': expected one of {', '.join(AUG_SCOPES)}")


BIG_AUGMENTATION = 10  # warn when a scope would get more than this many new segments per source segment
MAX_AUGMENT_SCALE = 10.0  # 10x the paper's 14K/28K segments per class: beyond it, a typo


def check_augment_scale(scale: float) -> None:
    """UserError unless 0 < scale <= MAX_AUGMENT_SCALE."""
    if not 0 < scale <= MAX_AUGMENT_SCALE:
        raise UserError(f"--augment-scale: expected a number in (0, {MAX_AUGMENT_SCALE:g}] (1 = the paper's "
                        f"14K/28K segments per class), got {scale:g}")


def _size_text(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def augmentation_warning(scope: str, labels: np.ndarray, pool: np.ndarray, n_new: int, scale: float,
                         shape: tuple) -> str | None:
    """A one-line warning when shuffle-and-mix plans more than BIG_AUGMENTATION x its source pool, else None.

    The hint is the --augment-scale that plans about 2x the pool (new = targets x scale - pool).
    """
    n_pool = len(pool)
    if n_pool == 0 or n_new <= BIG_AUGMENTATION * n_pool:
        return None
    counts = np.bincount(np.asarray(labels)[pool], minlength=len(CLASSES))
    full = sum(TARGET_MINORITY if name in MINORITY_CLASSES else TARGET_MAJORITY
               for name, n in zip(CLASSES, counts) if n > 0)
    n_bytes = n_new * CHANNELS * int(np.prod(shape)) * np.dtype(np.float16).itemsize
    return (f"aug-{scope}: --augment-scale {scale:g} plans {n_new} new segments from {n_pool} source "
            f"segments ({n_new / n_pool:.0f}x, about {_size_text(n_bytes)} of float16 features); "
            f"--augment-scale {3 * n_pool / full:.2g} plans about 2x the source")


def prepare_augmentation(cache: str | Path, scopes: Sequence[str] = ("dev",), scale: float = 1.0,
                         seed: int = 0, chunk: int = 8, checkpoint_every: int = 64, progress: bool = True,
                         stop_after: int | None = None) -> dict:
    """Write shuffle-and-mix segments for each training scope as CACHE/aug-<scope> (resumable).

    Sources come only from the scope's own training pool (dev: all, foldk: fold k train list, search: the
    70% part for `seed`), so no test or validation segment leaks into training. Never touches dev/eval.
    The summary's training_segments_per_class counts the pool's originals plus the new segments.
    """
    from audionas.data.augment import N_PIECES, WEIGHT_RANGE, plan_shuffle_mix, shuffle_and_mix

    check_augment_scale(scale)
    cache = Path(cache)
    manifest_path = cache / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{cache}: not a DCASE2018 feature cache (manifest.json missing)")
    shape = tuple(read_manifest(manifest_path)["shape"])
    dev = open_set(cache / "dev", shape)
    seg = dev.segments()
    labels = np.asarray(seg.labels)
    summary = {}
    for scope in scopes:
        pool = scope_pool(seg, scope, seed)
        y, a, b = plan_shuffle_mix(labels, pool, CLASSES, scale, seed)
        code = AUG_SCOPES.index(scope)
        info = {"name": f"aug-{scope}", "scope": scope, "seed": seed, "scale": scale, "n_segments": len(y),
                "n_pieces": N_PIECES, "weight_range": list(WEIGHT_RANGE), "chunk_files": chunk,
                "labels": y.tolist(), "src_a": a.tolist(), "src_b": b.tolist(),
                "fingerprint": _sha1({"dev": dev.info["fingerprint"], "scope": scope, "seed": seed,
                                      "scale": scale, "n_pieces": N_PIECES, "w": list(WEIGHT_RANGE)})}
        lines = ["row\tlabel\tsource_a\tsource_b\tchannel"]
        for j in range(len(y)):
            lines += [f"{j * CHANNELS + ch}\t{CLASSES[y[j]]}\t{seg.files[a[j]]}\t{seg.files[b[j]]}\t{ch}"
                      for ch in range(CHANNELS)]
        set_dir = cache / f"aug-{scope}"
        big = augmentation_warning(scope, labels, pool, len(y), scale, shape)
        if big and not ((set_dir / "set.json").exists() and _set_complete(set_dir)):
            warn(big)
        if len(y) == 0:  # an empty pool, or every class of it already holds the target count
            why = ("its pool is empty (the scope's training list names no segments)" if len(pool) == 0 else
                   f"each class of its pool already holds its {scale:g} x 14K/28K target")
            warn(f"--augment-scale {scale:g}: no new segments for '{scope}': {why}; runs on it "
                 f"train on the originals")
        complete = _start_set(set_dir, info, "\n".join(lines) + "\n")
        if not complete:
            src = np.load(dev.features_path, mmap_mode="r")

            def compute(start: int, stop: int, a=a, b=b, code=code, src=src) -> np.ndarray:
                out = np.empty((stop - start, CHANNELS, *shape), dtype=np.float16)
                for j in range(start, stop):
                    rng = np.random.default_rng([seed, code, j])  # per segment: independent of chunking
                    sa = src[a[j] * CHANNELS:(a[j] + 1) * CHANNELS]
                    sb = src[b[j] * CHANNELS:(b[j] + 1) * CHANNELS]
                    out[j - start] = shuffle_and_mix(sa, sb, rng)
                return out

            stored_chunk = _read_set_info(set_dir)["chunk_files"]
            _fill_rows(set_dir, len(y), compute, shape, stored_chunk, checkpoint_every,
                       f"aug-{scope}", progress, stop_after)
        counts = np.bincount(labels[pool], minlength=len(CLASSES)) + np.bincount(y, minlength=len(CLASSES))
        summary[scope] = {"new_segments": int(len(y)), "reused": complete, "complete": _set_complete(set_dir),
                          "training_segments_per_class": dict(zip(CLASSES, counts.tolist()))}
    return summary


@dataclass
class CacheSet:
    """One verified, complete set of a cache (dev, eval or aug-<scope>)."""

    dir: Path
    info: dict

    @property
    def features_path(self) -> Path:
        return self.dir / "features.npy"

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.info["labels"], dtype=np.int64)

    def segments(self) -> SegmentList:
        i, path = self.info, self.dir / "set.json"
        n = i["n_segments"]
        for key in ("files", "sessions", "groups") + (("origs",) if i.get("origs") else ()):
            v = i.get(key)
            if not isinstance(v, list) or len(v) != n or not all(isinstance(x, str) for x in v):
                raise _bad_field(path, key, f"a list of {n} strings", v)
        folds_d = i.get("folds", {})
        if not isinstance(folds_d, dict) or not all(k in ("1", "2", "3", "4") and isinstance(v, dict)
                                                    for k, v in folds_d.items()):
            raise _bad_field(path, "folds", 'an object {"1": {"train": [...], "test": [...]}, ...}', folds_d)
        folds = {int(k): (_index_list(path, f"folds.{k}.train", v.get("train"), n),
                          _index_list(path, f"folds.{k}.test", v.get("test"), n)) for k, v in folds_d.items()}
        return SegmentList(i["files"], i["labels"], i["sessions"], i["groups"], folds, i.get("origs") or [])


def open_set(set_dir: Path, shape: tuple) -> CacheSet:
    """Verify row count, progress and the index checksum of a cache set; UserError naming the cache."""
    cache = set_dir.parent
    meta = set_dir / "set.json"
    if not meta.is_file():
        raise UserError(f"{cache}: cache set '{set_dir.name}' is missing (set.json)")
    info = _read_set_info(set_dir)
    n = info["n_segments"]
    if not _set_complete(set_dir):
        raise UserError(f"{cache}: cache set '{set_dir.name}' is incomplete; rerun "
                        f"`audionas data prepare-dcase2018` to finish it")
    index = set_dir / "index.tsv"
    if not index.is_file() or hashlib.sha1(index.read_bytes()).hexdigest() != info.get("index_sha1"):
        raise UserError(f"{cache}: {set_dir.name}/index.tsv does not match set.json (checksum); the cache is "
                        f"damaged: delete the folder and prepare it again")
    if not (set_dir / "features.npy").is_file():
        raise UserError(f"{cache}: {set_dir.name}/features.npy is missing; delete the folder and prepare it "
                        f"again")
    check_whole(set_dir / "features.npy", cache)
    try:
        mm = np.load(set_dir / "features.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError):
        raise UserError(f"{cache}: {set_dir.name}/features.npy is unreadable; delete the folder and prepare "
                        f"it again") from None
    if mm.shape != (n * CHANNELS, *shape) or mm.dtype != np.float16:
        raise UserError(f"{cache}: {set_dir.name}/features.npy holds {mm.shape} {mm.dtype}, expected "
                        f"{(n * CHANNELS, *shape)} float16 ({n} segments x {CHANNELS} channels of {shape[0]} "
                        f"bands x {shape[1]} frames); prepare the cache again")
    return CacheSet(set_dir, info)


def _looks_like_keyword_folder(path: Path) -> bool:
    """True if two or more subfolders of `path` hold audio files (Speech Commands, folder-per-class)."""
    if not path.is_dir():
        return False
    classes = (sub for sub in path.iterdir()
               if sub.is_dir() and any(f.suffix.lower() in AUDIO_SUFFIXES for f in sub.iterdir()))
    return next(classes, None) is not None and next(classes, None) is not None


def open_cache(cache: str | Path) -> tuple[dict, dict[str, CacheSet]]:
    """(manifest, {'dev': CacheSet, 'eval': CacheSet}) of a complete, verified cache (aug sets: open_set)."""
    cache = Path(cache)
    manifest_path = cache / "manifest.json"
    if not manifest_path.is_file():
        try:
            dev, _ = locate_dataset(cache)
        except UserError:
            dev = None
        if dev is not None:
            raise raw_dataset_error(cache, "a feature cache")
        if not cache.exists():
            raise UserError(f"{cache}: no such folder (expected a DCASE2018 feature cache)")
        check_root(cache, "DCASE2018 feature cache folder")  # a file: an archive not yet extracted?
        hint = ""
        if _looks_like_keyword_folder(cache):
            hint = ("; it looks like a keyword dataset (class folders of .wav files): use a kws-* preset or "
                    "data.kind=speech_commands|folder")
        raise UserError(f"{cache}: not a DCASE2018 feature cache (manifest.json missing){hint}")
    manifest = read_manifest(manifest_path)
    shape = tuple(manifest["shape"])
    return manifest, {name: open_set(cache / name, shape) for name in manifest["sets"]}
