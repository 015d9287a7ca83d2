"""Train the NAT transformer (keep / null / skip per edge, the first paper) with REINFORCE on RLlib.

Run:
    python experiments/train_nat.py                  # NAT on NAS-Bench-201, tabular reward, CPU, minutes
    python experiments/train_nat.py --policy lstm --seed 2

Same flags, outputs and evaluation as experiments/train_natpp.py; only the transition rule differs. NAT's
smaller action set gains less than NAT++ (it can only remove ops or replace them by skip connections).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_natpp import TrainConfig, main  # noqa: E402

if __name__ == "__main__":
    main(defaults=TrainConfig(rule="nat"))
    sys.exit(0)
