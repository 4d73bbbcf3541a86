"""One DARTS search step (forward + backward of weights and alphas): ours vs a port of the reference.

The reference is a port, written here from its description, of the quark0/darts search network
(`model_search.py` / `operations.py`): MixedOp = `sum(w * op(x) for w, op in zip(weights, ops))` with the
zero op computed, every op applying its own ReLU, NCHW tensors. Only FactorizedReduce carries the odd-size
padding fix (the original fails on 101x40). Both networks get the same weights and input; the script asserts
equal logits and gradients, then prints samples/s, activation memory and the speed-up.

Memory on CPU: the bytes of distinct tensors saved for backward (the activation memory of the step, from
saved-tensor hooks), not the process RSS. On CUDA: torch.cuda.max_memory_allocated.

    python benchmarks/darts_step.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from _workers import time_in_workers

from audionas.commands import nonnegative_int, positive_int
from audionas.nas.darts.operations import OP_SETS
from audionas.nas.darts.search_model import SearchNetwork

# ---------------------------------------------------------------- reference port (quark0/darts structure)


class RefReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, k, stride, pad, dilation=1):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(C_in, C_out, k, stride, pad, dilation=dilation, bias=False),
                                nn.BatchNorm2d(C_out, affine=False))

    def forward(self, x):
        return self.op(x)


class RefDilConv(nn.Module):
    def __init__(self, C, k, stride, pad, dilation):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(C, C, k, stride, pad, dilation=dilation, groups=C, bias=False),
                                nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C, affine=False))

    def forward(self, x):
        return self.op(x)


class RefSepConv(nn.Module):
    def __init__(self, C, k, stride, pad):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(C, C, k, stride, pad, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C, affine=False),
            nn.ReLU(inplace=False), nn.Conv2d(C, C, k, 1, pad, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C, affine=False))

    def forward(self, x):
        return self.op(x)


class RefFactorizedReduce(nn.Module):
    def __init__(self, C_in, C_out):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=False)

    def forward(self, x):
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # odd-size fix; = original on even sizes
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class RefZero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def ref_op(name, C, stride):
    if name == "none":
        return RefZero(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(C, affine=False))
    if name == "avg_pool_3x3":
        pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        return nn.Sequential(pool, nn.BatchNorm2d(C, affine=False))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else RefFactorizedReduce(C, C)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return RefSepConv(C, k, stride, (k - 1) // 2)
    if name == "dil_conv_3x3":
        return RefDilConv(C, 3, stride, 2, 2)
    if name == "dil_conv_5x5":
        return RefDilConv(C, 5, stride, 4, 2)
    if name == "conv_3x3":
        return RefReLUConvBN(C, C, 3, stride, 1)
    raise ValueError(name)


class RefMixedOp(nn.Module):
    def __init__(self, C, stride, prims):
        super().__init__()
        self._ops = nn.ModuleList(ref_op(p, C, stride) for p in prims)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class RefCell(nn.Module):
    def __init__(self, prims, C_pp, C_p, C, reduction, reduction_prev, steps=4, multiplier=4):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = RefFactorizedReduce(C_pp, C) if reduction_prev else RefReLUConvBN(C_pp, C, 1, 1, 0)
        self.preprocess1 = RefReLUConvBN(C_p, C, 1, 1, 0)
        self._steps, self._multiplier = steps, multiplier
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self._ops.append(RefMixedOp(C, 2 if reduction and j < 2 else 1, prims))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class RefNetwork(nn.Module):
    def __init__(self, C, num_classes, layers, prims, in_channels=1, reductions=None):
        super().__init__()
        C_curr = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = reductions[i] if reductions else i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            self.cells.append(RefCell(prims, C_pp, C_p, C_curr, reduction, reduction_prev))
            reduction_prev = reduction
            C_pp, C_p = C_p, 4 * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(14, len(prims)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(14, len(prims)))

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            a = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, F.softmax(a, dim=-1))
        return self.classifier(self.global_pooling(s1).view(s1.size(0), -1))


# ---------------------------------------------------------------- measurement


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in registration order (both nets register them in the same order)."""
    s, d = list(src.state_dict().values()), list(dst.state_dict().values())
    assert len(s) == len(d), (len(s), len(d))
    with torch.no_grad():
        for a, b in zip(s, d):
            assert a.shape == b.shape, (a.shape, b.shape)
            b.copy_(a)


def step(model, x, y):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return logits


def saved_bytes(model, x, y) -> int:
    """Bytes of the distinct storages saved for backward in one step (activation memory)."""
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(model, x, y)
    return sum(seen.values())


def build_nets(C, cells, batch, shape, layout=None):
    """(ours in channels_last, the reference port with the same weights, x, x channels_last, y), seed 0."""
    torch.manual_seed(0)
    ours = SearchNetwork(C=C, num_classes=12, cells=cells, primitives=OP_SETS["nas1"], in_channels=shape[0],
                         layout=layout or "darts")
    ref = RefNetwork(C, 12, cells, OP_SETS["nas1"], shape[0],
                     reductions=[c == "R" for c in layout] if layout else None)
    copy_weights(ours, ref)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 12, (batch,))
    xl = x.contiguous(memory_format=torch.channels_last)
    return ours.to(memory_format=torch.channels_last), ref, x, xl, y


def build_step(which: str, C, cells, batch, shape, layout=None):
    """A search step of the reference port or of ours, in a benchmark worker (_workers.time_in_workers)."""
    ours, ref, x, xl, y = build_nets(C, cells, batch, shape, layout)
    if which == "reference":
        return lambda: step(ref, x, y)
    return lambda: step(ours, xl, y)


def run(name, C, cells, batch, shape, iters, layout=None, check64=True):
    # Timing first, while this process holds no networks (memory). The reference runs in a plain process;
    # ours with the allocator tuning of audionas's commands.
    args = (C, cells, batch, shape, layout)
    times = time_in_workers({"reference": (build_step, ("reference", *args), False),
                             "audionas": (build_step, ("audionas", *args), True)}, iters)
    t_ref, t_ours = min(times["reference"]), min(times["audionas"])
    ours, ref, x, xl, y = build_nets(C, cells, batch, shape, layout)
    # Equality in float64 (tight) and float32 (the timed precision; BN summation order differs by layout).
    checks = ((torch.float64, 1e-9), (torch.float32, 1e-2)) if check64 else ((torch.float32, 1e-2),)
    for dtype, tol in checks:
        o, r = copy.deepcopy(ours).to(dtype), copy.deepcopy(ref).to(dtype)
        lo, lr_ = step(o, xl.to(dtype), y), step(r, x.to(dtype), y)
        torch.testing.assert_close(lo, lr_, rtol=tol, atol=tol)
        go = torch.cat([p.grad.reshape(-1) for p in o.parameters()])
        gr = torch.cat([p.grad.reshape(-1) for p in r.parameters()])
        if dtype == torch.float64:
            torch.testing.assert_close(go, gr, rtol=tol, atol=tol * gr.abs().max().item())
        else:  # float32: relative error of the whole gradient vector
            rel = ((go - gr).norm() / gr.norm()).item()
            assert rel < 1e-2, rel  # float32 rounding through ~20 BN layers; float64 above is exact
        assert o.alphas_normal.grad.abs().max() > 0 and o.alphas_reduce.grad.abs().max() > 0
    m_ref, m_ours = saved_bytes(ref, x, y), saved_bytes(ours, xl, y)
    print(f"[{name}] C={C} cells={cells} batch={batch} input={'x'.join(map(str, shape))} NAS1, "
          f"{torch.get_num_threads()} thread(s), {iters} alternating step(s) in 2 worker processes, min; "
          f"same logits/grads")
    print(f"  reference port : {batch / t_ref:8.2f} samples/s  ({t_ref:.3f} s/step)  "
          f"saved activations {m_ref / 2**20:8.1f} MiB")
    print(f"  audionas       : {batch / t_ours:8.2f} samples/s  ({t_ours:.3f} s/step)  "
          f"saved activations {m_ours / 2**20:8.1f} MiB")
    print(f"  speed-up {t_ref / t_ours:.2f}x, activation memory ratio {m_ours / m_ref:.2f}")
    return t_ref / t_ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the small CPU configuration")
    ap.add_argument("--threads", type=nonnegative_int, default=0, help="torch.set_num_threads (0 = default)")
    ap.add_argument("--iters", type=positive_int, default=3, help="timed steps per variant (default 3)")
    args = ap.parse_args()
    from _cli import check_threads

    if check_threads(args.threads):
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the spawned workers read it at start-up
        torch.set_num_threads(args.threads)
    iters = args.iters
    run("small CPU", C=8, cells=3, batch=8, shape=(1, 101, 40), iters=iters, layout="NRN")
    if not args.quick:
        # float64 equality is checked on the small configuration only (same code paths, minutes saved).
        run("KWS paper", C=16, cells=6, batch=16, shape=(1, 101, 40), iters=iters, check64=False)


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
