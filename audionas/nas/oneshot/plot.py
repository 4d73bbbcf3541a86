"""The ASC paper's Figure 4 from search folders, and the hypervolume of each Pareto front.

(a) every NSGA-II candidate, coloured by generation (x = MACs, or the cost of a `--cost params|latency_ms`
search; y = validation score); (b) the random search candidates; (c) both Pareto fronts. Two searches of one
algorithm (two seeds) get one candidate panel each. Hypervolume:
objectives normalised to f1 = 1 - score and f2 = (cost - min cost of the space) / (max - min), both in
[0, 1], reference point (1, 1), i.e. score 0 at the space's largest cost (pymoo's HV).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audionas.errors import UserError, warn
from audionas.utils.figures import save_figures
from audionas.utils.jsonio import is_finite_number, read_json, read_json_lines
from audionas.utils.rundir import check_outside_data, read_run_config, refuse_repeats
from audionas.utils.text import escape_controls

HV_REFERENCE = (1.0, 1.0)
ALGORITHMS = ("nsga2", "random")  # panel (a) draws the first, panel (b) the second
COST_AXES = {"macs": ("MACs (M, multiply-adds)", 1e6), "params": ("params (K, trainable)", 1e3),
             "latency_ms": ("CPU latency (ms per sample, lookup table)", 1.0)}


def load_search(folder: str | Path) -> dict:
    """search.json + history.jsonl (+ pareto.json) of a search folder."""
    folder = Path(folder)
    meta_p, hist_p = folder / "search.json", folder / "history.jsonl"
    if not folder.exists():
        raise UserError(f"{folder}: not found (expected the --out folder of `audionas search nsga2|random`)")
    if not meta_p.is_file() or not hist_p.is_file():
        raise UserError(f"{folder}: not a search folder (expected search.json and history.jsonl)")
    meta = read_json(meta_p, "a search's settings")
    from audionas.nas.oneshot.loop import HISTORY_LINE, check_record, pareto_front

    for key, known, default in (("cost", tuple(COST_AXES), "macs"), ("algorithm", ALGORITHMS, None)):
        if not isinstance(meta.get(key, default), str) or meta.get(key, default) not in known:
            raise UserError(f"{meta_p}: field '{key}': expected one of {', '.join(known)}, "
                            f"got {meta.get(key)!r}")
    cost = meta.get("cost", "macs")
    # a kill mid-line leaves a partial last line: skipped, as a resume of the search drops it
    records = read_json_lines(hist_p, HISTORY_LINE, drop_partial_last=True,
                              check=lambda rec, where: check_record(rec, where, cost, fraction_scores=True))
    if not records:
        raise UserError(f"{hist_p}: no candidates scored yet (nothing to plot; run or resume the search)")
    front = pareto_front(records, cost)
    # searches from before the cost option store only `macs_range`
    cost_range = meta.get("cost_range", meta.get("macs_range", (0, 1)))
    numbers = (isinstance(cost_range, (list, tuple)) and len(cost_range) == 2
               and all(is_finite_number(v) for v in cost_range))
    if not numbers or not 0 <= cost_range[0] <= cost_range[1]:
        raise UserError(f"{meta_p}: field 'cost_range': expected [min, max] numbers with 0 <= min <= max, "
                        f"got {cost_range!r}")
    cost_range = tuple(cost_range)
    # search.json gets its `evaluations` count, and pareto.json is written, only when a session ends
    finished = "evaluations" in meta and (folder / "pareto.json").is_file()
    return {"folder": folder, "meta": meta, "records": records, "front": front, "cost": cost,
            "cost_range": cost_range, "finished": finished}


def _searched_data(meta: dict) -> dict:
    """The dataset a search scored on: search.json's `data`, else (older searches) its supernet's."""
    if isinstance(meta.get("data"), dict):
        return meta["data"]
    cfg = Path(str(meta.get("supernet", ""))) / "config.yaml"
    try:
        data = read_run_config(cfg).get("data") if meta.get("supernet") and cfg.is_file() else None
    except UserError:  # an unreadable supernet config: nothing to check against
        data = None
    return data if isinstance(data, dict) else {}


def hypervolume(front: list[dict], cost_range: tuple[float, float], cost: str = "macs") -> float:
    """Normalised hypervolume of a front (see the module docstring for the normalisation)."""
    from pymoo.indicators.hv import HV

    if not front:
        return 0.0
    lo, hi = cost_range
    span = hi - lo if hi > lo else 1  # a latency range can be under 1 ms
    F = np.array([[1.0 - r["score"], (r[cost] - lo) / span] for r in front], dtype=float)
    return float(HV(ref_point=np.array(HV_REFERENCE))(F))


def _step_xy(front: list[dict], cost: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    scale = COST_AXES[cost][1]
    for r in sorted(front, key=lambda r: r[cost]):
        if xs:
            xs.append(r[cost] / scale)
            ys.append(ys[-1])
        xs.append(r[cost] / scale)
        ys.append(r["score"])
    return xs, ys


_TITLES = {"nsga2": "NSGA-II search", "random": "random search"}


def _labels(searches: list[dict], label) -> list[str]:
    """label(search, its folder's name) for each search, or with the whole path where two would read the same
    (A/s and B/s); escaped, as matplotlib cannot draw a name that is not UTF-8."""
    short = [label(s, escape_controls(s["folder"].name)) for s in searches]
    return (short if len(set(short)) == len(short)
            else [label(s, escape_controls(str(s["folder"]))) for s in searches])


def candidate_panels(searches: list[dict]) -> list[tuple[str, dict | None]]:
    """Figure 4's panels (a) and (b): (title, search or None). One search goes in its algorithm's panel, the
    other says none was given; two go in ALGORITHMS order, each in its own panel, named by folder when both
    ran the same algorithm (two NSGA-II seeds: before, drawn on top of each other in panel (a))."""
    def algorithm(s: dict) -> str:
        return s["meta"]["algorithm"]  # load_search checked it is one of ALGORITHMS

    if len(searches) == 1:
        given = ALGORITHMS.index(algorithm(searches[0]))
        return [(f"({'ab'[i]}) {_TITLES[a]} candidates", searches[0]) if i == given
                else (f"({'ab'[i]}) no {_TITLES[a]} given", None) for i, a in enumerate(ALGORITHMS)]
    ordered = sorted(searches, key=lambda s: ALGORITHMS.index(algorithm(s)))
    if algorithm(ordered[0]) != algorithm(ordered[1]):
        return [(f"({'ab'[i]}) {_TITLES[algorithm(s)]} candidates", s) for i, s in enumerate(ordered)]
    titles = _labels(ordered, lambda s, folder: f"{_TITLES[algorithm(s)]} candidates ({folder})")
    return [(f"({'ab'[i]}) {title}", s) for i, (s, title) in enumerate(zip(ordered, titles))]


def plot_searches(folders: list[str | Path], out: str | Path | None = None) -> dict:
    """Draw Figure 4 for one or two searches into `out` (PNG + SVG); returns {"hypervolume": {name: value},
    "reference_point", "cost", "cost_range", "files"}."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
    from matplotlib.ticker import MaxNLocator

    if not 1 <= len(folders) <= 2:
        raise UserError(f"plot-search: expected one or two search folders (NSGA-II, random), "
                        f"got {len(folders)}")
    refuse_repeats(folders, "plot-search compares two different searches")
    searches = [load_search(f) for f in folders]
    for s in searches:
        if not s["finished"]:
            warn(f"{s['folder']}: the search is unfinished (running, or stopped; a rerun resumes "
                 f"it): plotting the {len(s['records'])} candidates scored so far")
    cost = searches[0]["cost"]
    if any(s["cost"] != cost for s in searches):
        raise UserError("plot-search: the searches minimise different costs ("
                        + ", ".join(f"{s['folder']}: {s['cost']}" for s in searches) + ")")
    metrics = {s["meta"].get("metric") for s in searches} - {None}
    if len(metrics) > 1:  # an accuracy front beside a paper-F1 front: their hypervolumes do not compare
        raise UserError("plot-search: the searches score different metrics ("
                        + ", ".join(f"{s['folder']}: {s['meta'].get('metric')}" for s in searches) + ")")
    scoring = ("supernet", "supernet_step", "bn", "val_items")
    differ = [k for k in scoring if len({repr(s["meta"].get(k)) for s in searches}) > 1]
    if differ:  # another supernet or validation set: the two fronts do not compare
        warn(f"plot-search: the searches scored their candidates differently ({', '.join(differ)} "
             f"differ): their hypervolumes are not comparable")
    out = Path(out) if out else Path(folders[0])
    for s in searches:
        data = _searched_data(s["meta"])
        check_outside_data(out, data.get("kind"), data.get("root"))
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    label, scale = COST_AXES[cost]
    lo, hi = min(s["cost_range"][0] for s in searches), max(s["cost_range"][1] for s in searches)
    metric = searches[0]["meta"].get("metric", "score")
    fig = Figure(figsize=(16, 4.8))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (title, s) in zip(axes, candidate_panels(searches)):
        ax.set_title(title)
        if s is None:
            continue
        xs, ys = [r[cost] / scale for r in s["records"]], [r["score"] for r in s["records"]]
        if s["meta"]["algorithm"] == "nsga2":
            sc = ax.scatter(xs, ys, c=[r["generation"] for r in s["records"]], cmap="viridis", s=8, alpha=0.8)
            fig.colorbar(sc, ax=ax, label="generation").locator = MaxNLocator(integer=True)  # whole numbers
        else:
            ax.scatter(xs, ys, s=8, color="tab:gray", alpha=0.6)
    ax = axes[2]
    hv = {}
    names = _labels(searches, lambda s, folder: f"{s['meta'].get('algorithm', '?')} ({folder})")
    # the second front dashed, open markers: two equal fronts (NSGA-II that bred nothing) both stay visible
    styles = [dict(color="tab:red", ls="-", marker="o", ms=4),
              dict(color="tab:blue", ls="--", marker="s", ms=7, mfc="none")]
    for s, name, style in zip(searches, names, styles):
        hv[name] = hypervolume(s["front"], (lo, hi), cost)
        xs, ys = _step_xy(s["front"], cost)
        ax.plot(xs, ys, label=f"{name}, HV {hv[name]:.4f}", **style)
    ax.legend(fontsize=8)
    ax.set_title("(c) Pareto fronts")
    for ax in axes:
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"validation {metric}")
    fig.tight_layout()
    files = [str(p) for p in save_figures(fig, {out / "figure4.png": 120, out / "figure4.svg": 120})]
    return {"hypervolume": hv, "reference_point": list(HV_REFERENCE), "cost": cost, "cost_range": [lo, hi],
            "files": files}
