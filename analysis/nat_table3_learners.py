"""NAT Table 3: policy learners compared (Random Search, LSTM, Maximum-GCN, Sampling-GCN), for NAT and NAT++.

Run:
    python experiments/sweep.py --ablations policy --out sweeps/nb201
    python analysis/nat_table3_learners.py sweeps/nb201 --out tables/

Writes nat_table3.{md,tex,csv}: mean ± std over seeds of the gain (points) of the transformed cells over their
inputs. Random Search = a uniformly random valid transition (the untrained ``random`` policy); LSTM = one sample
of the LSTM policy; Maximum-GCN = the GCN policy's argmax; Sampling-GCN = one sample of the GCN policy, and the
best of k samples chosen by the reward (the papers' derive). The paper's order: Sampling-GCN > Maximum-GCN,
LSTM > Random Search.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from natrl.errors import ArgumentParser, cli_entry
from natrl.results import check_uniform, load_runs, pm, provenance, require, summarise, write_table

RULES = {"nat": "NAT", "natpp": "NAT++"}
LEARNERS = [  # (row label, policy of the run, metric)
    ("Random Search", "random", "gain_sample"),
    ("LSTM", "lstm", "gain_sample"),
    ("Maximum-GCN", "gcn", "gain_argmax"),
    ("Sampling-GCN (1 sample)", "gcn", "gain_sample"),
    ("Sampling-GCN (best of k)", "gcn", "gain_best_of"),
]


def nat_table3(frame: pd.DataFrame):
    runs = frame[frame["tag"] == "policy"] if "tag" in frame else frame.iloc[:0]
    runs = require(runs, "runs of the policy ablation", "python experiments/sweep.py --ablations policy")
    check_uniform(runs[runs["policy"] != "random"])  # the random policy trains for 0 updates by design
    summary = summarise(runs, ["rule", "policy"], ["gain_sample", "gain_argmax", "gain_best_of"])
    rows = []
    for label, policy, metric in LEARNERS:
        row = {"policy learner": label}
        for rule, name in RULES.items():
            r = summary[(summary["rule"] == rule) & (summary["policy"] == policy)]
            row[name] = "-" if r.empty else f"{pm(r[f'{metric}_mean'].iloc[0], r[f'{metric}_std'].iloc[0])} ({r['n_seeds'].iloc[0]})"
        rows.append(row)
    caption = ("NAT Table 3: policy learners; mean accuracy gain (points) of the transformed cells over their inputs, "
               "mean ± std over seeds (number of seeds). " + provenance(runs))
    return pd.DataFrame(rows), summary, caption


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="sweep or run directories")
    p.add_argument("--out", default="tables", help="output directory (default: tables)")
    args = p.parse_args(argv)
    shown, summary, caption = nat_table3(load_runs(args.paths))
    print(write_table(Path(args.out), "nat_table3", shown, caption, summary))


if __name__ == "__main__":
    main()
    sys.exit(0)
