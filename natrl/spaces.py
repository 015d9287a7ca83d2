"""Search spaces: the op vocabulary, the edge template, the sampler p(beta) of input cells, and the encoding of a
cell into the fixed-shape observation the policy reads (so that env, policy and algorithm never branch on the
space).

Observation (a Dict of fixed-shape Boxes, E edges, N nodes, K ops):
    op           [E]    current op index of each edge (vocabulary order)
    src, dst     [E]    endpoints of each edge (node ids)
    node_kind    [N]    0 = cell input, 1 = second cell input (DARTS c_{k-1}), 2 = intermediate node
    action_mask  [E, K] 1 where the transition rule allows op -> new op
Action: MultiDiscrete([K] * E), the new op index of every edge.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from gymnasium import spaces

from natrl.cells import Cell, Genotype, nb201_cell, to_arch_str, validate_genotype
from natrl.errors import NatrlError
from natrl.ops import NB201_OPS, OP_INFO, vocabulary
from natrl.transitions import transition_mask

NODE_KINDS = 3

# NAS-Bench-201 cells as op-index vectors: row i is cell i, whose base-5 digits are the NB201_OPS indices of
# the edges (0,1), (0,2), (1,2), (0,3), (1,3), (2,3), most significant first.
NB201_CELLS = np.array(list(itertools.product(range(len(NB201_OPS)), repeat=6)), dtype=np.int64)


def nb201_index(cells: np.ndarray) -> np.ndarray:
    """Cell index of op-index vectors ([..., 6] -> [...]), the inverse of NB201_CELLS."""
    cells = np.asarray(cells, dtype=np.int64)
    return cells @ (len(NB201_OPS) ** np.arange(5, -1, -1))


@cache
def nb201_genotype(index: int) -> Genotype:
    """The genotype of NB201 cell ``index`` (built once: genotypes are immutable)."""
    return nb201_cell([NB201_OPS[i] for i in NB201_CELLS[index]])


@cache
def nb201_index_of(ops: tuple[str, ...]) -> int:
    """Cell index of a tuple of NB201 op names (our edge order); ValueError for an op outside NB201."""
    if len(ops) != 6:
        raise ValueError(f"an NB201 cell has 6 edges, not {len(ops)}")
    return int(nb201_index(np.array([NB201_OPS.index(op) for op in ops])))


class MaskedMultiDiscrete(spaces.MultiDiscrete):
    """MultiDiscrete whose ``sample()`` draws only valid transitions (``valid``, [E, K] booleans).

    The env sets ``valid`` to the current input's mask on reset and, once an episode ends, to the transitions
    valid from *every* op (skip and null), since the next input is not known yet. So generic tools
    (``env.action_space.sample()``, gymnasium's env checker) produce legal actions; the policy gets the same
    mask in its observation.
    """

    def __init__(self, nvec, seed=None, always_valid=None):
        super().__init__(nvec, seed=seed)
        self.always_valid = always_valid
        self.valid = always_valid

    def sample(self, mask=None, probability=None):
        if mask is None and probability is None and self.valid is not None:
            mask = tuple(row.astype(np.int8) for row in self.valid)
        return super().sample(mask=mask, probability=probability)


class GraphSpace:
    """What every space shares: the fixed-shape observation and action spaces, and the mask check.
    Subclasses set ops, mask, rule, num_edges, num_nodes and implement sample_input / encode / apply / describe."""

    ops: tuple[str, ...]
    mask: np.ndarray
    rule: str
    num_edges: int
    num_nodes: int

    def encode(self, g: Genotype) -> dict:
        raise NotImplementedError

    def apply(self, g: Genotype, action: np.ndarray) -> Genotype:
        raise NotImplementedError

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    def observation_space(self) -> spaces.Dict:
        E, N, K = self.num_edges, self.num_nodes, self.num_ops
        return spaces.Dict(
            {
                "op": spaces.Box(0, K - 1, (E,), np.int64),
                "src": spaces.Box(0, N - 1, (E,), np.int64),
                "dst": spaces.Box(0, N - 1, (E,), np.int64),
                "node_kind": spaces.Box(0, NODE_KINDS - 1, (N,), np.int64),
                "action_mask": spaces.Box(0.0, 1.0, (E, K), np.float32),
            }
        )

    def action_space(self) -> MaskedMultiDiscrete:
        always = np.tile(self.mask.all(axis=0), (self.num_edges, 1))
        return MaskedMultiDiscrete([self.num_ops] * self.num_edges, always_valid=always)

    # ---- batches: what one policy update samples in one go (the fast path of natrl.algo.sampler) ---------
    def encode_batch(self, cells: list[Genotype]) -> dict:
        """Observations of ``cells`` stacked into one batch (arrays with a leading batch axis)."""
        obs = [self.encode(g) for g in cells]
        return {k: np.stack([o[k] for o in obs]) for k in obs[0]}

    def apply_batch(self, betas: list[Genotype], actions: np.ndarray) -> list[Genotype]:
        """alpha_i = betas[i] with actions[i] applied (ValueError outside the mask)."""
        return [self.apply(g, a) for g, a in zip(betas, actions)]

    def check_action(self, beta: np.ndarray, action: np.ndarray):
        action = np.asarray(action)
        if action.shape != (self.num_edges,):
            raise ValueError(f"action has shape {action.shape}; expected ({self.num_edges},), one new op per edge")
        bad = np.flatnonzero(~self.mask[beta, action])
        if len(bad):
            e = int(bad[0])
            raise ValueError(
                f"invalid transition on edge {e}: {self.ops[beta[e]]} -> {self.ops[action[e]]} is not "
                f"allowed by the {self.rule} rule"
            )


@dataclass
class NB201Space(GraphSpace):
    """NAS-Bench-201: one cell, 4 nodes, 6 edges, 5 ops; inputs drawn uniformly from a seeded split."""

    rule: str = "natpp"
    holdout_frac: float = 0.2
    split_seed: int = 0
    num_intermediate: int = 3  # fixed by NAS-Bench-201; accepted for a uniform make_space call

    name = "nb201"
    num_edges = 6
    num_nodes = 4

    def __post_init__(self):
        if self.num_intermediate != 3:
            raise NatrlError("NAS-Bench-201 cells have 3 intermediate nodes; --intermediate-nodes applies to darts")
        self.ops = vocabulary("nb201")
        self.mask = transition_mask(self.rule, self.ops)
        perm = np.random.default_rng(self.split_seed).permutation(len(self.ops) ** self.num_edges)
        n_hold = int(round(self.holdout_frac * len(perm)))
        self.heldout_cells = np.sort(perm[:n_hold])
        self.train_cells = np.sort(perm[n_hold:])
        proto = nb201_cell(["none"] * 6).normal
        self.src = np.array([s for _, s, _ in proto.edges], dtype=np.int64)
        self.dst = np.array([d for _, _, d in proto.edges], dtype=np.int64)
        self.node_kind = np.array([0, 2, 2, 2], dtype=np.int64)

    # ---- cells as op-index vectors -------------------------------------------------------------------
    def genotype(self, ops: np.ndarray) -> Genotype:
        return nb201_genotype(int(nb201_index(ops)))

    def encode_genotype(self, g: Genotype) -> np.ndarray:
        if g.space != "nb201":
            raise NatrlError(f"a {g.space}-space genotype cannot be transformed in the nb201 space")
        return NB201_CELLS[nb201_index_of(g.normal.ops)].copy()

    # the 15,625 cells are few: batches work on op-index vectors and cached genotypes, no per-cell parsing
    def encode_batch(self, cells: list[Genotype]) -> dict:
        return self.observe_batch(np.stack([self.encode_genotype(g) for g in cells]))

    def apply_batch(self, betas: list[Genotype], actions: np.ndarray) -> list[Genotype]:
        actions = np.asarray(actions, dtype=np.int64)
        codes = np.stack([self.encode_genotype(g) for g in betas])
        if actions.shape != codes.shape or not self.mask[codes, actions].all():
            for beta, action in zip(codes, actions):
                self.check_action(beta, action)  # raises with the offending edge named
        return [nb201_genotype(int(i)) for i in nb201_index(actions)]

    def sample_input(self, rng: np.random.Generator, split: str = "train") -> Genotype:
        """beta ~ p(beta): uniform over the training cells, the held-out cells, or all cells."""
        if split == "all":
            return nb201_genotype(int(rng.integers(self.num_ops**self.num_edges)))
        if split not in ("train", "heldout"):
            raise NatrlError(f"unknown input split '{split}'; choose train, heldout or all")
        cells = self.train_cells if split == "train" else self.heldout_cells
        return nb201_genotype(int(cells[rng.integers(len(cells))]))

    # ---- the genotype-level interface the env uses (the same for every space) -------------------------
    def encode(self, g: Genotype) -> dict:
        return self.observe(self.encode_genotype(g))

    def apply(self, g: Genotype, action: np.ndarray) -> Genotype:
        """alpha: ``g`` with every edge's op replaced by ``action``; ValueError outside the mask."""
        self.check_action(self.encode_genotype(g), action)
        return self.genotype(action)

    def describe(self, g: Genotype) -> str:
        return to_arch_str(g.normal)

    # ---- observation / action ----------------------------------------------------------------------
    def observe(self, ops: np.ndarray) -> dict:
        return {
            "op": ops.astype(np.int64),
            "src": self.src.copy(),
            "dst": self.dst.copy(),
            "node_kind": self.node_kind.copy(),
            "action_mask": self.mask[ops].astype(np.float32),
        }

    def observe_batch(self, ops_batch: np.ndarray) -> dict:
        B = len(ops_batch)
        return {
            "op": ops_batch.astype(np.int64),
            "src": np.tile(self.src, (B, 1)),
            "dst": np.tile(self.dst, (B, 1)),
            "node_kind": np.tile(self.node_kind, (B, 1)),
            "action_mask": self.mask[ops_batch].astype(np.float32),
        }


class DartsSpace(GraphSpace):
    """The DARTS/NAT space: a normal and a reduction cell, each with 2 inputs and k intermediate nodes of two
    incoming edges. One observation holds both cells as one graph (reduce-cell nodes offset by 2 + k), so one
    policy transforms both in one action: E = 2 * 2k edges, N = 2 * (2 + k) nodes.

    p(beta) (the released code's sampler): for every intermediate node, two inputs drawn uniformly from the
    earlier nodes (duplicates allowed) and two ops drawn uniformly from the vocabulary without null (ENAS-like
    spaces, k = 5: from ENAS's 8 ops, the ``nat_enas`` vocabulary, which is also the NAT rule's vocabulary there);
    normal and reduction cells independently. The space is too large for a held-out split: every split draws
    fresh cells.
    """

    name = "darts"

    def __init__(
        self,
        rule: str = "natpp",
        vocab: str | None = None,
        num_intermediate: int = 4,
        holdout_frac: float = 0.2,
        split_seed: int = 0,
    ):
        # holdout_frac / split_seed exist for a uniform make_space call; this space has no fixed split
        self.rule = rule
        enas_like = num_intermediate == 5  # ENAS cells have 5 intermediate nodes and ENAS's ops
        self.ops = vocabulary(vocab or ("natpp" if rule == "natpp" else "nat_enas" if enas_like else "nat"))
        self.mask = transition_mask(rule, self.ops)
        self.k = num_intermediate
        self.cell_nodes = 2 + num_intermediate
        self.num_edges = 2 * 2 * num_intermediate
        self.num_nodes = 2 * self.cell_nodes
        self.node_kind = np.array(([0, 1] + [2] * num_intermediate) * 2, dtype=np.int64)
        # p(beta) draws ops of the input family: ENAS-like cells ENAS's 8 ops (NAT++'s 13-op vocabulary holds them
        # all), others every non-null op of the vocabulary, as the released code does
        family = vocabulary("nat_enas") if enas_like and vocab is None else self.ops
        self._sample_ops = [self.ops.index(o) for o in family if OP_INFO[o].type != "null"]

    def sample_input(self, rng: np.random.Generator, split: str = "train") -> Genotype:
        def cell():
            edges = []
            for dst in range(2, self.cell_nodes):
                for _ in range(2):
                    edges.append(
                        (self.ops[self._sample_ops[rng.integers(len(self._sample_ops))]], int(rng.integers(dst)), dst)
                    )
            return Cell(tuple(edges), tuple(range(2, self.cell_nodes)), 2)

        return Genotype(cell(), cell(), "darts")

    def _op_indices(self, g: Genotype) -> np.ndarray:
        if g.space != "darts":
            raise NatrlError(f"a {g.space}-space genotype cannot be transformed in the darts space")
        validate_genotype(g, num_intermediate=self.k)
        assert g.reduce is not None  # validate_genotype: a darts genotype has a reduce cell
        try:
            return np.array([self.ops.index(op) for c in (g.normal, g.reduce) for op in c.ops], dtype=np.int64)
        except ValueError:
            bad = sorted({op for c in (g.normal, g.reduce) for op in c.ops} - set(self.ops))
            raise NatrlError(
                f"op(s) {', '.join(bad)} are outside the {self.rule} vocabulary "
                f"({', '.join(self.ops)}); the transformer cannot transform them"
            ) from None

    def encode(self, g: Genotype) -> dict:
        ops = self._op_indices(g)
        assert g.reduce is not None  # checked by _op_indices
        off = self.cell_nodes
        src = np.array([s for _, s, _ in g.normal.edges] + [s + off for _, s, _ in g.reduce.edges], dtype=np.int64)
        dst = np.array([d for _, _, d in g.normal.edges] + [d + off for _, _, d in g.reduce.edges], dtype=np.int64)
        return {
            "op": ops,
            "src": src,
            "dst": dst,
            "node_kind": self.node_kind.copy(),
            "action_mask": self.mask[ops].astype(np.float32),
        }

    def apply(self, g: Genotype, action: np.ndarray) -> Genotype:
        beta = self._op_indices(g)
        self.check_action(beta, action)
        names = [self.ops[i] for i in action]
        half = len(g.normal.edges)
        return g.with_ops(names[:half], names[half:])

    def describe(self, g: Genotype) -> str:
        return g.darts_text()


SPACES = {"nb201": NB201Space, "darts": DartsSpace}


def make_space(name: str, **kwargs):
    if name not in SPACES:
        raise NatrlError(f"unknown space '{name}'; choose one of {', '.join(SPACES)}")
    return SPACES[name](**kwargs)


def fair_cells(space: NB201Space, rng: np.random.Generator) -> Callable[[], Genotype]:
    """FairNAS-style strict fairness for the NB201 supernet: cells come in groups of K (the number of ops); in a
    group, the ops of every edge are a random permutation of the K ops, so each op of each edge trains exactly
    once per K steps. A new sampler per epoch (its last group may be cut short; ``rng`` is checkpointed)."""
    group: list[Genotype] = []

    def next_cell() -> Genotype:
        if not group:
            perms = np.stack([rng.permutation(space.num_ops) for _ in range(space.num_edges)], axis=1)  # [K, E]
            group.extend(nb201_genotype(int(i)) for i in nb201_index(perms))
        return group.pop(0)

    return next_cell
