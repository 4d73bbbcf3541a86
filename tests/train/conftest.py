"""Tiny in-memory data and a tiny registered model for the training tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from audionas.data import DataBundle
from audionas.models import registry

CLASSES = ["a", "b", "c"]


class TinyNet(nn.Module):
    """Conv + BN + dropout + linear, with an auxiliary head in training mode and set_progress."""

    def __init__(self, num_classes: int, input_shape, aux: bool = False):
        super().__init__()
        c, h, w = input_shape
        self.conv = nn.Conv2d(c, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4, num_classes)
        self.aux = nn.Linear(4, num_classes) if aux else None
        self.progress: list[float] = []

    def set_progress(self, p: float) -> None:
        self.progress.append(p)

    def forward(self, x):
        z = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        logits = self.fc(self.drop(z))
        if self.training and self.aux is not None:
            return logits, self.aux(z)
        return logits


if "tiny-test" not in registry._MODELS:
    registry.register_model("tiny-test")(
        lambda num_classes, input_shape, aux=False: TinyNet(num_classes, input_shape, aux=aux))


class NoisyBlobs(Dataset):
    """Class k = a blob at a class-specific position plus noise; train items get epoch-seeded jitter."""

    def __init__(self, n: int, seed: int, train: bool):
        rng = np.random.default_rng(seed)
        self.y = rng.integers(0, len(CLASSES), n)
        self.base = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
        for i, k in enumerate(self.y):
            self.base[i, 0, 2 * k:2 * k + 3, 2 * k:2 * k + 3] += 1.0
        self.train, self.epoch, self.seed = train, 0, seed

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = self.base[i]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            x = x + rng.normal(0, 0.1, x.shape).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(x)), int(self.y[i])


def make_bundle(n_train: int = 40, n_eval: int = 12) -> DataBundle:
    return DataBundle(train=NoisyBlobs(n_train, 1, True), val=NoisyBlobs(n_eval, 2, False),
                      test=NoisyBlobs(n_eval, 3, False), classes=list(CLASSES), frontend=nn.Identity(),
                      input_shape=(1, 8, 8))


@pytest.fixture
def tiny_bundle():
    return make_bundle
