"""The training loop: seeded per-epoch sampling, exact resume, DDP, EMA, TensorBoard, metrics.jsonl.

Run directory layout: `config.yaml` (resolved), `checkpoints/last.pt` (+ `best.pt`), `final.pt` (the last
weights, EMA if enabled, or with `test_weights: best` those of best.pt; evaluated on the test split),
`metrics.jsonl`, `test_metrics.json`, `tb/`.
Resuming (the same command again) continues from `last.pt` and ends with bit-identical weights to an
uninterrupted run on CPU: the batch order is a pure function of (seed, epoch), the lr a pure function of the
step, datasets draw augmentation randomness from (seed, epoch, index), and the RNG states are restored.
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

from audionas.config import check_config, to_dict
from audionas.data import DataBundle, clips_digest, scoring_view, with_absolute_paths
from audionas.errors import UserError, warn
from audionas.train import metrics as M
from audionas.train.batches import epoch_loader, model_input
from audionas.train.config import RESUME_FREE_FIELDS, TrainConfig
from audionas.train.epoch_sums import EpochSums
from audionas.train.metrics import asc_scores
from audionas.train.optim import ModelEMA, build_optimizer, build_scheduler, param_groups
from audionas.train.plots import confusion_png
from audionas.train.predict import predict
from audionas.train.run_start import start_run, warn_if_run_too_short
from audionas.utils.atomic import atomic_write_all, json_writer
from audionas.utils.checkpoint import load_checkpoint, save_atomic
from audionas.utils.dist import DistInfo, barrier, distributed_model
from audionas.utils.jsonio import is_json_int, read_json
from audionas.utils.progress import epoch_bar
from audionas.utils.rng import seed_rank
from audionas.utils.run_checkpoint import RunCheckpoint, data_entries
from audionas.utils.rundir import run_folder_job
from audionas.utils.runlog import (
    check_diverged,
    log_epoch,
    log_step,
    resume_line,
    tensorboard_writer,
    trim_epoch_lines,
)


def _forward_loss(model, feats, y, cfg: TrainConfig):
    out = model(feats)
    if isinstance(out, (tuple, list)):
        logits, aux = out[0], out[1]
    else:
        logits, aux = out, None
    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
    if aux is not None and cfg.aux_weight > 0:
        loss = loss + cfg.aux_weight * F.cross_entropy(aux, y, label_smoothing=cfg.label_smoothing)
    return logits, loss


@run_folder_job
def train(cfg: TrainConfig, run_dir: str | Path, bundle: DataBundle | None = None,
          _stop_after_steps: int | None = None) -> dict:
    """Train (or resume) the run in `run_dir`; returns the final test report (empty if no test split).

    `bundle` replaces `build_data(cfg.data)` (tests, callers with their own data). `_stop_after_steps` is a
    test hook: return right after that many global steps without saving anything, as if the process died.
    """
    from audionas.models import create_model, freeze_model_args
    from audionas.models.registry import check_time_axis

    cfg = check_config(cfg, TrainConfig)
    # a self-contained config: the genotype inline, absolute data paths
    cfg = replace(cfg, model_args=freeze_model_args(cfg.model, cfg.model_args),
                  data=with_absolute_paths(cfg.data))
    start = start_run(cfg, run_dir, RESUME_FREE_FIELDS, "run", bundle)
    run, info, device, bundle = start.run, start.info, start.device, start.bundle
    frontend, augment = start.frontend, start.augment
    if bundle.test is None and "test" in bundle.why_missing and info.is_main:
        warn(f"no test split: final.pt will not be scored ({bundle.why_missing['test']})")
    eval_ds = scoring_view({"val": bundle.val, "test": bundle.test, "train": bundle.train}[cfg.eval_split])
    if (eval_ds is None or len(eval_ds) == 0) and info.is_main:  # no scores and no best.pt: say so
        why = bundle.why_missing.get(cfg.eval_split, "empty")
        best = " and save_best keeps no best.pt" if cfg.save_best else ""
        warn(f"config field 'eval_split': the data has no '{cfg.eval_split}' split ({why}): epochs "
             f"are not scored{best}")
    from audionas.models.channels_last import optimize_for_training

    model = create_model(cfg.model, num_classes=len(bundle.classes), input_shape=tuple(bundle.input_shape),
                         **cfg.model_args).to(device)
    check_time_axis(getattr(model, "time_axis", None), bundle.time_axis)
    if cfg.channels_last:
        model = optimize_for_training(model, accurate_bn=cfg.accurate_bn)
    n_train = len(bundle.train)
    bs = cfg.data.batch_size
    spe = start.steps_per_epoch(cfg)
    total_steps = spe * cfg.epochs
    optimizer = build_optimizer(param_groups(model, cfg.optim), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, spe, cfg.epochs)
    ema = ModelEMA(model, cfg.optim.ema_decay) if cfg.optim.ema_decay > 0 else None
    step, best, stats = 0, -1.0, None
    seed_rank(cfg.seed, info.rank)
    last = RunCheckpoint(run / "checkpoints" / "last.pt", model,
                         {"optimizer": optimizer, "scheduler": scheduler, "ema": ema}, device=device,
                         steps_per_epoch=spe, world_size=info.world_size, rank=info.rank,
                         fixed={"config": to_dict(cfg), **data_entries(bundle)})
    ck = last.restore(("optimizer", "scheduler", "step", "rng"))  # and "ema" when on
    start.write_config(cfg)  # after restore's checks: a refused resume leaves config.yaml as it was
    if ck is not None:
        step, best, stats = int(ck["step"]), float(ck.get("best", -1.0)), ck.get("epoch_stats")
        if info.is_main:
            print(resume_line(run, step, spe, cfg.epochs, "writing its results again"),
                  file=sys.stderr)
    if info.is_main:  # also without a checkpoint: a kill before the first one may have left an epoch line
        trim_epoch_lines(run / "metrics.jsonl", step // spe)
        if step < total_steps:
            warn_if_run_too_short(model, cfg, spe, n_train, info.world_size)
    if step < total_steps and hasattr(bundle.test, "check_readable"):
        # Every rank checks, so all stop together. The header check at data build time misses a damaged
        # body or NaN samples, and the test split is first read after the last epoch.
        bundle.test.check_readable("test clips")

    raw = model
    trained = step < total_steps  # this start trains steps (not the rerun of a finished run)
    if info.distributed and trained:  # a finished run's rerun trains no step: no DDP, no probe
        example = model_input(torch.zeros(2, *bundle.input_shape), torch.zeros(2), device, nn.Identity(),
                              channels_last=cfg.channels_last)[0]
        model = distributed_model(model, example, cfg.model)
    # The last epoch's scoring of the test split (eval_split=test): finish reuses it (the same weights).
    scored_last = None
    # Steps are the x of every scalar (epoch records too): this start logs from step + 1 on.
    with tensorboard_writer(run, info.is_main, step + 1) as writer:
        start_epoch = step // spe
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()
            first_batch = step - epoch * spe
            if first_batch == 0:
                stats = None
            if hasattr(raw, "set_progress"):
                raw.set_progress(epoch / cfg.epochs)
            loader = epoch_loader(bundle.train, bs, cfg.seed, epoch, info, device, cfg.data.num_workers,
                                  cfg.max_steps_per_epoch, first_batch)
            sums = EpochSums(("loss_sum", "correct", "count"), device, stats)
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            bar = epoch_bar(loader, spe, first_batch, f"epoch {epoch + 1}/{cfg.epochs}", info.is_main)
            for x, y in bar:
                feats, y = model_input(x, y, device, frontend, augment, cfg.channels_last)
                logits, loss = _forward_loss(model, feats, y, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.optim.grad_clip > 0:
                    nn.utils.clip_grad_norm_(raw.parameters(), cfg.optim.grad_clip)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update(raw)
                step += 1
                with torch.no_grad():
                    sums.add(loss_sum=loss.detach().double() * len(y),
                             correct=(logits.argmax(1) == y).sum().double(), count=len(y))
                if info.is_main and step % cfg.log_every == 0:
                    log_step(writer, bar, "train", float(loss.detach()), lr, step)
                if _stop_after_steps is not None and step >= _stop_after_steps:
                    bar.close()
                    return {}
                if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0 and step % spe:
                    last.save(epoch=step // spe, step=step, best=best, epoch_stats=sums.partial())
            bar.close()

            t = sums.total()
            # lr = the rate of this epoch's last update.
            record = {"epoch": epoch + 1, "step": step, "lr": lr, "train_loss": t["loss_sum"] / t["count"],
                      "train_acc": t["correct"] / t["count"]}
            check_diverged(run, epoch + 1, record, "lower optim.lr or set optim.grad_clip")
            if info.is_main and eval_ds is not None and len(eval_ds) > 0:
                # Choice: rank 0 evaluates the whole split with the unwrapped (or EMA) model; others wait.
                probs, labels, eval_loss = predict(ema.module if ema is not None else raw, frontend, eval_ds,
                                                   device, cfg.data.eval_batch_size, cfg.data.num_workers,
                                                   cfg.channels_last)
                # The training split's scores: train_eval_*, beside the epoch's running train_loss, train_acc.
                sp = "train_eval" if cfg.eval_split == "train" else cfg.eval_split
                if sp == "test" and epoch + 1 == cfg.epochs:
                    scored_last = probs, labels, eval_loss
                # {sp}_macro_f1 pools every item; DCASE adds the paper's per-channel F1 and the official one.
                record.update({f"{sp}_loss": eval_loss, f"{sp}_acc": M.accuracy(probs, labels),
                               f"{sp}_macro_f1": M.macro_f1(probs, labels),
                               **{f"{sp}_{k}": v for k, v in asc_scores(probs, labels, eval_ds).items()}})
                if cfg.save_best and record[f"{sp}_acc"] > best:
                    best = record[f"{sp}_acc"]
                    save_atomic(_weights_only(ema.module if ema is not None else raw, last.fixed, step, spe),
                                run / "checkpoints" / "best.pt")
            record["time"] = round(time.time() - t0, 3)
            if info.is_main:
                log_epoch(run / "metrics.jsonl", record, writer)
            last.save(epoch=step // spe, step=step, best=best, epoch_stats=None)
            barrier()
        # a finished run's rerun trains nothing: its test scores are in tb/ already (a second point otherwise)
        return finish(cfg, run, raw, ema, bundle, frontend, device, info, step, spe, last.fixed, scored_last,
                      writer if trained else None)


def _warn_if_test_split_changed(path: Path, digest: str | None, n: int) -> None:
    """A rerun of a finished run scores its test split again: say so when it is not the split the earlier
    test_metrics.json scored (clips added to or removed from the data since); the score is of the new one."""
    try:
        old = read_json(path, "a run's test metrics") if path.is_file() else {}
    except UserError:
        return  # unreadable: it is replaced
    before = old.get("test_clips_sha1")
    if digest and isinstance(before, str) and before != digest:
        counts = f"{old['n']} -> {n} clips" if is_json_int(old.get("n")) else f"now {n} clips"
        warn(f"{path}: the test split differs from the one it scored ({counts}): the data changed since; "
             f"the score written now is of the new split")


def _weights_only(model: nn.Module, fixed: dict, step: int, spe: int) -> dict:
    """The weights with the run's `fixed` entries (config and data entries, computed once per start)."""
    return {"model": model.state_dict(), **fixed, "step": step, "epoch": step // spe}


def finish(cfg, run: Path, raw, ema, bundle: DataBundle, frontend, device, info: DistInfo, step: int,
           spe: int, fixed: dict, scored_last: tuple | None = None, writer=None) -> dict:
    """Save final.pt (the evaluated weights: the last, EMA if enabled, or best.pt's with test_weights=best)
    and score the test split with them. `scored_last`: the last epoch's (probs, labels, loss) on the test
    split, the same scoring of the same weights when final.pt holds the last ones: not computed again.
    `writer`: the run's TensorBoard writer; it gets the test scores as `final/test_*` at final.pt's step."""
    report: dict = {}
    eval_model = ema.module if ema is not None else raw
    final = _weights_only(eval_model, fixed, step, spe)
    checksums = None
    if info.distributed:
        # A cheap check that DDP kept the replicas identical: one parameter checksum per rank.
        mine = torch.stack([p.detach().double().sum() for p in raw.parameters()]).sum().reshape(1)
        sums = [torch.zeros(1, dtype=torch.float64, device=mine.device) for _ in range(info.world_size)]
        torch.distributed.all_gather(sums, mine)
        checksums = [float(s) for s in sums]
    best_path = run / "checkpoints" / "best.pt"
    if cfg.test_weights == "best" and info.is_main:  # after the checksums: they compare the trained replicas
        if best_path.is_file():  # its weights and step; the config and data entries of this start
            best = load_checkpoint(best_path)
            eval_model.load_state_dict(best["model"])
            final = {**_weights_only(eval_model, fixed, int(best["step"]), spe), "weights": "best"}
        else:  # eval_split had no clips, so no epoch was scored
            warn(f"test_weights=best: no {best_path} (no epoch was scored on '{cfg.eval_split}'); "
                 f"final.pt holds the last weights")
    if checksums is not None:
        final["rank_checksums"] = checksums
    if info.is_main:
        save_atomic(final, run / "final.pt")
        if bundle.test is not None and len(bundle.test) > 0:
            # The papers evaluate the last checkpoint (test_weights=last); TC-ResNet's script its best (best).
            if scored_last is not None and final.get("weights", "last") == "last":
                probs, labels, loss = scored_last
            else:
                dcfg = cfg.data
                probs, labels, loss = predict(eval_model, frontend, bundle.test, device, dcfg.eval_batch_size,
                                              dcfg.num_workers, cfg.channels_last)
            report = M.classification_report(probs, labels, list(bundle.classes))
            report.update({"split": "test", "loss": loss, "checkpoint": str(run / "final.pt"),
                           "weights": final.get("weights", "last"), "epoch": final["epoch"],
                           **({"split_rule": bundle.split_rule} if bundle.split_rule else {}),
                           **({"test_clips_sha1": digest} if (digest := clips_digest(bundle.test)) else {}),
                           **asc_scores(probs, labels, bundle.test)})
            png_path, json_path = run / "confusion_test.png", run / "test_metrics.json"
            png = confusion_png(np.asarray(report["confusion"]), list(bundle.classes), png_path,
                                title=f"test: acc {100 * report['accuracy']:.2f}%")
            _warn_if_test_split_changed(json_path, digest, len(bundle.test))
            atomic_write_all({png_path: png, json_path: json_writer(report)})  # both or neither
            if writer is not None:
                for key in ("accuracy", "macro_f1", "loss", "paper_f1", "official_f1"):
                    if key in report:
                        writer.add_scalar(f"final/test_{'acc' if key == 'accuracy' else key}", report[key],
                                          final["step"])
            line = f"test accuracy {100 * report['accuracy']:.2f}%  macro-F1 {100 * report['macro_f1']:.2f}%"
            if "paper_f1" in report:
                line += (f"  paper F1 {100 * report['paper_f1']:.2f}%  "
                         f"official F1 {100 * report['official_f1']:.2f}%")
            print(line, file=sys.stderr)
        else:  # the last line says so too, not only a warning scrolled away before the epochs
            print(f"no test clips: {run / 'final.pt'} is not scored", file=sys.stderr)
    barrier()
    return report


__all__ = ["train"]
