"""NAT++ Table 1 (hand-crafted models) and Table 3 (NAS-based models): original / NAT / NAT++ rows with params,
MAdds and accuracy, ours (trained from scratch) beside the paper's numbers (marked quoted).

Run:
    python experiments/train_eval.py --arch ResNet20 --data DATA --out evals/ResNet20-s0   # then --table 1
    for a in DARTS_V2 NAT_DARTS NATv2_DARTS; do
        python experiments/train_eval.py --arch $a --data DATA --seed 0 --out evals/$a-s0; done
    python analysis/table_models.py evals/ --table 3 --out tables/ [--force]

Our rows: train_eval.py runs grouped by (model, method, dataset); accuracy = final-epoch test accuracy, mean ±
std over seeds; params and MAdds measured on the network we trained (its cells, channels and depth are in the
source column; the tiny preset's numbers are not comparable with the paper's 600-epoch ones). The quoted rows
(NAO, ESNAC, APS and the papers' own original / NAT / NAT++ rows) come from natrl/tables/quoted.py (print them
with analysis/quoted.py). Writes table1 or table3 .{md,tex,csv} into --out (created if missing); files already
there are refused unless --force. Table 1's rows are the hand-crafted networks (train_eval.py --arch ResNet20,
--arch NATv2_ResNet20.json, ...; docs/handcrafted.md); each caption names the training recipe of its rows.
"""

import sys

from natrl import cli
from natrl.tables.common import with_positionals
from natrl.tables.models import ModelsConfig, models_command


def main(argv=None):
    return cli.main(ModelsConfig, models_command, __doc__, with_positionals(ModelsConfig, argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
