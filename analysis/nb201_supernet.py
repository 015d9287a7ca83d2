"""The supernet reward against the truth on NAS-Bench-201: true gains of supernet-derived cells, rank correlation.

Run (docs/nb201_supernet.md has the commands of the runs and what they measured):
    python experiments/train_natpp.py --space nb201 --reward supernet --data CIFAR10 \
        --report-table path/to/nb201_cifar10_valid_avg.csv.gz --out runs/nb201-supernet-s0   # see the docs' flags
    python analysis/nb201_supernet.py runs/nb201-supernet-s0 [more seeds] [--tabular runs/tabular-s0 ...] \
        --out tables/ [--force]

Writes nb201_supernet.md / .csv (true gains, mean ± std over the runs: the policy's 1 sample, argmax and best of k
chosen by the supernet, next to random valid transformations, the best fixed per-op rule and the per-input
optimum, and the tabular-reward policy) and nb201_supernet_correlation.png / .csv (Kendall tau of the
supernet's R(alpha|beta) against the true gain, per supernet epoch). Files already in --out are refused unless
--force; a directory that is not such a run exits 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.common import with_positionals
from natrl.tables.truth import TruthConfig, truth_tables


def main(argv=None):
    return cli.main(TruthConfig, truth_tables, __doc__, with_positionals(TruthConfig, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
