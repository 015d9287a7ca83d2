"""NAT++ Table 4 and Fig. 6: random input architectures vs their NAT / NAT++ transformations.

NB201 runs: the same ``inputs`` held-out inputs (drawn with ``seed`` from the held-out split every run shares)
and the cells each run's policy derives from them (best of k by the reward table), with their accuracy on the report
measurement (the official test accuracy; without one, on the reward table, said to be optimistic) and
the NAS-Bench-201 network's params and MAdds, pooled over the seeds of each rule. Supernet runs: their own random
inputs, supernet proxy accuracy and the CIFAR-10 DARTS network's costs (all read from each run's derived.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from natrl.config import knob
from natrl.errors import NatrlError
from natrl.results import Outputs, check_uniform, load_runs, pm, read_derived, require, require_fields
from natrl.tables.common import RULES, RunsTableConfig, nb201_genotype, select

CAPTIONS = {
    "nb201": (
        "NAT++ Table 4 on NAS-Bench-201: {n} random held-out input cells and the cells each policy derives "
        "from them, pooled over seeds; costs of the NAS-Bench-201 network (C=16, N=5). Selection (best of k "
        "samples) on {selected}; {report}"
    ),
    "supernet": (
        "NAT++ Table 4 on the supernet proxy: random inputs of each run and the cells derived from them; "
        "accuracy = supernet proxy (60% split of the CIFAR-10 training set), costs of the CIFAR-10 "
        "evaluation network (C=36, 20 cells)."
    ),
}


@dataclass
class Table4Config(RunsTableConfig):
    """NAT++ Table 4 and Fig. 6 from GCN-policy runs."""

    inputs: int = knob(20, "NB201: number of random held-out inputs (the paper: 20)", ge=1, le=100_000)
    seed: int = knob(0, "NB201: seed of the choice of inputs", ge=0, le=2**32 - 1)


def nb201_point(who: str, beta: str, arch: str, genotype, acc: float, run: pd.Series) -> dict:
    from natrl.costs import nb201_cost

    cost = nb201_cost([op for op, _, _ in genotype.normal.edges])
    return {
        "who": who,
        "input": beta,
        "arch": arch,
        "acc": acc,
        "params_M": cost.params_m,
        "madds_M": cost.madds_m,
        "seed": run["seed"],
        "run": run["run"],
    }


def nb201_points(run: pd.Series, inputs: list[str] | None, k: int, seed: int):
    """(inputs used, DataFrame of input/derived points) of one NB201 run; ``inputs`` None: draw ``k``. Every
    cell is parsed before any is costed."""
    records = read_derived(run["path"], "nb201")
    by_input = {r["input"]: r for r in records}
    if inputs is None:
        rng = np.random.default_rng(seed)
        inputs = [records[i]["input"] for i in sorted(rng.choice(len(records), min(k, len(records)), replace=False))]
    missing = [beta for beta in inputs if beta not in by_input]
    if missing:
        raise NatrlError(
            f"{run['path']} has no record of input {missing[0]}; its held-out split differs "
            "(compare runs with the same --holdout-frac)"
        )
    where = str(Path(run["path"]) / "derived.json")
    cells = {a: nb201_genotype(a, where) for beta in inputs for a in (beta, by_input[beta]["arch_str"])}
    honest = isinstance(run.get("reported_on"), str)  # report the cells on the measurement that did not choose them
    rows = []
    for beta in inputs:
        rec = by_input[beta]
        if honest and "report_acc" not in rec:
            raise NatrlError(
                f"{where} has no report_acc of its cells (written before the report measurement was recorded); "
                "rerun that run"
            )
        acc_in, acc_out = (rec["input_report_acc"], rec["report_acc"]) if honest else (rec["input_acc"], rec["acc"])
        rows.append(nb201_point("input", beta, beta, cells[beta], acc_in, run))
        rows.append(nb201_point(RULES[run["rule"]], beta, rec["arch_str"], cells[rec["arch_str"]], acc_out, run))
    return inputs, pd.DataFrame(rows)


def supernet_points(run: pd.Series) -> pd.DataFrame:
    rows = []
    for r in read_derived(run["path"], "supernet"):
        for i, (who, arch, acc) in enumerate(
            (("input", r["input"], r["acc_input"]), (RULES[run["rule"]], r["derived"], r["acc_derived"]))
        ):
            rows.append(
                {
                    "who": who,
                    "input": r["input"],
                    "arch": arch,
                    "acc": acc,
                    "params_M": r["params_M"][i],
                    "madds_M": r["madds_M"][i],
                    "seed": run["seed"],
                    "run": run["run"],
                }
            )
    return pd.DataFrame(rows)


def gcn_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The GCN-policy NB201 or supernet runs (of a sweep: its policy ablation), of one kind and one budget."""
    runs = select(frame, policy="gcn", kind=["nb201", "supernet"])
    if "tag" in runs:
        runs = runs[runs["tag"].isin(["", "policy"]) | runs["tag"].isna()]
    runs = require(
        runs,
        "GCN-policy runs (train_natpp.py or the sweep's policy ablation)",
        "python experiments/sweep.py --ablations policy",
    )
    if runs["kind"].nunique() > 1:
        raise NatrlError("the runs mix NB201 and supernet results; pass one kind at a time")
    odd = require_fields(runs, ["rule"], "Table 4")[~runs["rule"].isin(list(RULES))]
    if len(odd):
        raise NatrlError(
            f"{odd['path'].iloc[0]}/config.json: rule {odd['rule'].iloc[0]!r} is not one of "
            f"{', '.join(RULES)}; repair or remove that run"
        )
    return check_uniform(runs)


def table4_points(runs: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    parts, inputs = [], None
    for _, run in runs.sort_values(["rule", "seed"]).iterrows():
        if run["kind"] == "nb201":
            inputs, pts = nb201_points(run, inputs, k, seed)
        else:
            pts = supernet_points(run)
        parts.append(pts)
    return pd.concat(parts, ignore_index=True)


def table4_row(who: str, g: pd.DataFrame, src: pd.DataFrame) -> dict:
    return {
        "architectures": who,
        "#Params (M)": pm(g["params_M"].mean(), g["params_M"].std(ddof=0), 3),
        "#MAdds (M)": pm(g["madds_M"].mean(), g["madds_M"].std(ddof=0), 1),
        "accuracy (%)": pm(g["acc"].mean(), g["acc"].std(ddof=0)),
        "cells": len(g),
        "seeds": " ".join(map(str, sorted(set(src["seed"])))),
        "runs": " ".join(sorted(set(src["run"]))),
    }


def table4(frame: pd.DataFrame, k: int = 20, seed: int = 0):
    """(shown, data, caption, points) of NAT++ Table 4; ``points``: every input and derived cell (Fig. 6)."""
    runs = gcn_runs(frame)
    kind = runs["kind"].iloc[0]
    points = table4_points(runs, k, seed)
    inputs = points[points["who"] == "input"]
    # every NB201 run lists the same inputs: count each input once in the 'random inputs' row
    unique_inputs = inputs.drop_duplicates("input" if kind == "nb201" else ["input", "run"])
    groups = [("random inputs", unique_inputs, inputs)]
    groups += [(name, points[points["who"] == name], points[points["who"] == name]) for name in RULES.values()]
    data = pd.DataFrame([table4_row(who, g, src) for who, g, src in groups if not g.empty])
    shown = data[["architectures", "#Params (M)", "#MAdds (M)", "accuracy (%)", "cells", "seeds"]]
    return shown, data, table4_caption(runs, kind, len(unique_inputs)), points


def table4_caption(runs: pd.DataFrame, kind: str, n: int) -> str:
    if kind != "nb201":
        return CAPTIONS[kind]
    selected = ", ".join(sorted(set(runs["selected_on"].dropna())))
    reported = sorted(set(runs["reported_on"].dropna())) if "reported_on" in runs else []
    report = (
        f"accuracy reported on {', '.join(reported)}."
        if reported
        else "accuracy reported on the same table: the derived cells' accuracy is optimistic (an oracle pick)."
    )
    return CAPTIONS["nb201"].format(n=n, selected=selected, report=report)


def fig6_figure(points: pd.DataFrame):
    """Accuracy vs params of the inputs and their transforms (the runs of the smallest seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    first = points[points["seed"] == points["seed"].min()]
    for who, marker, color in (("input", "o", "0.5"), ("NAT", "^", "tab:blue"), ("NAT++", "s", "tab:red")):
        g = first[first["who"] == who].drop_duplicates(["input", "run"] if who != "input" else ["input"])
        if not g.empty:
            ax.scatter(
                g["params_M"],
                g["acc"],
                marker=marker,
                color=color,
                s=22,
                alpha=0.8,
                label="random inputs" if who == "input" else who,
            )
    ax.set_xlabel("#Params (M)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Fig. 6: inputs and their transforms (seed {int(points['seed'].min())})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def table4_command(cfg: Table4Config, given=None) -> str:
    """table4.{md,tex,csv}, fig6_points.csv and fig6.png into ``cfg.out``; prints the table."""
    shown, data, caption, points = table4(load_runs(cfg.paths), cfg.inputs, cfg.seed)
    out = Outputs(cfg.out, cfg.force)
    md = out.table("table4", shown, caption, data)
    out.csv("fig6_points.csv", points)
    out.figure("fig6.png", fig6_figure(points))
    out.commit()
    print(md)
    print(f"wrote {out.dir / 'fig6.png'}")
    return md
