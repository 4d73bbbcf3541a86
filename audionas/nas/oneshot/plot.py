"""The ASC paper's Figure 4 from search folders, and the hypervolume of each Pareto front.

(a) every NSGA-II candidate, coloured by generation (x = MACs, y = validation score); (b) the random search
candidates; (c) both Pareto fronts. Hypervolume: objectives normalised to f1 = 1 - score and
f2 = (MACs - min MACs of the space) / (max - min), both in [0, 1], reference point (1, 1), i.e. score 0 at
the space's largest MACs (pymoo's HV).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audionas.errors import UserError

HV_REFERENCE = (1.0, 1.0)


def load_search(folder: str | Path) -> dict:
    """search.json + history.jsonl (+ pareto.json) of a search folder."""
    folder = Path(folder)
    meta_p, hist_p = folder / "search.json", folder / "history.jsonl"
    if not meta_p.is_file() or not hist_p.is_file():
        raise UserError(f"{folder}: not a search folder (expected search.json and history.jsonl)")
    try:
        meta = json.loads(meta_p.read_text())
        records = [json.loads(ln) for ln in hist_p.read_text().splitlines() if ln.strip()]
    except json.JSONDecodeError:
        raise UserError(f"{folder}: unreadable search.json or history.jsonl") from None
    from audionas.nas.oneshot.nsga2 import SearchResult

    front = SearchResult(records, np.zeros((0, 0)), np.zeros((0, 2)), len(records), 0).front()
    return {"folder": folder, "meta": meta, "records": records, "front": front}


def hypervolume(front: list[dict], macs_range: tuple[float, float]) -> float:
    """Normalised hypervolume of a front (see the module docstring for the normalisation)."""
    from pymoo.indicators.hv import HV

    if not front:
        return 0.0
    lo, hi = macs_range
    F = np.array([[1.0 - r["score"], (r["macs"] - lo) / max(hi - lo, 1)] for r in front], dtype=float)
    return float(HV(ref_point=np.array(HV_REFERENCE))(F))


def _step_xy(front: list[dict]) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in sorted(front, key=lambda r: r["macs"]):
        if xs:
            xs.append(r["macs"] / 1e6)
            ys.append(ys[-1])
        xs.append(r["macs"] / 1e6)
        ys.append(r["score"])
    return xs, ys


def plot_searches(folders: list[str | Path], out: str | Path | None = None) -> dict:
    """Draw Figure 4 for one or two searches into `out` (PNG + SVG); returns {name: hypervolume, files}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    searches = [load_search(f) for f in folders]
    if not searches:
        raise UserError("plot-search: give at least one search folder")
    out = Path(out) if out else Path(folders[0])
    out.mkdir(parents=True, exist_ok=True)
    ranges = [tuple(s["meta"].get("macs_range", (0, 1))) for s in searches]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    metric = searches[0]["meta"].get("metric", "score")
    nsga = [s for s in searches if s["meta"].get("algorithm") == "nsga2"]
    rand = [s for s in searches if s["meta"].get("algorithm") == "random"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), sharey=True)
    ax = axes[0]
    for s in nsga:
        g = np.array([r["generation"] for r in s["records"]])
        sc = ax.scatter([r["macs"] / 1e6 for r in s["records"]], [r["score"] for r in s["records"]], c=g,
                        cmap="viridis", s=8, alpha=0.8)
        fig.colorbar(sc, ax=ax, label="generation")
    ax.set_title("(a) NSGA-II candidates" if nsga else "(a) no NSGA-II search given")
    ax = axes[1]
    for s in rand:
        ax.scatter([r["macs"] / 1e6 for r in s["records"]], [r["score"] for r in s["records"]], s=8,
                   color="tab:gray", alpha=0.6)
    ax.set_title("(b) random search candidates" if rand else "(b) no random search given")
    ax = axes[2]
    hv = {}
    for s, color in zip(searches, ["tab:red", "tab:blue", "tab:green", "tab:orange"]):
        name = f"{s['meta'].get('algorithm', '?')} ({s['folder'].name})"
        hv[name] = hypervolume(s["front"], (lo, hi))
        xs, ys = _step_xy(s["front"])
        ax.plot(xs, ys, "-o", color=color, ms=4, label=f"{name}, HV {hv[name]:.4f}")
    ax.legend(fontsize=8)
    ax.set_title("(c) Pareto fronts")
    for ax in axes:
        ax.set_xlabel("MACs (M, multiply-adds)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"validation {metric}")
    fig.tight_layout()
    files = []
    for ext in ("png", "svg"):
        path = out / f"figure4.{ext}"
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=ext, dpi=120)
        tmp.replace(path)
        files.append(str(path))
    plt.close(fig)
    return {"hypervolume": hv, "reference_point": list(HV_REFERENCE), "macs_range": [lo, hi], "files": files}
