"""The DARTS search network: stem, L search cells sharing two alpha matrices, pool, linear classifier."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.nas.darts.genotype import Genotype, derive_genotype
from audionas.nas.darts.layout import reduction_cells
from audionas.nas.darts.search_cell import SearchCell


class SearchNetwork(nn.Module):
    """Over-parameterised network of the DARTS search; BN without affine parameters throughout the cells.

    `alphas_normal` / `alphas_reduce` are (14, n_ops) parameters (for 4 nodes); `weight_parameters()` are all
    the others (the network weights w).
    """

    def __init__(
        self,
        C: int = 16,
        num_classes: int = 12,
        cells: int = 6,
        primitives: list[str] | None = None,
        in_channels: int = 1,
        steps: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        layout: str = "darts",
    ):
        super().__init__()
        from audionas.nas.darts.operations import OP_SETS

        self.primitives = list(primitives or OP_SETS["nas1"])
        self.steps = steps
        self.multiplier = multiplier
        C_curr = stem_multiplier * C
        # Choice: stem BN is affine as in quark0/darts model_search.py (only the cells use affine=False).
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for reduction in reduction_cells(cells, layout):
            if reduction:
                C_curr *= 2
            self.cells.append(
                SearchCell(self.primitives, C_pp, C_p, C_curr, reduction, reduction_prev, steps, multiplier)
            )
            reduction_prev = reduction
            C_pp, C_p = C_p, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        k = sum(2 + i for i in range(steps))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, len(self.primitives)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, len(self.primitives)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("alphas_")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    def softmaxed_alphas(self) -> dict[str, torch.Tensor]:
        return {
            "normal": F.softmax(self.alphas_normal.detach(), dim=-1),
            "reduce": F.softmax(self.alphas_reduce.detach(), dim=-1),
        }

    def genotype(self) -> Genotype:
        a = self.softmaxed_alphas()
        return derive_genotype(a["normal"], a["reduce"], self.primitives, self.steps, self.multiplier)
