"""The DARTS search cell: mixed ops on every edge of a DAG of `steps` nodes (4 in DARTS), weighted by
softmax(alpha).

`MixedOp` computes exactly `sum_o w_o * o(x)` of quark0/darts but faster: it skips `none` (its output is
zero, so the sum and every gradient are unchanged), computes `relu(x)` once for all ops that start with a
ReLU, and accumulates the weighted sum in place of allocating a product per op.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.nas.darts.operations import OPS, FactorizedReduce, ReLUConvBN


class MixedOp(nn.Module):
    """All candidate ops of one edge; `forward(x, weights)` = sum of weighted op outputs."""

    def __init__(self, C: int, stride: int, primitives: list[str]):
        super().__init__()
        self.primitives = list(primitives)
        self.ops = nn.ModuleList()
        for name in self.primitives:
            op = OPS[name](C, stride, False)
            if getattr(op, "is_pool", False):
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self.ops.append(op)
        self.active = [i for i, op in enumerate(self.ops) if not getattr(op, "is_zero", False)]
        self.stride = stride

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        rx = None
        out = None
        for i in self.active:
            op = self.ops[i]
            if getattr(op, "relu_first", False):
                if rx is None:
                    rx = F.relu(x)
                y = op.forward_relu(rx)
            else:
                y = op(x)
            out = y * weights[i] if out is None else torch.addcmul(out, y, weights[i])
        return out


class SearchCell(nn.Module):
    """Two preprocessed inputs, `steps` nodes each summing a MixedOp over every earlier state."""

    def __init__(
        self,
        primitives: list[str],
        C_pp: int,
        C_p: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        steps: int = 4,
        multiplier: int = 4,
    ):
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_pp, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(MixedOp(C, stride, primitives))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = None
            for j, h in enumerate(states):
                y = self.edges[offset + j](h, weights[offset + j])
                s = y if s is None else s + y
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier :], dim=1)
