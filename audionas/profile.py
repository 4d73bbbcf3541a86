"""Model cost: trainable parameters, multiply-adds (MACs) and CPU latency.

MACs are multiply-accumulates, NOT 2 x MACs (the "FLOPs" of both papers, MobileNetV2's "MAdds"). Only the
weight multiply-adds of these leaf modules are counted, once per call (shared modules count every call):
- ConvNd: out_elems * in_ch/groups * prod(kernel) (stride, dilation, padding and groups through out_elems);
  ConvTransposeNd: in_elems * out_ch/groups * prod(kernel).
- Linear: rows * in * out; Bilinear: rows * in1 * in2 * out.
- MultiheadAttention: the q/k/v/out projections plus Lq*Lk*E for Q.K^T and again for the weighted sum (Lk
  counts the slots add_bias_kv / add_zero_attn append).
- RNN/GRU/LSTM (and their cells) by formula, so the figure does not depend on the device: per time step,
  sequence and direction, layer l costs gates * H * (in_l + H) with gates = 1 (RNN), 3 (GRU), 4 (LSTM)
  (with proj_size P, LSTM: 4H(in_l + P) + P*H). A GRU layer over T steps: T * 3H(in + H) per direction.
Not counted (0): biases, BatchNorm/LayerNorm/GroupNorm (foldable into the preceding layer), activations,
pooling, dropout, elementwise adds and gate nonlinearities, embeddings (lookups). A leaf module with
parameters of an unknown type triggers a warning, since its work would be missing from the count; so does
a module holding parameters of its own beside child modules (its own use of them is not seen).
"""

from __future__ import annotations

import copy
import math
import statistics
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence

from audionas.errors import UserError, warn
from audionas.utils.jsonio import is_integer

_ZERO_COST = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.Embedding,
    nn.EmbeddingBag, nn.Dropout, nn.Identity, nn.PReLU,
)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_COUNTED = (*_CONV, *_CONV_T, nn.Linear, nn.Bilinear, nn.MultiheadAttention, nn.RNNBase, nn.RNNCellBase)
_RNN_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def count_params(model: nn.Module, trainable: bool = True) -> int:
    """Number of parameters (only those with requires_grad when `trainable`); buffers never count, nor does
    a DARTS auxiliary head, which only training runs (the DARTS code's count_parameters_in_MB convention)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if (p.requires_grad or not trainable) and "auxiliary_head." not in name)


def rnn_macs(rnn: nn.RNNBase, steps: int) -> int:
    """Weight MACs of a (multi-layer, maybe bidirectional) RNN/GRU/LSTM over `steps` sequence steps.

    `steps` is the total number of time steps over all sequences in the batch (N * T when unpacked).
    """
    gates = _RNN_GATES[rnn.mode]
    h = rnn.hidden_size
    p = getattr(rnn, "proj_size", 0) or 0
    h_out = p or h
    dirs = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        in_l = rnn.input_size if layer == 0 else h_out * dirs
        per_step = gates * h * (in_l + h_out) + p * h
        total += per_step * dirs
    return steps * total


def _rnn_steps(x) -> int:
    """Time steps x batch rows an RNN runs over its input (packed, unbatched or batched)."""
    if isinstance(x, PackedSequence):
        return int(x.batch_sizes.sum())
    if x.dim() == 2:  # unbatched (T, in)
        return x.shape[0]
    return x.shape[0] * x.shape[1]


def _cell_macs(cell: nn.RNNCellBase, x: torch.Tensor) -> int:
    gates = {nn.GRUCell: 3, nn.LSTMCell: 4}.get(type(cell), 1)
    rows = x.shape[0] if x.dim() == 2 else 1
    return rows * gates * cell.hidden_size * (cell.input_size + cell.hidden_size)


def _mha_macs(m: nn.MultiheadAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> int:
    e = m.embed_dim
    if q.dim() == 2:  # unbatched (L, E)
        n, lq, lk = 1, q.shape[0], k.shape[0]
    elif m.batch_first:
        n, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    else:
        n, lq, lk = q.shape[1], q.shape[0], k.shape[0]
    proj = lq * e * e + lk * m.kdim * e + lk * m.vdim * e + lq * e * e
    # add_bias_kv and add_zero_attn each append one key/value slot after the projections.
    slots = lk + (m.bias_k is not None) + bool(m.add_zero_attn)
    return n * (proj + 2 * lq * slots * e)


def _first_tensor(out):
    """The first tensor in a module output (tensor, PackedSequence, or nested tuple/list)."""
    if isinstance(out, PackedSequence):
        return out.data
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def module_macs(m: nn.Module, inputs: tuple, output) -> int | None:
    """MACs of one call of leaf module `m`; None when its type is not known."""
    if isinstance(m, _CONV):
        out = _first_tensor(output)
        return out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
    if isinstance(m, _CONV_T):
        return inputs[0].numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)
    if isinstance(m, nn.Linear):
        return inputs[0].numel() * m.out_features
    if isinstance(m, nn.Bilinear):
        rows = inputs[0].numel() // m.in1_features
        return rows * m.in1_features * m.in2_features * m.out_features
    if isinstance(m, nn.MultiheadAttention):
        return _mha_macs(m, *inputs[:3])
    if isinstance(m, nn.RNNBase):
        return rnn_macs(m, _rnn_steps(inputs[0]))
    if isinstance(m, nn.RNNCellBase):
        return _cell_macs(m, inputs[0])
    if isinstance(m, _ZERO_COST) or not any(True for _ in m.parameters(recurse=False)):
        return 0
    return None


def _is_leaf(m: nn.Module) -> bool:
    # RNNs and convs are leaves for counting even if a subclass adds children.
    return isinstance(m, _COUNTED) or not any(True for _ in m.children())


def _device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 101, 40), batch: int = 1) -> int:
    """Multiply-adds of one forward pass on a zero input of shape (batch, *input_shape), in eval mode.

    The figure is for the whole batch (= per-sample MACs when batch is 1). The model's mode is restored.
    """
    counts: list[int] = []
    unknown: set[str] = set()

    def hook(m, args, kwargs, output):
        extra = tuple(v for v in kwargs.values() if isinstance(v, (torch.Tensor, PackedSequence)))
        inputs = tuple(args) + extra
        c = module_macs(m, inputs, output)
        if c is None:
            unknown.add(type(m).__name__)
        else:
            counts.append(int(c))

    leaves = [m for m in model.modules() if _is_leaf(m)]
    inside = {id(c) for m in leaves if isinstance(m, _COUNTED) for c in m.modules() if c is not m}
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in leaves if id(m) not in inside]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(batch, *input_shape, device=_device(model)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    unknown.update(type(m).__name__ for m in model.modules()
                   if not _is_leaf(m) and id(m) not in inside and not isinstance(m, _ZERO_COST)
                   and any(True for _ in m.parameters(recurse=False)))
    if unknown:
        warn(f"count_macs: modules with parameters of unknown cost counted as 0: "
             f"{', '.join(sorted(unknown))}")
    return sum(counts)


def measure_latency(model: nn.Module, input_shape: tuple[int, ...] = (1, 101, 40), repeats: int = 50,
                    warmup: int = 5, num_threads: int | None = None) -> float:
    """Median wall time in ms of one forward pass of one sample on CPU (eval mode, inference_mode).

    A model on another device is copied to the CPU. `num_threads` (None = leave torch's setting) is
    restored afterwards. The model's training mode is restored.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("measure_latency: repeats must be >= 1 and warmup >= 0")
    cpu_model = model if _device(model).type == "cpu" else copy.deepcopy(model).cpu()
    was_training = cpu_model.training
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    cpu_model.eval()
    try:
        x = torch.zeros(1, *input_shape)
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                cpu_model(x)
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        cpu_model.train(was_training)
        if num_threads is not None:
            torch.set_num_threads(old_threads)
    return float(statistics.median(times))


def profile_model(model: nn.Module, input_shape: tuple[int, ...] = (1, 101, 40), repeats: int = 50,
                  warmup: int = 5, num_threads: int | None = None, label: str | None = None) -> dict:
    """{"params": trainable params, "macs": multiply-adds per sample, "latency_ms": CPU median or None}.

    `repeats=0` skips the latency measurement (latency_ms is None); `num_threads` as in measure_latency.
    `label` (the model as the user named it): a model that cannot run on `input_shape` is then a UserError
    naming it and the input instead of torch's RuntimeError.
    """
    if not is_integer(repeats) or repeats < 0:
        raise ValueError(f"profile_model: repeats must be an integer >= 0 (0 skips the latency), got "
                         f"{repeats!r}")
    try:
        macs = count_macs(model, input_shape)
    except RuntimeError as e:
        if label is None:
            raise
        raise UserError(f"--input {'x'.join(map(str, input_shape))}: model '{label}' cannot run on it: "
                        f"{str(e).splitlines()[0]}") from e
    return {
        "params": count_params(model),
        "macs": macs,
        "latency_ms": (measure_latency(model, input_shape, repeats, warmup, num_threads=num_threads)
                       if repeats > 0 else None),
    }
