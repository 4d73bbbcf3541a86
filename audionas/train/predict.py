"""Batched inference over a dataset: posteriors, labels and loss (evaluation, early stopping, search)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from audionas.train.batches import Loader


def unwrap_logits(out):
    """Models may return (logits, aux_logits) in training mode; the first element is the prediction."""
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def predict(model: nn.Module, frontend: nn.Module, dataset: Dataset, device: torch.device | str,
            batch_size: int = 256, num_workers: int = 0, channels_last: bool = False
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Softmax posteriors (N, classes), labels (N,) and mean cross-entropy over a dataset, in order."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    frontend.eval()
    loader = Loader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                    pin_memory=device.type == "cuda")
    probs, labels, loss_sum = [], [], 0.0
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = torch.as_tensor(y).to(device, non_blocking=True)
        feats = frontend(x)
        if channels_last:
            feats = feats.contiguous(memory_format=torch.channels_last)
        logits = unwrap_logits(model(feats)).float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        probs.append(torch.softmax(logits, dim=1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), 0.0
    n = sum(len(p) for p in probs)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy().astype(np.int64), loss_sum / n
