"""Training throughput of asc-baseline (1x40x501, Adam): audionas's fast setup vs plain eager PyTorch.

Run: `python benchmarks/asc_train_step.py [--quick] [--batch N] [--steps N] [--compile] [--all-variants]`.

The plain reference is an independent, straightforward eager implementation of the same network (NCHW,
default settings) in a process of its own with glibc's default allocator; "audionas training step" is ours as
`audionas train --preset asc-baseline` runs it (`channels_last: true`): channels_last + FastBatchNorm2d
(optimize_for_training) in a process with the allocator tuned (audionas.utils.allocator). All start from
the same weights; the script first checks, in this process, that ours gives the same loss and gradients as
the reference (to float32 accuracy), then times
training steps (forward + cross-entropy + backward + Adam step) alternating between the worker processes
(benchmarks/_workers.py), and reports medians, samples/s and the ratio. Achieved MAC/s uses 3 x forward MACs
per training sample, against the measured peak of a large float32 matmul.

Notes (2 cores, AVX512, torch 2.13): channels_last makes oneDNN's depthwise and 1x1 convs faster, but
PyTorch's channels_last BatchNorm sums its statistics naively in float32, which this 20-BN network amplifies
into ~10% gradient differences; FastBatchNorm2d (two-level sums) fixes that ("channels_last only" shows the
MISMATCH). Most of the gain is the allocator: without it each step page-faults its ~466 MiB/sample of
activations in again. torch.compile took 709 s for its first step and was no faster (--compile).
Measured 2026-11-22, idle, batch 8, 3 steps: ours 1.99x the reference (1.27 vs 2.52 s/step, 42.7% of the
matmul peak); ours without the allocator tuning 0.53x.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from _workers import time_in_workers

from audionas.commands import positive_int
from audionas.models import create_model
from audionas.models.asc import ASC_BASELINE_BLOCKS
from audionas.models.channels_last import optimize_for_training
from audionas.profile import count_macs

SHAPE = (1, 40, 501)


# ---- the plain reference: MobileNetV2-style blocks written the obvious way ---------------------------------
def _cbr(cin, cout, k, s=1, p=0, g=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, p, groups=g, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6()) if act else nn.Sequential(*layers)


class PlainBlock(nn.Module):
    def __init__(self, cin, e, k, d, stride, cout):
        super().__init__()
        h = cin * e
        ks, pad = ((1, k), (0, k // 2)) if d == "t" else ((k, 1), (k // 2, 0))
        self.expand = _cbr(cin, h, 1)
        self.dw = _cbr(h, h, ks, stride, pad, g=h)
        self.project = _cbr(h, cout, 1, act=False)
        self.res = stride == (1, 1) and cin == cout

    def forward(self, x):
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.res else y


class PlainNet(nn.Module):
    def __init__(self, blocks, num_classes=9, freq=40):
        super().__init__()
        self.stem = _cbr(1, 32, 3, 1, 1)
        layers, c = [], 32
        for s in blocks:  # "ir_e6_k3t_s1x1_c24"
            _, e, k, st, co = s.split("_")
            stride = tuple(int(v) for v in st[1:].split("x"))
            layers.append(PlainBlock(c, int(e[1:]), int(k[1:-1]), k[-1], stride, int(co[1:])))
            c = int(co[1:])
            freq = -(-freq // stride[0])
        self.blocks = nn.Sequential(*layers)
        self.fconv = _cbr(c, 256, (freq, 1))
        self.gru = nn.GRU(256, 256, 2, batch_first=True)
        self.fc1 = nn.Linear(256, 256)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.fconv(self.blocks(self.stem(x)))  # (N, 256, 1, T)
        out, _ = self.gru(x.squeeze(2).permute(0, 2, 1))
        return self.fc2(F.relu(self.fc1(out[:, -1])))


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in registration order (both nets register them in the same order)."""
    s = list(src.state_dict().values())
    d = dst.state_dict()
    if len(s) != len(d) or any(a.shape != b.shape for a, b in zip(s, d.values())):
        raise RuntimeError("reference and model do not have the same parameter layout")
    dst.load_state_dict({k: v.clone() for k, v in zip(d, s)})


# ---- measurements -----------------------------------------------------------------------------------------
def matmul_peak(n: int, repeats: int) -> float:
    """Best MAC/s of an n x n x n float32 matmul (n^3 multiply-adds)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return n**3 / best


def build_step(variant: str, batch: int, compile_: bool = False):
    """One variant's training step (Adam, cross-entropy), from the same seed-0 weights and batch as all."""
    torch.manual_seed(0)
    base = create_model("asc-baseline", 9, SHAPE)
    gen = torch.Generator().manual_seed(1)  # the batch: not drawn after PlainNet's own initialisation
    x = torch.randn(batch, *SHAPE, generator=gen)
    y = torch.randint(0, 9, (batch,), generator=gen)
    if variant == "plain":
        model = PlainNet(ASC_BASELINE_BLOCKS)
        copy_weights(base, model)
    else:
        model = optimize_for_training(base, compile=compile_, accurate_bn=variant != "channels_last_only")
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _grads(m, x, y):
    m.zero_grad(set_to_none=True)
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    return loss.item(), torch.cat([p.grad.detach().double().flatten() for p in m.parameters()])


def check_same(ours, ref, x, y) -> bool:
    """Same loss and gradients from the same weights and batch, to float32 accuracy.

    At initialisation this network's float32 gradients are ill-conditioned (20 BatchNorms at small batch
    amplify rounding: the plain NCHW float32 reference itself is ~1% from a float64 copy of it in early
    layers), so per-tensor rtol=1e-3 is not met even by two correct float32 implementations. The test is:
    losses allclose (rtol 1e-5), and ours-vs-reference gradient difference (relative L2) no larger than 2x the
    reference's own float32 error against float64 (measured here, same weights and batch).
    """
    ref64 = copy.deepcopy(ref).double()
    lo, go = _grads(ours, x, y)
    lr, gr = _grads(ref, x.clone(), y)
    l64, g64 = _grads(ref64, x.double(), y)
    d_ours = ((go - gr).norm() / gr.norm()).item()
    noise = ((gr - g64).norm() / g64.norm()).item()
    print(f"loss ours {lo:.7f} reference {lr:.7f} float64 {l64:.7f}; gradient relative L2 difference: "
          f"ours vs reference {d_ours:.2e}, float32 reference vs float64 {noise:.2e}, "
          f"ours vs float64 {((go - g64).norm() / g64.norm()).item():.2e}")
    return abs(lo - lr) <= 1e-5 * abs(lr) and d_ours <= 2 * noise + 1e-6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 4, 2 timed steps, small matmul")
    ap.add_argument("--batch", type=positive_int, default=None, help="samples per step (default 8, quick 4)")
    ap.add_argument("--steps", type=positive_int, default=None,
                    help="timed steps per model (default 4, quick 2)")
    ap.add_argument("--compile", action="store_true", help="also wrap ours in torch.compile")
    ap.add_argument("--all-variants", action="store_true",
                    help="also time plain + allocator and channels_last only (needs ~30 GB at batch 8)")
    args = ap.parse_args(argv)
    # A tuned worker keeps its peak heap (~466 MiB of activations per sample): batch 8 fits 3 of them.
    batch = args.batch or (4 if args.quick else 8)
    steps = args.steps or (2 if args.quick else 4)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, batch {batch}, timed steps {steps}")

    base = create_model("asc-baseline", 9, SHAPE)
    ref = PlainNet(ASC_BASELINE_BLOCKS)
    copy_weights(base, ref)
    fwd_macs = count_macs(base, SHAPE)
    x = torch.randn(4, *SHAPE)
    y = torch.randint(0, 9, (4,))
    same = {}
    for name, accurate in (("audionas", True), ("channels_last only", False)):
        same[name] = check_same(optimize_for_training(copy.deepcopy(base), accurate_bn=accurate), ref, x, y)
        verdict = "same results as the reference to float32 accuracy" if same[name] else "MISMATCH"
        print(f"  {name}: {verdict}")
    # name -> (build, args, tune the allocator as audionas's commands do)
    variants = {
        "plain eager reference": (build_step, ("plain", batch), False),
        "audionas training step": (build_step, ("audionas", batch, args.compile), True),
        "  without allocator": (build_step, ("audionas", batch, args.compile), False),
    }
    if args.all_variants:  # needs more memory: every tuned worker keeps its peak heap
        variants["  plain + allocator"] = (build_step, ("plain", batch), True)
        variants["channels_last only"] = (build_step, ("channels_last_only", batch), True)
    times = time_in_workers(variants, steps)
    peak = matmul_peak(1024 if args.quick else 2048, 3 if args.quick else 5)
    print(f"forward MACs per sample: {fwd_macs / 1e9:.3f} G; training estimate 3 x forward "
          f"= {3 * fwd_macs / 1e9:.3f} G MACs per sample")
    print(f"float32 matmul peak: {peak / 1e9:.1f} G MAC/s")
    print(f"{'':24s}{'step s (median)':>16s}{'samples/s':>12s}{'G MAC/s':>10s}{'% peak':>8s}{'vs ref':>8s}")
    sps_r = batch / statistics.median(times["plain eager reference"])
    for name, ts in times.items():
        med = statistics.median(ts)
        sps = batch / med
        gm = 3 * fwd_macs * sps / 1e9
        print(f"{name:24s}{med:16.3f}{sps:12.2f}{gm:10.2f}{100 * gm * 1e9 / peak:8.1f}{sps / sps_r:7.2f}x")
    for name, ts in times.items():
        print(f"  step times {name}: {[round(t, 2) for t in ts]}")
    if not all(same.values()):
        print("note: a variant marked MISMATCH differs from the reference by more than float32 noise")


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
