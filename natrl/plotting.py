"""Cell pictures with matplotlib alone (no graphviz binary): nodes left to right, ops written on the edges."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from natrl.cells import Cell, Genotype  # noqa: E402
from natrl.ops import OP_INFO  # noqa: E402

TYPE_COLORS = {
    "conv": "#d62728",
    "sep": "#1f77b4",
    "dil": "#2ca02c",
    "pool": "#9467bd",
    "skip": "#7f7f7f",
    "null": "#cccccc",
    "other": "#ff7f0e",
}


def _node_label(cell: Cell, i: int) -> str:
    if cell.num_inputs == 1:
        return "in" if i == 0 else str(i)
    return ("c_{k-2}", "c_{k-1}")[i] if i < cell.num_inputs else str(i)


SHORT = {
    "max_pool": "max",
    "avg_pool": "avg",
    "sep_conv": "sep",
    "dil_conv": "dil",
    "nor_conv": "conv",
    "skip_connect": "skip",
}


def short_name(op: str) -> str:
    """sep_conv_3x3 -> sep3x3: keeps edge labels small enough not to collide."""
    for long, short in SHORT.items():
        if op.startswith(long):
            return short + op[len(long) :].replace("_", "")
    return op


def _node_positions(cell: Cell) -> dict[int, tuple[float, float]]:
    """Inputs stacked at x=0; intermediate nodes left to right, staggered up/down so that edges skipping a node
    do not run through it; the concat output (DARTS space, key ``num_nodes``) at the far right."""
    n, two_inputs = cell.num_nodes, cell.num_inputs == 2
    pos = {}
    for i in range(n):
        if two_inputs and i < 2:
            pos[i] = (0.0, 1.0 if i == 0 else -1.0)
        else:
            x = float(i - 1 if two_inputs else i)
            pos[i] = (x, 0.45 * (1 if i % 2 else -1) if 0 < x else 0.0)
    if two_inputs:
        pos[n] = (float(n - 1), 0.0)
    return pos


def _draw_edge(ax, op: str, a: tuple[float, float], b: tuple[float, float], rad: float):
    """One op edge from ``a`` to ``b``: an arc in the op type's colour (dashed for null), labelled mid-way."""
    info = OP_INFO.get(op)
    color = TYPE_COLORS.get(info.type if info else "other", "#000000")
    ls = "--" if info and info.type == "null" else "-"
    style = dict(arrowstyle="-|>", color=color, lw=1.6, ls=ls, shrinkA=13, shrinkB=13)
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(**style, connectionstyle=f"arc3,rad={rad}"))
    # label at t=0.6 on the quadratic Bezier that arc3 draws in display space: its control point is the chord
    # midpoint moved by rad times the chord, rotated
    to_px, from_px = ax.transData.transform, ax.transData.inverted().transform
    (px0, py0), (px1, py1) = to_px(a), to_px(b)
    cx, cy = (px0 + px1) / 2 + rad * (py1 - py0), (py0 + py1) / 2 - rad * (px1 - px0)
    t = 0.6
    lx, ly = from_px(
        ((1 - t) ** 2 * px0 + 2 * t * (1 - t) * cx + t**2 * px1, (1 - t) ** 2 * py0 + 2 * t * (1 - t) * cy + t**2 * py1)
    )
    box = dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.9)
    ax.text(lx, ly, short_name(op), fontsize=7, color=color, ha="center", va="center", bbox=box)


def _draw_nodes(ax, cell: Cell, pos: dict[int, tuple[float, float]]):
    n = cell.num_nodes
    for i, (x, y) in pos.items():
        is_input = i < cell.num_inputs
        label = "c_{k}" if i == n else _node_label(cell, i)
        box = dict(
            boxstyle="circle" if not is_input and i != n else "round",
            fc="#fff2cc" if is_input else ("#d9ead3" if i == n else "#dae8fc"),
            ec="#444444",
        )
        ax.text(x, y, f"${label}$" if "_" in label else label, ha="center", va="center", fontsize=9, bbox=box)


def draw_cell(ax, cell: Cell, title: str = ""):
    pos = _node_positions(cell)
    xs = [x for x, _ in pos.values()]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(-1.7, 1.7)
    seen: dict[tuple[int, int], int] = {}
    for op, s, d in cell.edges:
        k = seen.get((s, d), 0)  # parallel edges between the same nodes bend further, alternating sides
        seen[(s, d)] = k + 1
        _draw_edge(ax, op, pos[s], pos[d], rad=(0.12 if d - s == 1 else 0.3) * (1 + k) * (1 if (d + k) % 2 else -1))
    if cell.num_inputs == 2:  # the concat: the listed nodes feed the cell output
        style = dict(arrowstyle="-|>", color="#bbbbbb", lw=0.8, shrinkA=13, shrinkB=13, connectionstyle="arc3,rad=0.1")
        for c in cell.concat:
            ax.annotate("", xy=pos[cell.num_nodes], xytext=pos[c], arrowprops=style)
    _draw_nodes(ax, cell, pos)
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def plot_genotype(genotype: Genotype, path, title: str = ""):
    cells = genotype.cells()
    fig, axes = plt.subplots(len(cells), 1, figsize=(max(7.0, 1.6 * genotype.normal.num_nodes), 3.2 * len(cells)))
    axes = [axes] if len(cells) == 1 else list(axes)
    for ax, (kind, cell) in zip(axes, cells.items()):
        draw_cell(ax, cell, f"{title} {kind} cell".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
