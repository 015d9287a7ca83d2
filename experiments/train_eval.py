"""Train an architecture from scratch with the papers' evaluation settings; report its test accuracy and cost.

Run:
    python experiments/train_eval.py --arch NATv2_DARTS --data CIFAR10 --preset tiny    # a CPU check in minutes
    python experiments/train_eval.py --arch derived/DARTS_V2.json --data CIFAR10 --num-gpus 1   # the paper setting
    python experiments/train_eval.py --arch NAT_DARTS --dataset cifar100 --data CIFAR100
    python experiments/train_eval.py --arch NATv2_DARTS --dataset imagenet --data IMAGENET   # needs torchvision
    python experiments/train_eval.py --arch ResNet20 --data CIFAR10       # a hand-crafted network (NAT++ Table 1)
    python experiments/train_eval.py --arch NATv2_ResNet20.json --data CIFAR10   # its derived cell, same network
    python experiments/train_eval.py --resume runs/RUN_DIR          # continue a killed run exactly
    python experiments/train_eval.py --arch NATv2_DARTS --dataset imagenet --data IMAGENET --num-gpus 8  # 8 GPU ranks
    python experiments/train_eval.py --arch NATv2_DARTS --data CIFAR10 --preset tiny --ranks 2   # 2 CPU ranks (gloo)

--arch takes a registry name (NAT_DARTS), a genotype JSON file (what derive.py and search_itnas.py write), a
Genotype(...) text or a NAS-Bench-201 arch_str; a hand-crafted network name (VGG16, ResNet20, ResNet56,
ShuffleNet, MobileNetV2; ImageNet ResNet18, ResNet50) trains that network, and --network NAME places any cell in
it (docs/handcrafted.md). --data CIFAR10 stands for CIFAR-10 as cifar-10-batches-py, an image folder
train|test/<class>/ or a .tar.gz of it. --preset paper is the papers' recipe (CIFAR: 20 cells,
C=36, 600 epochs, batch 96, SGD lr 0.025 cosine, wd 3e-4, drop-path 0.2, auxiliary 0.4, cutout 16, grad clip 5;
ImageNet: 14 cells, C=48, 250 epochs, batch 128, lr 0.1, wd 3e-5, label smoothing 0.1); --preset tiny is 5 cells,
C=8, 2 epochs on 2,000 images. --recipe (default auto) follows the papers' rule: cutout only for NAS-based
cells; hand-crafted networks without cutout (batch 128, lr 0.1, wd 5e-4, 200 epochs); the random cells R1..R5
of NAT++ Table 4 with batch 128 and no cutout. Every knob can be set on its own (--epochs 50 --channels 16).
The test set is evaluated after each epoch for the log only; the reported accuracy is the final epoch's.
--ranks N (unset: --num-gpus when above 1) trains data-parallel in N processes on this machine (DDP; NCCL with a
GPU per rank, gloo on CPU) with the one-process recipe: --batch-size is the global batch, each rank trains its
slice, BatchNorm uses the global batch's statistics; rank 0 writes the run directory, and --resume restores every
rank (docs/train_eval.md).

Expect: the run directory (runs/eval-<arch>-<dataset>-s<seed>-<time>, or --out) gets config.json,
progress.csv (per epoch: lr, loss, train and test accuracy, seconds), log.txt, checkpoint.pt (every epoch) and
results.json (params, MAdds, final test accuracy, model / method labels for analysis/). A bad input is one
error line (exit 2) and nothing is written. Measured: --preset tiny on CIFAR-10 (NATv2_DARTS, 2 CPU cores)
took 6 CPU-minutes (12 minutes on a busy machine) and reached 24.9% test accuracy.
"""

from natrl import cli
from natrl.runs.train_eval import EvalConfig, train


def main(argv=None):
    return cli.main(EvalConfig, train, __doc__, argv)


if __name__ == "__main__":
    main()
