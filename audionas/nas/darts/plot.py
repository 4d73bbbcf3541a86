"""Cell drawings in the layout of the DARTS / KWS papers' figures, with matplotlib (no graphviz).

Inputs c_{k-2} and c_{k-1} on the left, intermediate nodes 0..n-1 in the middle, c_{k} on the right; each
edge is labelled with its op name; the concatenated nodes feed c_{k} by unlabelled edges.
"""

from __future__ import annotations

from pathlib import Path

from audionas.nas.darts.genotype import Genotype


def draw_cell(gene: list[tuple[str, int]], concat: list[int], title: str = ""):
    """A matplotlib Figure of one cell (no pyplot: the caller's backend is left alone)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    steps = len(gene) // 2
    pos = {0: (0.0, 1.2), 1: (0.0, -1.2)}
    for i in range(steps):
        # Choice: zig-zag the nodes (up, down, ...) so that no edge runs through another node.
        pos[i + 2] = (2.2 + 1.9 * i, (1.7 if i % 2 == 0 else -1.7) * (1 - 0.25 * (i // 2)))
    out_pos = (2.2 + 1.9 * steps + 0.6, 0.0)
    names = {0: "c_{k-2}", 1: "c_{k-1}", **{i + 2: str(i) for i in range(steps)}}
    colors = {0: "darkseagreen", 1: "darkseagreen", **{i + 2: "lightblue" for i in range(steps)}}

    fig = Figure(figsize=(2.4 + 2.0 * (steps + 1), 4.6))
    ax = fig.subplots()
    ax.set_axis_off()

    def node(xy, label, color):
        ax.text(*xy, f"${label}$" if "_" in label else label, ha="center", va="center", fontsize=12, zorder=3,
                bbox={"boxstyle": "round,pad=0.45", "fc": color, "ec": "black"})

    def edge(a, b, label=None, t=0.5):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, shrinkA=20, shrinkB=20,
                                     color="black" if label else "gray", lw=1.2, zorder=1))
        if label:
            x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=2,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})

    for k, (op, j) in enumerate(gene):
        dst = k // 2 + 2
        # Choice: labels at 40% / 60% of the edge for a node's first / second input so they rarely overlap.
        edge(pos[j], pos[dst], op, t=0.4 if k % 2 == 0 else 0.6)
    for i in concat:
        edge(pos[i], out_pos)
    for s, xy in pos.items():
        node(xy, names[s], colors[s])
    node(out_pos, "c_{k}", "palegoldenrod")
    xs = [p[0] for p in pos.values()] + [out_pos[0]]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(-2.4, 2.4)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_genotype(genotype: Genotype, out_dir: str | Path, prefix: str = "cell") -> list[Path]:
    """Write <prefix>_normal.png/.svg and <prefix>_reduce.png/.svg (atomically) into out_dir."""
    from audionas.utils.figures import save_figures

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, gene, concat in (("normal", genotype.normal, genotype.normal_concat),
                               ("reduce", genotype.reduce, genotype.reduce_concat)):
        fig = draw_cell(gene, concat, title=f"{kind} cell")
        png, svg = (out_dir / f"{prefix}_{kind}.{ext}" for ext in ("png", "svg"))
        written += save_figures(fig, {png: 150, svg: None})
    return written
