"""Device choice and torch.distributed set-up: one process here, torchrun (gloo on CPU, NCCL on GPU).

Which device function to call: a run (train, DARTS search, supernet) takes `resolve_device(cfg.device,
info)` after `init_distributed()`; a one-process command (evaluate, nsga2 / random search)
`select_device(name)`; a config check that must not ask this machine (it may run elsewhere)
`check_device_name`. `parse_device` and `default_device` are their parts."""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from audionas.errors import UserError, warn

COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset), else all of them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Threads or DataLoader worker processes per CPU core here: a mistyped count (99999) crashes torch or forks
# until the memory runs out.
MAX_PER_CORE = 4


def check_threads(n: int, what: str, zero: str = "", unit: str = "threads") -> None:
    """UserError when `n` threads (or worker processes) are more than MAX_PER_CORE per CPU core here."""
    limit = MAX_PER_CORE * available_cores()
    if n > limit:
        raise UserError(f"{what}: {n} {unit} for {available_cores()} CPU core(s) here; expected at most "
                        f"{limit}{zero}")


def default_device(local_rank: int = 0) -> torch.device:
    """What `auto` means here: the local rank's GPU when there are any, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def check_device_name(requested: str | None, what: str = "config field 'device'") -> torch.device | None:
    """The device `requested` names (None for auto), without asking whether this machine has it: configs
    are checked when loaded, possibly on another machine than the one that runs them."""
    if requested in (None, "", "auto"):
        return None
    try:
        dev = torch.device(requested)
    except (RuntimeError, ValueError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise UserError(f"{what}: '{requested}' is not a device (expected auto, cpu, cuda or cuda:N)")
    return dev


def parse_device(requested: str | None, what: str = "config field 'device'") -> torch.device:
    """`auto` (or None) -> default_device(); else the named cpu / cuda / cuda:N device, if it exists here."""
    dev = check_device_name(requested, what)
    if dev is None:
        return default_device()
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{what}: '{requested}' requested, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"{what}: '{requested}': only {torch.cuda.device_count()} CUDA devices here")
    return dev


def select_device(requested: str | None, what: str = "config field 'device'") -> torch.device:
    """parse_device, made the process's current CUDA device too (one process), so code that asks torch for
    the current device (a bare "cuda", cuDNN handles) does not open a context on cuda:0."""
    dev = parse_device(requested, what)
    if dev.type == "cuda":
        if dev.index is None:  # a bare "cuda": set_device needs an index
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
    return dev


def resolve_device(requested: str, info: DistInfo) -> torch.device:
    """The device named by a config's `device` field (auto | cpu | cuda | cuda:N) for this process.

    Under torchrun every rank uses the device its process group was set up for (info.device)."""
    if requested == "auto":
        return info.device
    dev = parse_device(requested)
    if info.distributed:
        if dev.type != info.device.type:
            hide = " or hide the GPUs with CUDA_VISIBLE_DEVICES= to run on CPU" if dev.type == "cpu" else ""
            raise UserError(f"config field 'device': '{requested}' under torchrun, but the process group "
                            f"runs on {info.device.type} (use device=auto{hide})")
        return info.device
    return select_device(requested)


def autotune_convolutions(device: torch.device) -> None:
    """On a GPU, let cuDNN time its convolution algorithms once per input shape and keep the fastest: a run's
    shapes are fixed (fixed-length features; a supernet's paths, a finite set).
    Choice: on; a GPU run is already not bit-identical on resume (README): its nondeterminism costs none."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def init_distributed() -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE") or 1)  # set but empty: unset, as cli.py reads it
    local_rank = int(os.environ.get("LOCAL_RANK") or 0)
    device = default_device(local_rank)
    if world <= 1:
        return DistInfo(device=device)
    if dist.is_initialized() and dist.get_backend() == "gloo":  # a caller's own CPU group: its ranks on CPU
        device = torch.device("cpu")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    # A launcher giving each rank its own GPU (CUDA_VISIBLE_DEVICES of one device, e.g. SLURM's) shows each
    # rank one GPU; torchrun (TORCHELASTIC_RUN_ID) gives every rank the same environment, so under it one
    # visible GPU is one GPU for all of them.
    per_rank_gpu = (len([v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]) == 1
                    and "TORCHELASTIC_RUN_ID" not in os.environ)
    if device.type == "cuda" and not per_rank_gpu and local_world > torch.cuda.device_count():
        # Two ranks on one GPU fail in NCCL's first collective ("Duplicate GPU detected").
        raise UserError(f"torchrun: {local_world} processes on this machine but {torch.cuda.device_count()} "
                        f"GPU(s); expected --nproc-per-node at most the number of GPUs")
    # A 1x1 conv weight's gradient may come out with channels_last strides while the weight (and so DDP's
    # bucket view) has contiguous ones: they differ only in size-1 dims, i.e. the same memory order, so DDP's
    # "Grad strides do not match bucket view strides" warning for it is noise. Other mismatches still warn.
    warnings.filterwarnings("ignore", message=r"(?s)Grad strides do not match bucket view strides.*"
                                              r"grad\.sizes\(\) = \[\d+, \d+, 1, 1\]")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # Choice: a 2-hour collective timeout (NCCL's default is 10 min): rank 0 evaluates and writes
        # checkpoints alone while the other ranks wait at a barrier, which at paper scale can take longer.
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def unused_parameters(model: torch.nn.Module, example: torch.Tensor) -> list[str]:
    """The names of `model`'s trainable parameters that a training-mode forward pass of `example` (a batch
    as the model gets them) leaves out of the loss (a hand-written DARTS genotype whose cell output skips a
    node). Probed on a copy, RNG states kept: the model, its batch-norm statistics and the run's random
    streams stay as they were."""
    import copy

    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[example.device] if example.device.type == "cuda" else []):
        out = probe(example)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    loss = sum(o.float().sum() for o in outs if torch.is_tensor(o) and o.is_floating_point())
    named = [(n, p) for n, p in probe.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    return [n for (n, _), g in zip(named, grads) if g is None]


def distributed_model(model: torch.nn.Module, example: torch.Tensor, name: str
                      ) -> torch.nn.parallel.DistributedDataParallel:
    """`model` in DistributedDataParallel. DDP fails at the second step when a parameter gets no gradient, so
    a model leaving some out (probed once: `unused_parameters`) has DDP look for them every step, slower;
    one warning says which."""
    unused, device = unused_parameters(model, example), example.device
    if unused:
        warn(f"model '{name}': {len(unused)} parameter tensor(s) get no gradient ({', '.join(unused[:3])}"
             f"{', ...' if len(unused) > 3 else ''}); under torchrun every step then looks for them")
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None, find_unused_parameters=bool(unused))


def barrier() -> None:
    """Wait for every process of a torchrun job (nothing without one)."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl":  # name the rank's GPU: NCCL warns when it has to guess it
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Average a tensor over ranks in place (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _split_like(flat: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views of `flat` (the tensors concatenated flat) shaped as each of `tensors`, in order."""
    return [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


def sync_mean(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Average a list of tensors over ranks with one all_reduce (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    return _split_like(flat, tensors)


def average_gradients(params) -> None:
    """Replace every parameter's .grad by its mean over ranks, like DDP: a gradient missing on some ranks
    counts as zero there; one missing on every rank stays None, so the optimizer skips that parameter as it
    would in one process (momentum and weight decay would otherwise move it)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    # One all_reduce: the gradients (a missing one as zeros), then which ranks had each (mean > 0: any).
    has = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    *grads, had = sync_mean([p.grad if p.grad is not None else torch.zeros_like(p) for p in params] + [has])
    for p, g, h in zip(params, grads, had.tolist()):
        p.grad = g if h > 0 else None


def gather_on_main(obj) -> list:
    """Every rank's `obj` in rank order, on rank 0 (an empty list elsewhere; [obj] in a single process).
    Our own small records between our own processes: torch pickles them on the way."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out or []


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Give every rank rank `src`'s buffers (BN running statistics), as DDP's broadcast_buffers does: one
    broadcast per dtype of all buffers flattened (a supernet has hundreds; one call each is slow on NCCL)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        groups: dict[torch.dtype, list[torch.Tensor]] = {}
        for b in module.buffers():
            groups.setdefault(b.dtype, []).append(b)
        for bufs in groups.values():
            flat = torch.cat([b.reshape(-1) for b in bufs])
            dist.broadcast(flat, src)
            for b, part in zip(bufs, _split_like(flat, bufs)):
                b.copy_(part)


def cleanup() -> None:
    """End the process group, if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
