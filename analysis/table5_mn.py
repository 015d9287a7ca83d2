"""NAT++ Table 5: effect of m (inputs per update) and n (samples per input) on the gain and the search cost.

Run:
    python experiments/sweep.py --ablations m n --out sweeps/nb201
    python analysis/table5_mn.py sweeps/nb201 --out tables/ [--force]

Writes table5.{md,tex,csv} into --out (created if missing) and prints the table: for m in {1, 5, 10, 30} with
n = 1 and n in {1, 5, 10, 30} with m = 1, the mean ± std over seeds of the gain (points, 1 sample per input) and
the search cost (seconds of policy training, and reward evaluations = updates x m x n). The papers see little
gain from larger m and n at a cost that grows linearly; every setting gets the same number of updates.
NB201 numbers: every pick (best of k, fixed rule, optimum) is chosen on the reward table; the table reports
the official test accuracy when the runs had --report-table (the official CSV), else the reward table itself,
and its caption names both measurements (then: "optimistic").
Files already in --out are refused unless --force; bad or missing run directories exit 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.ablations import Table5Config, table5_command
from natrl.tables.common import with_positionals


def main(argv=None):
    return cli.main(Table5Config, table5_command, __doc__, with_positionals(Table5Config, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
