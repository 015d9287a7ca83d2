"""NAT++ Fig. 7: accuracy gain vs GCN depth (a) and vs the entropy weight lambda (b), for NAT and NAT++.

Run:
    python experiments/sweep.py --ablations gcn_layers lam --out sweeps/nb201     # the runs (NB201: ~30 min)
    python analysis/fig7_ablations.py sweeps/nb201 --out tables/ [--force]

Writes fig7_gcn_layers.{md,tex,csv}, fig7_lam.{md,tex,csv} and fig7.png into --out (created if missing): mean ±
std over seeds of the gain of the transformed cells over their inputs (points; 1 sample of the policy per input,
and the best of k samples), and prints the tables. A missing ablation is skipped with a note.
A single run (train_natpp.py, no sweep) given beside a sweep is the grid point its config holds in both
panels, e.g. a paper preset's main runs are its lambda = 0.003 and 2-layer points; a seed counts once per point.
Expected shape in the papers: a 2-layer GCN and lambda = 3e-2 are best, lambda = 3 is near random.
NB201 numbers: every pick (best of k, fixed rule, optimum) is chosen on the reward table; the table reports
the official test accuracy when the runs had --report-table (the official CSV), else the reward table itself,
and its caption names both measurements (then: "optimistic").
Files already in --out are refused unless --force; bad or missing run directories exit 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.ablations import Fig7Config, fig7
from natrl.tables.common import with_positionals


def main(argv=None):
    return cli.main(Fig7Config, fig7, __doc__, with_positionals(Fig7Config, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
