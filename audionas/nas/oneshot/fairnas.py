"""FairNAS supernet training (the ASC paper's Algorithm 1), resumable and multi-process like `audionas train`.

Per mini-batch the sampler gives its paths (FairSampler: C, one random permutation per layer; uniform: 1).
Batched (default): the paths run as one chunked pass (`Supernet.forward`), the stem once on the batch and
its output shared by every path; the loss is the sum of the per-path mean losses, so the gradient is the sum
of the single-path gradients, as Algorithm 1 accumulates them; then one optimizer step. It holds every
path's activations at once. Sequential (`batched: false`): one forward/backward pass per path accumulated,
the algorithm as written, 1/C of the memory.

Run directory: `config.yaml`, `space.json`, `checkpoints/last.pt` (model, optimizer, scheduler, RNG, sampler
state, update counts per choice block, epoch, step), `metrics.jsonl`, `tb/`. The same command resumes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from audionas.config import check_config, from_dict, to_dict
from audionas.data import DataBundle, with_absolute_paths
from audionas.errors import UserError, first_line
from audionas.models.registry import check_time_axis
from audionas.nas.oneshot.config import RESUME_FREE_FIELDS, SupernetConfig
from audionas.nas.oneshot.evaluator import evenly_spaced, fold_batchnorms
from audionas.nas.oneshot.sampler import FairSampler, UniformSampler, count_updates
from audionas.nas.oneshot.space import BUILTIN_SPACES, SearchSpace, load_space, space_mapping
from audionas.nas.oneshot.supernet import Supernet
from audionas.train import metrics as M
from audionas.train.batches import Loader, epoch_loader, model_input
from audionas.train.epoch_sums import EpochSums
from audionas.train.optim import build_optimizer, build_scheduler, param_groups
from audionas.train.run_start import start_run, warn_if_run_too_short
from audionas.utils.atomic import write_json_atomic
from audionas.utils.checkpoint import load_checkpoint, load_weights
from audionas.utils.dist import (
    average_gradients,
    barrier,
    broadcast_buffers,
)
from audionas.utils.jsonio import is_json_int
from audionas.utils.progress import epoch_bar
from audionas.utils.rng import seed_rank
from audionas.utils.run_checkpoint import RunCheckpoint, data_entries
from audionas.utils.rundir import check_config_unedited, config_kind, read_run_config, run_folder_job
from audionas.utils.runlog import (
    check_diverged,
    log_epoch,
    log_step,
    resume_line,
    tensorboard_writer,
    trim_epoch_lines,
)


def check_space_data(space: SearchSpace, bundle: DataBundle) -> None:
    """UserError when the data's feature shape is not the space's input_shape."""
    if tuple(bundle.input_shape) != tuple(space.input_shape):
        shape = ", ".join(map(str, bundle.input_shape))
        raise UserError(f"space '{space.name}': input_shape {list(space.input_shape)} but the data gives "
                        f"{list(bundle.input_shape)}; set the space's input_shape to [{shape}] "
                        f"(space.input_shape=[{shape}] for a space given inline), or another data.feature")
    # A named or file space cannot take a space.model_args override: the fix names both ways.
    check_time_axis(space.model_args.get("time_axis", "w"), bundle.time_axis, "space.model_args.time_axis",
                    "set time_axis: {axis} in the space's model_args ({field}={axis} for a space given "
                    "inline)")
    if len(bundle.classes) != space.num_classes:
        raise UserError(f"space '{space.name}': num_classes {space.num_classes} but the data has "
                        f"{len(bundle.classes)} classes (add space.num_classes={len(bundle.classes)})")


def fairnas_step(model: nn.Module, feats: torch.Tensor, y: torch.Tensor, paths: list[list[int]],
                 batched: bool = True) -> torch.Tensor:
    """Forward + backward of all paths on one batch (gradients accumulated, no optimizer step).

    Batched: one pass over the M paths; the shared stem sees the batch once (its output repeated M times).

    Returns the sum of the per-path mean losses (detached)."""
    M_ = len(paths)
    if batched:
        logits = model(feats, paths, shared_input=True)
        # mean over M*N samples x M = sum over paths of each path's mean loss
        loss = F.cross_entropy(logits, y.repeat(M_)) * M_
        loss.backward()
        return loss.detach()
    total = torch.zeros((), device=feats.device)
    for p in paths:
        loss = F.cross_entropy(model(feats, p), y)
        loss.backward()
        total += loss.detach()
    return total


def load_run_config(run: Path) -> SupernetConfig:
    """A supernet run's config.yaml (UserError when `run` is not a supernet run)."""
    path = run / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run}: not a supernet run (no config.yaml; run `audionas search supernet` first)")
    data = read_run_config(path)
    other = _other_run_kind(run, data)
    if other:
        raise UserError(f"{run}: {other}, not a supernet run; one-shot search needs a trained supernet "
                        f"(run `audionas search supernet` first)")
    try:
        return from_dict(SupernetConfig, data)
    except UserError as e:
        raise UserError(f"{path}: unreadable supernet config ({e})") from None


def _other_run_kind(run: Path, data) -> str | None:
    """'a DARTS search run' or 'a training run' when the run folder is clearly one of those, else None."""
    if not isinstance(data, dict) or "space" in data:
        return None
    kind = config_kind(data)
    if kind == "DARTS search" or (run / "genotype.json").is_file() or (run / "alphas").is_dir():
        return "a DARTS search run"
    if kind == "training run" or (run / "final.pt").is_file():
        return "a training run"
    return None


@run_folder_job
def train_supernet(cfg: SupernetConfig, run_dir: str | Path, bundle: DataBundle | None = None,
                   _stop_after_steps: int | None = None) -> dict:
    """Train (or resume) the supernet in `run_dir`; returns {step, counts, run, supernet (the module)}.

    `_stop_after_steps` is a test hook: return after that many global steps without saving, as a kill.
    """
    cfg = check_config(cfg, SupernetConfig)
    cfg = replace(cfg, data=with_absolute_paths(cfg.data))  # the saved config works from any folder
    if isinstance(cfg.space, str) and cfg.space not in BUILTIN_SPACES:
        # a space file is saved as its mapping: a resume from another folder finds it, and an edited file is
        # a changed config (named by its field) rather than weights that no longer fit
        cfg = replace(cfg, space=space_mapping(cfg.space))
    space = load_space(cfg.space)
    start = start_run(cfg, run_dir, RESUME_FREE_FIELDS, "supernet run", bundle)
    run, info, device, bundle = start.run, start.info, start.device, start.bundle
    check_space_data(space, bundle)
    if cfg.sampler == "fair":
        sampler = FairSampler(space.n_choices, cfg.seed)
    else:
        sampler = UniformSampler(space.n_choices, cfg.seed)
    model = new_supernet(space, device)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    frontend, augment = start.frontend, start.augment
    n_train, bs = len(bundle.train), cfg.data.batch_size
    spe = start.steps_per_epoch(cfg)
    optimizer = build_optimizer(param_groups(model, cfg.optim), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, spe, cfg.epochs)
    counts = torch.zeros(len(space.layers), max(space.n_choices), dtype=torch.int64)
    step, stats = 0, None
    seed_rank(cfg.seed, info.rank)
    last = RunCheckpoint(run / "checkpoints" / "last.pt", model,
                         {"optimizer": optimizer, "scheduler": scheduler, "sampler": sampler}, device=device,
                         steps_per_epoch=spe, world_size=info.world_size, rank=info.rank,
                         fixed={"config": to_dict(cfg), "space": space.to_dict(),
                                **data_entries(bundle)})
    ck = last.restore(("optimizer", "scheduler", "sampler", "counts", "step", "rng"))
    start.write_config(cfg)  # after restore's checks: a refused resume leaves config.yaml as it was
    if info.is_main:
        write_json_atomic(space.to_dict(), run / "space.json")
    if ck is not None:
        counts = ck["counts"].to(torch.int64).cpu()
        step, stats = int(ck["step"]), ck.get("epoch_stats")
        if info.is_main:
            print(resume_line(run, step, spe, cfg.epochs, "nothing to do"), file=sys.stderr)
    if info.is_main:  # also without a checkpoint: a kill before the first one may have left an epoch line
        trim_epoch_lines(run / "metrics.jsonl", step // spe)
        if step < spe * cfg.epochs:  # strict fairness: each choice block's BN sees every step
            warn_if_run_too_short(model, cfg, spe, n_train, info.world_size)
    raw = model
    # Sequential + torchrun: each backward uses one path only, which DDP's per-backward reducer cannot take;
    # the C accumulated gradients are averaged over ranks by hand after the C passes (average_gradients).
    sync_by_hand = info.distributed and not cfg.batched
    if info.distributed and cfg.batched:
        # Every choice block gets a gradient in every fair step; the uniform sampler's one path leaves the
        # other blocks unused, which DDP must be told of (else it fails at the second step).
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=cfg.sampler != "fair")

    # Steps are the x of every scalar (epoch records too): this start logs from step + 1 on.
    with tensorboard_writer(run, info.is_main, step + 1) as writer:
        for epoch in range(step // spe, cfg.epochs):
            t0 = time.time()
            first = step - epoch * spe
            if first == 0:
                stats = None
            loader = epoch_loader(bundle.train, bs, cfg.seed, epoch, info, device, cfg.data.num_workers,
                                  cfg.max_steps_per_epoch, first)
            sums = EpochSums(("loss_sum", "count"), device, stats)
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            bar = epoch_bar(loader, spe, first, f"supernet epoch {epoch + 1}/{cfg.epochs}", info.is_main)
            for x, y in bar:
                feats, y = model_input(x, y, device, frontend, augment, cfg.channels_last)
                paths = sampler.sample()
                optimizer.zero_grad(set_to_none=True)
                loss = fairnas_step(model, feats, y, paths, cfg.batched)
                if sync_by_hand:
                    average_gradients(raw.parameters())
                if cfg.optim.grad_clip > 0:
                    nn.utils.clip_grad_norm_(raw.parameters(), cfg.optim.grad_clip)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                if sync_by_hand:
                    broadcast_buffers(raw)
                count_updates(counts, paths)
                step += 1
                sums.add(loss_sum=loss.double() / len(paths) * len(y), count=len(y))
                if info.is_main and step % cfg.log_every == 0:
                    log_step(writer, bar, "supernet", float(loss) / len(paths), lr, step)
                if _stop_after_steps is not None and step >= _stop_after_steps:
                    bar.close()
                    return {}
                if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0 and step % spe:
                    last.save(counts=counts.clone(), epoch=step // spe, step=step, epoch_stats=sums.partial())
            bar.close()
            t = sums.total()
            record = {"epoch": epoch + 1, "step": step, "lr": lr, "train_loss": t["loss_sum"] / t["count"]}
            check_diverged(run, epoch + 1, record, "lower optim.lr or set optim.grad_clip")
            if info.is_main and bundle.val is not None and len(bundle.val) > 0:
                record.update(_val_paths(raw, frontend, bundle, space, cfg, device))
            record["time"] = round(time.time() - t0, 3)
            if info.is_main:
                log_epoch(run / "metrics.jsonl", record, writer)
            last.save(counts=counts.clone(), epoch=step // spe, step=step, epoch_stats=None)
            barrier()
    return {"step": step, "counts": counts.tolist(), "run": str(run), "supernet": raw}


@torch.no_grad()
def _val_paths(model: Supernet, frontend, bundle: DataBundle, space: SearchSpace, cfg: SupernetConfig,
               device, limit: int = 2048) -> dict:
    """Mean validation accuracy of a fixed fair sample of paths (eval-mode BN): a supernet health check."""
    # Choice: the monitored paths are one fixed fair sample (seed + 1) on at most 2048 validation items.
    if len(set(space.n_choices)) == 1:
        paths = FairSampler(space.n_choices, cfg.seed + 1).sample()
    else:
        paths = [[0] * len(space.layers)]
    # Loader's own generator: drawing from the global RNG, on rank 0 only, rank 0's Cutout holes would depend
    # on whether this check ran (and on how often a resume repeated it).
    loader = Loader(evenly_spaced(bundle.val, limit), batch_size=cfg.data.eval_batch_size,
                    num_workers=cfg.data.num_workers)
    net = fold_batchnorms(model)  # eval-mode BN folded, as the searches score; the model stays as it is
    preds = [[] for _ in paths]
    labels = []
    for x, y in loader:
        for m, o in enumerate(net.predict_paths(frontend(x.to(device)), paths)):
            preds[m].append(o)
        labels.append(torch.as_tensor(y))
    lab = torch.cat(labels).numpy()
    accs = [M.accuracy(torch.cat(p).numpy(), lab) for p in preds]
    return {"val_acc_mean": float(np.mean(accs)), "val_acc_max": float(np.max(accs))}


def new_supernet(space, device) -> Supernet:
    """The supernet of `space` on `device`; one that cannot be built (memory) is a UserError naming it."""
    try:
        return Supernet(space).to(device)
    except RuntimeError as e:
        raise UserError(f"space '{space.name}': its supernet cannot be built here: {first_line(e)}") from e


def load_supernet(run: str | Path, device: torch.device | str = "cpu"
                  ) -> tuple[Supernet, SupernetConfig, dict]:
    """The trained supernet of a run (checkpoints/last.pt), its config and the checkpoint."""
    run = Path(run).expanduser()
    cfg = load_run_config(run)
    path = run / "checkpoints" / "last.pt"
    ck = load_checkpoint(path)  # on the CPU: only the weights go to `device`, not the optimizer's moments
    check_config_unedited(run, cfg, ck, path, RESUME_FREE_FIELDS, "supernet run")  # its epochs: finished?
    if not isinstance(ck.get("space"), dict) or not is_json_int(ck.get("step")):
        raise UserError(f"{path}: not a supernet checkpoint (expected its 'space' mapping and 'step'; "
                        f"replaced or edited?)")
    space = load_space(ck["space"])
    model = new_supernet(space, device)
    load_weights(model, ck, "model", path, "weights do not fit the supernet of its own space (edited?)")
    model.eval()
    return model, cfg, ck
