"""Transform cells with a trained policy and report accuracy and cost before and after.

Run:
    python experiments/derive.py RUN_DIR '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    python experiments/derive.py RUN_DIR cell.json --mode argmax --out derived.json
    python experiments/derive.py DARTS_RUN_DIR DARTS_V2 PC_DARTS_cifar VGG ResBlock MobileNetV2 --out derived/

RUN_DIR is a train_natpp.py / train_nat.py run directory (its policy.pt is loaded with weights_only=True).
Cells are NB201 arch_str, genotype JSON files, Genotype(...) text or registry names of the policy's space.
Scores: the NB201 table on nb201 runs; on darts runs the run's trained supernet (its last checkpoint).
--out FILE.json writes the records; --out DIR also writes each derived genotype as JSON, its DARTS text and a
picture of its cells; existing files are kept unless --force.
Expected: a trained NAT++ policy keeps or improves the scored accuracy with no more MAdds.
"""  # noqa: E501

from natrl import cli
from natrl.runs.derive import DeriveConfig, derive


def main(argv=None):
    return cli.main(DeriveConfig, derive, __doc__, argv)


if __name__ == "__main__":
    main()
