"""The weight-sharing supernet of the NAS-Bench-201 space: NB201's macro network with one op bank per edge.

Macro structure (NAS-Bench-201's ``TinyNetwork``, natrl.nets.eval_net.NetworkNB201): a 3x3 stem conv to C
channels, three stages of N cells at C, 2C and 4C channels with NB201's residual reduction block between
stages, BatchNorm + ReLU, global pooling and a classifier. Every cell position holds one *op bank* per edge
(an instance of each of the five ops), so one supernet scores any of the 15,625 cells: a forward pass takes a
genotype and runs, on every edge, only the chosen op of that edge's bank. ``none`` runs nothing; a node that
receives only ``none`` edges is absent, and so is every edge leaving it; a cell whose output node is absent
outputs zeros (the network then predicts one class for every image, as a disconnected NB201 cell does).

BatchNorm semantics are the DARTS supernet's (natrl/nets/supernet.py): batch statistics only, no affine
parameters, in training and scoring alike, so no running average mixes the statistics of different cells.
With ``affine=True`` BNs and running statistics in train mode, NetworkNB201 of a cell computes exactly what
this supernet computes for that cell (tests/test_nb201_supernet.py copies the weights and checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from natrl.cells import Cell, Genotype
from natrl.nets.eval_net import ResNetBasicBlock
from natrl.nets.ops import OPS
from natrl.nets.supernet import SupernetScoring, _bn_free_stats
from natrl.ops import NB201_OPS


@dataclass(frozen=True)
class NB201SupernetPreset:
    C: int  # channels of the first stage
    N: int  # cells per stage


NB201_PRESETS = {
    "nb201": NB201SupernetPreset(C=16, N=5),  # NAS-Bench-201's own network (the table's accuracies)
    "cpu": NB201SupernetPreset(C=8, N=1),  # minutes per epoch on 2 CPU cores
}


class AvgPool3x3(nn.Module):
    """NB201's avg_pool_3x3 (stride 1, padding 1, padding not counted) as a depthwise box filter divided by the
    number of pixels inside the image: the same numbers, ~10x faster than CPU avg_pool2d on NCHW tensors."""

    box: torch.Tensor

    def __init__(self, C: int):
        super().__init__()
        self.register_buffer("box", torch.ones(C, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        count = F.conv2d(x.new_ones(1, 1, *x.shape[2:]), self.box[:1], padding=1)
        return F.conv2d(x, self.box.to(x.dtype), padding=1, groups=x.shape[1]) / count


def _bank_op(op: str, C: int) -> nn.Module:
    return AvgPool3x3(C) if op == "avg_pool_3x3" else OPS[op](C, 1, False)


class NB201SuperCell(nn.Module):
    """One cell position: a bank of every op on each of the 6 edges (i -> j, i < j) of the 4-node cell."""

    def __init__(self, C: int, vocab=NB201_OPS, num_nodes: int = 4):
        super().__init__()
        self.num_nodes = num_nodes
        self.banks = nn.ModuleDict(
            {
                f"{src}_{dst}": nn.ModuleDict({op: _bank_op(op, C) for op in vocab})
                for dst in range(1, num_nodes)
                for src in range(dst)
            }
        )

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        states: list[torch.Tensor | None] = [x] + [None] * (self.num_nodes - 1)
        for op, src, dst in cell.edges:
            h_src = states[src]
            if op == "none" or h_src is None:  # contributes nothing: run nothing
                continue
            h = cast(nn.ModuleDict, self.banks[f"{src}_{dst}"])[op](h_src)
            h_dst = states[dst]
            states[dst] = h if h_dst is None else h_dst + h
        out = states[-1]
        return torch.zeros_like(x) if out is None else out


class NB201Supernet(SupernetScoring):
    """NB201's network whose cells are op banks; ``forward(x, genotype)`` runs the genotype's cell everywhere."""

    def __init__(self, preset: NB201SupernetPreset | str = "cpu", num_classes: int = 10, vocab=NB201_OPS):
        super().__init__()
        p = NB201_PRESETS[preset] if isinstance(preset, str) else preset
        self.preset, self.vocab = p, tuple(vocab)
        self.stem = nn.Sequential(nn.Conv2d(3, p.C, 3, padding=1, bias=False), nn.BatchNorm2d(p.C))
        self.layers = nn.ModuleList()
        C_prev = p.C
        for stage, C_stage in enumerate((p.C, 2 * p.C, 4 * p.C)):
            if stage:
                self.layers.append(ResNetBasicBlock(C_prev, C_stage))
            self.layers.extend(NB201SuperCell(C_stage, self.vocab) for _ in range(p.N))
            C_prev = C_stage
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        _bn_free_stats(self)
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # ~25-40% faster CPU convs here

    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        h = self.stem(x.contiguous(memory_format=torch.channels_last))
        for layer in self.layers:
            h = layer(h, genotype.normal) if isinstance(layer, NB201SuperCell) else layer(h)
        return self.classifier(self.global_pooling(self.lastact(h)).flatten(1))
