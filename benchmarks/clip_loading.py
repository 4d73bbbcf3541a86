"""Training-split loading, decoded clips cached in shared memory (data.wave_cache_mb) vs decoded each epoch.

    python benchmarks/clip_loading.py [--clips 8000] [--epochs 3] [--workers 0] [--repeats 3]

Writes `--clips` clips in the Speech Commands v0.02 layout (as benchmarks/data_startup.py does), builds the
12-class training split twice, with the cache and without, and reads `--epochs` epochs of it through the
training loader (Honk augmentation included) in turns, best of `--repeats`. Prints clips/s per epoch of
both and the ratio: the first epoch decodes in both, each later one reads the cache. Also checks that both
give the same items. What this saves on a GPU depends on how far the loader limits its steps; on CPU,
the network's step dominates a training epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch

from audionas.commands import nonnegative_int, positive_int
from audionas.data import DataConfig, build_data
from audionas.errors import UserError
from audionas.train.batches import epoch_loader
from audionas.utils.dist import DistInfo


def read_epochs(dataset, epochs: int, workers: int, batch_size: int = 100
                ) -> tuple[list[float], torch.Tensor]:
    """Seconds per epoch of reading `dataset` as training does, and a checksum of every batch read."""
    seconds, sums = [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        for x, _ in epoch_loader(dataset, batch_size, 0, epoch, DistInfo(), torch.device("cpu"), workers):
            sums.append(x.double().sum())
        seconds.append(time.perf_counter() - start)
    return seconds, torch.stack(sums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=positive_int, default=8000, help="clips written (over 35 words)")
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs read (the first decodes)")
    parser.add_argument("--workers", type=nonnegative_int, default=0, help="DataLoader worker processes")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each, in turns; best kept")
    args = parser.parse_args()
    if args.epochs < 2:
        raise UserError(f"--epochs {args.epochs}: expected at least 2 (the first one decodes either way)")
    from data_startup import write_layout

    with tempfile.TemporaryDirectory() as tmp:
        write_layout(Path(tmp), args.clips)
        best: dict[int, list[float]] = {}
        checks = {}
        for _ in range(args.repeats):
            for mb in (0, DataConfig().wave_cache_mb):
                cfg = DataConfig(root=tmp, num_workers=args.workers, wave_cache_mb=mb)
                with warnings.catch_warnings():  # classes missing from the val / test lists: not read here
                    warnings.simplefilter("ignore")
                    train = build_data(cfg, seed=0).train  # a new dataset: its cache starts empty
                seconds, checks[mb] = read_epochs(train, args.epochs, args.workers)
                best[mb] = [min(a, b) for a, b in zip(best.get(mb, seconds), seconds)]
        if not torch.equal(checks[0], checks[DataConfig().wave_cache_mb]):
            raise SystemExit("clip_loading.py: the cached clips differ from the decoded ones")
    n = len(train)
    print(f"{n:,} training clips, {args.workers} worker(s), best of {args.repeats}; clips/s per epoch:")
    for epoch in range(args.epochs):
        off, on = n / best[0][epoch], n / best[DataConfig().wave_cache_mb][epoch]
        print(f"  epoch {epoch + 1}: cached {on:,.0f} vs decoded {off:,.0f}: {on / off:.2f}x")


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
