"""Candidate ops of the DARTS cell: one registry (name -> factory(C, stride, affine)) and named op sets.

Every conv op is ReLU-Conv-BN (quark0/darts `operations.py`). Ops that begin with a ReLU expose `relu_first =
True` and `forward_relu(relu(x))`, so a search edge can compute `relu(x)` once and share it between its ops.
All strided ops give ceil(n / 2) on odd sizes (101 -> 51), FactorizedReduce included.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.errors import UserError
from audionas.plugins import IMPORT_HINT, check_new_name

OpFactory = Callable[[int, int, bool], nn.Module]
OPS: dict[str, OpFactory] = {}


def register_op(name: str):
    """Register `factory(C, stride, affine) -> nn.Module` under `name` (C channels in and out)."""

    def deco(fn: OpFactory) -> OpFactory:
        check_new_name(OPS, name, fn, "op")
        OPS[name] = fn
        return fn

    return deco


class Pointwise(nn.Conv2d):
    """A 1x1 stride-1 convolution; on channels_last input one GEMM over (N*H*W, C) (same mathematics, and on
    CPU much faster than the non-oneDNN path PyTorch takes for 1x1 convs in channels_last). A Conv2d module,
    so forward hooks (count_macs) see every call."""

    def __init__(self, C_in: int, C_out: int):
        super().__init__(C_in, C_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.size(1) > 1:
            w = self.weight.view(self.out_channels, self.in_channels)
            return F.linear(x.permute(0, 2, 3, 1), w).permute(0, 3, 1, 2)
        return super().forward(x)


class ReLUConvBN(nn.Module):
    """ReLU -> Conv(k, stride, dilation) -> BN; the preprocessing op and the plain `conv_3x3` (NAS2)."""

    relu_first = True

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel: int,
        stride: int,
        padding: int,
        affine: bool = True,
        dilation: int = 1,
    ):
        super().__init__()
        if kernel == 1 and stride == 1 and padding == 0 and dilation == 1:
            self.conv = Pointwise(C_in, C_out)
        else:
            self.conv = nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward_relu(self, rx: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(rx))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_relu(F.relu(x))


class DilConv(nn.Module):
    """ReLU -> depthwise k x k (stride, dilation) -> 1x1 -> BN."""

    relu_first = True

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ):
        super().__init__()
        self.dw = nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in, bias=False)
        self.pw = Pointwise(C_in, C_out)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward_relu(self, rx: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pw(self.dw(rx)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_relu(F.relu(x))


class SepConv(nn.Module):
    """Two stacks of ReLU -> depthwise k x k -> 1x1 -> BN; only the first is strided."""

    relu_first = True

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.dw1 = nn.Conv2d(C_in, C_in, kernel, stride, padding, groups=C_in, bias=False)
        self.pw1 = Pointwise(C_in, C_in)
        self.bn1 = nn.BatchNorm2d(C_in, affine=affine)
        self.dw2 = nn.Conv2d(C_in, C_in, kernel, 1, padding, groups=C_in, bias=False)
        self.pw2 = Pointwise(C_in, C_out)
        self.bn2 = nn.BatchNorm2d(C_out, affine=affine)

    def forward_relu(self, rx: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.pw1(self.dw1(rx)))
        return self.bn2(self.pw2(self.dw2(F.relu(h))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_relu(F.relu(x))


class FactorizedReduce(nn.Module):
    """ReLU -> two 1x1 stride-2 convs (the second on the input shifted by one pixel) -> concat -> BN.

    quark0/darts fails on odd sizes (#84: 101 -> 51 vs 50). Choice: pad the shifted input by one pixel at the
    end (bottom/right), which equals the reference on even sizes and gives ceil(n / 2) on odd ones.
    """

    relu_first = True

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.conv1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward_relu(self, rx: torch.Tensor) -> torch.Tensor:
        shifted = F.pad(rx[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv1(rx), self.conv2(shifted)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_relu(F.relu(x))


class Zero(nn.Module):
    """The `none` op: zeros of the (strided) output shape."""

    is_zero = True

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Pool(nn.Module):
    """3x3 max or average pooling (average excludes padding); search nets add BN(affine=False)."""

    is_pool = True

    def __init__(self, kind: str, stride: int):
        super().__init__()
        if kind == "max":
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def skip_connect(C: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)


register_op("none")(lambda C, stride, affine: Zero(stride))
register_op("max_pool_3x3")(lambda C, stride, affine: Pool("max", stride))
register_op("avg_pool_3x3")(lambda C, stride, affine: Pool("avg", stride))
register_op("skip_connect")(skip_connect)
for _k in (3, 5, 7, 9):
    register_op(f"sep_conv_{_k}x{_k}")(
        lambda C, stride, affine, k=_k: SepConv(C, C, k, stride, (k - 1) // 2, affine=affine)
    )
register_op("dil_conv_3x3")(lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine))
register_op("dil_conv_5x5")(lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine))
register_op("conv_3x3")(lambda C, stride, affine: ReLUConvBN(C, C, 3, stride, 1, affine=affine))

OP_SETS: dict[str, list[str]] = {
    # DARTS (CIFAR-10) search space, PRIMITIVES of quark0/darts.
    "darts": [
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    ],
    # KWS paper Table 1.
    "nas1": [
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "dil_conv_3x3",
        "dil_conv_5x5",
        "sep_conv_5x5",
        "sep_conv_7x7",
        "sep_conv_9x9",
    ],
    "nas2": [
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "dil_conv_3x3",
        "dil_conv_5x5",
        "conv_3x3",
    ],
}


def resolve_op_set(spec: str | list[str] | tuple[str, ...], field: str = "ops") -> list[str]:
    """A named op set (`nas1`) or an explicit list of registered op names -> list of names (checked)."""
    if isinstance(spec, str):
        if spec not in OP_SETS:
            raise UserError(
                f"config field '{field}': unknown op set '{spec}' (known: {', '.join(OP_SETS)}; "
                f"or give a list of op names)"
            )
        return list(OP_SETS[spec])
    if not isinstance(spec, (list, tuple)) or not all(isinstance(n, str) for n in spec):
        raise UserError(f"config field '{field}': expected an op set ({', '.join(OP_SETS)}) or a list of op "
                        f"names, got {spec!r}")
    names = list(spec)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise UserError(
            f"config field '{field}': unknown op(s) {', '.join(unknown)} (known: {', '.join(sorted(OPS))}; "
            f"{IMPORT_HINT})"
        )
    if len(set(names)) != len(names):
        raise UserError(f"config field '{field}': op names must be distinct")
    if not [n for n in names if n != "none"]:
        raise UserError(f"config field '{field}': needs at least one op other than 'none'")
    return names
