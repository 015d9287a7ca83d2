"""ITNAS: search a cell with annealed Gumbel softmax, inter-layer transition learning and TIEP, or its ablations.

Run (CIFAR10 = a cifar-10-batches-py folder, an image folder or its .tar.gz):
    python experiments/search_itnas.py --data CIFAR10 --preset tiny               # DARTS space, CPU minutes
    python experiments/search_itnas.py --data CIFAR10 --num-gpus 1                # the paper: 8 cells, C=16, 50 epochs
    python experiments/search_itnas.py --space nb201 --data CIFAR10 --preset tiny # + the cell's NB201 accuracy
    python experiments/search_itnas.py --variant darts --data CIFAR10             # a Table 2 row: darts, gumbel,
                                                                                  # gumbel+transition or itnas
    python experiments/search_itnas.py --ablation --space nb201 --data CIFAR10 --preset tiny --out sweeps/itnas
    python experiments/search_itnas.py --resume runs/RUN_DIR                      # continue a killed search
    python experiments/search_itnas.py --resume sweeps/itnas                      # or a killed --ablation sweep

--ablation runs every --variants x --seeds search as Ray Tune trials (one CPU, or one GPU, each; --address or
$RAY_ADDRESS joins a cluster) into one sweep directory: runs/<variant>-s<seed>/, tune/, ablation.{md,csv}.

A search's run directory gets config.json, log.txt, progress.csv (per epoch: losses, accuracies on both halves,
tau, lr, the cell derived so far), checkpoint.pt (each epoch; --resume), genotype.json (experiments/derive.py and
train_eval.py take it), genotype.png, arch.pt (Z, P, beta) and results.json (the cell, its costs, on nb201 its
accuracy in the NB201 table(s)). Expected (nb201, tiny, ~3 minutes on 2 cores): the found cell's NB201 accuracy
printed next to the table's best. Bad input stops with one line before anything is written.
"""

from natrl import cli
from natrl.runs.itnas import SearchConfig, run


def main(argv=None):
    return cli.main(SearchConfig, run, __doc__, argv)


if __name__ == "__main__":
    main()
