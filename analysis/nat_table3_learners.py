"""NAT Table 3: policy learners compared (Random Search, LSTM, Maximum-GCN, Sampling-GCN), for NAT and NAT++.

Run:
    python experiments/sweep.py --ablations policy --out sweeps/nb201
    python analysis/nat_table3_learners.py sweeps/nb201 --out tables/ [--force]

Writes nat_table3.{md,tex,csv} into --out (created if missing) and prints the table: mean ± std over seeds of the
gain (points) of the transformed cells over their inputs. Random Search = a uniformly random valid transition
(the untrained ``random`` policy); LSTM = one sample of the LSTM policy; Maximum-GCN = the GCN policy's argmax;
Sampling-GCN = one sample of the GCN policy, and the best of k samples chosen by the reward (the papers'
derive). The paper's order: Sampling-GCN > Maximum-GCN, LSTM > Random Search. An extra row, not in the paper,
gives the LSTM the same derive (best of k), so that the two learners are compared on equal terms.
NB201 numbers: every pick (best of k, fixed rule, optimum) is chosen on the reward table; the table reports
the official test accuracy when the runs had --report-table (the official CSV), else the reward table itself,
and its caption names both measurements (then: "optimistic").
A single GCN run (train_natpp.py) given beside a sweep gives the GCN rows for its rule and seed.
Files already in --out are refused unless --force; bad or missing run directories exit 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.ablations import LearnersConfig, learners_command
from natrl.tables.common import with_positionals


def main(argv=None):
    return cli.main(LearnersConfig, learners_command, __doc__, with_positionals(LearnersConfig, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
