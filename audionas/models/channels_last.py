"""channels_last training on CPU: the layout oneDNN's depthwise and 1x1 convolutions are fastest in, and a
batch norm that keeps that layout's training statistics accurate (`optimize_for_training`)."""

from __future__ import annotations

import torch
import torch.nn as nn


class _BatchNormTrainCL(torch.autograd.Function):
    """Training-mode batch norm with accurately summed statistics; backward is PyTorch's own kernel.

    PyTorch's CPU channels_last batch norm sums the statistics in a plain float32 loop (relative error ~1e-6
    and growing with N*H*W, vs ~4e-8 for NCHW); 20 BN layers amplify that into percent-level gradient
    differences. Here mean and variance come from cascade-summed reductions of the centred input.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        n = x.numel() // x.shape[1]
        # Two-level sums: float32 along each time row (vectorised over channels), then the N*F row sums in
        # float64. The (N, F, T, C) permute is a free view of a channels_last tensor.
        mean = x.permute(0, 2, 3, 1).sum(2).sum((0, 1), dtype=torch.float64).div_(n).float()
        xmu = x - mean.view(1, -1, 1, 1)
        rows = torch.linalg.vector_norm(xmu.permute(0, 2, 3, 1), 2, 2)
        var = rows.double().square_().sum((0, 1)).div_(n).float()
        invstd = torch.rsqrt(var + eps)
        y = torch.addcmul(bias.view(1, -1, 1, 1), xmu, (weight * invstd).view(1, -1, 1, 1))
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, gy, _gmean, _gvar):
        x, weight, mean, invstd = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        dx, dw, db = torch.ops.aten.native_batch_norm_backward(
            gy.contiguous(memory_format=torch.channels_last), x, weight, None, None, mean, invstd, True,
            ctx.eps, mask)
        return dx, dw, db, None


class FastBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose training step on channels_last input uses `_BatchNormTrainCL` (same result)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.affine and self.track_running_stats and x.dim() == 4
                and x.is_contiguous(memory_format=torch.channels_last) and x.numel() > x.shape[1]
                and torch.is_grad_enabled() and x.device.type == "cpu"):
            return super().forward(x)
        y, mean, var = _BatchNormTrainCL.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            n = x.numel() // x.shape[1]
            self.running_mean.mul_(1 - f).add_(mean, alpha=f)
            self.running_var.mul_(1 - f).add_(var, alpha=f * n / (n - 1))
        return y


def optimize_for_training(model: nn.Module, compile: bool = False, accurate_bn: bool = True) -> nn.Module:
    """Put `model` in the fastest exact CPU training setup and return it (the same module object).

    1. channels_last memory format: oneDNN's NHWC convolutions (depthwise and 1x1) are several times faster
       than NCHW on CPU and compute the same sums. Inputs need no change: a 1-channel NCHW batch is already
       channels_last-contiguous.
    2. `accurate_bn`: every nn.BatchNorm2d becomes a FastBatchNorm2d (class swap in place: same parameters,
       buffers and state_dict keys), which keeps channels_last training statistics about as accurate as
       NCHW ones. It costs ~1.5x a native BN; without it the gradients differ from the NCHW reference by
       several times float32 rounding noise (measured in benchmarks/asc_train_step.py).
    `compile=True` also calls `model.compile()` (in place, state_dict keys unchanged); off by default:
    compiling took ~12 minutes here and was not faster than eager on this 2-core CPU. Figures:
    benchmarks/asc_train_step.py.
    """
    model = model.to(memory_format=torch.channels_last)
    for m in model.modules():
        if accurate_bn and type(m) is nn.BatchNorm2d:
            m.__class__ = FastBatchNorm2d
    if compile:
        model.compile()
    return model
