"""The sweep's ablations as the papers' tables: NAT++ Fig. 7 (GCN depth, lambda), NAT++ Table 5 (m, n and the
search cost) and NAT Table 3 (policy learners). Each reads the runs of ``experiments/sweep.py`` (the ``tag`` of
a run's config names its ablation), averages over seeds and writes ``.md``, ``.tex`` and ``.csv`` files."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd

from natrl.errors import NatrlError
from natrl.results import Outputs, check_uniform, load_runs, pm, provenance, require, require_fields, summarise
from natrl.tables.common import RULES, RunsTableConfig, select, write_one

PANELS = {"gcn_layers": "number of layers in GCN", "lam": "lambda"}
FIG7_METRICS = {"gain_sample": "gain, 1 sample", "gain_best_of": "gain, best of k"}
LEARNERS = [  # (row label, policy of the run, metric)
    ("Random Search", "random", "gain_sample"),
    ("LSTM", "lstm", "gain_sample"),
    ("LSTM (best of k)", "lstm", "gain_best_of"),  # not in the paper: the same derive as Sampling-GCN's, for fairness
    ("Maximum-GCN", "gcn", "gain_argmax"),
    ("Sampling-GCN (1 sample)", "gcn", "gain_sample"),
    ("Sampling-GCN (best of k)", "gcn", "gain_best_of"),
]


@dataclass
class Fig7Config(RunsTableConfig):
    """NAT++ Fig. 7 from the gcn_layers and lam ablations."""


@dataclass
class Table5Config(RunsTableConfig):
    """NAT++ Table 5 from the m and n ablations."""


@dataclass
class LearnersConfig(RunsTableConfig):
    """NAT Table 3 from the policy ablation."""


def cell(r: pd.DataFrame, metric: str) -> str:
    """'mean ± std (number of seeds)' of the first summary row of ``r``, or '-'."""
    if r.empty:
        return "-"
    return f"{pm(r[f'{metric}_mean'].iloc[0], r[f'{metric}_std'].iloc[0])} ({r['n_seeds'].iloc[0]})"


# ---- NAT++ Fig. 7 ----------------------------------------------------------------------------------------


def ablation_runs(frame: pd.DataFrame, tag: str, keys: list[str]) -> pd.DataFrame:
    """The runs of ablation ``tag``, and the single runs given beside them (no tag: ``train_natpp.py`` runs), each
    at the grid point its config holds; e.g. a paper preset's main runs are its lambda = 0.003 and 2-layer
    points. Two runs of one grid point and seed are refused: a cell must not count a seed twice."""
    untagged = frame["tag"].isna() | (frame["tag"] == "") if "tag" in frame else pd.Series(True, index=frame.index)
    runs = frame[(frame["tag"] == tag) | untagged] if "tag" in frame else frame
    point = ["rule", *keys, "seed"]
    if runs.empty or not set(point) <= set(runs):
        return runs
    twice = runs[runs.duplicated(point, keep=False)].sort_values("path")
    if len(twice):
        a, b = twice["path"].iloc[:2]
        raise NatrlError(f"{a} and {b} are the same grid point and seed; pass one of them")
    return runs


def ablation_frame(frame: pd.DataFrame, tag: str, key: str, metrics: list[str]):
    """(runs, summary): per (rule, value of ``key``), mean/std over seeds of ``metrics`` for the GCN-policy
    runs of ablation ``tag`` (and the single runs given beside them)."""
    runs = require(
        select(ablation_runs(frame, tag, [key]), policy="gcn"),
        f"runs of the {tag} ablation",
        f"python experiments/sweep.py --ablations {tag}",
    )
    require_fields(runs, ["rule", key], f"the {tag} ablation")
    return runs, summarise(check_uniform(runs), ["rule", key], metrics)


def shown_table(summary: pd.DataFrame, key: str, metrics: dict[str, str]) -> pd.DataFrame:
    """Rows = values of ``key``; columns = (rule, metric) as 'mean ± std (k seeds)'."""
    rows = []
    for value, g in summary.groupby(key, sort=True):
        row = {key: f"{value:g}"}
        for rule, name in RULES.items():
            for m, label in metrics.items():
                row[f"{name} {label}"] = cell(g[g["rule"] == rule], m)
        rows.append(row)
    return pd.DataFrame(rows)


def fig7_figure(summaries: dict):
    """Gain (1 sample) vs the ablated value, one panel per ablation; ``summaries``: key -> (summary, source)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(5 * len(summaries), 3.6), squeeze=False)
    for ax, (key, (summary, source)) in zip(axes[0], summaries.items()):
        for rule, style in (("nat", "o--"), ("natpp", "s-")):
            r = summary[summary["rule"] == rule].sort_values(key)
            if not r.empty:
                ax.errorbar(
                    r[key], r["gain_sample_mean"], yerr=r["gain_sample_std"], fmt=style, capsize=3, label=RULES[rule]
                )
        if key == "lam":
            ax.set_xscale("log")
        ax.set_xlabel(PANELS[key])
        ax.set_ylabel("accuracy gain (points)")
        ax.set_title(source, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def fig7_tables(frame: pd.DataFrame, out: Outputs) -> dict:
    """Adds fig7_<key>.{md,tex,csv} of each ablation found to ``out``; returns key -> (summary, source).
    One missing ablation still lets the other be made."""
    summaries, skipped = {}, []
    for key, label in PANELS.items():
        if select(frame, tag=key, policy="gcn").empty:
            skipped.append(
                f"skipping {key}: no runs of the {key} ablation found; make them with: "
                f"python experiments/sweep.py --ablations {key}"
            )
            continue
        runs, summary = ablation_frame(frame, key, key, list(FIG7_METRICS))
        caption = (
            f"NAT++ Fig. 7 ({'a' if key == 'gcn_layers' else 'b'}): mean accuracy gain (points) of the "
            f"transformed cells over their inputs vs {label}; mean ± std over seeds (number of seeds). "
            + provenance(runs)
        )
        out.table(f"fig7_{key}", shown_table(summary, key, FIG7_METRICS), caption, summary)
        summaries[key] = (summary, min(runs["source"]))
    if not summaries:
        raise NatrlError(
            "no runs of the gcn_layers or lam ablations found; make them with: "
            "python experiments/sweep.py --ablations gcn_layers lam"
        )
    for note in skipped:
        print(note, file=sys.stderr)
    return summaries


def fig7(cfg: Fig7Config, given=None) -> list:
    """The fig7 command: tables and figure into ``cfg.out``; prints the tables."""
    out = Outputs(cfg.out, cfg.force)
    summaries = fig7_tables(load_runs(cfg.paths), out)
    out.figure("fig7.png", fig7_figure(summaries))
    written = out.commit()
    for name, (_, text) in out.items.items():
        if name.endswith(".md"):
            print(text)
    print(f"wrote {', '.join(p.name for p in written)} into {out.dir}")
    return written


# ---- NAT++ Table 5 ---------------------------------------------------------------------------------------


def table5_row(tag: str, m, n, g: pd.DataFrame) -> dict:
    row = {"varied": tag, "m": int(m), "n": int(n)}
    for rule, label in RULES.items():
        r = g[g["rule"] == rule]
        if r.empty:
            row[f"{label} gain"], row[f"{label} search cost (s)"], row[f"{label} evaluations"] = "-", "-", "-"
            continue
        r = r.iloc[0]
        row[f"{label} gain"] = f"{pm(r['gain_sample_mean'], r['gain_sample_std'])} ({r['n_seeds']})"
        row[f"{label} search cost (s)"] = f"{r['search_seconds_mean']:.0f}"
        row[f"{label} evaluations"] = f"{r['reward_evaluations_mean']:.0f}"
    return row


def table5(frame: pd.DataFrame):
    """(shown, summary, caption) of NAT++ Table 5."""
    runs = require(
        select(frame, tag=["m", "n"]), "runs of the m or n ablations", "python experiments/sweep.py --ablations m n"
    )
    check_uniform(require_fields(runs, ["rule", "m", "n"], "Table 5"))
    summary = summarise(runs, ["tag", "rule", "m", "n"], ["gain_sample", "search_seconds", "reward_evaluations"])
    rows = [table5_row(tag, m, n, g) for (tag, m, n), g in summary.groupby(["tag", "m", "n"], sort=True)]
    shown = pd.DataFrame(rows).sort_values(["varied", "m", "n"])
    caption = (
        "NAT++ Table 5: effect of m (n = 1) and n (m = 1); gain = mean accuracy gain (points) of one sampled "
        "transformation per input, mean ± std over seeds (number of seeds); search cost = seconds of policy "
        "training on one CPU core and reward evaluations (updates x m x n). " + provenance(runs)
    )
    return shown, summary, caption


def table5_command(cfg: Table5Config, given=None) -> str:
    """The table5 command: table5.{md,tex,csv} into ``cfg.out``; prints the Markdown."""
    return write_one(cfg, "table5", *table5(load_runs(cfg.paths)))


# ---- NAT Table 3 -----------------------------------------------------------------------------------------


def nat_table3(frame: pd.DataFrame):
    """(shown, summary, caption) of NAT Table 3."""
    runs = require(
        ablation_runs(frame, "policy", ["policy"]),
        "runs of the policy ablation",
        "python experiments/sweep.py --ablations policy",
    )
    require_fields(runs, ["rule", "policy"], "NAT Table 3")
    check_uniform(runs[runs["policy"] != "random"])  # the random policy trains for 0 updates by design
    summary = summarise(runs, ["rule", "policy"], ["gain_sample", "gain_argmax", "gain_best_of"])
    rows = []
    for label, policy, metric in LEARNERS:
        row = {"policy learner": label}
        for rule, name in RULES.items():
            row[name] = cell(summary[(summary["rule"] == rule) & (summary["policy"] == policy)], metric)
        rows.append(row)
    caption = (
        "NAT Table 3: policy learners; mean accuracy gain (points) of the transformed cells over their inputs, "
        "mean ± std over seeds (number of seeds). " + provenance(runs)
    )
    return pd.DataFrame(rows), summary, caption


def learners_command(cfg: LearnersConfig, given=None) -> str:
    """The NAT Table 3 command: nat_table3.{md,tex,csv} into ``cfg.out``; prints the Markdown."""
    return write_one(cfg, "nat_table3", *nat_table3(load_runs(cfg.paths)))
