"""TC-ResNet (Choi et al. 2019; hyperconnect/TC-ResNet `audio_nets/tc_resnet.py`): temporal convolutions.

The F MFCCs become channels: input (N, 1, T, F) is viewed as (N, F, T, 1), so every kernel is k x 1 over
time (`time_axis='w'` takes (N, 1, F, T) inputs, such as log-mel bands x time, the same way).
tc-resnet14-1.5 at 12 classes has exactly 303,000 trainable parameters; the paper's 305K is the TensorFlow
variable count 304,752 = 303,000 + 1,608 BN moving statistics + 144 weights of the reference
code's unused 2-output `fc2` ("ranges") head, which is not built here.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.errors import UserError
from audionas.models.args import arg_where, real_in
from audionas.models.registry import register_model


class SameConv(nn.Conv2d):
    """k x 1 conv with TensorFlow "SAME" padding along time (the odd extra pad goes at the end).

    Choice: TF's asymmetric SAME padding, so strided layers see the same frames as the reference model
    (with T=101 the third strided block gets 26 frames: TF pads 3 before and 4 after, not 4 and 4).
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__(cin, cout, (k, 1), stride=(stride, 1), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        k, s = self.kernel_size[0], self.stride[0]
        pad = max((math.ceil(t / s) - 1) * s + k - t, 0)
        if pad:
            x = F.pad(x, (0, 0, pad // 2, pad - pad // 2))
        return super().forward(x)


class ConvBN(nn.Sequential):
    """conv (no bias) -> BN (-> ReLU): slim.conv2d under TCResNet_arg_scope."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True, bn_kw=None):
        layers = [SameConv(cin, cout, k, stride), nn.BatchNorm2d(cout, **(bn_kw or {}))]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class TCBlock(nn.Module):
    """Two 9x1 convs (first strided 2 when the width changes) + shortcut, add, ReLU.

    The shortcut is a 1x1 stride-2 conv -> BN -> ReLU when the width changes (the reference's slim arg scope
    gives every conv BN and ReLU, as in the paper's Figure 3b), else identity.
    """

    def __init__(self, cin: int, cout: int, k: int = 9, bn_kw=None):
        super().__init__()
        stride = 1 if cin == cout else 2
        self.down = ConvBN(cin, cout, 1, stride, bn_kw=bn_kw) if cin != cout else None
        self.conv0 = ConvBN(cin, cout, k, stride, bn_kw=bn_kw)
        self.conv1 = ConvBN(cout, cout, k, 1, relu=False, bn_kw=bn_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.down is None else self.down(x)
        return F.relu(self.conv1(self.conv0(x)) + shortcut)


class TCResNet(nn.Module):
    """conv0 3x1 -> residual blocks -> global average pool -> dropout -> 1x1 conv classifier (no bias)."""

    def __init__(self, num_classes: int, in_features: int, channels: list[int], dropout: float = 0.5,
                 bn_kw=None, time_axis: str = "h"):
        super().__init__()
        self.time_axis = time_axis
        self.conv0 = ConvBN(in_features, channels[0], 3, bn_kw=bn_kw)
        pairs = zip(channels[:-1], channels[1:])
        self.blocks = nn.Sequential(*[TCBlock(a, b, bn_kw=bn_kw) for a, b in pairs])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Conv2d(channels[-1], num_classes, 1, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)  # the reference's slim xavier_initializer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_axis == "h":
            x = x.transpose(2, 3)  # (N, C, T, F) -> (N, C, F, T)
        n, c, f, t = x.shape
        x = x.reshape(n, c * f, t, 1)  # the features become channels: (N, C*F, T, 1)
        x = self.blocks(self.conv0(x))
        x = self.dropout(x.mean((2, 3), keepdim=True))
        return self.fc(x).flatten(1)


_BASE = {"tc-resnet8": [16, 24, 32, 48], "tc-resnet14": [16, 24, 24, 32, 32, 48, 48]}


def _tc_args(name: str, dropout, bn_momentum, bn_eps, time_axis, **_) -> tuple[float, dict]:
    """A TC-ResNet factory's checked dropout and BatchNorm keywords; `time_axis` checked too."""
    if time_axis not in ("h", "w"):
        raise UserError(f"{arg_where(name, 'time_axis')}: expected 'h' (input C x time x freq) or 'w' "
                        f"(C x freq x time), got {time_axis!r}")
    dropout = real_in(dropout, arg_where(name, "dropout"), 0.0, 1.0, hi_open=True)
    # Choice: PyTorch BN defaults (momentum 0.1, eps 1e-5); the reference uses decay 0.997, eps 1e-3,
    # which the kws-tc-resnet preset passes (bn_momentum=0.003, bn_eps=1e-3).
    return dropout, {"momentum": real_in(bn_momentum, arg_where(name, "bn_momentum"), 0.0, 1.0),
                     "eps": real_in(bn_eps, arg_where(name, "bn_eps"), 0.0, lo_open=True)}


def _factory(name: str, base: str, width: float):
    def build(num_classes: int = 12, input_shape=(1, 101, 40), dropout: float = 0.5,
              bn_momentum: float = 0.1, bn_eps: float = 1e-5, time_axis: str = "h") -> TCResNet:
        dropout, bn_kw = _tc_args(name, dropout, bn_momentum, bn_eps, time_axis)
        c, f = input_shape[0], input_shape[2 if time_axis == "h" else 1]
        channels = [int(x * width) for x in _BASE[base]]
        return TCResNet(num_classes, c * f, channels, dropout=dropout, bn_kw=bn_kw, time_axis=time_axis)

    build.__name__ = name.replace("-", "_").replace(".", "_")
    build.__doc__ = f"{base} at width multiplier {width} (channels {[int(x * width) for x in _BASE[base]]})."
    return register_model(name, check=lambda args: _tc_args(name, **args))(build)


for _name, _base, _width in [("tc-resnet8", "tc-resnet8", 1.0), ("tc-resnet8-1.5", "tc-resnet8", 1.5),
                             ("tc-resnet14", "tc-resnet14", 1.0), ("tc-resnet14-1.5", "tc-resnet14", 1.5)]:
    _factory(_name, _base, _width)
