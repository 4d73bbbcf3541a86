"""Alpha updates of DARTS: first order (grad_a L_val(w)) and second order (one unrolled SGD step).

Second order (Liu et al., eq. 7-8; quark0/darts `architect.py`):
    w' = w - eta * (momentum * buf + grad_w L_train(w) + wd * w)
    grad_a = grad_a L_val(w') - eta * (grad_a L_train(w+) - grad_a L_train(w-)) / (2 * eps)
    w± = w ± eps * v,  v = grad_w' L_val(w'),  eps = 0.01 / ||v||
Note the brackets: pt.darts and NNI (before PR #3058) divided by 2 and multiplied by eps.

The unrolled weights are set in place and restored afterwards (no model copy). With torch.distributed every
gradient is averaged over ranks before use, so all ranks take the same alpha step.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from audionas.nas.darts.search_model import SearchNetwork
from audionas.utils.dist import sync_mean


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module):
    """Restore BN running statistics after the architect's extra forward passes.

    Choice: only the weight-training passes update running stats (quark0 updates them from its Hessian
    passes too); the alpha gradient is unaffected because the search net runs BN in training mode.
    """
    saved = [
        (b, b.detach().clone()) for n, b in model.named_buffers() if "running" in n or "num_batches" in n
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


class Architect:
    """Computes alpha gradients and steps the alpha optimiser."""

    def __init__(
        self,
        model: SearchNetwork,
        w_optimizer: torch.optim.Optimizer,
        a_optimizer: torch.optim.Optimizer,
        momentum: float,
        weight_decay: float,
        unrolled: bool = False,
        hvp_r: float = 0.01,
    ):
        self.model = model
        self.w_optimizer = w_optimizer
        self.a_optimizer = a_optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.unrolled = unrolled
        self.hvp_r = hvp_r

    def step(self, x_train, y_train, x_val, y_val, eta: float) -> torch.Tensor:
        """One alpha step; returns the validation loss that was differentiated (a detached 0-d tensor on the
        model's device, so a GPU step does not wait for it)."""
        self.a_optimizer.zero_grad(set_to_none=True)
        with frozen_bn_stats(self.model):
            if self.unrolled:
                grads, loss = self.unrolled_grads(x_train, y_train, x_val, y_val, eta)
            else:
                loss = self.model.loss(x_val, y_val)
                grads = sync_mean(_grads(loss, self.model.arch_parameters()))
        for a, g in zip(self.model.arch_parameters(), grads):
            a.grad = g.detach().clone()
        self.a_optimizer.step()
        return loss.detach()

    def unrolled_grads(self, x_train, y_train, x_val, y_val, eta: float):
        """Second-order DARTS (Liu et al. Eq. 7): the alpha gradient of L_val at the one-step-unrolled weights
        w' = w - eta * (the next SGD step on L_train), minus eta times the finite-difference Hessian-vector
        product; the weights are restored afterwards. Returns (alpha gradients, L_val)."""
        model = self.model
        weights = model.weight_parameters()
        alphas = model.arch_parameters()
        w0 = [p.detach().clone() for p in weights]
        g_train = sync_mean(_grads(model.loss(x_train, y_train), weights))
        try:
            with torch.no_grad():
                for p, w, g in zip(weights, w0, g_train):
                    buf = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                    # Choice: momentum * buf, the exact next SGD step (as quark0/darts), not the bare buffer.
                    d = g + self.weight_decay * w
                    if buf is not None:
                        d = d + self.momentum * buf
                    p.copy_(w - eta * d)
            loss_val = model.loss(x_val, y_val)
            grads = sync_mean(_grads(loss_val, alphas + weights))
            d_alpha, vector = grads[: len(alphas)], grads[len(alphas) :]
            hvp = self.hessian_vector_product(vector, x_train, y_train, w0)
        finally:
            with torch.no_grad():
                for p, w in zip(weights, w0):
                    p.copy_(w)
        return [da - eta * h for da, h in zip(d_alpha, hvp)], loss_val.detach()

    def hessian_vector_product(self, vector: list[torch.Tensor], x, y, w0: list[torch.Tensor]):
        """(grad_a L_train(w + eps v) - grad_a L_train(w - eps v)) / (2 eps), eps = r / ||v||, at w = w0."""
        model = self.model
        weights = model.weight_parameters()
        alphas = model.arch_parameters()
        norm = torch.cat([v.reshape(-1) for v in vector]).norm()
        eps = self.hvp_r / norm.clamp_min(1e-12)
        out = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, w, v in zip(weights, w0, vector):
                    p.copy_(w + sign * eps * v)
            out.append(sync_mean(_grads(model.loss(x, y), alphas)))
        return [(gp - gn) / (2.0 * eps) for gp, gn in zip(out[0], out[1])]
