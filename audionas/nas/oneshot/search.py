"""`audionas search nsga2|random`: evaluate candidates of a trained supernet, write history and Pareto front.

SEARCH holds `search.json` (settings, space, supernet run, BN mode, metric; counts and candidates/s at the
end), `history.jsonl` (one line per candidate, flushed), `state.json` (per-generation state for resume) and
`pareto.json` (the non-dominated set of all unique candidates, sorted by the cost: MACs, params or
latency_ms).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from audionas.config import check_config, to_dict
from audionas.errors import UserError, warn
from audionas.nas.oneshot.config import EXECUTION_FIELDS, SearchConfig, started_with
from audionas.nas.oneshot.evaluator import CandidateEvaluator, cache_features, evenly_spaced_indices
from audionas.nas.oneshot.fairnas import check_space_data, load_run_config, load_supernet
from audionas.nas.oneshot.latency import check_can_measure, latency_range, latency_table
from audionas.nas.oneshot.loop import check_resume_settings, run_search
from audionas.nas.oneshot.nsga2 import NSGA2
from audionas.nas.oneshot.random_search import RandomSearch
from audionas.train.trained_run import (
    recorded_band_frontend,
    scored_bundle,
    warn_other_split,
)
from audionas.utils.atomic import write_json_atomic
from audionas.utils.dist import select_device
from audionas.utils.jsonio import is_finite_number, is_json_int, read_json
from audionas.utils.rundir import (
    SEARCH_MARKERS,
    check_not_foreign,
    check_outside_data,
    lock_run_dir,
    run_dir_locks,
)

COST_OBJECTIVES = {"macs": "MACs (min, multiply-adds)", "params": "params (min, trainable)",
                   "latency_ms": "CPU latency (min, ms per sample, one thread, lookup table)"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def calibration_batches(dataset, frontend, device, n_batches: int, batch_size: int, seed: int) -> list:
    """Fixed training batches for BN recalibration: a seeded subset, epoch-0 augmentation, no Cutout."""
    # Choice: calibration data = training split items (seeded subset), frontend only, the same for every
    # candidate, so scores are reproducible and independent of evaluation order.
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[: n_batches * batch_size].tolist()
    x, _ = cache_features(torch.utils.data.Subset(dataset, idx), frontend, device, batch_size)
    return list(x.split(batch_size))


_FINISH_IT = "finish it first: `audionas search supernet --out {run}` resumes it"


def check_supernet_finished(run: Path) -> None:
    """UserError for a supernet run killed before its first checkpoint (what the search would score is
    untrained); a folder that is no supernet run is named as such by load_run_config."""
    load_run_config(run)
    if not (run / "checkpoints" / "last.pt").exists():
        raise UserError(f"{run}: the supernet run has no checkpoint yet (stopped in its first epoch); "
                        f"{_FINISH_IT.format(run=run)}")


MIN_VAL_ITEMS = 100  # Choice: below this a score's step (1/n) exceeds 1%, the gaps a front is made of


def _algorithm(cfg: SearchConfig, space, out: Path):
    """The search algorithm, its generations, budget (candidates and the flag that asked for them) and the
    candidates/s an earlier session measured; refuses a population the space cannot fill and a random
    search resumed with another budget."""
    if cfg.population > space.size:  # NSGA-II could not fill a population of distinct architectures
        flag = "--population" if cfg.algorithm == "nsga2" else "--batch"
        raise UserError(f"{flag} {cfg.population}: the supernet's space '{space.name}' holds only "
                        f"{space.size} architectures; expected at most {space.size}")
    budget = cfg.population * cfg.generations if cfg.algorithm == "nsga2" else cfg.evaluations
    asked = (f"--generations {cfg.generations}" if cfg.algorithm == "nsga2"
             else f"--evaluations {cfg.evaluations}")
    before = out / "search.json"  # a resumed search keeps its measured rate when nothing is left to score
    prev = read_json(before, "a search's settings") if before.is_file() else {}
    rate = prev.get("candidates_per_second")
    old_total = prev["config"].get("evaluations") if isinstance(prev.get("config"), dict) else None
    started = cfg.algorithm == prev.get("algorithm") and (out / "state.json").is_file()
    if started and cfg.algorithm == "random" and is_json_int(old_total) and old_total != cfg.evaluations:
        # Its last generation may be a partial batch, after which a new total would not add up.
        raise UserError(f"--evaluations {cfg.evaluations}: {out} is a random search of {old_total} "
                        f"evaluations, fixed when it started; ask for {old_total} or use a new --out folder")
    old_generations = prev.get("generations")
    # An interrupted one (a finished one has its `evaluations`, and is refused by its count of candidates)
    if (started and cfg.algorithm == "nsga2" and "evaluations" not in prev and is_json_int(old_generations)
            and cfg.generations < old_generations):
        raise UserError(f"--generations {cfg.generations}: {out} is an unfinished NSGA-II search of "
                        f"{old_generations} generations, fixed when it started; ask for {old_generations} or "
                        f"more, or use a new --out folder")
    if cfg.algorithm == "nsga2":
        algorithm = NSGA2(space.n_choices, population=cfg.population)
        generations = cfg.generations
    else:
        algorithm = RandomSearch(space.n_choices, population=cfg.population, total=cfg.evaluations)
        generations = math.ceil(cfg.evaluations / cfg.population)
    return algorithm, generations, budget, asked, rate


def _warn_budget(cfg: SearchConfig, space, algorithm, budget: int) -> None:
    """Say what a budget cannot do (once the settings are known good: no warning before an error)."""
    if budget > space.size:  # a small custom space: the rest of the budget only repeats scored candidates
        warn(f"{budget:,} candidates for the {space.size:,} architectures of space '{space.name}': "
             f"once all are scored, the rest are repeats (scored from the cache)")
    first = algorithm.first_offspring_generation() if cfg.algorithm == "nsga2" else None
    if first is not None and first > cfg.generations:
        warn(f"--generations {cfg.generations} with --population {cfg.population}: Eq. 1 makes no "
             f"offspring before generation {first}, so every candidate is drawn at random (a random "
             f"search); ask for more generations")


def _scored_data(cfg: SearchConfig, scfg, ck: dict, space, supernet_run, data_root: str | None, out: Path):
    """The data config, bundle and frontend candidates are scored with (the supernet's data, or `data_root`;
    checked against what the supernet was trained on), the metric, and the validation items' channels."""
    data_cfg = scfg.data
    if cfg.eval_batch_size is None:  # the supernet preset's size suits its inputs (ASC: 32, KWS: 256)
        cfg.eval_batch_size = data_cfg.eval_batch_size
    if data_root:
        data_cfg.root = str(data_root)
    data_cfg.wave_cache_mb = 0  # the training split is read once (BN calibration): nothing to cache
    check_outside_data(out, data_cfg.kind, data_cfg.root)
    recorded = recorded_band_frontend(ck, space.input_shape, Path(supernet_run) / "checkpoints" / "last.pt")
    bundle = scored_bundle(data_cfg, scfg.seed, recorded, ck.get("classes"), ck.get("split_sizes"),
                           supernet_run, "supernet's", named=f"the supernet {supernet_run}",
                           moved="" if data_root else "pass the dataset's new place with --data DIR",
                           checked=("train", "val"))  # BN calibration batches and the candidates' scores
    warn_other_split(bundle, ck.get("split_fingerprint"), data_cfg.root, f"the supernet {supernet_run}")
    check_space_data(space, bundle)
    frontend = bundle.frontend
    if bundle.val is None or len(bundle.val) == 0:
        raise UserError(f"{data_cfg.root}: the dataset has no validation split to score candidates on")
    channels = getattr(bundle.val, "channel_ids", None)
    metric = search_metric(cfg.metric, space.task, channels, data_cfg.root)
    return data_cfg, bundle, frontend, metric, channels


def search_metric(asked: str, task: str, channels, root: str) -> str:
    """The score candidates are ranked by: `asked`, or for "auto" the task's own metric.

    Choice: the ASC paper's "accuracy metric" objective is read as its own score on scene data (macro-F1
    of each channel, averaged over channels: `paper_f1`), and as accuracy on keywords (the KWS metric).
    Algorithm 2's literal "accuracy on validation set" is `--metric accuracy`."""
    scene_data = task == "asc" and channels is not None
    metric = asked if asked != "auto" else ("paper_f1" if scene_data else "accuracy")
    if metric == "paper_f1" and channels is None:
        raise UserError(f"--metric paper_f1: the validation items of {root} carry no microphone "
                        f"channel (DCASE2018 caches do); use accuracy or macro_f1")
    return metric


def _write_front(result, space, cfg: SearchConfig, metric: str, latency: bool, out: Path) -> list[dict]:
    """pareto.json: the front of every candidate scored, each with its architecture and costs."""
    front = [{"chromosome": r["chromosome"], "arch": space.decode(r["chromosome"]), "score": r["score"],
              "macs": r["macs"], "params": r["params"],
              **({"latency_ms": r["latency_ms"]} if latency else {})}
             for r in result.front()]
    write_json_atomic({"algorithm": cfg.algorithm, "task": space.task, "preset_hint": space.preset_hint,
                       "metric": metric, "bn": cfg.bn, "cost": cfg.cost, "model": "mbnet",
                       "space": space.to_dict(), "front": front}, out / "pareto.json")
    return front


def weights_digest(net: torch.nn.Module) -> str:
    """A digest of the network's weights and buffers: a supernet run moved or copied elsewhere is the same
    supernet (its path is no identity), another one trained to the same step is not."""
    h = hashlib.sha1()
    for name, value in net.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@run_dir_locks()
def run_oneshot_search(supernet_run: str | Path, out: str | Path, cfg: SearchConfig,
                       data_root: str | None = None, device: str | None = None) -> dict:
    """Run (or resume) an NSGA-II or random search over a trained supernet; returns search.json."""
    cfg = check_config(cfg, SearchConfig)
    out, supernet_run = Path(out).expanduser(), Path(supernet_run).expanduser()
    check_not_foreign(out, "search (state.json)", SEARCH_MARKERS)  # as `audionas search nsga2|random` does
    if out.is_dir():  # a search running there is said before the supernet is loaded and the data cached
        lock_run_dir(out)
    dev = select_device(device, "--device")
    check_supernet_finished(supernet_run)
    net, scfg, ck = load_supernet(supernet_run, dev)
    spe = ck.get("steps_per_epoch")
    if is_json_int(spe) and spe > 0 and ck["step"] < spe * scfg.epochs:
        raise UserError(f"{supernet_run}: the supernet is unfinished ({ck['step'] // spe} of {scfg.epochs} "
                        f"epochs done); {_FINISH_IT.format(run=supernet_run)}")
    space = net.space
    algorithm, generations, budget, asked, rate = _algorithm(cfg, space, out)
    data_cfg, bundle, frontend, metric, channels = _scored_data(cfg, scfg, ck, space, supernet_run, data_root,
                                                               out)
    meta = {"supernet": str(Path(supernet_run).resolve()), "space": space.name, "bn": cfg.bn,
            "metric": metric, "val_items": len(evenly_spaced_indices(len(bundle.val), cfg.val_limit)),
            "supernet_step": int(ck["step"]), "supernet_weights": weights_digest(net)}
    if cfg.cost != "macs":  # searches from before the option stay resumable
        meta["cost"] = cfg.cost
    if cfg.bn == "recalibrate" and cfg.calib_batch_size != SearchConfig.calib_batch_size:  # as cost
        meta["calib_batch_size"] = cfg.calib_batch_size
    check_resume_settings(out, algorithm, cfg.seed, meta, (budget, asked), cfg.cost,
                          fraction_scores=True)  # before minutes of caching and measuring
    _warn_budget(cfg, space, algorithm, budget)
    if cfg.cost == "latency_ms":
        check_can_measure(supernet_run)
    t0 = time.perf_counter()
    val_x, val_y = cache_features(bundle.val, frontend, dev, cfg.eval_batch_size, cfg.val_limit,
                                  data_cfg.num_workers)
    calib = None
    if cfg.bn == "recalibrate":
        calib = calibration_batches(bundle.train, frontend, dev, cfg.calib_batches,
                                    cfg.calib_batch_size, cfg.seed)
        if len(calib) < cfg.calib_batches:
            warn(f"--calib-batches {cfg.calib_batches}: the training split of {data_cfg.root} holds "
                 f"{len(bundle.train)} items, {len(calib)} batch(es) of {cfg.calib_batch_size}; "
                 f"recalibrating on those")
    if len(val_x) < MIN_VAL_ITEMS:  # candidates then tie in coarse steps, and the front is mostly noise
        more = ("--val-limit 0, or a split with more validation clips" if 0 < cfg.val_limit < len(bundle.val)
                else "a split with more validation clips")
        warn(f"{len(val_x)} validation items score the candidates: a score moves in steps of about "
             f"1/{len(val_x)}, so many tie; more of them ({more}) rank candidates better")
    _log(f"cached {len(val_x)} validation items ({tuple(val_x.shape[1:])}) in "
         f"{time.perf_counter() - t0:.1f}s; metric {metric}, BN {cfg.bn}")
    if channels is not None:
        channels = np.asarray(channels)[evenly_spaced_indices(len(channels), cfg.val_limit)]
    table = latency_table(supernet_run, space, _log) if cfg.cost == "latency_ms" else None
    evaluator = CandidateEvaluator(net, val_x, val_y, metric, cfg.bn, calib, cfg.eval_batch_size,
                                   cfg.candidates_per_pass, cfg.channels_last, channels, table)
    meta["calib_batches"] = len(calib) if calib else 0
    if table:  # a resume on a remeasured table would mix two sets of latencies in one history
        meta["latency_table"] = hashlib.sha1(json.dumps(table, sort_keys=True).encode()).hexdigest()[:12]
    settings = to_dict(cfg)
    if cfg.algorithm == "nsga2":
        del settings["evaluations"]  # the random search's budget; NSGA-II runs population x generations
    else:
        del settings["generations"]  # NSGA-II's; a random search's follow from its evaluations
    # A session that scores nothing keeps the execution settings of the last that did (a resume's defaults).
    kept = {k: v for k, v in started_with(out).items() if k in EXECUTION_FIELDS}
    info = {"algorithm": cfg.algorithm, "config": {**settings, **kept}, "generations": generations, **meta,
            "task": space.task, "preset_hint": space.preset_hint, "cost": cfg.cost,
            "data": {"kind": data_cfg.kind,
                     "root": data_cfg.root and str(Path(data_cfg.root).expanduser().resolve())},
            "cost_range": list(latency_range(table) if table else space.cost_range(cfg.cost)),
            "space_def": space.to_dict(),
            "objectives": [f"{metric} (max)", COST_OBJECTIVES[cfg.cost]]}
    if is_finite_number(rate):  # kept while the search runs: a kill before its end does not lose the figure
        info["candidates_per_second"] = rate

    def evaluate(chromosomes: list[list[int]]) -> list[dict]:
        records = evaluator.evaluate(chromosomes)
        if info["config"] != settings:  # this session's first scores: from now on its settings are the ones
            info["config"] = settings
            write_json_atomic(info, out / "search.json")
        return records

    result = run_search(algorithm, evaluate, generations, seed=cfg.seed, out=out, meta=meta,
                        group=evaluator.per_pass, log=_log, cost=cfg.cost,
                        on_start=lambda: write_json_atomic(info, out / "search.json"), fraction_scores=True,
                        budget=(budget, asked))
    front = _write_front(result, space, cfg, metric, bool(table), out)
    if evaluator.count:
        rate = round(evaluator.candidates_per_second, 3)
    info.update(evaluations=result.evaluations, unique_evaluations=result.unique_evaluations,
                candidates_per_second=rate if is_finite_number(rate) else None, front_size=len(front))
    write_json_atomic(info, out / "search.json")
    session = (f"{evaluator.candidates_per_second:.2f} candidates/s this session" if evaluator.count
               else "none left to score")
    _log(f"{cfg.algorithm}: {result.evaluations} candidates ({result.unique_evaluations} unique evaluated, "
         f"{session}); front of {len(front)} -> {out / 'pareto.json'}")
    return info
