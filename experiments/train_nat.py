"""Train the NAT transformer (keep / null / skip per edge, the first paper) with REINFORCE on RLlib.

Run:
    python experiments/train_nat.py                  # NAT on NAS-Bench-201, tabular reward, CPU, minutes
    python experiments/train_nat.py --policy lstm --seed 2
    python experiments/train_nat.py --preset nat     # NAT's own settings: m = n = 1, lambda 0.003, 46,900 updates

Same flags, outputs and evaluation as experiments/train_natpp.py with --rule nat as the default. NAT's smaller
action set gains less than NAT++ (it can only remove ops or replace them by skip connections).
"""

from natrl import cli
from natrl.runs.transformer import TrainConfig, train


def main(argv=None):
    return cli.main(TrainConfig, train, __doc__, argv, defaults={"rule": "nat"})


if __name__ == "__main__":
    main()
