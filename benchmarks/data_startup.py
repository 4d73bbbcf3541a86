"""Start-up at Speech Commands v0.02 scale: a generated folder in the official layout, then `audionas train`.

    python benchmarks/data_startup.py [--clips 105829] [--keep DIR]

Writes `--clips` noise clips (16 kHz, 16-bit; every seventh 0.75 s, the rest 1 s) over the 35 v0.02 words,
named `<8-hex speaker>_nohash_<n>.wav` (5 clips per speaker), with list files by the hash rule and six 60 s
noise files. Then times `audionas train --preset kws-tc-resnet epochs=1 max_steps_per_epoch=3` (folder scan,
list files, every clip's header, 3 steps, scoring val and test) with the 12-class protocol and with
data.kind=folder (all 35 words as classes), each in its own process: wall time and peak memory. No target: it
shows what a full-size dataset costs around its training. The clips are read back from the page cache.
The default size takes ~3.2 GiB in the system's temporary folder (removed at the end; `--keep DIR` writes
them there instead and keeps them).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audionas.commands import positive_int
from audionas.data.speech_commands import SPEECH_COMMANDS_V2_WORDS as WORDS_V2
from audionas.errors import UserError

CLIPS_PER_SPEAKER = 5


def write_layout(root: Path, clips: int, seed: int = 0) -> dict[str, int]:
    """`clips` clips spread over WORDS_V2 under `root`, list files by the hash rule, 6 noise files; returns
    the counts."""
    import numpy as np
    import soundfile as sf

    from audionas.data.splits import which_set

    rng = np.random.default_rng(seed)
    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    for k, word in enumerate(WORDS_V2):
        (root / word).mkdir(parents=True, exist_ok=True)
        for i in range(clips // len(WORDS_V2) + (k < clips % len(WORDS_V2))):
            speaker = hashlib.sha1(f"{word}/{i // CLIPS_PER_SPEAKER}".encode()).hexdigest()[:8]
            name = f"{speaker}_nohash_{i % CLIPS_PER_SPEAKER}.wav"
            samples = 12000 if i % 7 == 0 else 16000
            sf.write(root / word / name, (rng.standard_normal(samples) * 300).astype(np.int16), 16000,
                     subtype="PCM_16")
            split = which_set(name)
            if split in lists:
                lists[split].append(f"{word}/{name}")
    (root / "_background_noise_").mkdir(exist_ok=True)
    for k in range(6):
        sf.write(root / "_background_noise_" / f"noise{k}.wav",
                 (rng.standard_normal(60 * 16000) * 500).astype(np.int16), 16000, subtype="PCM_16")
    for split, names in lists.items():
        (root / f"{split}_list.txt").write_text("".join(f"{n}\n" for n in names))
    return {"clips": clips, **{split: len(names) for split, names in lists.items()}}


def timed_train(data: Path, out: Path, overrides: list[str]) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of one `audionas train` process; its stderr is shown on failure."""
    cmd = [sys.executable, "-m", "audionas", "train", "--preset", "kws-tc-resnet", "--data", str(data),
           "--out", str(out), "epochs=1", "max_steps_per_epoch=3", *overrides]
    # stderr to a file, not a pipe: nothing reads a pipe while wait4 waits, so a long stderr would block.
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "TQDM_DISABLE": "1"})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory, unlike RUSAGE_CHILDREN
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"data_startup.py: {' '.join(cmd)} exited {proc.returncode}:\n{err.read()}")
    return wall, usage.ru_maxrss / 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=positive_int, default=105_829, help="clips (v0.02: 105,829)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the dataset and runs here (an empty or new folder) and keep them")
    args = parser.parse_args()
    if args.clips < 20 * len(WORDS_V2):
        raise UserError(f"--clips {args.clips}: expected at least {20 * len(WORDS_V2)} (20 per word; with "
                        f"fewer, the hash rule leaves words out of the list files)")
    if args.keep is not None and args.keep.exists() and (not args.keep.is_dir() or any(args.keep.iterdir())):
        raise UserError(f"--keep {args.keep}: expected an empty or new folder")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        start = time.perf_counter()
        counts = write_layout(base / "data", args.clips)
        print(f"wrote {counts['clips']:,} clips ({counts['validation']:,} in validation_list.txt, "
              f"{counts['testing']:,} in testing_list.txt) in {time.perf_counter() - start:.0f} s")
        runs = (("12-class protocol", []), ("data.kind=folder, 35 classes", ["data.kind=folder"]))
        for label, overrides in runs:
            wall, peak = timed_train(base / "data", base / f"run-{len(overrides)}", overrides)
            print(f"audionas train --preset kws-tc-resnet epochs=1 max_steps_per_epoch=3, {label}: "
                  f"{wall:.1f} s wall, peak memory {peak:,.0f} MB")


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
