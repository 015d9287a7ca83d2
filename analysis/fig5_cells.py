"""NAT++ Fig. 5: pictures of original cells next to their NAT and NAT++ transformations.

Run:
    python analysis/fig5_cells.py --out tables/                                  # the published cells
    python analysis/fig5_cells.py --rows "DARTS_V2 derived/nat/DARTS_V2.json derived/natpp/DARTS_V2.json"
    python analysis/fig5_cells.py --nb201 sweeps/nb201/runs/policy/nat-policygcn-s0 \\
                                          sweeps/nb201/runs/policy/natpp-policygcn-s0 --inputs 3
    python analysis/fig5_cells.py --handcrafted NAT_DARTS_RUN NATPP_DARTS_RUN --reduce --out results/handcrafted

Each --rows entry is one row of the figure: architectures (registry names, genotype JSON files, Genotype(...)
texts or arch_str) separated by spaces, drawn left to right (the default rows are the published original / NAT /
NAT++ cells of VGG, ResBlock, MobileNetV2, DARTS and ENAS). --nb201 NAT_RUN NATPP_RUN instead draws --inputs
held-out NB201 inputs with the cells each run's policy derives from them (best of k), with their table
accuracies. --handcrafted NAT_RUN NATPP_RUN (darts-space supernet runs) derives the cell of every hand-crafted
CIFAR network (VGG16, ResNet20, ResNet56, ShuffleNet, MobileNetV2) with each policy, draws original / NAT / NAT++
with the networks' costs, and also writes NAT_<net>.json, NATv2_<net>.json (train_eval.py puts them back into
<net>) and handcrafted.json (docs/handcrafted.md). --reduce adds the reduction cells. Writes fig5.png into --out
(created if missing; an existing fig5.png is refused unless --force) and prints "wrote OUT/fig5.png (N rows)".
Bad input exits 2 with one line.
"""

import sys

from natrl import cli
from natrl.tables.cells import Fig5Config, fig5


def main(argv=None):
    return cli.main(Fig5Config, fig5, __doc__, argv)


if __name__ == "__main__":
    main()
    sys.exit(0)
