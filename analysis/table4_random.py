"""NAT++ Table 4 and Fig. 6: random input architectures vs their NAT / NAT++ transformations.

Run:
    python experiments/sweep.py --ablations policy --out sweeps/nb201          # or any train_natpp runs
    python analysis/table4_random.py sweeps/nb201 --out tables/ [--inputs 20]

Uses the GCN-policy runs found (NB201 tabular or supernet; a sweep contributes its `policy` ablation, a plain
run directory itself). NB201: the same ``--inputs`` held-out inputs (drawn with ``--seed`` from the held-out
split every run shares) and the cells the policy derives from them (best of k samples by the reward table, the
papers' derive), with the table's accuracy and the NAS-Bench-201 network's params and MAdds; pooled over the
seeds of each rule. Supernet runs: their own random inputs, supernet proxy accuracy, CIFAR-10 DARTS-network costs.
Writes table4.{md,tex,csv} (mean ± std) and fig6.png (accuracy vs params of every input and its transforms).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from natrl.errors import ArgumentParser, NatrlError, cli_entry
from natrl.results import check_uniform, load_runs, pm, require, write_table

RULES = {"nat": "NAT", "natpp": "NAT++"}


def nb201_points(run: pd.Series, inputs: list[str] | None, k: int, seed: int):
    """(inputs used, DataFrame of input/derived points) of one NB201 run."""
    from natrl.cells import from_arch_str
    from natrl.costs import nb201_cost
    records = json.loads((Path(run["path"]) / "derived.json").read_text())
    by_input = {r["input"]: r for r in records}
    if inputs is None:
        rng = np.random.default_rng(seed)
        inputs = [records[i]["input"] for i in sorted(rng.choice(len(records), min(k, len(records)), replace=False))]
    best = next(key for key in records[0] if key.startswith("policy (best of"))
    rows = []
    for beta in inputs:
        if beta not in by_input:
            raise NatrlError(f"{run['path']} has no record of input {beta}; its held-out split differs "
                             "(compare runs with the same --holdout-frac)")
        rec = by_input[beta]
        for who, arch, acc in (("input", beta, rec["input_acc"]), (RULES[run["rule"]], rec[best]["arch_str"],
                                                                   rec[best]["acc"])):
            cost = nb201_cost([op for op, _, _ in from_arch_str(arch).normal.edges])
            rows.append({"who": who, "input": beta, "arch": arch, "acc": acc, "params_M": cost.params_m,
                         "madds_M": cost.madds_m, "seed": run["seed"], "run": run["run"]})
    return inputs, pd.DataFrame(rows)


def supernet_points(run: pd.Series):
    records = json.loads((Path(run["path"]) / "derived.json").read_text())
    rows = []
    for r in records:
        for i, (who, acc) in enumerate((("input", r["acc_input"]), (RULES[run["rule"]], r["acc_derived"]))):
            rows.append({"who": who, "input": r["input_darts"], "arch": r["derived_darts"] if i else r["input_darts"],
                         "acc": acc, "params_M": r["params_M"][i], "madds_M": r["madds_M"][i], "seed": run["seed"],
                         "run": run["run"]})
    return pd.DataFrame(rows)


def table4(frame: pd.DataFrame, k: int = 20, seed: int = 0):
    runs = frame[(frame["policy"] == "gcn") & frame["kind"].isin(["nb201", "supernet"])] if len(frame) else frame
    if "tag" in runs:
        runs = runs[runs["tag"].isin(["", "policy"])]
    runs = require(runs, "GCN-policy runs (train_natpp.py or the sweep's policy ablation)",
                   "python experiments/sweep.py --ablations policy")
    if runs["kind"].nunique() > 1:
        raise NatrlError("the runs mix NB201 and supernet results; pass one kind at a time")
    check_uniform(runs)
    kind = runs["kind"].iloc[0]
    parts, inputs = [], None
    for _, run in runs.sort_values(["rule", "seed"]).iterrows():
        if kind == "nb201":
            inputs, pts = nb201_points(run, inputs, k, seed)
        else:
            pts = supernet_points(run)
        parts.append(pts)
    points = pd.concat(parts, ignore_index=True)
    # every run lists the same inputs: count each input once in the 'random inputs' row
    inputs_rows = points[points["who"] == "input"].drop_duplicates("input" if kind == "nb201" else ["input", "run"])
    rows = []
    for who, g in [("random inputs", inputs_rows)] + [(name, points[points["who"] == name]) for name in RULES.values()]:
        if g.empty:
            continue
        src = points[points["who"] == "input"] if who == "random inputs" else g  # whose seeds and runs
        rows.append({"architectures": who, "#Params (M)": pm(g["params_M"].mean(), g["params_M"].std(ddof=0), 3),
                     "#MAdds (M)": pm(g["madds_M"].mean(), g["madds_M"].std(ddof=0), 1),
                     "accuracy (%)": pm(g["acc"].mean(), g["acc"].std(ddof=0)),
                     "cells": len(g), "seeds": " ".join(map(str, sorted(set(src["seed"])))),
                     "runs": " ".join(sorted(set(src["run"])))})
    shown = pd.DataFrame(rows)
    if kind == "nb201":
        caption = (f"NAT++ Table 4 on NAS-Bench-201: {len(inputs_rows)} random held-out input cells and the cells "
                   "each policy derives from them (best of k samples by the reward table), pooled over seeds; "
                   "accuracy = tabular NAS-Bench-201 (analog-nasbench), costs of the NAS-Bench-201 network (C=16, N=5).")
    else:
        caption = ("NAT++ Table 4 on the supernet proxy: random inputs of each run and the cells derived from them; "
                   "accuracy = supernet proxy (60% split of the CIFAR-10 training set), costs of the CIFAR-10 "
                   "evaluation network (C=36, 20 cells).")
    return shown[["architectures", "#Params (M)", "#MAdds (M)", "accuracy (%)", "cells", "seeds"]], shown, caption, points


def plot_fig6(points: pd.DataFrame, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2))
    first = points[points["seed"] == points["seed"].min()]
    for who, marker, color in (("input", "o", "0.5"), ("NAT", "^", "tab:blue"), ("NAT++", "s", "tab:red")):
        g = first[first["who"] == who].drop_duplicates(["input", "run"] if who != "input" else ["input"])
        if not g.empty:
            ax.scatter(g["params_M"], g["acc"], marker=marker, color=color, s=22, alpha=0.8,
                       label="random inputs" if who == "input" else who)
    ax.set_xlabel("#Params (M)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Fig. 6: inputs and their transforms (seed {int(points['seed'].min())})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="sweep or run directories")
    p.add_argument("--inputs", type=int, default=20, help="NB201: random held-out inputs (default 20, as the paper)")
    p.add_argument("--seed", type=int, default=0, help="NB201: seed of the choice of inputs (default 0)")
    p.add_argument("--out", default="tables", help="output directory (default: tables)")
    args = p.parse_args(argv)
    if args.inputs < 1:
        raise NatrlError("--inputs must be >= 1")
    shown, data, caption, points = table4(load_runs(args.paths), args.inputs, args.seed)
    out = Path(args.out)
    print(write_table(out, "table4", shown, caption, data))
    points.to_csv(out / "fig6_points.csv", index=False)
    plot_fig6(points, out / "fig6.png")
    print(f"wrote {out / 'fig6.png'}")


if __name__ == "__main__":
    main()
    sys.exit(0)
