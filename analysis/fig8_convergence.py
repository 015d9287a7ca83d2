"""NAT++ Fig. 8: convergence of the transformer (training reward and held-out gain of the derived cells).

Run:
    python experiments/train_natpp.py --eval-every 100 --report-table path/to/nb201_cifar10_valid_avg.csv.gz \
        --out runs/fig8-s0                                   # ~1 minute on 2 cores; any --preset works
    python analysis/fig8_convergence.py runs/fig8-s0 [more runs] --out tables/ [--force]

Writes fig8.png (two panels: the batch-mean training reward, and the mean gain of the cells the policy derives
for the 3,125 held-out inputs, 1 sample and argmax, every --eval-every updates), fig8.csv and fig8.md into
--out. Held-out gains are on the official test accuracy when the run had --report-table, else on the reward
table; nothing is selected on them. Expected: both rise and flatten as the policy's entropy falls.
Files already in --out are refused unless --force; a run without convergence.csv exits 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.common import with_positionals
from natrl.tables.convergence import Fig8Config, fig8


def main(argv=None):
    return cli.main(Fig8Config, fig8, __doc__, with_positionals(Fig8Config, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
