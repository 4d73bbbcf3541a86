"""The supernet: MBNet's stem and GRU head shared, one InvertedResidual per choice per searchable layer.

`forward(x, paths)` runs M paths in one pass: x holds M equal chunks along the batch (M*N samples) and chunk
m goes through choice paths[m][l] at layer l. Chunks that pick the same choice are run together. The BNs of
the shared stem and head (`ChunkedBatchNorm2d`) normalise each chunk with its own batch statistics in
training mode and update their running statistics chunk after chunk, so with FairNAS paths (every choice
used by exactly one chunk) the batched pass computes exactly the gradients, and ends with exactly the BN
running statistics, of M sequential single-path passes accumulated.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from audionas.errors import UserError
from audionas.models.asc import MBNet, freq_time_input, init_weights
from audionas.models.blocks import InvertedResidual
from audionas.nas.oneshot.space import SearchSpace


class ChunkedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in training mode, normalises each of `chunks` equal batch chunks separately.

    `repeats = M` instead says the batch stands for M identical chunks (the shared stem's input): it is
    normalised once, and the running statistics get the update of M successive identical batches
    (momentum 1 - (1 - m)^M, counter + M; with momentum None, the cumulative average, M / (n + M) after n
    batches), exactly what M sequential passes would leave.
    """

    chunks: int = 1
    repeats: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.chunks > 1:
            return torch.cat([super(ChunkedBatchNorm2d, self).forward(c) for c in x.chunk(self.chunks)])
        if self.training and self.repeats > 1 and self.track_running_stats:
            if self.momentum is None:
                m = self.repeats / (float(self.num_batches_tracked) + self.repeats)
            else:
                m = 1.0 - (1.0 - self.momentum) ** self.repeats
            self.num_batches_tracked.add_(self.repeats)
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                            True, m, self.eps)
        return super().forward(x)


def _chunk_batchnorms(module: nn.Module) -> list[ChunkedBatchNorm2d]:
    """Replace every BatchNorm2d inside `module` by a ChunkedBatchNorm2d (same parameters and buffers)."""
    out = []
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d:
            new = ChunkedBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                     child.track_running_stats)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
            out.append(new)
        else:
            out.extend(_chunk_batchnorms(child))
    return out


class Supernet(nn.Module):
    """All candidate networks of a SearchSpace with shared weights."""

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        # Reuse MBNet's construction of stem and head (same modules, same init) around the first choices.
        template = MBNet(space.layers_first, space.num_classes, space.input_shape, **space.model_args)
        self.input_shape, self.time_axis = template.input_shape, template.time_axis
        self.freq_bins = template.freq_bins
        self.stem, self.head = template.stem, template.head
        self.blocks = nn.ModuleList(
            nn.ModuleList(InvertedResidual(cin, b) for b in choices)
            for (cin, _), choices in zip(space.layer_inputs, space.layers))
        init_weights(self.blocks)
        self._chunked = _chunk_batchnorms(self.stem) + _chunk_batchnorms(self.head)

    def forward(self, x: torch.Tensor, paths, shared_input: bool = False) -> torch.Tensor:
        """x: (M*N, C, H, W); paths: one chromosome or a list of M chromosomes -> logits (M*N, classes).

        `shared_input=True`: x is one (N, C, H, W) batch that every path sees (FairNAS training): the shared
        stem runs once on it and its output feeds all M paths (same values and gradients as M copies).
        Between stem and head the M chunks travel as a list (no copies); they are concatenated once, for the
        head (one batched GRU pass)."""
        if paths and not isinstance(paths[0], (list, tuple)):
            paths = [paths]
        M = len(paths)
        if not shared_input and x.shape[0] % M:
            raise UserError(f"Supernet: batch of {x.shape[0]} does not split into {M} equal chunks")
        x = freq_time_input(self, x)
        stem_bns = [m for m in self.stem.modules() if isinstance(m, ChunkedBatchNorm2d)]
        for bn in self._chunked:
            bn.chunks = M
        try:
            if shared_input and M > 1:
                for bn in stem_bns:
                    bn.chunks, bn.repeats = 1, M
                xs = [self.stem(x)] * M
            else:
                xs = list(self.stem(x).chunk(M))
            for l, layer in enumerate(self.blocks):
                xs = self._layer(layer, xs, [p[l] for p in paths])
            return self.head(xs[0] if M == 1 else torch.cat(xs))
        finally:
            for bn in self._chunked:
                bn.chunks, bn.repeats = 1, 1

    @staticmethod
    def _layer(layer: nn.ModuleList, xs: list[torch.Tensor], genes: list[int]) -> list[torch.Tensor]:
        """Chunk m through choice genes[m]; chunks sharing a choice run as one batch."""
        outs: list[torch.Tensor] = list(xs)
        for g in dict.fromkeys(genes):
            idx = [m for m, gm in enumerate(genes) if gm == g]
            if len(idx) == 1:
                outs[idx[0]] = layer[g](xs[idx[0]])
                continue
            y = layer[g](torch.cat([xs[m] for m in idx]))
            for m, ym in zip(idx, y.chunk(len(idx))):
                outs[m] = ym
        return outs

    @torch.no_grad()
    def predict_paths(self, x: torch.Tensor, paths: list[list[int]]) -> list[torch.Tensor]:
        """The classes each of `paths` predicts for batch `x` (CPU tensors), from one pass over x repeated per
        path; BN as the module's mode has it (eval: the supernet's statistics)."""
        out = self(x.repeat(len(paths), *([1] * (x.dim() - 1))), paths).argmax(1).cpu()
        return list(out.chunk(len(paths)))

    def path_modules(self, path) -> list[nn.Module]:
        """Stem, the chosen block of every layer, and the head: the modules a single path uses."""
        return [self.stem, *(layer[g] for layer, g in zip(self.blocks, path)), self.head]

    def extract(self, chromosome) -> MBNet:
        """A standalone MBNet with the chromosome's inherited weights (for inspection / fine-tuning)."""
        chrom = self.space.check(chromosome)
        net = self.space.build(chrom)
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        for b, layer, g in zip(net.blocks, self.blocks, chrom):
            b.load_state_dict(layer[g].state_dict())
        return net.to(next(self.parameters()).device)
