"""The DARTS evaluation network built from a genotype (quark0/darts `model.py`, NetworkCIFAR).

Affine BN, drop path on non-identity ops ramped linearly to `drop_path_prob` via `set_progress`, optional
auxiliary head after the last reduction cell (off by default: the KWS paper reports none).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from audionas.nas.darts.genotype import Genotype
from audionas.nas.darts.layout import reduction_cells
from audionas.nas.darts.operations import OPS, FactorizedReduce, ReLUConvBN


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability `drop_prob`, scaling the kept ones by 1 / (1 - drop_prob)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    """A cell of the found genotype (quark0/darts `Cell`): the two previous cells' outputs preprocessed to C
    channels, one op per genotype edge, each node the sum of its two edges, the `concat` nodes stacked."""

    def __init__(
        self, genotype: Genotype, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_pp, C) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0)
        gene, concat = (
            (genotype.reduce, genotype.reduce_concat)
            if reduction
            else (genotype.normal, genotype.normal_concat)
        )
        self.steps = len(gene) // 2
        self.concat = list(concat)
        self.multiplier = len(self.concat)
        self.indices = [idx for _, idx in gene]
        self.ops = nn.ModuleList(OPS[name](C, 2 if reduction and idx < 2 else 1, True) for name, idx in gene)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            hs = []
            for k in (2 * i, 2 * i + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """quark0/darts AuxiliaryHeadCIFAR, with an adaptive pool so it works on any spatial size."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        # Choice: AdaptiveAvgPool2d(2) replaces AvgPool2d(5, stride=3) (CIFAR 8x8 -> 2x2): KWS maps are 26x10.
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """Stem (3x3 conv to 3C + BN), `cells` cells from `genotype`, global average pool, linear classifier."""

    def __init__(
        self,
        genotype: Genotype,
        C: int = 16,
        num_classes: int = 12,
        cells: int = 6,
        in_channels: int = 1,
        auxiliary: bool = False,
        drop_path_prob: float = 0.2,
        layout: str = "darts",
        stem_multiplier: int = 3,
    ):
        super().__init__()
        self.genotype = genotype
        self.drop_path_max = drop_path_prob
        self.drop_path_prob = 0.0
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reductions = reduction_cells(cells, layout)
        # Choice: the auxiliary head reads the output of the last reduction cell (2L//3 for the DARTS layout).
        self.aux_index = max((i for i, r in enumerate(reductions) if r), default=cells - 1)
        reduction_prev = False
        C_aux = C_p
        for i, reduction in enumerate(reductions):
            if reduction:
                C_curr *= 2
            cell = EvalCell(genotype, C_pp, C_p, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.multiplier * C_curr
            if i == self.aux_index:
                C_aux = C_p
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def set_progress(self, p: float) -> None:
        """Drop-path ramp: probability = max * p, p = epoch / epochs (quark0/darts train.py)."""
        self.drop_path_prob = self.drop_path_max * min(max(float(p), 0.0), 1.0)

    def forward(self, x: torch.Tensor):
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        if aux is not None:
            return logits, aux
        return logits
