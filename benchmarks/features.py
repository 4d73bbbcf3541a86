"""Feature throughput: batched torch frontend vs the per-file librosa reference, on the same clips.

    python benchmarks/features.py [--quick] [--threads N]

Target: >= 10x clips/s for honk-mfcc. Both paths run in this process on the same seeded clips; each figure is
the best of a few repeats (the machine is shared), and the max abs difference of the two outputs is printed.
The batched path's STFT stage is timed alone in the same run: its share, and the ratio the batched path would
reach if every stage after the STFT (mel, log, DCT) cost nothing, bound what tuning those stages can give.
The OpenBLAS under numpy/scipy always gets one thread: the per-file path only multiplies tiny matrices, and on
a busy machine a multi-threaded BLAS made it ~10x slower, which would flatter the ratio. Only OpenBLAS is
limited: OMP_NUM_THREADS / MKL_NUM_THREADS=1 would also slow torch's own threads (OpenMP, MKL FFT) down.
honk-mfcc is measured twice:
torch on 1 thread (equal resources) and torch on all cores (how audionas runs it; librosa's per-file path has
no threads to use). `--threads N` measures only N. Wall clock is the headline; CPU time is printed too.
"""

from __future__ import annotations

import argparse
import os
import time

from audionas.commands import nonnegative_int


def _clips(n: int, samples: int, sample_rate: int, seed: int):
    """Seeded speech-like test signals: a few decaying harmonics plus noise, random level."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    out = np.empty((n, samples), np.float32)
    for i in range(n):
        f0 = rng.uniform(90, 250)
        sig = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 8))
        sig = sig * np.exp(-t * rng.uniform(0.5, 3.0)) + rng.normal(scale=0.05, size=samples)
        out[i] = rng.uniform(0.05, 0.5) * sig / np.abs(sig).max()
    return out


def bench(preset: str, n_clips: int, repeats: int) -> float:
    """Print clips/s of both paths (best of `repeats`, wall clock and CPU time); return the wall ratio."""
    import numpy as np
    import torch

    from audionas.features import FEATURE_PRESETS, build_frontend, librosa_reference

    spec = FEATURE_PRESETS[preset]
    clips = _clips(n_clips, spec.clip_samples, spec.sample_rate, seed=0)
    front = build_frontend(preset).eval()
    batch = torch.from_numpy(clips)

    def run_torch():
        with torch.inference_mode():
            return front(batch)[:, 0].numpy()

    def run_librosa():
        return np.stack([librosa_reference(c, preset) for c in clips])

    def run_stft():  # the batched path's STFT stage alone, chunked as forward chunks it
        with torch.inference_mode():
            for part in front.chunks(batch):
                front.stft(part)  # dropped before the next chunk, as forward drops it (before: all kept)

    paths = {"torch batched": run_torch, "librosa per-file": run_librosa, "torch STFT only": run_stft}
    wall = {k: float("inf") for k in paths}
    cpu = dict(wall)
    outputs = {}
    run_torch()  # warm-up (allocator, FFT descriptors, librosa imports)
    librosa_reference(clips[0], preset)
    for _ in range(repeats):  # interleaved, so both paths see the same load on a shared machine
        for name, fn in paths.items():
            w0, c0 = time.perf_counter(), time.process_time()
            outputs[name] = fn()
            wall[name] = min(wall[name], time.perf_counter() - w0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    diff = float(np.abs(outputs["torch batched"] - outputs["librosa per-file"]).max())
    print(f"{preset}: {n_clips} clips of {spec.clip_samples} samples -> {spec.output_shape}, "
          f"best of {repeats}")
    for name in paths:
        print(f"  {name:17s} {n_clips / wall[name]:9.1f} clips/s wall ({wall[name] * 1e3:7.1f} ms)"
              f"  {n_clips / cpu[name]:9.1f} clips/s CPU time ({cpu[name] * 1e3:7.1f} ms)")
    ratio_wall = wall["librosa per-file"] / wall["torch batched"]
    ratio_cpu = cpu["librosa per-file"] / cpu["torch batched"]
    print(f"  ratio torch/librosa: {ratio_wall:.1f}x wall, {ratio_cpu:.1f}x CPU time; "
          f"max abs diff {diff:.2e}")
    print(f"  STFT share of the batched path {wall['torch STFT only'] / wall['torch batched']:.0%}; ratio if "
          f"every later stage were free: {wall['librosa per-file'] / wall['torch STFT only']:.1f}x wall")
    return ratio_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips and repeats")
    parser.add_argument("--threads", type=nonnegative_int, default=0,
                        help="torch intra-op threads (default: 1 thread, then all the cores this process may "
                             "use)")
    args = parser.parse_args()
    # Read by numpy's and scipy's OpenBLAS when first loaded, so set before anything imports numpy (torch
    # does). Set after that import, OpenBLAS kept 2 threads that spun on the other core (CPU time 2x wall).
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from _cli import check_threads
    from threadpoolctl import threadpool_info

    from audionas.utils.dist import available_cores

    check_threads(args.threads)
    cores = available_cores()  # under taskset -c 0, one core: 2 threads there would time contention
    blas = [p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"]
    if any(n != 1 for n in blas):
        raise SystemExit(f"features.py: OpenBLAS runs {blas} threads; expected 1 (numpy imported too early)")
    from audionas.utils.allocator import tune_allocator

    # As `audionas features` and every command run (both paths in this process): untuned, glibc maps the
    # chunks' buffers afresh, and the batched path's timing swung 4.3-8.7x between two runs here.
    tune_allocator()
    import torch

    n_honk, n_dcase, repeats = (64, 2, 3) if args.quick else (256, 8, 7)
    ratios = {}
    for threads in [args.threads] if args.threads else sorted({1, cores}):
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__} on CPU: {threads} torch thread(s), numpy BLAS 1 thread")
        ratios[threads] = bench("honk-mfcc", n_honk, repeats)
        bench("dcase-logmel", n_dcase, repeats)
    for threads, ratio in ratios.items():
        print(f"honk-mfcc target >= 10x (wall clock), torch on {threads} thread(s): "
              f"{'met' if ratio >= 10 else 'NOT met'} ({ratio:.2f}x)")


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
