"""ITNAS architecture weights: annealed Gumbel softmax on outer edges, inter-layer transitions on inner edges, and
the two ways to turn them into a cell (DARTS' top-k per node, and transition-induced iterative edge pruning).

Notation of the ITNAS paper (docs/method.md, ITNAS):
- Z^(i,j) [K]: the (softened one-hot) operation weights of edge (i, j). Outer edges leave a cell input
  (i < num_inputs); inner edges leave an intermediate node.
- Outer edges (Eqn. 5): Z = softmax((log alpha + G) / tau), G ~ Gumbel(0, 1), tau annealed linearly from 5 to
  0.5 over the search. alpha is kept as logits, so log alpha = log_softmax(logits). Without Gumbel: softmax.
- Inner edges (Eqns. 9-12): Z^(i,j) = sum_m beta^(m,i,j) Z^(m,i) P^(m,i,j): every edge (m, i) entering node i
  is a predecessor of (i, j); P^(m,i,j) [K, K] is row-stochastic (p_{s,t}: from op s on (m,i) to op t on
  (i,j), rows sum to one) and beta^(., i, j) sums to one over the predecessors. Both are softmaxes of free
  logits, so the constraints hold exactly. Without transitions, inner edges have their own alpha like DARTS.
- TIEP (Algorithm 1): visit the intermediate nodes in order; fix the kept edges of each node to one-hot
  vectors, recompute the inner edges of the next node from the *kept* predecessors only (attention
  renormalised over them, Eqn. 15), keep its top-k edges by their largest weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

ITNAS_OPS = (
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "avg_pool_3x3",
    "max_pool_3x3",
    "skip_connect",
)  # K = 7, the paper's candidate set


@dataclass(frozen=True)
class EdgeGraph:
    """The edges of a searched cell: every earlier node feeds every intermediate node.
    DARTS: 2 inputs, 4 intermediate nodes, keep 2 edges per node. NB201: 1 input, 3 nodes, every edge kept."""

    num_inputs: int
    num_intermediate: int
    keep: int | None  # incoming edges each node keeps in the final cell (None: all of them)

    @cached_property
    def edges(self) -> tuple[tuple[int, int], ...]:
        nodes = self.num_inputs + self.num_intermediate
        return tuple((i, j) for j in range(self.num_inputs, nodes) for i in range(j))

    @property
    def num_nodes(self) -> int:
        return self.num_inputs + self.num_intermediate

    def is_outer(self, edge) -> bool:
        return edge[0] < self.num_inputs

    def incoming(self, node: int) -> list[int]:
        return [e for e, (_, j) in enumerate(self.edges) if j == node]

    @cached_property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """(predecessor edge (m, i), inner edge (i, j)) index pairs: one transition matrix and attention each."""
        out = []
        for e, (i, j) in enumerate(self.edges):
            if not self.is_outer((i, j)):
                out += [(p, e) for p in self.incoming(i)]
        return tuple(out)


DARTS_GRAPH = EdgeGraph(num_inputs=2, num_intermediate=4, keep=2)
NB201_GRAPH = EdgeGraph(num_inputs=1, num_intermediate=3, keep=None)


def gumbel_tau(epoch: int, epochs: int, start: float = 5.0, end: float = 0.5) -> float:
    """Temperature of epoch ``epoch`` (0-based): linear from ``start`` at the first epoch to ``end`` at the last."""
    if epochs <= 1:
        return end
    return start + (end - start) * min(max(epoch, 0), epochs - 1) / (epochs - 1)


class ArchitectureWeights(nn.Module):
    """alpha (outer edges, or every edge without transitions), P and beta logits of one cell type."""

    def __init__(self, graph: EdgeGraph, num_ops: int, transition: bool = True, init_scale: float = 1e-3):
        super().__init__()
        self.graph, self.K, self.transition = graph, num_ops, transition
        free = [e for e, edge in enumerate(graph.edges) if graph.is_outer(edge) or not transition]
        self.free_edges = free  # edges whose weights are their own alpha
        self.alpha = nn.Parameter(init_scale * torch.randn(len(free), num_ops))
        if transition:
            self.P_logits = nn.Parameter(init_scale * torch.randn(len(graph.pairs), num_ops, num_ops))
            self.beta_logits = nn.Parameter(init_scale * torch.randn(len(graph.pairs)))

    # -- the constrained quantities ----------------------------------------------------------------------
    def transition_matrices(self) -> torch.Tensor:
        """[pairs, K, K], each row a distribution over the descendant edge's ops (Eqn. 10)."""
        return F.softmax(self.P_logits, dim=-1)

    def attention(self, inner_edge: int, kept: list[int] | None = None) -> tuple[list[int], torch.Tensor]:
        """(pair indices, beta over them) of ``inner_edge``; ``kept`` restricts the predecessors (Eqn. 15)."""
        idx = [k for k, (p, e) in enumerate(self.graph.pairs) if e == inner_edge and (kept is None or p in kept)]
        return idx, F.softmax(self.beta_logits[idx], dim=0)

    # -- Z -----------------------------------------------------------------------------------------------
    def weights(self, tau: float | None = None, gumbel: bool = False, generator: torch.Generator | None = None):
        """Z [E, K] for one forward pass. With ``gumbel``, free edges get Gumbel noise at temperature ``tau``
        (Eqn. 5); without, Z = softmax(alpha), which is also what the expected choice of Eqn. 6 is."""
        if gumbel:
            u = torch.rand(self.alpha.shape, generator=generator).to(self.alpha.device)
            g = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
            free = F.softmax((F.log_softmax(self.alpha, dim=-1) + g) / cast(float, tau), dim=-1)
        else:
            free = F.softmax(self.alpha, dim=-1)
        return self._assemble(free)

    def probabilities(self) -> torch.Tensor:
        """Z [E, K] without noise: what derivation reads."""
        return self.weights(gumbel=False)

    def _assemble(self, free: torch.Tensor) -> torch.Tensor:
        rows: list[torch.Tensor | None] = [None] * len(self.graph.edges)
        for r, e in enumerate(self.free_edges):
            rows[e] = free[r]
        if self.transition:
            P = self.transition_matrices()
            for e, _edge in enumerate(self.graph.edges):  # ordered by destination: predecessors come first
                if rows[e] is None:
                    idx, beta = self.attention(e)
                    rows[e] = cast(
                        torch.Tensor,
                        sum(  # Eqn. 11
                            b * (cast(torch.Tensor, rows[self.graph.pairs[k][0]]) @ P[k]) for k, b in zip(idx, beta)
                        ),
                    )
        return torch.stack(cast(list[torch.Tensor], rows))


def top_k_cell(Z: torch.Tensor, graph: EdgeGraph, ops) -> list[tuple[str, int, int]]:
    """DARTS' derivation: each node keeps its ``graph.keep`` incoming edges with the largest max weight, each
    with its argmax op. ``Z`` is [E, K] (no 'none' op in the ITNAS vocabulary; on NB201 every edge is kept)."""
    Z = Z.detach()
    out = []
    for node in range(graph.num_inputs, graph.num_nodes):
        inc = graph.incoming(node)
        if graph.keep is not None and len(inc) > graph.keep:
            inc = sorted(sorted(inc, key=lambda e: -float(Z[e].max()))[: graph.keep])
        out += [(ops[int(Z[e].argmax())], *graph.edges[e]) for e in inc]
    return out


@torch.no_grad()
def tiep_cell(arch: ArchitectureWeights, ops) -> list[tuple[str, int, int]]:
    """Transition-induced iterative edge pruning (ITNAS Algorithm 1); needs transition learning."""
    if not arch.transition:
        raise ValueError("TIEP is induced by the transition matrices: it needs transition learning")
    graph = arch.graph
    free = dict(zip(arch.free_edges, F.softmax(arch.alpha, dim=-1)))
    P = arch.transition_matrices()
    onehot: dict[int, torch.Tensor] = {}  # kept edges, fixed to one-hot (Eqn. 13)
    kept_into: dict[int, list[int]] = {}  # node -> its kept incoming edges (M_j)
    out = []
    for node in range(graph.num_inputs, graph.num_nodes):
        scores = {}
        for e in graph.incoming(node):
            i = graph.edges[e][0]
            if graph.is_outer(graph.edges[e]):
                scores[e] = free[e]
            else:  # recomputed from the kept predecessors only, attention renormalised (Eqns. 14-15)
                idx, beta = arch.attention(e, kept=kept_into[i])
                scores[e] = sum(b * (onehot[graph.pairs[k][0]] @ P[k]) for k, b in zip(idx, beta))
        inc = list(scores)
        if graph.keep is not None and len(inc) > graph.keep:
            inc = sorted(sorted(inc, key=lambda e: -float(scores[e].max()))[: graph.keep])
        kept_into[node] = inc
        for e in inc:
            k = int(scores[e].argmax())
            onehot[e] = F.one_hot(torch.tensor(k), arch.K).to(P.dtype).to(P.device)
            out.append((ops[k], *graph.edges[e]))
    return out
