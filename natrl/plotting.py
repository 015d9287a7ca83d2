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


def draw_cell(ax, cell: Cell, title: str = ""):
    n = cell.num_nodes
    two_inputs = cell.num_inputs == 2
    # Inputs stacked at x=0; intermediate nodes left to right, staggered up/down so that edges skipping a
    # node do not run through it; the concat output (DARTS space) at the far right.
    pos = {}
    for i in range(n):
        if two_inputs and i < 2:
            pos[i] = (0.0, 1.0 if i == 0 else -1.0)
        else:
            x = float(i - 1 if two_inputs else i)
            pos[i] = (x, 0.45 * (1 if i % 2 else -1) if 0 < x else 0.0)
    if two_inputs:
        pos[n] = (float(n - 1), 0.0)
    xs = [x for x, _ in pos.values()]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(-1.7, 1.7)
    to_px, from_px = ax.transData.transform, ax.transData.inverted().transform
    seen: dict[tuple[int, int], int] = {}
    for op, s, d in cell.edges:
        k = seen.get((s, d), 0)
        seen[(s, d)] = k + 1
        rad = (0.12 if d - s == 1 else 0.3) * (1 + k) * (1 if (d + k) % 2 else -1)
        info = OP_INFO.get(op)
        color = TYPE_COLORS.get(info.type if info else "other", "#000000")
        (x0, y0), (x1, y1) = pos[s], pos[d]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(
                arrowstyle="-|>",
                color=color,
                lw=1.6,
                ls="--" if info and info.type == "null" else "-",
                shrinkA=13,
                shrinkB=13,
                connectionstyle=f"arc3,rad={rad}",
            ),
        )
        # label at t=0.6 on the quadratic Bezier that arc3 draws in display space: its control point is the
        # chord midpoint moved by rad times the chord, rotated
        (px0, py0), (px1, py1) = to_px((x0, y0)), to_px((x1, y1))
        cx, cy = (px0 + px1) / 2 + rad * (py1 - py0), (py0 + py1) / 2 - rad * (px1 - px0)
        t = 0.6
        lx, ly = from_px(
            (
                (1 - t) ** 2 * px0 + 2 * t * (1 - t) * cx + t**2 * px1,
                (1 - t) ** 2 * py0 + 2 * t * (1 - t) * cy + t**2 * py1,
            )
        )
        ax.text(
            lx,
            ly,
            short_name(op),
            fontsize=7,
            color=color,
            ha="center",
            va="center",
            bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.9),
        )
    if two_inputs:
        for c in cell.concat:
            ax.annotate(
                "",
                xy=pos[n],
                xytext=pos[c],
                arrowprops=dict(
                    arrowstyle="-|>", color="#bbbbbb", lw=0.8, shrinkA=13, shrinkB=13, connectionstyle="arc3,rad=0.1"
                ),
            )
    for i, (x, y) in pos.items():
        is_input = i < cell.num_inputs
        label = "c_{k}" if i == n else _node_label(cell, i)
        ax.text(
            x,
            y,
            f"${label}$" if "_" in label else label,
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(
                boxstyle="circle" if not is_input and i != n else "round",
                fc="#fff2cc" if is_input else ("#d9ead3" if i == n else "#dae8fc"),
                ec="#444444",
            ),
        )
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
