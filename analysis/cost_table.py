"""Params and MAdds of every registry architecture next to the papers' published numbers.

Run:
    python analysis/cost_table.py [--out DIR] [--force]   # Markdown on stdout; with --out also cost_table.{md,csv}

Expected: DARTS_V2 3.35M / 528.4M on CIFAR-10 (paper 3.3 / 528); takes about a minute on 2 cores. --out is
created if missing; cost_table.md / .csv already there are refused (before the counting starts) unless --force.
"""

import sys

from natrl import cli
from natrl.tables.costs import CostTableConfig, cost_table


def main(argv=None):
    return cli.main(CostTableConfig, cost_table, __doc__, argv)


if __name__ == "__main__":
    main()
    sys.exit(0)
