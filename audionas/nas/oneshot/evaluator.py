"""Candidate evaluation with inherited supernet weights (the ASC paper's section 2.2.3).

The frontend runs once over the validation split and the features stay in one tensor; a candidate is
scored by the supernet's forward with its chromosome (no module is built per candidate). BN handling is an
option, recorded in the search outputs:
- `none`: eval-mode BN with the supernet's running statistics (MixPath / FairNAS evaluation); several
  candidates then share one batched pass (the features stacked once per candidate, `candidates_per_pass`),
  through a copy of the supernet with each BN folded into the convolution before it (fold_batchnorms).
- `recalibrate`: SPOS-style; before scoring, the running statistics of every BN on the candidate's path are
  reset and re-estimated (cumulative average) on fixed cached training batches, so a candidate's score does
  not depend on which candidates were evaluated before it.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Dataset, Subset

from audionas.nas.oneshot.latency import chromosome_latency
from audionas.nas.oneshot.supernet import Supernet
from audionas.train import metrics as M
from audionas.train.batches import Loader
from audionas.utils.jsonio import is_integer


def evenly_spaced(dataset: Dataset, limit: int) -> Dataset:
    """`limit` items evenly spaced over `dataset` (all of it when limit is 0 or too large).

    Choice: not the first items: split lists are grouped by class, so a prefix would leave classes out;
    evenly spaced picks keep the class proportions."""
    if not limit or limit >= len(dataset):
        return dataset
    return Subset(dataset, evenly_spaced_indices(len(dataset), limit))


def evenly_spaced_indices(n: int, limit: int) -> list[int]:
    """The indices `evenly_spaced` keeps of `n` items."""
    if not limit or limit >= n:
        return list(range(n))
    return [i * n // limit for i in range(limit)]


def cache_features(dataset: Dataset, frontend: torch.nn.Module, device, batch_size: int = 256,
                   limit: int = 0, num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, C, H, W) on `device`, labels (N,)) of all items, or of `limit` evenly spaced ones."""
    dataset = evenly_spaced(dataset, limit)
    feats, ys, done = None, [], 0
    frontend = frontend.to(device).eval()
    loader = Loader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for x, y in loader:
        f = frontend(x.to(device))
        if feats is None:  # written in place: concatenating batches would hold the features twice
            feats = f.new_empty((len(dataset), *f.shape[1:]))
        feats[done:done + len(f)] = f
        done += len(f)
        ys.append(torch.as_tensor(y))
    if feats is None:
        return torch.zeros(0, device=device), torch.zeros(0, dtype=torch.int64, device=device)
    return feats, torch.cat(ys).to(device)


METRICS = ("accuracy", "macro_f1", "paper_f1")  # what `score` computes


def fold_batchnorms(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of `net` (eval mode) with every Conv2d -> BatchNorm2d pair of a Sequential folded into one
    Conv2d: eval-mode BN is an affine map per channel, so the copy computes the same function with one pass
    over each activation less (QA: BN was ~21% of a scoring pass). Same values up to rounding."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(net).eval()
    for seq in [m for m in folded.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if (type(conv) is torch.nn.Conv2d and isinstance(bn, torch.nn.BatchNorm2d)
                    and bn.track_running_stats and bn.running_mean is not None):
                seq[i], seq[i + 1] = fuse_conv_bn_eval(conv, bn), torch.nn.Identity()
    return folded


class CandidateEvaluator:
    """Scores chromosomes on cached validation features: `evaluate(chromosomes) -> [record, ...]`."""

    def __init__(self, supernet: Supernet, val_x: torch.Tensor, val_y: torch.Tensor, metric: str = "accuracy",
                 bn: str = "none", calib: list[torch.Tensor] | None = None, batch_size: int = 256,
                 candidates_per_pass: int = 4, channels_last: bool = True,
                 channel_ids: np.ndarray | None = None, latency: dict | None = None, fold_bn: bool = True):
        # channels_last: oneDNN's NHWC convolutions, ~1.7x candidates/s on CPU; same sums, another order.
        layout = torch.channels_last if channels_last else torch.contiguous_format
        # fold_bn (bn none): ~1.4x candidates/s on CPU (benchmarks/candidate_eval.py); off: the supernet
        net = fold_batchnorms(supernet) if bn == "none" and fold_bn else supernet
        self.net = net.to(memory_format=layout).eval()
        self.space = supernet.space
        self.val_x, self.val_y = val_x.contiguous(memory_format=layout), val_y.cpu().numpy()
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: expected one of {', '.join(METRICS)}")
        if bn not in ("none", "recalibrate"):
            raise ValueError(f"bn {bn!r}: expected 'none' or 'recalibrate'")
        for name, n in (("batch_size", batch_size), ("candidates_per_pass", candidates_per_pass)):
            if not is_integer(n) or n < 1:
                raise ValueError(f"{name} {n!r}: expected an integer >= 1")
        self.metric, self.bn = metric, bn
        if metric == "paper_f1" and (channel_ids is None or len(channel_ids) != len(self.val_y)):
            raise ValueError("metric 'paper_f1' needs the channel id of every validation item")
        self.channel_ids = channel_ids
        self.latency = latency  # a latency table (latency.py): records then carry latency_ms
        self.calib = [c.contiguous(memory_format=layout) for c in calib or []]
        self.batch_size = batch_size
        self.per_pass = candidates_per_pass if bn == "none" else 1
        if bn == "recalibrate" and not self.calib:
            raise ValueError("bn='recalibrate' needs calibration batches")
        self.seconds = 0.0
        self.count = 0

    @property
    def candidates_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def score(self, preds: np.ndarray) -> float:
        if self.metric == "paper_f1":
            return M.paper_f1(preds, self.val_y, self.channel_ids)
        if self.metric == "macro_f1":
            return M.macro_f1(preds, self.val_y)
        return M.accuracy(preds, self.val_y)

    @torch.no_grad()
    def predict(self, paths: list[list[int]]) -> list[np.ndarray]:
        """Predicted classes of each path on the validation features (eval-mode BN)."""
        self.net.eval()
        K, outs = len(paths), [[] for _ in paths]
        step = max(1, self.batch_size // K)
        for i in range(0, len(self.val_x), step):
            for k, p in enumerate(self.net.predict_paths(self.val_x[i:i + step], paths)):
                outs[k].append(p)
        return [torch.cat(o).numpy() for o in outs]

    @torch.no_grad()
    def recalibrate(self, path: list[int]) -> None:
        """Reset and re-estimate the BN statistics of the path's modules on the calibration batches."""
        bns = [m for mod in self.net.path_modules(path) for m in mod.modules() if isinstance(m, _BatchNorm)]
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average over the calibration batches
        self.net.train()
        try:
            for xb in self.calib:
                self.net(xb, path)
        finally:
            for bn, m in zip(bns, momenta):
                bn.momentum = m
            self.net.eval()

    def evaluate(self, chromosomes: list[list[int]]) -> list[dict]:
        t0 = time.perf_counter()
        out = []
        for i in range(0, len(chromosomes), self.per_pass):
            group = [self.space.check(c) for c in chromosomes[i:i + self.per_pass]]
            if self.bn == "recalibrate":
                self.recalibrate(group[0])
            for c, preds in zip(group, self.predict(group)):
                params, macs = self.space.cost(c)
                rec = {"score": self.score(preds), "macs": macs, "params": params}
                if self.latency is not None:
                    rec["latency_ms"] = chromosome_latency(self.latency, c)
                out.append({**rec, "arch": " ".join(self.space.decode(c))})
        self.seconds += time.perf_counter() - t0
        self.count += len(chromosomes)
        return out
