"""Transform cells with a trained policy and report accuracy and cost before and after.

Run:
    python experiments/derive.py RUN_DIR '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    python experiments/derive.py RUN_DIR cell.json --mode argmax --out derived.json
    python experiments/derive.py DARTS_RUN_DIR DARTS_V2 PC_DARTS_cifar VGG ResBlock MobileNetV2 --out derived/

RUN_DIR is a train_natpp.py / train_nat.py run directory (its policy.pt is loaded with weights_only=True).
Cells are NB201 arch_str, genotype JSON files, Genotype(...) text or registry names of the policy's space.
The pick is chosen on one measurement and reported on another, and every output names both:
- darts runs: the run's trained supernet (its last checkpoint); --mode best chooses on reward batches 0..S-1
  (--select-batches, default 1) and accuracies are reported on the next R batches (--report-batches, default up
  to 8): disjoint images of the 60% reward split. The test split is never used.
- nb201 runs: chosen on the reward table (--table); reported on the official test accuracy with
  --report-table path/to/nb201_cifar10_valid_avg.csv.gz (or that CSV as --table); otherwise on the table itself,
  and the caption says the pick is an oracle pick.
    python experiments/derive.py DARTS_RUN_DIR DARTS_V2 --select-batches 2 --report-batches 16
    python experiments/derive.py NB201_RUN_DIR cell.json --report-table path/to/nb201_cifar10_valid_avg.csv.gz
Costs: hand-crafted networks and their cells (ResNet20, ResBlock, MobileNetV2, ...) in their own networks;
other cells in the papers' evaluation network.
--out FILE.json writes the records; --out DIR also writes derived.md (the caption and a table), each derived
genotype as JSON, its DARTS text and a picture of its cells; existing files are kept unless --force.
Expected: a trained NAT++ policy keeps or improves the reported accuracy with no more MAdds.
"""  # noqa: E501

from natrl import cli
from natrl.runs.derive import DeriveConfig, derive


def main(argv=None):
    return cli.main(DeriveConfig, derive, __doc__, argv)


if __name__ == "__main__":
    main()
