"""NAT++ Table 5: effect of m (inputs per update) and n (samples per input) on the gain and the search cost.

Run:
    python experiments/sweep.py --ablations m n --out sweeps/nb201
    python analysis/table5_mn.py sweeps/nb201 --out tables/

Writes table5.{md,tex,csv}: for m in {1, 5, 10, 30} with n = 1 and n in {1, 5, 10, 30} with m = 1, the mean ±
std over seeds of the gain (points, 1 sample per input) and the search cost (seconds of policy training, and
reward evaluations = updates x m x n). The papers see little gain from larger m and n at a cost that grows
linearly; here every setting gets the same number of updates, as in the paper.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from natrl.errors import ArgumentParser, cli_entry
from natrl.results import check_uniform, load_runs, pm, provenance, require, summarise, write_table

RULES = {"nat": "NAT", "natpp": "NAT++"}


def table5(frame: pd.DataFrame):
    runs = frame[frame["tag"].isin(["m", "n"])] if "tag" in frame else frame.iloc[:0]
    runs = check_uniform(require(runs, "runs of the m or n ablations", "python experiments/sweep.py --ablations m n"))
    summary = summarise(runs, ["tag", "rule", "m", "n"], ["gain_sample", "search_seconds", "reward_evaluations"])
    rows = []
    for (tag, m, n), g in summary.groupby(["tag", "m", "n"], sort=True):
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
        rows.append(row)
    shown = pd.DataFrame(rows).sort_values(["varied", "m", "n"])
    caption = ("NAT++ Table 5: effect of m (n = 1) and n (m = 1); gain = mean accuracy gain (points) of one sampled "
               "transformation per input, mean ± std over seeds (number of seeds); search cost = seconds of policy "
               "training on one CPU core and reward evaluations (updates x m x n). " + provenance(runs))
    return shown, summary, caption


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="sweep or run directories")
    p.add_argument("--out", default="tables", help="output directory (default: tables)")
    args = p.parse_args(argv)
    shown, summary, caption = table5(load_runs(args.paths))
    print(write_table(Path(args.out), "table5", shown, caption, summary))


if __name__ == "__main__":
    main()
    sys.exit(0)
