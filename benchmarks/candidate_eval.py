"""Candidate evaluation throughput with inherited supernet weights (cached validation features).

Run: `python benchmarks/candidate_eval.py [--quick] [--preset kws-fairnas] [--val N] [--candidates N]`.

Compares, on the same random chromosomes and the same cached features: (baseline) one candidate per forward
pass, (ours) `--per-pass` candidates stacked in one batched pass (eval-mode BN); the batched pass through the
supernet itself against its copy with BN folded into the convolutions (the default); and prints the cost of
BN recalibration (SPOS) per candidate. Every mode is warmed up on its own pass shapes, then timed in turns
(median of 3); their scores are checked equal. Prints candidates/s and the ratios.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from audionas.commands import positive_int
from audionas.config import load_config
from audionas.errors import UserError
from audionas.nas.oneshot.config import SupernetConfig
from audionas.nas.oneshot.evaluator import CandidateEvaluator
from audionas.nas.oneshot.space import load_space
from audionas.nas.oneshot.supernet import Supernet
from audionas.utils.allocator import tune_allocator

MAX_CANDIDATES = 100_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="kws-fairnas-cpu space, 64 items, 8 candidates")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--val", type=positive_int, default=None, help="validation items")
    ap.add_argument("--candidates", type=positive_int, default=None, help=f"at most {MAX_CANDIDATES:,}")
    ap.add_argument("--per-pass", type=positive_int, default=4)
    args = ap.parse_args()
    if args.candidates is not None and args.candidates > MAX_CANDIDATES:
        raise UserError(f"--candidates {args.candidates}: expected at most {MAX_CANDIDATES:,}")
    tune_allocator()  # as every `audionas` command does
    preset = args.preset or ("kws-fairnas-cpu" if args.quick else "kws-fairnas")
    n_val = args.val or (64 if args.quick else 512)
    n_cand = args.candidates or (8 if args.quick else 16)
    space = load_space(load_config(SupernetConfig, preset).space)
    torch.manual_seed(0)
    net = Supernet(space).eval()
    vx = torch.randn(n_val, *space.input_shape)
    vy = torch.randint(0, space.num_classes, (n_val,))
    rng = np.random.default_rng(0)
    chroms = [space.random(rng) for _ in range(n_cand)]
    per_pass = min(args.per_pass, n_cand)
    modes = {"one": CandidateEvaluator(net, vx, vy, candidates_per_pass=1),
             "many": CandidateEvaluator(net, vx, vy, candidates_per_pass=per_pass),
             "unfolded": CandidateEvaluator(net, vx, vy, candidates_per_pass=per_pass, fold_bn=False)}
    for ev in modes.values():
        ev.evaluate(chroms[:per_pass])  # warm-up on the pass shapes each times
    rates: dict[str, list[float]] = {name: [] for name in modes}
    scores = {}
    for _ in range(3):  # in turns, so that load from other processes hits all alike
        for name, ev in modes.items():
            ev.seconds = ev.count = 0
            scores[name] = [r["score"] for r in ev.evaluate(chroms)]
            rates[name].append(ev.candidates_per_second)
    assert scores["one"] == scores["many"], "batched scores differ"
    assert scores["many"] == scores["unfolded"], "scores with BN folded differ"
    rate_one, rate_many = statistics.median(rates["one"]), statistics.median(rates["many"])
    rate_unfolded = statistics.median(rates["unfolded"])
    calib = list(torch.randn(4 * 32, *space.input_shape).split(32))
    rc = CandidateEvaluator(net, vx, vy, bn="recalibrate", calib=calib)
    rc.evaluate(chroms[: max(2, n_cand // 4)])
    print(f"space {space.name}, {n_val} validation items, {n_cand} candidates, "
          f"threads {torch.get_num_threads()}")
    print(f"  1 candidate / pass : {rate_one:8.2f} candidates/s (median of 3)")
    print(f"  {per_pass} candidates / pass: {rate_many:8.2f} candidates/s (median of 3)")
    print(f"  speed-up: {rate_many / rate_one:.2f}x")
    print(f"  {per_pass} candidates / pass, BN not folded: {rate_unfolded:8.2f} candidates/s (median of 3)")
    print(f"  BN folded vs not: {rate_many / rate_unfolded:.2f}x")
    print(f"  --bn recalibrate (4 x 32 calibration items): {rc.candidates_per_second:8.2f} candidates/s")


if __name__ == "__main__":
    from _cli import run_main

    run_main(main)
