"""NAT++ Fig. 7: accuracy gain vs GCN depth (a) and vs the entropy weight lambda (b), for NAT and NAT++.

Run:
    python experiments/sweep.py --ablations gcn_layers lam --out sweeps/nb201     # the runs (NB201: ~30 min)
    python analysis/fig7_ablations.py sweeps/nb201 --out tables/

Writes fig7_gcn_layers.{md,tex,csv}, fig7_lam.{md,tex,csv} and fig7.png: mean ± std over seeds of the gain of
the transformed cells over their inputs (points; 1 sample of the policy per input, and the best of k samples).
Expected shape in the papers: a 2-layer GCN and lambda = 3e-2 are best, lambda = 3 is near random.
"""
from __future__ import annotations

import sys
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry
from natrl.results import check_uniform, load_runs, pm, provenance, require, summarise, write_table

PANELS = {"gcn_layers": "number of layers in GCN", "lam": "lambda"}
RULES = {"nat": "NAT", "natpp": "NAT++"}


def ablation_frame(frame, tag: str, key: str, metrics: list[str]):
    """Per (rule, value of ``key``): mean/std over seeds of ``metrics`` for the runs of ablation ``tag``."""
    runs = frame[(frame.get("tag") == tag) & (frame["policy"] == "gcn")] if "tag" in frame else frame.iloc[:0]
    runs = require(runs, f"runs of the {tag} ablation", f"python experiments/sweep.py --ablations {tag}")
    return runs, summarise(check_uniform(runs), ["rule", key], metrics)


def shown_table(summary, key: str, metrics: dict[str, str]):
    """Rows = values of ``key``; columns = (rule, metric) as 'mean ± std (k seeds)'."""
    import pandas as pd
    rows = []
    for value, g in summary.groupby(key, sort=True):
        row = {key: f"{value:g}"}
        for rule in ("nat", "natpp"):
            r = g[g["rule"] == rule]
            for m, label in metrics.items():
                row[f"{RULES[rule]} {label}"] = ("-" if r.empty else
                                                 f"{pm(r[f'{m}_mean'].iloc[0], r[f'{m}_std'].iloc[0])} ({r['n_seeds'].iloc[0]})")
        rows.append(row)
    return pd.DataFrame(rows)


def plot(summaries: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(summaries), figsize=(5 * len(summaries), 3.6))
    axes = axes if len(summaries) > 1 else [axes]
    for ax, (key, (summary, source)) in zip(axes, summaries.items()):
        for rule, style in (("nat", "o--"), ("natpp", "s-")):
            r = summary[summary["rule"] == rule].sort_values(key)
            if not r.empty:
                ax.errorbar(r[key], r["gain_sample_mean"], yerr=r["gain_sample_std"], fmt=style, capsize=3,
                            label=RULES[rule])
        if key == "lam":
            ax.set_xscale("log")
        ax.set_xlabel(PANELS[key])
        ax.set_ylabel("accuracy gain (points)")
        ax.set_title(source, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="sweep or run directories")
    p.add_argument("--out", default="tables", help="output directory (default: tables)")
    args = p.parse_args(argv)
    frame = load_runs(args.paths)
    out = Path(args.out)
    summaries = {}
    metrics = {"gain_sample": "gain, 1 sample", "gain_best_of": "gain, best of k"}
    for key in PANELS:
        try:
            runs, summary = ablation_frame(frame, key, key, list(metrics))
        except NatrlError as e:  # one missing panel still lets the other be drawn
            print(f"skipping {key}: {e}", file=sys.stderr)
            continue
        caption = (f"NAT++ Fig. 7 ({'a' if key == 'gcn_layers' else 'b'}): mean accuracy gain (points) of the "
                   f"transformed cells over their inputs vs {PANELS[key]}; mean ± std over seeds (number of seeds). "
                   + provenance(runs))
        print(write_table(out, f"fig7_{key}", shown_table(summary, key, metrics), caption, summary))
        summaries[key] = (summary, sorted(set(runs["source"]))[0])
    if not summaries:
        raise NatrlError("no runs of the gcn_layers or lam ablations found; make them with: "
                         "python experiments/sweep.py --ablations gcn_layers lam")
    plot(summaries, out / "fig7.png")
    print(f"wrote {out / 'fig7.png'}")


if __name__ == "__main__":
    main()
    sys.exit(0)
