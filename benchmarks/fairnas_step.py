"""FairNAS supernet training step: batched (the C paths as one chunked 6N pass) vs C sequential single-path
passes accumulated (Algorithm 1 as written). Same supernet weights, same batches, same paths, same Adam.

Run: `python benchmarks/fairnas_step.py [--quick] [--preset kws-fairnas] [--batch N] [--steps N]`.

The script first checks that both give the same gradients (max abs diff), then times full optimizer steps
(zero_grad + forward/backward of all paths + Adam step), alternating the variants step by step so that
load from other processes hits them alike, and prints the median step time, samples/s (mini-batch samples,
each trained through all C paths) and the ratio. Target: batched >= 1.5x sequential on CPU. Both run in the
preset's memory layout; with channels_last (kws-fairnas-cpu) a third variant, sequential in NCHW, shows what
that layout buys.

Last, it prints the best case any batched pass can reach on a compute-bound device: the blocks of each path
do the same work either way, so only the stem (run once instead of C times) and the head can be saved.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from audionas.commands import positive_int
from audionas.config import load_config
from audionas.nas.oneshot.config import SupernetConfig
from audionas.nas.oneshot.fairnas import fairnas_step
from audionas.nas.oneshot.sampler import FairSampler
from audionas.nas.oneshot.space import load_space
from audionas.nas.oneshot.supernet import Supernet
from audionas.train.optim import build_optimizer
from audionas.utils.allocator import tune_allocator


def _median_time(fn, n: int = 5) -> float:
    fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def sharing_bound(net: Supernet, x: torch.Tensor, path: list[int], n_paths: int, t_seq: float) -> float:
    """Amdahl bound of batched / sequential: sequential minus (C - 1) stems and all C heads."""
    xs = x.transpose(2, 3) if net.time_axis == "h" else x

    def stem() -> None:
        out = net.stem(xs)
        out.backward(torch.ones_like(out))

    with torch.no_grad():
        feat = net.stem(xs)
        for layer, choice in zip(net.blocks, path):
            feat = layer[choice](feat)
    feat = feat.detach().requires_grad_()

    def head() -> None:
        net.head(feat).sum().backward()

    t_stem, t_head = _median_time(stem), _median_time(head)
    net.zero_grad(set_to_none=True)
    return t_seq / max(t_seq - (n_paths - 1) * t_stem - n_paths * t_head, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="kws-fairnas-cpu space, batch 32, 6 timed steps")
    ap.add_argument("--preset", default=None, help="preset whose space is used (kws-fairnas)")
    ap.add_argument("--batch", type=positive_int, default=None)
    ap.add_argument("--steps", type=positive_int, default=None)
    ap.add_argument("--contiguous", action="store_true",
                    help="both variants in the default NCHW layout (the presets train in channels_last)")
    args = ap.parse_args()
    tune_allocator()  # both variants are audionas code paths: run them as `audionas search supernet` does
    preset = args.preset or ("kws-fairnas-cpu" if args.quick else "kws-fairnas")
    batch = args.batch or (32 if args.quick else 64)
    steps = args.steps or (6 if args.quick else 10)
    cfg = load_config(SupernetConfig, preset)
    space = load_space(cfg.space)
    torch.manual_seed(0)
    nets = {"batched": Supernet(space)}
    nets["sequential"] = copy.deepcopy(nets["batched"])
    fmt = torch.channels_last if cfg.channels_last and not args.contiguous else torch.contiguous_format
    if fmt == torch.channels_last:  # what the channels_last default buys, same run
        nets["sequential NCHW"] = copy.deepcopy(nets["batched"])
    for k, n in nets.items():
        n.to(memory_format=torch.contiguous_format if k.endswith("NCHW") else fmt).train()
    opts = {k: build_optimizer(n.parameters(), cfg.optim) for k, n in nets.items()}
    x = torch.randn(batch, *space.input_shape).contiguous(memory_format=fmt)
    y = torch.randint(0, space.num_classes, (batch,))
    sampler = FairSampler(space.n_choices, 0)
    C = sampler.n_paths

    paths = sampler.sample()
    for k, n in list(nets.items())[:2]:
        n.zero_grad()
        fairnas_step(n, x, y, paths, batched=(k == "batched"))
    diff = max((a.grad - b.grad).abs().max().item()
               for a, b in zip(nets["batched"].parameters(), nets["sequential"].parameters()))
    print(f"space {space.name}: {len(space.layers)} layers x {C} choices, input {space.input_shape}, "
          f"batch {batch}, threads {torch.get_num_threads()}, "
          f"{'channels_last' if fmt == torch.channels_last else 'NCHW'}")
    print(f"gradient check: max |batched - sequential| = {diff:.2e}")

    times: dict[str, list[float]] = {k: [] for k in nets}
    for i in range(steps + 1):  # step 0 is warm-up
        paths = sampler.sample()
        for k in (list(nets) if i % 2 == 0 else list(nets)[::-1]):
            t0 = time.perf_counter()
            opts[k].zero_grad(set_to_none=True)
            fairnas_step(nets[k], x, y, paths, batched=(k == "batched"))
            opts[k].step()
            if i:
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in nets:
        print(f"{k:>14}: median step {med[k] * 1000:8.1f} ms  ->  {batch / med[k]:8.1f} samples/s "
              f"({C * batch / med[k]:.1f} path-samples/s)")
    print(f"speed-up batched / sequential: {med['sequential'] / med['batched']:.2f}x (target >= 1.5x)")
    bound = sharing_bound(nets["sequential"], x, paths[0], C, med["sequential"])
    print(f"best case for any batched pass (stem once, head free, blocks as fast as sequential): "
          f"{bound:.2f}x")
    if "sequential NCHW" in med:
        print(f"speed-up channels_last / NCHW (sequential): "
              f"{med['sequential NCHW'] / med['sequential']:.2f}x")


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
