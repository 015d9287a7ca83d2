"""NAT++ Fig. 5: pictures of original cells next to their NAT and NAT++ transformations.

Run:
    python analysis/fig5_cells.py --out tables/                                  # the published cells
    python analysis/fig5_cells.py --rows "DARTS_V2 derived/nat/DARTS_V2.json derived/natpp/DARTS_V2.json"
    python analysis/fig5_cells.py --nb201 sweeps/nb201/runs/policy/nat-policygcn-s0 \\
                                          sweeps/nb201/runs/policy/natpp-policygcn-s0 --inputs 3

Each ``--rows`` entry is one row of the figure: architectures (registry names, genotype JSON files, Genotype(...)
texts or arch_str) separated by spaces, drawn left to right (the default rows are the published original / NAT /
NAT++ cells of VGG, ResBlock, MobileNetV2, DARTS and ENAS). ``--nb201 NAT_RUN NATPP_RUN`` instead draws
``--inputs`` held-out NB201 inputs with the cells each run's policy derives from them (best of k), with their
table accuracies. ``--reduce`` adds the reduction cells. Writes fig5.png.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry

DEFAULT_ROWS = [f"{m} NAT_{m} NATv2_{m}" for m in ("VGG", "ResBlock", "DARTS", "ENAS")] + \
               ["Mobilenetv2 NAT_MobileNetv2 NATv2_MobileNetv2"]


def resolve_any(spec: str):
    """(panel title, genotype) of anything ``zoo.resolve`` reads; arch_str titles are shortened to 'cell'."""
    from natrl.zoo import resolve
    name, genotype = resolve(spec)
    return ("cell" if name.startswith("|") else name), genotype


def nb201_panels(nat_run: str, natpp_run: str, k: int, seed: int = 0):
    """Rows of (title, genotype): an input, then the NAT and NAT++ derived cells, for ``k`` held-out inputs."""
    import numpy as np

    from natrl.cells import from_arch_str
    recs = {}
    for label, run in (("NAT", nat_run), ("NAT++", natpp_run)):
        path = Path(run) / "derived.json"
        if not path.exists():
            raise NatrlError(f"{path} does not exist; --nb201 takes two NB201 run directories of train_natpp.py")
        recs[label] = {r["input"]: r for r in json.loads(path.read_text())}
    common = sorted(set(recs["NAT"]) & set(recs["NAT++"]))
    if not common:
        raise NatrlError("the two runs share no held-out input; use runs with the same --holdout-frac")
    picks = np.random.default_rng(seed).choice(len(common), min(k, len(common)), replace=False)
    rows = []
    for i in sorted(picks):
        beta = common[i]
        row = [(f"input ({recs['NAT'][beta]['input_acc']:.2f}%)", from_arch_str(beta))]
        for label in ("NAT", "NAT++"):
            rec = recs[label][beta]
            best = next(key for key in rec if key.startswith("policy (best of"))
            row.append((f"{label} ({rec[best]['acc']:.2f}%)", from_arch_str(rec[best]["arch_str"])))
        rows.append(row)
    return rows


def draw(rows, path: Path, reduce: bool = False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from natrl.plotting import draw_cell
    kinds = ["normal", "reduce"] if reduce else ["normal"]
    ncols = max(len(r) for r in rows)
    nrows = len(rows) * len(kinds)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.6 * nrows), squeeze=False)
    for r, row in enumerate(rows):
        for j, kind in enumerate(kinds):
            for c in range(ncols):
                ax = axes[r * len(kinds) + j][c]
                if c >= len(row):
                    ax.axis("off")
                    continue
                title, g = row[c]
                cell = g.normal if kind == "normal" or g.reduce is None else g.reduce
                draw_cell(ax, cell, f"{title}" + (f" ({kind})" if reduce else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", default=None, help="one quoted, space-separated list of cells per row")
    p.add_argument("--nb201", nargs=2, metavar=("NAT_RUN", "NATPP_RUN"), help="draw NB201 inputs and derived cells")
    p.add_argument("--inputs", type=int, default=3, help="--nb201: number of inputs (default 3)")
    p.add_argument("--reduce", action="store_true", help="also draw reduction cells")
    p.add_argument("--out", default="tables", help="output directory (default: tables)")
    args = p.parse_args(argv)
    if args.nb201 and args.rows:
        raise NatrlError("give --rows or --nb201, not both")
    if args.nb201:
        rows = nb201_panels(*args.nb201, args.inputs)
    else:
        rows = [[resolve_any(s) for s in row.split()] for row in (args.rows or DEFAULT_ROWS)]
        if any(not r for r in rows):
            raise NatrlError("an empty --rows entry; give space-separated cells, e.g. --rows \"DARTS_V2 NAT_DARTS\"")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    draw(rows, out / "fig5.png", args.reduce)
    print(f"wrote {out / 'fig5.png'} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
    sys.exit(0)
