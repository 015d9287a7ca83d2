"""Exact parameter and multiply-add counts, measured on the real evaluation network.

What is counted (the papers' convention, docs/papers.md):
- #Params: every learnable parameter of the network (convolutions, BatchNorm affine, classifier) except the
  auxiliary head, which exists only during training.
- #MAdds: one multiply-add per weight per output position, over every Conv2d (grouped and dilated convs
  included, each counted once per forward, with its real stride) and the final Linear classifier, for one
  input image. BatchNorm, ReLU, pooling, additions and the auxiliary head are not counted.
Counting uses forward hooks on a single forward pass, so what is counted is exactly what runs.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn as nn

from natrl.cells import Genotype
from natrl.nets.eval_net import DATASETS, build_network


class Cost(NamedTuple):
    params: int
    madds: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def madds_m(self) -> float:
        return self.madds / 1e6


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)


@torch.no_grad()
def count_madds(model: nn.Module, resolution: int) -> int:
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]  # (C_in / groups) * kh * kw
        total += out.shape[1] * out.shape[2] * out.shape[3] * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += m.in_features * m.out_features

    handles = []
    for name, m in model.named_modules():
        if "auxiliary" in name:
            continue
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, resolution, resolution))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def network_cost(model: nn.Module, resolution: int) -> Cost:
    return Cost(count_params(model), count_madds(model, resolution))


def genotype_cost(genotype: Genotype, dataset: str = "cifar10", **net_kwargs) -> Cost:
    """Params and MAdds of the papers' evaluation network for ``genotype`` on ``dataset``."""
    resolution, _ = DATASETS[dataset]
    return network_cost(build_network(genotype, dataset, **net_kwargs), resolution)


@functools.lru_cache(maxsize=4)
def nb201_op_costs(dataset: str = "cifar10") -> tuple[Cost, dict[str, Cost]]:
    """The NAS-Bench-201 network's cost with every edge ``none``, and what each op adds on one edge.
    Every edge of every cell holds the same op and ops do not depend on the edge's position, so a cell's cost
    is the base plus one term per edge (exact; tests compare with the full count)."""
    from natrl.cells import nb201_cell
    from natrl.ops import NB201_OPS

    base = genotype_cost(nb201_cell(["none"] * 6), dataset)
    extra = {}
    for op in NB201_OPS:
        c = genotype_cost(nb201_cell([op] + ["none"] * 5), dataset)
        extra[op] = Cost(c.params - base.params, c.madds - base.madds)
    return base, extra


def nb201_cost(ops, dataset: str = "cifar10") -> Cost:
    """Params and MAdds of the NAS-Bench-201 network whose cell has ``ops`` on its 6 edges."""
    base, extra = nb201_op_costs(dataset)
    return Cost(base.params + sum(extra[o].params for o in ops), base.madds + sum(extra[o].madds for o in ops))
