"""MobileNetV2 inverted bottleneck with a unidirectional depthwise kernel, its block string and its cost.

Block string (timm-like): `ir_e{E}_k{K}{t|f}_s{SF}x{ST}_c{C}`, e.g. `ir_e6_k3t_s1x1_c24`: expansion 6,
depthwise kernel 3 along time (1x3; `f` = 3x1 along frequency), stride (freq, time) = (1, 1), 24 output
channels. Tensors are (N, C, freq, time).

Cost convention (same as audionas/profile.py): params = trainable parameters, BatchNorm affine weights
included; MACs = weight multiply-adds of convolutions, linear layers and GRUs only (BN, activations, biases
and residual adds cost 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn as nn

from audionas.errors import UserError

BLOCK_FORM = "ir_e{expansion}_k{kernel}{t|f}_s{stride_freq}x{stride_time}_c{out_channels}"
_BLOCK_RE = re.compile(r"ir_e(\d+)_k(\d+)([tf])_s(\d+)x(\d+)_c(\d+)")
# Bounds far above the papers' (MobileNetV2: e6, k3-7, 320 channels before its head): a typo, not a block
# (c100000 asked the supernet for a 120 GB tensor).
MOST = {"expansion": 64, "kernel": 255, "out_channels": 4096, "stride": 64}


@dataclass(frozen=True)
class BlockSpec:
    """One inverted bottleneck: expansion, depthwise kernel size and direction, stride (freq, time), width."""

    expansion: int
    kernel: int
    direction: str  # 't' = 1 x k along time, 'f' = k x 1 along frequency
    stride: tuple[int, int]  # (freq, time)
    out_channels: int

    def __post_init__(self):
        stride = tuple(self.stride)
        object.__setattr__(self, "stride", stride)
        ints = [self.expansion, self.kernel, self.out_channels, *stride]
        name = f"block '{format_block(self) if len(stride) == 2 else self}'"  # as a user writes blocks
        if len(stride) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in ints):
            raise UserError(f"{name}: expansion, kernel, out_channels and both strides must be "
                            f"positive integers")
        for field, value in (("expansion", self.expansion), ("kernel", self.kernel),
                             ("out_channels", self.out_channels), ("stride", max(stride))):
            if value > MOST[field]:
                raise UserError(f"{name}: {field} {value} is above {MOST[field]}, far beyond any MBNet block "
                                f"(a typo?)")
        if self.direction not in ("t", "f"):
            raise UserError(f"{name}: direction must be 't' (time) or 'f' (frequency)")
        if self.kernel % 2 == 0:
            # Choice: odd kernels only, so 'same' padding k//2 gives output size ceil(n / stride).
            raise UserError(f"{name}: kernel must be odd (padding k//2 keeps sizes ceil(n/s))")

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (1, self.kernel) if self.direction == "t" else (self.kernel, 1)

    @property
    def padding(self) -> tuple[int, int]:
        return (0, self.kernel // 2) if self.direction == "t" else (self.kernel // 2, 0)


def parse_block(s: str) -> BlockSpec:
    """`ir_e6_k3t_s1x1_c24` -> BlockSpec; anything else -> UserError naming the string and the form."""
    m = _BLOCK_RE.fullmatch(s.strip()) if isinstance(s, str) else None
    if m is None:
        raise UserError(f"block '{s}': expected the form {BLOCK_FORM}, e.g. ir_e6_k3t_s1x1_c24")
    e, k, d, sf, st, c = m.groups()
    try:
        return BlockSpec(int(e), int(k), d, (int(sf), int(st)), int(c))
    except UserError as err:
        raise UserError(f"block '{s}': {str(err).split(': ', 1)[1]}") from None


def format_block(spec: BlockSpec) -> str:
    sf, st = spec.stride
    return f"ir_e{spec.expansion}_k{spec.kernel}{spec.direction}_s{sf}x{st}_c{spec.out_channels}"


def as_spec(b: str | BlockSpec) -> BlockSpec:
    if isinstance(b, BlockSpec):
        return b
    return parse_block(b)


def out_size(n: int, stride: int) -> int:
    """Output length of a 'same'-padded (k//2, odd k) convolution: ceil(n / stride)."""
    return -(-n // stride)


def out_hw(in_hw: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:
    return out_size(in_hw[0], stride[0]), out_size(in_hw[1], stride[1])


def has_residual(in_channels: int, spec: BlockSpec) -> bool:
    return spec.stride == (1, 1) and in_channels == spec.out_channels


def conv_bn_act(cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1, act: bool = True):
    """Conv (no bias, BN follows) + BN (+ ReLU6)."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand + BN + ReLU6, depthwise 1xk/kx1 (strided) + BN + ReLU6, 1x1 project + BN, residual add.

    As in MobileNetV2, expansion 1 skips the expand convolution; the residual is used when the stride is
    (1, 1) and the channel count is unchanged.
    """

    def __init__(self, in_channels: int, spec: BlockSpec | str):
        super().__init__()
        spec = as_spec(spec)
        self.spec = spec
        self.in_channels = in_channels
        hidden = in_channels * spec.expansion
        self.expand = conv_bn_act(in_channels, hidden, 1) if spec.expansion != 1 else nn.Identity()
        self.depthwise = conv_bn_act(hidden, hidden, spec.kernel_size, spec.stride, spec.padding,
                                     groups=hidden)
        self.project = conv_bn_act(hidden, spec.out_channels, 1, act=False)
        self.use_residual = has_residual(in_channels, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        # In-place add on the BN output (its backward does not need it): one tensor less to allocate.
        return y.add_(x) if self.use_residual else y

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {format_block(self.spec)}, residual={self.use_residual}"


def conv_cost(cin: int, cout: int, kernel: tuple[int, int], out_hw_: tuple[int, int], groups: int = 1,
              bn: bool = True, bias: bool = False) -> tuple[int, int]:
    """(params, MACs) of a conv (+ BN): weights (+ bias) (+ BN affine); MACs = out elems * cin/g * k."""
    k = kernel[0] * kernel[1]
    params = cout * (cin // groups) * k + (cout if bias else 0) + (2 * cout if bn else 0)
    macs = out_hw_[0] * out_hw_[1] * cout * (cin // groups) * k
    return params, macs


def block_cost(in_channels: int, spec: BlockSpec | str, in_hw: tuple[int, int]) -> tuple[int, int, tuple]:
    """Exact (params, MACs, out_hw) of InvertedResidual(in_channels, spec) on a (freq, time) = in_hw map."""
    spec = as_spec(spec)
    hidden = in_channels * spec.expansion
    o_hw = out_hw(in_hw, spec.stride)
    params = macs = 0
    if spec.expansion != 1:
        p, m = conv_cost(in_channels, hidden, (1, 1), in_hw)
        params, macs = params + p, macs + m
    p, m = conv_cost(hidden, hidden, spec.kernel_size, o_hw, groups=hidden)
    params, macs = params + p, macs + m
    p, m = conv_cost(hidden, spec.out_channels, (1, 1), o_hw)
    return params + p, macs + m, o_hw
