"""The weight-sharing supernet that scores DARTS-space cells (NAT Section 4.1, docs/papers.md).

DARTS macro structure: a 3C stem, ``layers`` cells with reductions at 1/3 and 2/3 of the depth, global pooling
and a classifier. Every cell position holds one *op bank* per (from, to) node pair: an instance of every op of
the vocabulary. A forward pass takes a genotype and runs, for each edge, only the chosen op of that edge's bank,
so one supernet scores any cell of the space (betas and their transformations alphas) with shared weights.
A cell's output has a fixed width, k intermediate nodes' worth of channels: the nodes of the genotype's concat
in their places, zeros for the others. So a cell whose output is a subset of its nodes (VGG, ResBlock,
MobileNetV2, ENAS reduction cells: concat [5]) is scored as the network it describes: nothing from the other
nodes reaches the next cell (the zero channels meet its 1x1 preprocess conv, which adds nothing for them).

BatchNorm semantics (deliberate): every BN has ``affine=False`` and ``track_running_stats=False``, so it always
normalises with the statistics of the batch it sees, in training and in scoring alike. Running averages would
mix the statistics of every sampled architecture and misjudge each one; batch statistics of a fixed,
unaugmented validation batch score every architecture on equal terms. Scoring runs under ``torch.no_grad``.

Sharded training (natrl/rewards/shards.py): each shard runs its slice of the global batch; while training with
``sync_batchnorm(True)`` inside a torch.distributed group, every BN normalises with the statistics of the whole
global batch (one differentiable all-reduce of per-channel sums), so N shards compute what one process computes
on the union batch. Scoring (eval mode) never synchronises: each shard scores its own genotypes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import torch
import torch.distributed as dist
import torch.nn as nn

from natrl.cells import Cell, Genotype
from natrl.ddp import SumOverRanks
from natrl.nets.ops import OPS, FactorizedReduce, ReLUConvBN


@dataclass(frozen=True)
class SupernetPreset:
    C: int  # initial channels
    layers: int  # cells
    num_intermediate: int = 4  # k, intermediate nodes per cell


PRESETS = {
    "paper": SupernetPreset(C=20, layers=8),  # the released code's setting
    "tiny": SupernetPreset(C=8, layers=5),  # minutes per epoch on 2 CPU cores
}


class ShardBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm on batch statistics; with ``sync`` set, in training mode and inside a process group, on the
    statistics of the global batch spread over the group's ranks (see the module docstring)."""

    sync = False

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and self.sync and dist.is_initialized() and dist.get_world_size() > 1:
            return global_batch_norm(input, self.eps)
        return super().forward(input)


def global_batch_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) with per-channel mean and biased variance over every rank's batch, from one
    all-reduce of [sum, sum of squares, count]; differentiable, so the backward pass is the global BN's."""
    C = x.shape[1]
    count = x.new_full((1,), x.numel() / C)
    total = SumOverRanks.apply(torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count]))
    mean = total[:C] / total[-1]
    var = (total[C : 2 * C] / total[-1] - mean * mean).clamp_min(0)
    return (x - mean.view(1, C, 1, 1)) * torch.rsqrt(var + eps).view(1, C, 1, 1)


def _bn_free_stats(module: nn.Module):
    """Replace every BatchNorm2d by a ShardBatchNorm2d on batch statistics only (see the module docstring).
    BatchNorms without affine parameters or running buffers hold no state: the swap changes no weights."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(
                module,
                name,
                ShardBatchNorm2d(child.num_features, eps=child.eps, affine=False, track_running_stats=False),
            )
        else:
            _bn_free_stats(child)


class SupernetScoring(nn.Module):
    """What every supernet shares: BatchNorm synchronisation for sharded training and scoring by accuracy.
    Subclasses implement ``forward(x, genotype)``."""

    def sync_batchnorm(self, enabled: bool):
        """Training BatchNorms use the global batch's statistics across the process group (shards)."""
        for m in self.modules():
            if isinstance(m, ShardBatchNorm2d):
                m.sync = enabled

    @torch.no_grad()
    def accuracy(self, genotypes, x, y) -> torch.Tensor:
        """Accuracy (percent) of each genotype on the batch (x, y), scored without gradients."""
        return torch.stack([(self(x, g).argmax(1) == y).float().mean() * 100 for g in genotypes])


class SuperCell(nn.Module):
    def __init__(
        self, vocab, num_intermediate: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool
    ):
        super().__init__()
        self.reduction, self.k = reduction, num_intermediate
        self.preprocess0 = (
            FactorizedReduce(C_prev_prev, C, False) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0, False)
        )
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, False)
        self.banks = nn.ModuleDict()
        for dst in range(2, 2 + num_intermediate):
            for src in range(dst):
                stride = 2 if reduction and src < 2 else 1
                self.banks[f"{src}_{dst}"] = nn.ModuleDict({op: OPS[op](C, stride, False, True) for op in vocab})
        self.multiplier = num_intermediate

    def forward(self, s0, s1, cell: Cell):
        states = [self.preprocess0(s0), self.preprocess1(s1)] + [None] * self.k
        for op, src, dst in cell.edges:
            h = cast(nn.ModuleDict, self.banks[f"{src}_{dst}"])[op](states[src])
            states[dst] = h if states[dst] is None else states[dst] + h
        concat = set(cell.concat)
        ref = next(h for h in states[2:] if h is not None)
        out = [h if i in concat and h is not None else torch.zeros_like(ref) for i, h in enumerate(states) if i >= 2]
        return torch.cat(out, dim=1)


class Supernet(SupernetScoring):
    def __init__(
        self,
        vocab,
        preset: SupernetPreset | str = "paper",
        num_classes: int = 10,
        stem_multiplier: int = 3,
        num_intermediate: int | None = None,
    ):
        super().__init__()
        p = PRESETS[preset] if isinstance(preset, str) else preset
        if num_intermediate is not None:  # 5 for ENAS-like cells
            p = dataclasses.replace(p, num_intermediate=num_intermediate)
        self.vocab, self.preset = tuple(vocab), p
        C_curr = stem_multiplier * p.C
        self.stem = nn.Sequential(nn.Conv2d(3, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, p.C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(p.layers):
            reduction = i in (p.layers // 3, 2 * p.layers // 3)
            if reduction:
                C_curr *= 2
            cell = SuperCell(self.vocab, p.num_intermediate, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        _bn_free_stats(self)

    def forward(self, x, genotype: Genotype):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, genotype.reduce if cell.reduction else genotype.normal)
        return self.classifier(self.global_pooling(s1).flatten(1))
