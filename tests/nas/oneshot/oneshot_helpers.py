"""Tiny spaces, in-memory data and toy search objectives shared by the one-shot tests."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from audionas.data import DataBundle

TINY_SPACE = {
    "name": "tiny", "task": "kws", "num_classes": 5, "input_shape": [1, 12, 8],
    "model_args": {"time_axis": "h", "stem_channels": 4, "head_channels": 8, "gru_hidden": 8, "gru_layers": 1,
                   "fc_hidden": 8},
    "layers": ["ir_e6_k3t_s1x1_c4", "ir_e6_k3f_s2x2_c8",
               {"block": "ir_e6_k5t_s1x1_c8", "expansions": [3, 6, 8], "kernels": [5, 7]}],
}


def tiny_bundle(n_train: int = 24, n_val: int = 16, seed: int = 0) -> DataBundle:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_train + n_val) % 5
    x = torch.randn(n_train + n_val, 1, 12, 8, generator=g) + y.view(-1, 1, 1, 1).float() * 0.5
    return DataBundle(train=TensorDataset(x[:n_train], y[:n_train]),
                      val=TensorDataset(x[n_train:], y[n_train:]), test=None,
                      classes=[str(i) for i in range(5)], frontend=nn.Identity(), input_shape=(1, 12, 8))


def toy_eval(cs):
    """Search records: score sin(genes . (1..n)) in [-1, 1], macs the sum of the genes, params 1."""
    return [{"score": float(np.sin(np.dot(c, np.arange(1, len(c) + 1)))), "macs": float(sum(c)),
             "params": 1} for c in cs]


def dominates(a, b) -> bool:
    """a Pareto-dominates b (both minimised)."""
    return bool(np.all(a <= b) and np.any(a < b))
