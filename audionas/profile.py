"""Model cost: trainable parameters, multiply-adds (MACs) and CPU latency.

MACs are multiply-accumulates, NOT 2 x MACs (the "FLOPs" of both papers, MobileNetV2's "MAdds"). Only the
weight multiply-adds of these leaf modules are counted, once per call (shared modules count every call):
- ConvNd: out_elems * in_ch/groups * prod(kernel) (stride, dilation, padding and groups through out_elems);
  ConvTransposeNd: in_elems * out_ch/groups * prod(kernel).
- Linear: rows * in * out; Bilinear: rows * in1 * in2 * out.
- MultiheadAttention: the q/k/v/out projections plus Lq*Lk*E for Q.K^T and again for the weighted sum.
- RNN/GRU/LSTM (and their cells) by formula, so the figure does not depend on the device: per time step,
  sequence and direction, layer l costs gates * H * (in_l + H) with gates = 1 (RNN), 3 (GRU), 4 (LSTM)
  (with proj_size P, LSTM: 4H(in_l + P) + P*H). A GRU layer over T steps: T * 3H(in + H) per direction.
Not counted (0): biases, BatchNorm/LayerNorm/GroupNorm (foldable into the preceding layer), activations,
pooling, dropout, elementwise adds and gate nonlinearities, embeddings (lookups). A leaf module with
parameters of an unknown type triggers a warning, since its work would be missing from the count.
"""

from __future__ import annotations

import copy
import math
import re
import statistics
import time
import warnings
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence

from audionas.errors import UserError

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


def _rnn_steps(rnn: nn.RNNBase, x) -> int:
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
    return n * (proj + 2 * lq * lk * e)


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
        return rnn_macs(m, _rnn_steps(m, inputs[0]))
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
    if unknown:
        warnings.warn(f"count_macs: modules with parameters of unknown cost counted as 0: "
                      f"{', '.join(sorted(unknown))}", stacklevel=2)
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


# --- what `audionas profile MODEL` profiles ------------------------------------------------------------

MAX_PASSES = 100_000  # timed or warm-up passes: a median needs far fewer; 1e20 ran for ever
# Choice: one sample of at most 2^22 values (a 1x40x100000 log-mel: 33 min at a 20 ms hop); 1x100000000x40 was
# killed for lack of memory with no message.
MAX_INPUT_VALUES = 1 << 22
RESERVED = {"name": "the model name is the MODEL argument", "num_classes": "use --classes",
            "input_shape": "use --input"}
YAML_OPTIONS = {"arch"}  # model options read with yaml.safe_load (a list stays a list, a path stays a string)


class ProfileTarget(NamedTuple):
    """The model to profile, how to name it, its input shape and classes, and the model kwargs given."""

    model: nn.Module
    label: str
    input_shape: tuple[int, ...]
    num_classes: int
    model_kwargs: dict


def check_passes(repeats: int, warmup: int) -> None:
    """UserError unless both counts (--repeats, --warmup) are in 0..MAX_PASSES."""
    for flag, value in (("--repeats", repeats), ("--warmup", warmup)):
        if not 0 <= value <= MAX_PASSES:
            raise UserError(f"{flag}: expected an integer in 0..{MAX_PASSES:,}, got {value}")


def parse_input_shape(text: str) -> tuple[int, ...]:
    """'1x101x40' -> (1, 101, 40); anything else is a UserError."""
    if not re.fullmatch(r"\d+x\d+x\d+", (text or "").strip()) or any(int(v) < 1 for v in text.split("x")):
        raise UserError(f"--input: expected CxHxW with positive integers (e.g. 1x101x40), got '{text}'")
    shape = tuple(int(v) for v in text.split("x"))
    if math.prod(shape) > MAX_INPUT_VALUES:
        raise UserError(f"--input: expected a sample of at most {MAX_INPUT_VALUES:,} values (C x H x W), got "
                        f"'{text}' ({math.prod(shape):,})")
    return shape


def parse_yaml_value(value: str, where: str):
    """`value` read with yaml.safe_load; invalid YAML is a UserError naming `where` (the flag as typed)."""
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise UserError(f"{where}: value is not valid YAML: {value!r}") from e


def parse_model_args(pairs: list[str] | None) -> dict:
    """['depth=3', 'widths=[1, 2]'] -> {'depth': 3, 'widths': [1, 2]} (values read with yaml.safe_load)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UserError(f"--arg: expected key=value with an identifier key, got '{pair}'")
        if key in RESERVED:
            raise UserError(f"--arg {key}: reserved; {RESERVED[key]}")
        out[key] = parse_yaml_value(value, f"--arg {key}")
    return out


def model_kwargs(pairs: list[str] | None, options: dict | None = None) -> dict:
    """Model keyword arguments from --arg KEY=VALUE `pairs` and the explicit model `options`.

    `options` maps an option name (the flag without `--`) to its value, None when not given; the YAML_OPTIONS
    are read with yaml.safe_load. An option also given as --arg is a UserError.
    """
    kwargs = parse_model_args(pairs)
    for name, value in (options or {}).items():
        if value is not None:
            if name in kwargs:
                raise UserError(f"--{name} given twice (also as --arg {name}=...)")
            kwargs[name] = _yaml_option(name, value) if name in YAML_OPTIONS else value
    return kwargs


def _yaml_option(name: str, value: str):
    """A YAML option's value (--arch): the YAML text given, or read from the file it names."""
    from pathlib import Path

    path = Path(value)
    if path.is_dir():
        raise UserError(f"--{name} {value}: a folder, expected a YAML value or a YAML file")
    if not path.is_file():
        parsed = parse_yaml_value(value, f"--{name}")
        if isinstance(parsed, str) and ("/" in value or path.suffix.lower() in (".yaml", ".yml")):
            raise UserError(f"--{name} {value}: file not found (expected a YAML value or a YAML file)")
        return parsed
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"--{name} {value}: not a readable YAML file ({type(e).__name__})") from None


def resolve_profile_target(model: str, classes: int | None = None, input_shape: str | None = None,
                           model_args: list[str] | None = None, options: dict | None = None) -> ProfileTarget:
    """The model named by `model`: a registered model name, a trained run (directory or checkpoint) or
    `SEARCH/pareto.json#k` (a one-shot search front member, before training).

    `classes` and `input_shape` (CxHxW text) override the model's defaults (1x101x40 and 12 when it has
    none); a run's are fixed. `model_args` and `options` as in model_kwargs, for a registered name only.
    Every mistake is a UserError naming the flag.
    """
    from pathlib import Path

    from audionas.models.registry import create_model, list_models, model_defaults

    kwargs = model_kwargs(model_args, options)
    kind = ("name" if model in list_models() else "result" if "#" in model
            else "run" if Path(model).exists() else "name")
    if kind == "name" and model not in list_models() and (
            "/" in model or Path(model).suffix.lower() in (".pt", ".pt2", ".json", ".yaml", ".yml")):
        raise UserError(f"{model}: no such run directory or checkpoint file (MODEL: a registered model name, "
                        f"a run or SEARCH/pareto.json#k)")
    if kind != "name" and kwargs:
        flags = [f"--{n}" for n, v in (options or {}).items() if v is not None]  # else it came from --arg
        flag = flags[0] if flags else f"--arg {next(iter(kwargs))}"
        raise UserError(f"{model}: the architecture is fixed; {flag} applies to a registered model name only")
    if kind == "run" and (Path(model).name == "pareto.json" or (Path(model) / "search.json").is_file()):
        front = Path(model) if Path(model).name == "pareto.json" else Path(model) / "pareto.json"
        raise UserError(f"{model}: a one-shot search, not a trained run; profile a front member as {front}#k "
                        f"(k = 0-based front index)")
    if kind == "run" and Path(model).suffix.lower() == ".json":
        raise UserError(f"{model}: a JSON file, not a run or checkpoint; a DARTS genotype is profiled "
                        f"with `audionas profile darts --genotype {model} --cells N --channels C`, a "
                        f"search front member as SEARCH/pareto.json#k")
    if kind == "run":
        from audionas.train.trained_run import load_model

        if classes is not None or input_shape is not None:
            raise UserError(f"{model}: a trained run's classes and input shape are fixed; drop "
                            f"--classes/--input")
        lm = load_model(model)
        return ProfileTarget(lm.model, f"{lm.config.model} ({lm.path})", lm.input_shape, len(lm.classes), {})
    if kind == "result":
        from audionas.nas.oneshot.space import resolve_chromosome

        spec = resolve_chromosome(model, "MODEL")
        name, kwargs = spec["model"], dict(spec["model_args"])
        defaults = {"num_classes": spec["num_classes"], "input_shape": spec["input_shape"]}
    else:
        name, defaults = model, model_defaults(model)
    shape = (parse_input_shape(input_shape) if input_shape is not None
             else tuple(defaults.get("input_shape", (1, 101, 40))))
    classes = classes if classes is not None else int(defaults.get("num_classes", 12))
    if classes < 1:
        raise UserError(f"--classes: expected a positive integer, got {classes}")
    net = create_model(name, num_classes=classes, input_shape=shape, **kwargs)  # bad arguments: UserError
    label = model if name == model else f"{name} ({model})"
    return ProfileTarget(net, label, shape, classes, kwargs if name == model else {})
