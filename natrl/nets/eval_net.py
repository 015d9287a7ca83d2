"""Evaluation networks built from any genotype (train-from-scratch and cost counting).

- ``NetworkCIFAR``: DARTS macro structure: 3C stem, ``layers`` cells, reductions at 1/3 and 2/3 of the depth,
  optional auxiliary head after the 2/3 cell, drop-path on every non-identity edge.
- ``NetworkImageNet``: DARTS mobile setting: two stride-2 stems, 14 cells, 224x224 input.
- ``NetworkNB201``: NAS-Bench-201's macro structure: 16-channel stem, 3 stages of 5 cells, residual
  reduction blocks between stages.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from natrl.cells import Cell, Genotype
from natrl.nets.ops import OPS, FactorizedReduce, Identity, ReLUConvBN


def drop_path(x, drop_prob: float):
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS' drop-path)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    """One DARTS-space cell: preprocess the two inputs to C channels, run each edge's op, sum per node, concat."""

    def __init__(self, cell: Cell, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.edges = [(src, dst) for _, src, dst in cell.edges]
        # Edges leaving an input node of a reduction cell carry the stride 2.
        self._ops = nn.ModuleList(
            OPS[op](C, 2 if reduction and src < cell.num_inputs else 1, True) for op, src, _ in cell.edges
        )
        self.num_nodes = cell.num_nodes
        self.concat = list(cell.concat)
        self.multiplier = len(self.concat)

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)] + [None] * (self.num_nodes - 2)
        for (src, dst), op in zip(self.edges, self._ops):
            h = op(states[src])
            if self.training and drop_prob > 0 and not isinstance(op, Identity):
                h = drop_path(h, drop_prob)
            states[dst] = h if states[dst] is None else states[dst] + h
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier (8x8 input on CIFAR, 14x14 on ImageNet); excluded from cost counts."""

    def __init__(self, C, num_classes, imagenet=False):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _CellStack(nn.Module):
    """Shared body of the CIFAR and ImageNet networks: the stack of cells, aux head, pooling and classifier."""

    def _build_cells(
        self,
        genotype: Genotype,
        C: int,
        C_stem: int,
        layers: int,
        num_classes: int,
        auxiliary: bool,
        reduction_prev: bool,
        imagenet: bool,
    ):
        C_prev_prev, C_prev, C_curr = C_stem, C_stem, C
        self.cells = nn.ModuleList()
        self.aux_pos = 2 * layers // 3
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell_spec = genotype.reduce if reduction else genotype.normal
            assert cell_spec is not None
            cell = EvalCell(cell_spec, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self.aux_pos:
                C_aux = C_prev
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, imagenet) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self.drop_path_prob = 0.0

    def _run_cells(self, s0, s1):
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_pos and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, logits_aux


class NetworkCIFAR(_CellStack):
    def __init__(
        self,
        genotype: Genotype,
        C: int = 36,
        num_classes: int = 10,
        layers: int = 20,
        auxiliary: bool = False,
        stem_multiplier: int = 3,
    ):
        super().__init__()
        C_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        self._build_cells(genotype, C, C_stem, layers, num_classes, auxiliary, False, False)

    def forward(self, x):
        s = self.stem(x)
        return self._run_cells(s, s)


class NetworkImageNet(_CellStack):
    def __init__(
        self, genotype: Genotype, C: int = 48, num_classes: int = 1000, layers: int = 14, auxiliary: bool = False
    ):
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        self._build_cells(genotype, C, C, layers, num_classes, auxiliary, True, True)

    def forward(self, x):
        s0 = self.stem0(x)
        return self._run_cells(s0, self.stem1(s0))


class NB201Cell(nn.Module):
    def __init__(self, cell: Cell, C: int):
        super().__init__()
        self.edges = [(src, dst) for _, src, dst in cell.edges]
        self._ops = nn.ModuleList(OPS[op](C, 1, True) for op, _, _ in cell.edges)
        self.num_nodes = cell.num_nodes

    def forward(self, x):
        states = [x] + [0] * (self.num_nodes - 1)
        for (src, dst), op in zip(self.edges, self._ops):
            states[dst] = states[dst] + op(states[src])
        return states[-1]


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block between stages."""

    def __init__(self, C_in, C_out):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NetworkNB201(nn.Module):
    def __init__(self, genotype: Genotype, C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        C_prev = C
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResNetBasicBlock(C_prev, C_stage))
            layers += [NB201Cell(genotype.normal, C_stage) for _ in range(N)]
            C_prev = C_stage
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x):
        h = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(h).flatten(1)), None


DATASETS = {  # input resolution and classes of each evaluation setting
    "cifar10": (32, 10),
    "cifar100": (32, 100),
    "imagenet": (224, 1000),
}


def build_network(
    genotype: Genotype,
    dataset: str = "cifar10",
    C: int | None = None,
    layers: int | None = None,
    auxiliary: bool = False,
) -> nn.Module:
    """The papers' evaluation network for ``genotype`` on ``dataset`` (C / layers default to the papers')."""
    _, num_classes = DATASETS[dataset]
    if genotype.space == "nb201":
        return NetworkNB201(genotype, C or 16, layers or 5, num_classes)
    if dataset == "imagenet":
        return NetworkImageNet(genotype, C or 48, num_classes, layers or 14, auxiliary)
    return NetworkCIFAR(genotype, C or 36, num_classes, layers or 20, auxiliary)
