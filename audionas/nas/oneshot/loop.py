"""The generation loop propose -> evaluate -> survive shared by NSGA-II and random search, and its
history.jsonl / state for resume.

`run_search` asks the algorithm for each generation's candidates, evaluates those not scored before (a
repeated chromosome is recorded with its cached result) and lets the algorithm keep its next best population
among the candidates and the previous best one, objectives F = (-score, cost) minimised (`objectives`).

It writes `history.jsonl` (one flushed line per candidate) and an atomic `state.json` per generation (best
population + RNG state), so a killed search resumes where it stopped and ends with exactly the result of an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from audionas.errors import UserError
from audionas.nas.oneshot.nsga2 import PopulationSearch
from audionas.utils.atomic import failed_writes_named, write_json_atomic, write_text_atomic
from audionas.utils.jsonio import is_finite_number, is_fraction, is_json_int, read_json, read_json_lines
from audionas.utils.rundir import lock_run_dir, run_dir_locks

HISTORY_LINE = "one search candidate per line"  # what a line of history.jsonl holds (its errors say so)


@dataclass
class SearchResult:
    """Every evaluated candidate and the last generation's survivors (NSGA-II: the P chosen by rank and
    crowding, dominated ones included; random search: its non-dominated archive)."""
    records: list[dict]  # every candidate, in order (history.jsonl)
    best_X: np.ndarray
    best_F: np.ndarray
    evaluations: int  # candidates proposed and scored (cache hits included)
    unique_evaluations: int  # candidates actually run through the evaluator
    cost: str = "macs"  # the record key of the second objective

    def front(self) -> list[dict]:
        """pareto_front of every candidate scored."""
        return pareto_front(self.records, self.cost)


def pareto_front(records: Sequence[dict], cost: str = "macs") -> list[dict]:
    """The non-dominated set of the unique candidates among `records` (first record of each chromosome),
    sorted by cost (then score).

    Choice: the front of every candidate scored, not only of the last generation's population (the paper picks
    from "the Pareto-front of the 70-th iteration"); the two are equal unless crowding dropped a non-dominated
    candidate from the population, which this keeps.
    """
    uniq: dict[tuple, dict] = {}
    for r in records:
        uniq.setdefault(tuple(r["chromosome"]), r)
    recs = list(uniq.values())
    if not recs:
        return []
    F = objectives(recs, cost)
    idx = NonDominatedSorting().do(F, only_non_dominated_front=True)
    return sorted((recs[i] for i in idx), key=lambda r: (r[cost], -r["score"]))


_RECORD_KEYS = ("generation", "index", "origin", "chromosome", "cached")


def objectives(records: Sequence[dict], cost: str = "macs") -> np.ndarray:
    """The minimised objectives (-score, cost) of each record, as NSGA-II's F matrix."""
    return np.array([[-float(r["score"]), float(r[cost])] for r in records], dtype=float)


def _genes_fit(chrom, n_choices: Sequence[int] | None) -> bool:
    """True for a list of integer genes, each in 0..n-1 of its layer when `n_choices` is given."""
    if not isinstance(chrom, list) or not all(is_json_int(g) and g >= 0 for g in chrom):
        return False
    if n_choices is None:
        return True
    return len(chrom) == len(n_choices) and all(g < n for g, n in zip(chrom, n_choices))


def _genes_expected(n_choices: Sequence[int] | None) -> str:
    if n_choices is None:
        return "a list of non-negative integers"
    return f"a list of {len(n_choices)} integers, gene i in 0..n_i - 1 for n = {[int(n) for n in n_choices]}"


def check_record(rec, where: str, cost: str = "macs", n_choices: Sequence[int] | None = None,
                 fraction_scores: bool = False) -> dict:
    """A candidate of history.jsonl as `run_search` writes it; a hand-edited one is a UserError at `where`.

    With `n_choices` (the choices of each layer), genes outside the search's space are refused too; with
    `fraction_scores`, scores outside [0, 1] (a supernet search scores accuracy or F1)."""
    if not isinstance(rec, dict):
        raise UserError(f"{where}: expected a JSON object (one candidate), got {json.dumps(rec)[:40]}")
    checks = (("generation", is_json_int(rec.get("generation")) and rec["generation"] >= 0,
               "an integer >= 0"),
              ("index", is_json_int(rec.get("index")) and rec["index"] >= 0, "an integer >= 0"),
              ("chromosome", _genes_fit(rec.get("chromosome"), n_choices), _genes_expected(n_choices)),
              ("score", (is_fraction if fraction_scores else is_finite_number)(rec.get("score")),
               "a fraction in [0, 1]" if fraction_scores else "a finite number"),
              (cost, is_finite_number(rec.get(cost)) and rec[cost] >= 0, "a finite number >= 0"))
    for key, ok, expected in checks:
        if not ok:
            raise UserError(f"{where}: field '{key}': expected {expected}, got {rec.get(key)!r}")
    return rec


def _read_history(path: Path, cost: str = "macs", n_choices: Sequence[int] | None = None,
                  fraction_scores: bool = False) -> list[dict]:
    """The candidates of history.jsonl; a trailing partial line (a kill mid-write) is skipped here and dropped
    when run_search rewrites the file, once the resume is accepted."""
    if not path.exists():
        return []
    def checked(rec, where: str) -> dict:
        return check_record(rec, where, cost, n_choices, fraction_scores)

    return read_json_lines(path, HISTORY_LINE, drop_partial_last=True, check=checked)


def _checked_state(state_path: Path, meta: dict, partial: bool = False) -> dict:
    """state.json, refused when it was saved with other settings than `meta` (checked before the history is
    read: a search of another space has chromosomes of another length). `partial`: compare only the keys of
    `meta`."""
    state = read_json(state_path, "a search state")
    old = state.get("meta")
    if not isinstance(old, dict):
        raise UserError(f"{state_path}: field 'meta': expected an object (the search settings)")
    keys = set(meta) if partial else set(meta) | set(old)
    if "supernet_weights" not in old:  # a search from before the digest: its supernet's path identifies it
        keys.discard("supernet_weights")
    elif old["supernet_weights"] == meta.get("supernet_weights"):  # the same supernet, moved or copied
        keys.discard("supernet")
    diff = sorted(k for k in keys if meta.get(k) != old.get(k))
    if "cost" in diff and "latency_table" in diff:  # follows the cost: only one of the two was asked for
        diff.remove("latency_table")
    if diff == ["latency_table"]:
        raise UserError(f"{state_path}: the supernet's latency_cpu.json changed since this search started "
                        f"(remeasured or edited): its latencies would not match the history's; use a new "
                        f"--out folder")
    if diff:
        typed = [_with_values("batch" if k == "population" and meta.get("algorithm") == "random" else k,
                              old.get(k), meta.get(k)) for k in diff]
        raise UserError(f"{state_path}: this search was started with other settings "
                        f"({', '.join(typed)}); use a new --out folder")
    return state


def _with_values(name: str, old, new) -> str:
    """`name`, with its saved and asked values when both are short scalars ("population 4, now 8")."""
    short = all(isinstance(v, (bool, int, float, str)) and len(str(v)) <= 40 for v in (old, new))
    return f"{name} {old}, now {new}" if short else name


def _run_keys(algorithm: PopulationSearch, seed: int) -> dict:
    """The settings run_search adds to the caller's `meta`."""
    return {"algorithm": algorithm.name, "population": algorithm.population, "seed": seed}


def check_resume_settings(out: str | os.PathLike, algorithm: PopulationSearch, seed: int, meta: dict,
                          budget: tuple[int, str] | None = None, cost: str = "macs",
                          fraction_scores: bool = False) -> None:
    """Refuse the resume of a search started with other settings, or holding more candidates than `budget`
    asks for, before the caller's costly set-up (caching features, measuring a latency table); compares only
    the keys of `meta` given (run_search checks all)."""
    state_path = Path(out) / "state.json"
    if state_path.exists():
        state = _checked_state(state_path, {**meta, **_run_keys(algorithm, seed)}, partial=True)
        if budget is not None and is_json_int(state.get("generation")):
            records = _read_history(Path(out) / "history.jsonl", cost, algorithm.n_choices, fraction_scores)
            _check_budget(Path(out), _kept(records, state["generation"] + 1), budget)


def _kept(records: list[dict], start: int) -> list[dict]:
    """The history records a search resumed at generation `start` keeps: those of the generations before it,
    and the ones of generation `start` scored before a kill cut it short."""
    return [r for r in records if r["generation"] <= start]


def _check_budget(out: Path, records: list[dict], budget: tuple[int, str]) -> None:
    """UserError when `out` holds more scored candidates than the budget (count, flag) asks for."""
    if len(records) > budget[0]:
        raise UserError(f"{budget[1]}: {out} already holds {len(records)} scored candidates, more than "
                        f"the {budget[0]} asked for; ask for at least as many (more continue the "
                        f"search) or use a new --out folder")


def _resume_state(state: dict, state_path: Path, hist_path: Path, records: list[dict],
                  n_choices: Sequence[int], rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """The first generation to run and the best population saved in `state` (state.json, settings already
    checked), checked against the history `records`; sets `rng` to its saved state. UserError when they
    differ."""
    if not is_json_int(state.get("generation")) or state["generation"] < 0:
        raise UserError(f"{state_path}: field 'generation': expected an integer >= 0, "
                        f"got {state.get('generation')!r}")
    start = state["generation"] + 1
    last = max((r["generation"] for r in records), default=0)
    if state["generation"] > last:  # a generation's candidates are all written before its state
        raise UserError(f"{state_path}: field 'generation': {state['generation']} is past the last "
                        f"generation in {hist_path} ({last}); use a new --out folder")
    best = state.get("best")
    if not isinstance(best, list) or not all(_genes_fit(x, n_choices) for x in best):
        raise UserError(f"{state_path}: field 'best': expected a list of chromosomes, each "
                        f"{_genes_expected(n_choices)}")
    if start > 1 and not best:  # every generation keeps at least one survivor
        raise UserError(f"{state_path}: field 'best': empty after generation {start - 1}; "
                        f"use a new --out folder")
    best_X = np.asarray(best, dtype=np.int64).reshape(-1, len(n_choices))
    known = {tuple(r["chromosome"]) for r in records}
    lost = [x for x in best if tuple(x) not in known]
    if lost:
        raise UserError(f"{state_path}: best chromosome {lost[0]} is not in {hist_path} (an edited "
                        f"or truncated history); use a new --out folder")
    try:
        rng.bit_generator.state = state.get("rng")
    except (TypeError, ValueError, KeyError, OverflowError):  # Overflow: a number beyond 64 bits
        raise UserError(f"{state_path}: field 'rng': expected the saved random generator "
                        f"state") from None
    return start, best_X


def _open_search(out: Path, algorithm: PopulationSearch, meta: dict, rng: np.random.Generator, cost: str,
                 fraction_scores: bool, budget: tuple[int, str] | None) -> tuple[int, np.ndarray, list[dict]]:
    """Lock `out` and resume what it holds: (first generation to run, best population, history records), the
    history cut back to the generations state.json counts and state.json rewritten (settings checked, `rng`
    set to its saved state). A new search starts at generation 1."""
    out.mkdir(parents=True, exist_ok=True)
    lock_run_dir(out)  # the same search started twice would write one history twice over
    hist_path, state_path = out / "history.jsonl", out / "state.json"
    state = _checked_state(state_path, meta) if state_path.exists() else None
    records = _read_history(hist_path, cost, algorithm.n_choices, fraction_scores)
    start, best_X = 1, np.zeros((0, len(algorithm.n_choices)), dtype=np.int64)
    if state is not None:
        start, best_X = _resume_state(state, state_path, hist_path, records, algorithm.n_choices, rng)
    records = _kept(records, start)
    if budget is not None:
        _check_budget(out, records, budget)
    if hist_path.exists():  # atomically: a kill mid-rewrite would lose the lines not yet written
        write_text_atomic("".join(json.dumps(r) + "\n" for r in records), hist_path)
    _write_state(state_path, start - 1, best_X, rng, meta)
    return start, best_X, records


def _write_state(path: Path, generation: int, best_X: np.ndarray, rng: np.random.Generator,
                 meta: dict) -> None:
    """state.json: the last finished generation, its survivors, the RNG after it and the search's settings."""
    write_json_atomic({"generation": generation, "best": best_X.tolist(), "rng": rng.bit_generator.state,
                       "meta": meta}, path)


@run_dir_locks()
def run_search(algorithm: PopulationSearch, evaluate: Callable[[list[list[int]]], list[dict]],
               generations: int, seed: int = 0, out: str | os.PathLike | None = None,
               meta: dict | None = None, group: int = 1, log: Callable[[str], None] | None = None,
               cost: str = "macs", on_start: Callable[[], None] | None = None, fraction_scores: bool = False,
               budget: tuple[int, str] | None = None) -> SearchResult:
    """Run `generations` generations of `algorithm`.

    `evaluate(chromosomes)` returns one dict per chromosome with at least `score` (maximised) and the `cost`
    key (minimised; `macs` by default); extra keys are stored in the history. `group` candidates are
    evaluated per call (a kill loses at most that group). With `out`, history.jsonl/state.json make the run
    resumable; `meta` is stored in state.json and must match on resume. `on_start` runs once the settings
    are accepted (a refused resume leaves the folder as it was). `fraction_scores`: a resumed history's
    scores must lie in [0, 1]. `budget` (candidates, the flag that set them): a resumed history holding more
    candidates is refused; a bigger budget continues the search.
    """
    # Choice: one seed drives either algorithm, so NSGA-II and random search at the same --seed and batch
    # propose the same random candidates until NSGA-II's first offspring (a paired comparison; the paper
    # says nothing of seeds). Another --seed gives independent runs.
    rng = np.random.default_rng(seed)
    best_X = np.zeros((0, len(algorithm.n_choices)), dtype=np.int64)
    best_F = np.zeros((0, 2))
    start = 1
    records: list[dict] = []
    meta = {**(meta or {}), **_run_keys(algorithm, seed)}
    hist_path = state_path = None
    if out is not None:
        out = Path(out)
        hist_path, state_path = out / "history.jsonl", out / "state.json"
        start, best_X, records = _open_search(out, algorithm, meta, rng, cost, fraction_scores, budget)
    if on_start:
        on_start()
    cache: dict[tuple, dict] = {}
    for r in records:
        cache.setdefault(tuple(r["chromosome"]), r)
    if len(best_X):
        best_F = objectives([cache[tuple(x)] for x in best_X.tolist()], cost)
    done = {(r["generation"], r["index"]): r for r in records}
    hist = open(hist_path, "a") if hist_path else None
    n_unique = sum(1 for r in records if not r.get("cached"))

    def flush(g: int, pending: list[tuple[int, list[int], str]], gen_recs: list[dict]) -> int:
        """Evaluate the pending candidates not in the cache, record all of them; returns new evaluations."""
        todo = list(dict.fromkeys(tuple(c) for _, c, _ in pending if tuple(c) not in cache))
        fresh = dict(zip(todo, evaluate([list(c) for c in todo]))) if todo else {}
        n_new = len(fresh)
        lines = []
        for j, chrom, origin in pending:
            key = tuple(chrom)
            res, cached = (fresh.pop(key), False) if key in fresh else (cache[key], True)
            rec = {"generation": g, "index": j, "origin": origin, "chromosome": list(chrom), "cached": cached,
                   **{k: v for k, v in res.items() if k not in _RECORD_KEYS}}
            cache.setdefault(key, rec)
            gen_recs.append(rec)
            records.append(rec)
            lines.append(json.dumps(rec) + "\n")
        if hist:
            # One write per group: a kill keeps all of a group or none of it, so a resume evaluates the rest
            # of the generation in the same groups (scores can differ in the last bits with the group size).
            with failed_writes_named(f"{hist_path}: cannot write", out):  # a resume rereads whole lines
                hist.write("".join(lines))
                hist.flush()
        pending.clear()
        return n_new

    try:
        for g in range(start, generations + 1):
            seen = {k for k, r in cache.items() if r["generation"] < g}
            cands = algorithm.propose(g, best_X, best_F, rng, seen=seen)
            gen_recs: list[dict] = []
            pending: list[tuple[int, list[int], str]] = []
            for j, (x, origin) in enumerate(cands):
                if (g, j) in done:
                    gen_recs.append(done[(g, j)])
                    continue
                pending.append((j, [int(v) for v in x], origin))
                if len(pending) >= group:
                    n_unique += flush(g, pending, gen_recs)
            n_unique += flush(g, pending, gen_recs)
            # merge with the best population (duplicate chromosomes kept once) and keep the top P
            merged: dict[tuple, list[int]] = {tuple(x): x for x in best_X.tolist()}
            for r in gen_recs:
                merged.setdefault(tuple(r["chromosome"]), r["chromosome"])
            X = np.asarray(list(merged.values()), dtype=np.int64)
            F = objectives([cache[tuple(x)] for x in X.tolist()], cost)
            keep = algorithm.survive(X, F)
            best_X, best_F = X[keep], F[keep]
            if state_path:
                # The history on disk before the state that counts on it: after an OS crash a generation's
                # lines may not be lost while state.json says it is done (kill -9 loses neither).
                os.fsync(hist.fileno())
                _write_state(state_path, g, best_X, rng, meta)
            if log:
                sc = [r["score"] for r in gen_recs] or [float("nan")]
                n_front = int((algorithm.survival.rank_crowding(best_F)[0] == 0).sum())
                best = max((r["score"] for r in cache.values()), default=float("nan"))  # all scored so far
                log(f"{algorithm.step} {g}/{generations}: {len(gen_recs)} candidates, best score "
                    f"{max(sc):.4f} (so far {best:.4f}), front size {n_front}, unique evaluations {n_unique}")
    except BaseException:
        if hist:
            with contextlib.suppress(OSError):  # its unwritten lines fail again (a full disk): said already
                hist.close()
        raise
    if hist:
        hist.close()
    return SearchResult(records, best_X, best_F, len(records), n_unique, cost)
