"""The DARTS search loop: alternate alpha steps (val half) and weight steps (train half), exact resume, DDP.

Each epoch appends one line to RUN/epochs.jsonl (losses, accuracies, lr, the current genotype and its normal
cell's skip_connect count, peak memory),
writes RUN/alphas/epochNNN.json (softmaxed alphas), RUN/genotype_last.json (this epoch's cell) and
RUN/genotype.json (the cell of the epoch with the highest val_acc so far, KWS paper section 3.1; the last
epoch's when it was not scored, eval_each_epoch=false), and checkpoints RUN/checkpoints/last.pt (weights,
alphas, both optimisers, scheduler, RNG states, epoch, step). Running the same command again resumes. At the
end it writes RUN/summary.json (which epoch's cell genotype.json is), draws that cell as
RUN/cell_{normal,reduce}.{png,svg}, and warns when it shows the known collapse to skip_connect.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from audionas.config import check_config, to_dict
from audionas.data import RATIO_SPLITS, DataBundle, with_absolute_paths
from audionas.errors import UserError, warn
from audionas.nas.darts.architect import Architect
from audionas.nas.darts.config import DartsSearchConfig
from audionas.nas.darts.genotype import Genotype
from audionas.nas.darts.layout import reduction_cells
from audionas.nas.darts.operations import resolve_op_set
from audionas.nas.darts.search_model import SearchNetwork
from audionas.train import metrics as M
from audionas.train.epoch_sums import EpochSums
from audionas.train.predict import predict
from audionas.train.run_start import start_run, warn_if_run_too_short
from audionas.utils.atomic import write_json_atomic
from audionas.utils.dist import (
    DistInfo,
    average_gradients,
    barrier,
    check_threads,
)
from audionas.utils.jsonio import accuracy_field, read_json_lines
from audionas.utils.progress import epoch_bar
from audionas.utils.rng import seed_rank
from audionas.utils.run_checkpoint import RunCheckpoint, data_entries
from audionas.utils.rundir import run_folder_job
from audionas.utils.runlog import check_diverged, log_epoch, resume_line, tensorboard_writer, trim_epoch_lines

# Fields that may change between a run and its resumption (they change neither data nor weights).
RESUME_FREE = ("data.root", "data.cache", "data.num_workers", "data.wave_cache_mb", "data.eval_batch_size",
               "device", "rank_files", "eval_each_epoch", "threads", "checkpoint_every_steps")
VAL_SEED_OFFSET = 7919  # Choice: the alpha half is shuffled with its own seed stream, (seed + 7919, epoch)
# The epoch sums: train loss, correct, count (weight steps), alpha loss, steps (alpha steps).
_SUMS = ("loss_sum", "correct", "count", "alpha_loss_sum", "steps")

# Choice: the search's val_acc only ranks its epochs (for genotype.json), so it warns below 30 steps (0.9^30:
# 4% of the initial BN statistics left) rather than training's 50; the demo's small search runs 36.
MIN_SEARCH_BN_STEPS = 30


def peak_memory_mb(device: torch.device) -> dict:
    """CUDA: peak allocated tensor memory since the last reset. CPU: the process's peak resident set size
    (ru_maxrss: a high-water mark of the whole process, data and Python included, never reset)."""
    if device.type == "cuda":
        return {"peak_cuda_allocated_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    return {"process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def alphas_record(model: SearchNetwork, epoch: int) -> dict:
    a = model.softmaxed_alphas()
    return {"epoch": epoch, "primitives": model.primitives,
            "normal": a["normal"].tolist(), "reduce": a["reduce"].tolist(),
            "alphas_normal": model.alphas_normal.detach().cpu().tolist(),
            "alphas_reduce": model.alphas_reduce.detach().cpu().tolist()}


def chosen_epoch(records: list[dict]) -> dict | None:
    """The epoch record whose genotype is the search's result: the highest val_acc, or the last epoch when it
    was not scored (eval_each_epoch=false). Every val_acc present is a fraction (write_result checks them).

    Choice: the records decide, not the flag of the latest command: eval_each_epoch may change on resume, and
    a rerun of a finished search with eval_each_epoch=false scores nothing, so it must not change the result.
    """
    if not records:
        return None
    if "val_acc" not in records[-1]:
        return records[-1]
    scored = [r for r in records if "val_acc" in r]
    # Choice: val_acc ties (common on small validation sets) go to the lower val_loss, then to the later
    # epoch (its alphas trained longer); a missing or non-finite val_loss ranks last.
    def key(r: dict) -> tuple[float, float]:
        loss = r.get("val_loss")
        finite = isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss)
        return r["val_acc"], -loss if finite else -math.inf

    return max(reversed(scored), key=key)


def check_epoch_lines(path: Path, records: list[dict], done_epochs: int) -> None:
    """UserError when epochs.jsonl (its `records`) lacks an epoch the checkpoint has done: genotype.json is
    chosen from its lines (write_result), so a deleted line or file would silently choose from the rest."""
    have = [r.get("epoch") for r in records]
    if have != list(range(1, done_epochs + 1)):
        raise UserError(f"{path}: holds epoch(s) {have or 'none'}, expected 1..{done_epochs} as the "
                        f"checkpoint has done (the genotype is chosen from them); restore it, or choose "
                        f"another --out")


def write_result(run: Path, last: Genotype) -> tuple[Genotype, dict]:
    """genotype_last.json = `last`; genotype.json = the chosen epoch's genotype (from epochs.jsonl)."""
    path = run / "epochs.jsonl"
    records = read_json_lines(path, "one JSON object per epoch", drop_partial_last=True) \
        if path.is_file() else []
    for r in records:  # an edited val_acc of 2.0 or NaN would choose, or unchoose, its epoch
        if "val_acc" in r:
            accuracy_field(f"{path} epoch {r.get('epoch')}", "val_acc", r["val_acc"])
    last.save(run / "genotype_last.json")
    rec = chosen_epoch(records)
    geno = last
    if rec:
        where = f"{path} epoch {rec.get('epoch')} field 'genotype'"
        geno = Genotype.from_dict(rec.get("genotype"), where=where)
    geno.save(run / "genotype.json")
    rule = ("highest val_acc (ties: lower val_loss, then later epoch)" if rec and "val_acc" in rec
            else "last epoch (not scored: eval_each_epoch=false)")
    return geno, {"genotype_epoch": rec["epoch"] if rec else None, "rule": rule,
                  "val_acc": rec.get("val_acc") if rec else None, "epochs": len(records)}


# Choice: DARTS+ (Liang et al. 2019) stops a search once its normal cell has 2 skip_connects.
COLLAPSE_SKIPS = 2


def warn_if_collapsed(geno: Genotype, run: Path) -> None:
    """Warn when the chosen normal cell shows DARTS's known collapse toward parameter-free skip_connects."""
    n = geno.normal_skips()
    if n >= COLLAPSE_SKIPS:
        warn(f"{run}: the chosen normal cell has {n} of its {len(geno.normal)} edges as "
             f"skip_connect, DARTS's known collapse toward parameter-free cells (DARTS+ stops a "
             f"search at {COLLAPSE_SKIPS}); epochs.jsonl's skip_connect_normal shows when it began: "
             f"fewer epochs or an earlier epoch's cell may do better")


def warn_if_one_cell_kind(cfg: DartsSearchConfig) -> None:
    """Warn when the layout has only normal or only reduction cells: the other kind's alphas never train,
    yet genotype.json holds a cell of that kind too (their initial noise)."""
    kinds = set(reduction_cells(cfg.cells, cfg.layout))
    if len(kinds) == 1:
        has, lacks, key = (("reduction", "normal", "normal") if True in kinds
                           else ("normal", "reduction", "reduce"))
        warn(f"config field 'layout': all {cfg.cells} cell(s) are {has} cells (layout '{cfg.layout}'), so no "
             f"{lacks} cell is searched: genotype.json's '{key}' cell comes from untrained alphas; retrain "
             f"with {has} cells only, or search a layout with both kinds")


def build_search_model(cfg: DartsSearchConfig, num_classes: int, in_channels: int) -> SearchNetwork:
    return SearchNetwork(C=cfg.channels, num_classes=num_classes, cells=cfg.cells,
                         primitives=resolve_op_set(cfg.ops), in_channels=in_channels, steps=cfg.steps,
                         multiplier=cfg.multiplier, stem_multiplier=cfg.stem_multiplier, layout=cfg.layout)


@run_folder_job
def search(cfg: DartsSearchConfig, run_dir: str | Path, bundle: DataBundle | None = None,
           _stop_after_steps: int | None = None) -> Genotype | None:
    """Run (or resume) a DARTS search in `run_dir`; returns the genotype that genotype.json records (rank 0:
    the epoch chosen by the run's rule; other ranks: the last epoch's).

    `_stop_after_steps` is a test hook: return None after that many steps of this invocation (after any
    checkpoint due at that step), as if the process had been killed.
    """
    cfg = check_config(cfg, DartsSearchConfig)
    # checked here, not in validate: a resumed search may come from a bigger machine
    check_threads(cfg.threads, "config field 'threads'", " (0 = torch's default)")
    prev = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        return _search(cfg, run_dir, bundle, _stop_after_steps)
    finally:
        torch.set_num_threads(prev)


def _search(cfg: DartsSearchConfig, run_dir, bundle, _stop_after_steps) -> Genotype | None:
    cfg = replace(cfg, data=with_absolute_paths(cfg.data))  # the saved config works from any folder
    start = start_run(cfg, run_dir, RESUME_FREE, "DARTS search", bundle)
    run, info, device, bundle = start.run, start.info, start.device, start.bundle
    if bundle.val is None or len(bundle.val) == 0:
        d = cfg.data
        if d.kind == "dcase2018":
            fix = "use data.search_split=true"
        elif d.split in RATIO_SPLITS:  # already a ratio split: its validation share is 0
            fix = (f"data.ratios {list(d.ratios)} leaves it no clips; give it a share, e.g. "
                   f"data.ratios=[0.4,0.4,0.2]")
        else:
            fix = "use data.split=ratio"
        raise UserError(f"data: the search needs a validation split (the alpha half); {fix}")
    warn_if_one_cell_kind(cfg)
    model = build_search_model(cfg, len(bundle.classes), int(bundle.input_shape[0])).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if info.distributed:
        for t in model.state_dict().values():
            dist.broadcast(t, 0)
    frontend, augment = start.frontend, start.augment
    # quark0/darts: the alpha half gets the training transform too; val_acc scores bundle.val, unaugmented.
    alpha_ds = bundle.val_augmented if bundle.val_augmented is not None else bundle.val
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum,
                            weight_decay=cfg.w_weight_decay)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=cfg.a_lr, betas=tuple(cfg.a_betas),
                             weight_decay=cfg.a_weight_decay)
    # quark0/darts: cosine annealing per epoch from w_lr to w_lr_min.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, cfg.epochs, eta_min=cfg.w_lr_min)
    architect = Architect(model, w_opt, a_opt, cfg.w_momentum, cfg.w_weight_decay, unrolled=cfg.unrolled)

    from audionas.train.batches import batch_loader, epoch_batches, epoch_seed, model_input

    bs = cfg.data.batch_size
    spe = start.steps_per_epoch(cfg)
    start_epoch, first, stats = 0, 0, None
    seed_rank(cfg.seed, info.rank)
    last = RunCheckpoint(run / "checkpoints" / "last.pt", model,
                         {"w_optimizer": w_opt, "a_optimizer": a_opt, "scheduler": sched}, device=device,
                         steps_per_epoch=spe, world_size=info.world_size, rank=info.rank,
                         fixed={"config": to_dict(cfg), "primitives": model.primitives,
                                **data_entries(bundle)})
    ck = last.restore(("w_optimizer", "a_optimizer", "scheduler", "rng", "epoch", "step"))
    start.write_config(cfg)  # after restore's checks: a refused resume leaves config.yaml as it was
    if ck is not None:
        start_epoch, first, stats = int(ck["epoch"]), int(ck["step"]), _saved_sums(ck)
        if info.is_main:
            print(resume_line(run, start_epoch * spe + first, spe, cfg.epochs, "writing its results again"),
                  file=sys.stderr)
    if info.is_main:  # also without a checkpoint: a kill before the first one may have left an epoch line
        kept = trim_epoch_lines(run / "epochs.jsonl", start_epoch)
        check_epoch_lines(run / "epochs.jsonl", kept, start_epoch)
        if start_epoch < cfg.epochs:  # its validation (and genotype.json's choice) uses eval-mode BN
            warn_if_run_too_short(model, cfg, spe, len(bundle.train), info.world_size, MIN_SEARCH_BN_STEPS)

    # x is a 1-based epoch: this start logs from start_epoch + 1 on.
    with tensorboard_writer(run, info.is_main, start_epoch + 1) as writer:
        done_steps = 0
        weights = model.weight_parameters()
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for ds in (bundle.train, alpha_ds):
                if hasattr(ds, "set_epoch"):
                    ds.set_epoch(epoch)
            lr = sched.get_last_lr()[0]
            tb = epoch_batches(len(bundle.train), bs, cfg.seed, epoch, info.rank, info.world_size,
                               cfg.max_steps_per_epoch)
            vb = epoch_batches(len(alpha_ds), bs, cfg.seed + VAL_SEED_OFFSET, epoch, info.rank,
                               info.world_size)
            if not vb:
                raise UserError("data: the validation split is smaller than one batch")
            vb = [vb[i % len(vb)] for i in range(len(tb))]  # Choice: cycle the val half if it is shorter
            tl = batch_loader(bundle.train, tb[first:], cfg.data.num_workers, device,
                              epoch_seed(cfg.seed, epoch))
            vl = batch_loader(alpha_ds, vb[first:], cfg.data.num_workers, device,
                              epoch_seed(cfg.seed + VAL_SEED_OFFSET, epoch))
            sums = EpochSums(_SUMS, device, stats if first else None)
            model.train()
            bar = epoch_bar(zip(tl, vl), spe, first, f"search {epoch + 1}/{cfg.epochs}", info.is_main)
            for step, ((xt, yt), (xv, yv)) in enumerate(bar, start=first):
                ft, yt = model_input(xt, yt, device, frontend, augment, cfg.channels_last)
                fv, yv = model_input(xv, yv, device, frontend, augment, cfg.channels_last)
                a_loss = architect.step(ft, yt, fv, yv, lr)
                w_opt.zero_grad(set_to_none=True)
                logits = model(ft)
                loss = F.cross_entropy(logits, yt)
                loss.backward()
                if info.distributed:
                    average_gradients(weights)
                # 0 = off, as optim.grad_clip (clip_grad_norm_ to 0 would zero every grad)
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(weights, cfg.grad_clip)
                w_opt.step()
                sums.add(loss_sum=loss.detach().double() * len(yt), correct=(logits.argmax(1) == yt).sum(),
                         count=len(yt), alpha_loss_sum=a_loss, steps=1)
                done_steps += 1
                every = cfg.checkpoint_every_steps
                if every and (step + 1) % every == 0 and step + 1 < spe:
                    last.save(epoch=epoch, step=step + 1, epoch_stats=sums.partial())
                if _stop_after_steps is not None and done_steps >= _stop_after_steps:
                    bar.close()
                    return None
            bar.close()
            first = 0
            sched.step()
            t = sums.total()
            geno = model.genotype()
            record = {"epoch": epoch + 1, "lr": lr, "train_loss": t["loss_sum"] / t["count"],
                      "train_acc": t["correct"] / t["count"], "alpha_loss": t["alpha_loss_sum"] / t["steps"]}
            check_diverged(run, epoch + 1, record, "lower w_lr or a_lr")
            if cfg.eval_each_epoch and info.is_main:
                record.update(evaluate(model, frontend, bundle.val, device, cfg))
            record.update(peak_memory_mb(device))
            record["time"] = round(time.time() - t0, 3)
            record["skip_connect_normal"] = geno.normal_skips()
            record["genotype"] = geno.to_dict()
            if info.is_main:
                write_json_atomic(alphas_record(model, epoch + 1),
                                  run / "alphas" / f"epoch{epoch + 1:03d}.json")
                log_epoch(run / "epochs.jsonl", record, writer)
                write_result(run, geno)
            last.save(epoch=epoch + 1, step=0, epoch_stats=None)
            barrier()
    return finish(cfg, run, model, info)


def _saved_sums(ck: dict) -> dict | None:
    """The epoch's running sums a mid-epoch checkpoint saved: `epoch_stats`, as training's; older checkpoints
    hold them as a list under stats["acc"], which a resume still reads."""
    if isinstance(ck.get("epoch_stats"), dict):
        return ck["epoch_stats"]
    old = ck.get("stats")
    return dict(zip(_SUMS, old["acc"], strict=True)) if isinstance(old, dict) and old.get("acc") else None


def evaluate(model: SearchNetwork, frontend: nn.Module, ds, device: torch.device,
             cfg: DartsSearchConfig) -> dict:
    """Loss and accuracy of the search network (eval-mode BN) on the val half."""
    probs, labels, loss = predict(model, frontend, ds, device, cfg.data.eval_batch_size, cfg.data.num_workers,
                                  cfg.channels_last)
    return {"val_loss": loss, "val_acc": M.accuracy(probs, labels)}


def finish(cfg: DartsSearchConfig, run: Path, model: SearchNetwork, info: DistInfo) -> Genotype:
    """The result (rank 0: the chosen epoch's genotype; other ranks: the last one, which ranks are checked to
    agree on), summary.json and the cell drawings."""
    geno = model.genotype()
    if info.distributed:
        # on the alphas' device: an NCCL process group has no backend for CPU tensors
        mine = torch.cat([a.detach().reshape(-1).double() for a in model.arch_parameters()])
        gathered = [torch.zeros_like(mine) for _ in range(info.world_size)]
        dist.all_gather(gathered, mine)
        if not all(torch.equal(g, mine) for g in gathered):
            raise RuntimeError("DARTS search: alphas differ between ranks")
    if cfg.rank_files:
        geno.save(run / f"genotype.rank{info.rank}.json")
    if info.is_main:
        from audionas.nas.darts.plot import plot_genotype

        write_json_atomic(alphas_record(model, cfg.epochs), run / "alphas.json")
        geno, summary = write_result(run, geno)
        summary["skip_connect_normal"] = geno.normal_skips()
        write_json_atomic(summary, run / "summary.json")
        warn_if_collapsed(geno, run)
        plot_genotype(geno, run)
        print(f"genotype (epoch {summary['genotype_epoch']}, {summary['rule']}): "
              f"{json.dumps(geno.to_dict())}", file=sys.stderr)
    barrier()
    return geno
