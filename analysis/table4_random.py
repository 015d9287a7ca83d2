"""NAT++ Table 4 and Fig. 6: random input architectures vs their NAT / NAT++ transformations.

Run:
    python experiments/sweep.py --ablations policy --out sweeps/nb201          # or any train_natpp runs
    python analysis/table4_random.py sweeps/nb201 --out tables/ [--inputs 20] [--seed 0] [--force]

Uses the GCN-policy runs found (NB201 tabular or supernet; a sweep contributes its `policy` ablation, a plain
run directory itself). NB201: the same --inputs held-out inputs (drawn with --seed from the held-out split every
run shares) and the cells each policy derives from them (best of k samples by the reward table), with their
accuracy (see below) and the NAS-Bench-201 network's params and MAdds, pooled over the seeds of each rule.
NB201 numbers: every pick (best of k, fixed rule, optimum) is chosen on the reward table; the table reports
the official test accuracy when the runs had --report-table (the official CSV), else the reward table itself,
and its caption names both measurements (then: "optimistic").
Supernet runs: their own random inputs, supernet proxy accuracy, CIFAR-10 DARTS-network costs.
Writes table4.{md,tex,csv} (mean ± std), fig6_points.csv and fig6.png (accuracy vs params of every input and
its transforms) into --out (created if missing). Files already there are refused unless --force; bad or
missing run directories (or a derived.json that is missing or malformed) exit 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.common import with_positionals
from natrl.tables.random_inputs import Table4Config, table4_command


def main(argv=None):
    return cli.main(Table4Config, table4_command, __doc__, with_positionals(Table4Config, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
