"""Exact reference points on the NAS-Bench-201 space, possible because the space is small (5^6 cells).

For input cells beta and a transition mask: the per-input optimum (best valid alpha, by exhaustive search),
the best fixed per-op rule (one op -> op map for every input, chosen on given inputs), and the expected gain
of a uniformly random valid transformation. These are the baselines the trained policy is compared with.
"""

from __future__ import annotations

import itertools

import numpy as np

from natrl.spaces import NB201_CELLS, nb201_index

# The valid alphas of an input form a product set (each edge: the ops mask[beta_e] allows), so a reduction over
# them is one per-edge reduction after another on the table viewed as a 5 x ... x 5 array, done for all 15,625
# inputs at once: 6 x 5 steps over 15,625 entries instead of a 15,625 x 15,625 validity matrix.
EDGES = NB201_CELLS.shape[1]


def _valid_alphas(betas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[B, 15625] booleans: alpha is a valid transformation of beta on every edge (mask[beta_e, alpha_e])."""
    valid = np.ones((len(betas), len(NB201_CELLS)), dtype=bool)
    for e in range(EDGES):
        valid &= mask[betas[:, e]][:, NB201_CELLS[:, e]]
    return valid


def optimum_table(acc: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[15625]: for every cell beta, the index of its best valid alpha by ``acc`` (the lowest index among ties,
    as an argmax over all alphas). Edges are reduced from the last (least significant digit of the index) to the
    first, keeping the lowest op on ties: the lexicographically first maximiser, i.e. the lowest index."""
    k = len(mask)
    shape = (k,) * EDGES
    value = np.asarray(acc, dtype=np.float64).reshape(shape)
    best = np.arange(k**EDGES, dtype=np.int64).reshape(shape)  # the alpha each entry stands for
    for e in reversed(range(EDGES)):
        values, bests = [], []
        for b in range(k):  # op b on edge e may become the ops mask[b] allows
            allowed = mask[b].reshape((1,) * e + (k,) + (1,) * (EDGES - e - 1))
            pick = np.expand_dims(np.where(allowed, value, -np.inf).argmax(axis=e), e)
            values.append(np.take_along_axis(value, pick, axis=e))
            bests.append(np.take_along_axis(best, pick, axis=e))
        value, best = np.concatenate(values, axis=e), np.concatenate(bests, axis=e)
    return best.reshape(-1)


def per_input_optimum(betas: np.ndarray, acc: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each beta [B, 6] (op indices): (best valid alpha index, its gain). Exact, over all 15,625 alphas."""
    best_idx = optimum_table(acc, mask)[nb201_index(betas)]
    return best_idx, acc[best_idx] - acc[nb201_index(betas)]


def fixed_rules(mask: np.ndarray):
    """Every op -> op map that is valid for each op (one choice per op)."""
    choices = [np.flatnonzero(mask[o]) for o in range(len(mask))]
    for combo in itertools.product(*choices):
        yield np.array(combo, dtype=np.int64)


def best_fixed_rule(betas: np.ndarray, acc: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The fixed per-op rule with the highest mean gain on ``betas`` (select it on training inputs only)."""
    base = acc[nb201_index(betas)]
    best, best_gain = None, -np.inf
    for rule in fixed_rules(mask):
        gain = float(np.mean(acc[nb201_index(rule[betas])] - base))
        if gain > best_gain:
            best, best_gain = rule, gain
    assert best is not None
    return best, best_gain


def random_valid_gain(betas: np.ndarray, acc: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Exact expected gain of choosing each edge's new op uniformly among its valid ones (every valid alpha is
    equally likely: the valid set is a product of per-edge choices). ``acc``: one table [15625] -> [B], or
    several [T, 15625] -> [T, B]: the sum over an input's valid alphas is one per-edge contraction with the mask
    after another, for all 15,625 inputs at once."""
    acc = np.asarray(acc, dtype=np.float64)
    tabs = acc.reshape(-1, acc.shape[-1])
    k = len(mask)
    allowed = mask.astype(np.float64)  # [op b, op a]
    total = tabs.reshape((len(tabs),) + (k,) * EDGES)
    for e in range(EDGES):  # axis e + 1: alpha's op on edge e -> beta's op on edge e
        total = np.moveaxis(np.tensordot(allowed, total, axes=([1], [e + 1])), 0, e + 1)
    idx = nb201_index(betas)
    count = np.prod(mask.sum(axis=1)[betas], axis=1)  # valid alphas of each beta
    out = total.reshape(len(tabs), -1)[:, idx] / count - tabs[:, idx]
    return out if acc.ndim == 2 else out[0]
