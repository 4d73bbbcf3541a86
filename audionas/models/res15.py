"""Honk's deep residual KWS models (Tang & Lin 2018; castorini/honk `SpeechResModel`): res8, res15, res26.

Input (N, 1, T, F) = (N, 1, 101, 40) MFCCs (time x coefficient); output logits (N, num_classes).
res15 at 12 classes has exactly 237,882 trainable parameters (the KWS paper's Table 2 reports 239K).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.errors import UserError
from audionas.models.args import arg_where, positive_int
from audionas.models.registry import register_model


class SpeechResModel(nn.Module):
    """conv0 (3x3, 1->maps) then `n_layers` 3x3 convs; residual add at every even layer index > 0.

    Layer i >= 1 is ReLU(conv_i) (+ the stored residual when i is even), then BatchNorm2d(affine=False),
    exactly Honk's `embed` ordering. Convs have no bias; mean pool over time and frequency; Linear head.
    """

    def __init__(self, num_classes: int, n_maps: int = 45, n_layers: int = 13, use_dilation: bool = True,
                 res_pool: tuple[int, int] | None = None, in_channels: int = 1):
        super().__init__()
        self.n_layers = n_layers
        self.conv0 = nn.Conv2d(in_channels, n_maps, 3, padding=1, bias=False)
        self.pool = nn.AvgPool2d(res_pool) if res_pool else None
        convs, bns = [], []
        for i in range(n_layers):
            d = int(2 ** (i // 3)) if use_dilation else 1
            convs.append(nn.Conv2d(n_maps, n_maps, 3, padding=d, dilation=d, bias=False))
            bns.append(nn.BatchNorm2d(n_maps, affine=False))
        self.convs = nn.ModuleList(convs)
        self.bns = nn.ModuleList(bns)
        self.output = nn.Linear(n_maps, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, n_maps)."""
        x = F.relu(self.conv0(x))
        if self.pool is not None:
            x = self.pool(x)
        old_x = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns), start=1):
            y = F.relu(conv(x))
            if i % 2 == 0:
                x = y + old_x
                old_x = x
            else:
                x = y
            x = bn(x)
        return x.flatten(2).mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.embed(x))


def _build(num_classes: int, input_shape, n_maps: int, n_layers: int, use_dilation: bool,
           res_pool: tuple[int, int] | None, name: str) -> SpeechResModel:
    n_maps = positive_int(n_maps, arg_where(name, "n_maps"))
    c, h, w = input_shape
    if res_pool and (h < res_pool[0] or w < res_pool[1]):
        raise UserError(f"input_shape {c}x{h}x{w}: {name} needs at least {res_pool[0]}x{res_pool[1]} "
                        "(time x frequency) for its average pool")
    return SpeechResModel(num_classes, n_maps=n_maps, n_layers=n_layers, use_dilation=use_dilation,
                          res_pool=res_pool, in_channels=c)


# Honk's configs (utils/model.py `_configs`): res15 dilated, res8/res26 with an average pool after conv0.
@register_model("res15", check=lambda args: positive_int(args["n_maps"], arg_where("res15", "n_maps")))
def res15(num_classes: int = 12, input_shape=(1, 101, 40), n_maps: int = 45) -> SpeechResModel:
    """Res15: 13 dilated layers, 45 maps (237,882 params at 12 classes)."""
    return _build(num_classes, input_shape, n_maps, 13, True, None, "res15")


@register_model("res15-narrow")
def res15_narrow(num_classes: int = 12, input_shape=(1, 101, 40)) -> SpeechResModel:
    """Res15-narrow: as res15 with 19 maps."""
    return _build(num_classes, input_shape, 19, 13, True, None, "res15-narrow")


@register_model("res8")
def res8(num_classes: int = 12, input_shape=(1, 101, 40)) -> SpeechResModel:
    """Res8: 6 undilated layers, 45 maps, 4x3 average pool after conv0."""
    return _build(num_classes, input_shape, 45, 6, False, (4, 3), "res8")


@register_model("res26")
def res26(num_classes: int = 12, input_shape=(1, 101, 40)) -> SpeechResModel:
    """Res26: 24 undilated layers, 45 maps, 2x2 average pool after conv0."""
    return _build(num_classes, input_shape, 45, 24, False, (2, 2), "res26")
