"""The ITNAS search: a DARTS-style mixed-op supernet (every candidate op runs on every edge, weighted by Z) and
its bi-level optimisation (first order): an Adam step on the architecture weights with a batch of the
architecture half of the training set, then an SGD step on the network weights with a batch of the weight half.

Spaces: ``darts`` (normal + reduction cell, 2 inputs, 4 intermediate nodes, K = 7 ITNAS ops; paper: 8 cells
with reductions at the 3rd and 6th, C = 16) and ``nb201`` (one cell, 1 input, 3 nodes, the 5 NAS-Bench-201 ops
incl. none, in the NB201 macro network, so the found cell's real accuracy can be read from the table).
The test set is never used: both halves come from the training set (a seeded 50/50 split, as the paper).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from natrl.cells import Cell, Genotype
from natrl.datasets import DeviceBatches, split_indices
from natrl.itnas.arch import DARTS_GRAPH, ITNAS_OPS, NB201_GRAPH, ArchitectureWeights, gumbel_tau, tiep_cell, top_k_cell
from natrl.nets.eval_net import ResNetBasicBlock
from natrl.nets.ops import OPS, FactorizedReduce, ReLUConvBN
from natrl.ops import NB201_OPS


class MixedOp(nn.Module):
    def __init__(self, ops, C: int, stride: int):
        super().__init__()
        self.ops = nn.ModuleList(OPS[o](C, stride, False, bn=True) for o in ops)  # pools get a BN, as DARTS

    def forward(self, x, w):
        return sum(wk * op(x) for wk, op in zip(w, self.ops))


class SearchCell(nn.Module):
    """A cell of the searched graph: node j = sum over its incoming edges of MixedOp(state_i, Z^(i,j))."""

    def __init__(self, graph, ops, C: int, C_inputs: list[int], reduction: bool, reduction_prev: bool):
        super().__init__()
        self.graph = graph
        self.pre: nn.ModuleList | None
        if graph.num_inputs == 2:
            self.pre = nn.ModuleList(
                [
                    FactorizedReduce(C_inputs[0], C, False)
                    if reduction_prev
                    else ReLUConvBN(C_inputs[0], C, 1, 1, 0, False),
                    ReLUConvBN(C_inputs[1], C, 1, 1, 0, False),
                ]
            )
        else:
            self.pre = None
        self.edges = nn.ModuleList(MixedOp(ops, C, 2 if reduction and graph.is_outer(e) else 1) for e in graph.edges)

    def forward(self, inputs, Z):
        states = [p(x) for p, x in zip(self.pre, inputs)] if self.pre is not None else list(inputs)
        for node in range(self.graph.num_inputs, self.graph.num_nodes):
            states.append(sum(self.edges[e](states[self.graph.edges[e][0]], Z[e]) for e in self.graph.incoming(node)))
        if self.pre is None:
            return states[-1]  # NB201: the last node is the cell's output
        return torch.cat(states[self.graph.num_inputs :], dim=1)


class DartsSearchNetwork(nn.Module):
    def __init__(self, ops, C: int = 16, layers: int = 8, num_classes: int = 10, stem_multiplier: int = 3):
        super().__init__()
        C_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        C_pp, C_p, C_cur, reduction_prev = C_stem, C_stem, C, False
        self.cells, self.reductions = nn.ModuleList(), []
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)  # 8 cells: the 3rd and 6th
            C_cur = C_cur * 2 if reduction else C_cur
            self.cells.append(SearchCell(DARTS_GRAPH, ops, C_cur, [C_pp, C_p], reduction, reduction_prev))
            self.reductions.append(reduction)
            reduction_prev = reduction
            C_pp, C_p = C_p, DARTS_GRAPH.num_intermediate * C_cur
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x, Z: dict):
        s0 = s1 = self.stem(x)
        for cell, red in zip(self.cells, self.reductions):
            s0, s1 = s1, cell([s0, s1], Z["reduce" if red else "normal"])
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


class NB201SearchNetwork(nn.Module):
    def __init__(self, ops, C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        C_prev = C
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResNetBasicBlock(C_prev, C_stage))
            layers += [SearchCell(NB201_GRAPH, ops, C_stage, [], False, False) for _ in range(N)]
            C_prev = C_stage
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x, Z: dict):
        h = self.stem(x)
        for layer in self.layers:
            h = layer([h], Z["normal"]) if isinstance(layer, SearchCell) else layer(h)
        return self.classifier(F.adaptive_avg_pool2d(self.lastact(h), 1).flatten(1))


@dataclass
class SearchSettings:
    space: str = "darts"  # darts or nb201
    gumbel: bool = True  # annealed Gumbel softmax (off: DARTS' softmax)
    transition: bool = True  # inter-layer transition learning on inner edges (off: independent alphas)
    tiep: bool = True  # derive with TIEP (off: DARTS' top-2 per node)
    channels: int = 16
    layers: int = 8  # darts: cells; nb201: cells per stage (N)
    epochs: int = 50
    batch_size: int = 64
    steps_per_epoch: int = 0  # cap (0 = a full pass over the weight half)
    train_subset: int = 0  # search on a fixed random subset of the training set (0 = all of it)
    lr: float = 0.025  # SGD, cosine-annealed to lr_min
    lr_min: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float = 3e-4  # Adam on alpha, P, beta
    arch_weight_decay: float = 1e-3
    tau_start: float = 5.0
    tau_end: float = 0.5
    grad_clip: float = 5.0
    seed: int = 0


class ITNASSearch:
    """Supernet, architecture weights, both optimisers, the data halves and the Gumbel RNG, with exact state."""

    def __init__(self, s: SearchSettings, data: dict, device="cpu"):
        self.s, self.device = s, torch.device(device)
        torch.manual_seed(s.seed)
        self.ops = ITNAS_OPS if s.space == "darts" else NB201_OPS
        graph = DARTS_GRAPH if s.space == "darts" else NB201_GRAPH
        self.net: DartsSearchNetwork | NB201SearchNetwork
        kinds: tuple[str, ...]
        if s.space == "darts":
            self.net = DartsSearchNetwork(self.ops, s.channels, s.layers)
            kinds = ("normal", "reduce")
        else:
            self.net = NB201SearchNetwork(self.ops, s.channels, s.layers)
            kinds = ("normal",)
        self.net.to(self.device)
        self.arch = nn.ModuleDict({k: ArchitectureWeights(graph, len(self.ops), s.transition) for k in kinds})
        self.arch.to(self.device)
        n = len(data["train_y"])
        keep = np.arange(n)
        if s.train_subset:
            keep = np.sort(np.random.default_rng(0).permutation(n)[: s.train_subset])
        w_idx, a_idx = split_indices(len(keep), 0.5, seed=s.seed)
        w_idx, a_idx = keep[w_idx], keep[a_idx]
        x, y = data["train_x"], data["train_y"]
        self.w_data = DeviceBatches(x[w_idx], y[w_idx], s.batch_size, self.device, augment=True, seed=s.seed)
        self.a_data = DeviceBatches(x[a_idx], y[a_idx], s.batch_size, self.device, augment=True, seed=s.seed + 1)
        self.w_opt = torch.optim.SGD(self.net.parameters(), s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, s.epochs, eta_min=s.lr_min)
        self.a_opt = torch.optim.Adam(
            self.arch.parameters(), s.arch_lr, betas=(0.5, 0.999), weight_decay=s.arch_weight_decay
        )
        self.noise = torch.Generator().manual_seed(s.seed + 7)  # Gumbel noise, on CPU: same stream on any device
        self.epoch = 0

    @property
    def steps_per_epoch(self) -> int:
        full = min(len(self.w_data), len(self.a_data))
        return min(full, self.s.steps_per_epoch) if self.s.steps_per_epoch else full

    def tau(self) -> float:
        return gumbel_tau(self.epoch, self.s.epochs, self.s.tau_start, self.s.tau_end)

    def _arch_items(self) -> Iterator[tuple[str, ArchitectureWeights]]:
        """``self.arch.items()`` typed: the ModuleDict holds only ArchitectureWeights."""
        return iter(cast(list[tuple[str, ArchitectureWeights]], list(self.arch.items())))

    def Z(self) -> dict:
        return {k: a.weights(self.tau(), self.s.gumbel, self.noise) for k, a in self._arch_items()}

    def train_epoch(self) -> dict:
        self.net.train()
        steps, loss_sum, correct, seen, val_loss, val_correct = self.steps_per_epoch, 0.0, 0, 0, 0.0, 0
        for step, ((xw, yw), (xa, ya)) in enumerate(zip(self.w_data.batches(), self.a_data.batches())):
            if step >= steps:
                break
            # architecture step on the architecture half (first-order bi-level optimisation)
            self.a_opt.zero_grad(set_to_none=True)
            logits = self.net(xa, self.Z())
            loss_a = F.cross_entropy(logits, ya)
            loss_a.backward()
            self.a_opt.step()
            val_loss += float(loss_a.detach()) * len(ya)
            val_correct += int((logits.argmax(1) == ya).sum())
            # weight step on the weight half
            self.w_opt.zero_grad(set_to_none=True)
            logits = self.net(xw, {k: z.detach() for k, z in self.Z().items()})
            loss = F.cross_entropy(logits, yw)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), self.s.grad_clip)
            self.w_opt.step()
            loss_sum += float(loss.detach()) * len(yw)
            correct += int((logits.argmax(1) == yw).sum())
            seen += len(yw)
        stats = {
            "epoch": self.epoch + 1,
            "tau": round(self.tau(), 4),
            "lr": self.w_opt.param_groups[0]["lr"],
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": 100.0 * correct / max(seen, 1),
            "arch_loss": val_loss / max(seen, 1),
            "arch_acc": 100.0 * val_correct / max(seen, 1),
        }
        self.sched.step()
        self.epoch += 1
        return stats

    def derive(self, tiep: bool | None = None) -> Genotype:
        tiep = self.s.tiep if tiep is None else tiep
        cells = {}
        for kind, a in self._arch_items():
            edges = tiep_cell(a, self.ops) if tiep else top_k_cell(a.probabilities(), a.graph, self.ops)
            concat = (
                tuple(range(a.graph.num_inputs, a.graph.num_nodes))
                if a.graph.num_inputs == 2
                else (a.graph.num_nodes - 1,)
            )
            cells[kind] = Cell(tuple(edges), concat, a.graph.num_inputs)
        return Genotype(cells["normal"], cells.get("reduce"), "darts" if self.s.space == "darts" else "nb201")

    def arch_state(self) -> dict:
        """alpha, P and beta as constrained values, for inspection (arch.pt)."""
        out = {}
        for kind, a in self._arch_items():
            out[f"{kind}.Z"] = a.probabilities().detach().cpu()
            if a.transition:
                out[f"{kind}.P"] = a.transition_matrices().detach().cpu()
                out[f"{kind}.beta_logits"] = a.beta_logits.detach().cpu()
        return out

    def state_dict(self) -> dict:
        return {
            "net": self.net.state_dict(),
            "arch": self.arch.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "sched": self.sched.state_dict(),
            "epoch": self.epoch,
            "noise": self.noise.get_state(),
            "w_data": self.w_data.state_dict(),
            "a_data": self.a_data.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, st: dict):
        self.net.load_state_dict(st["net"])
        self.arch.load_state_dict(st["arch"])
        self.w_opt.load_state_dict(st["w_opt"])
        self.a_opt.load_state_dict(st["a_opt"])
        self.sched.load_state_dict(st["sched"])
        self.epoch = int(st["epoch"])
        self.noise.set_state(st["noise"])
        self.w_data.load_state_dict(st["w_data"])
        self.a_data.load_state_dict(st["a_data"])
        torch.set_rng_state(st["torch_rng"])
