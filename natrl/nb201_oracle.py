"""Exact reference points on the NAS-Bench-201 space, possible because the space is small (5^6 cells).

For input cells beta and a transition mask: the per-input optimum (best valid alpha, by exhaustive search),
the best fixed per-op rule (one op -> op map for every input, chosen on given inputs), and the expected gain
of a uniformly random valid transformation. These are the baselines the trained policy is compared with.
"""

from __future__ import annotations

import itertools

import numpy as np

from natrl.spaces import NB201_CELLS, nb201_index

CHUNK = 256  # inputs per block: a block's validity matrix is CHUNK x 15,625


def _valid_alphas(betas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[B, 15625] booleans: alpha is a valid transformation of beta on every edge (mask[beta_e, alpha_e])."""
    valid = np.ones((len(betas), len(NB201_CELLS)), dtype=bool)
    for e in range(NB201_CELLS.shape[1]):
        valid &= mask[betas[:, e]][:, NB201_CELLS[:, e]]
    return valid


def per_input_optimum(betas: np.ndarray, acc: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each beta [B, 6] (op indices): (best valid alpha index, its gain). Exhaustive over 15,625 alphas."""
    best_idx = np.empty(len(betas), dtype=np.int64)
    for start in range(0, len(betas), CHUNK):
        valid = _valid_alphas(betas[start : start + CHUNK], mask)
        best_idx[start : start + CHUNK] = np.where(valid, acc, -np.inf).argmax(axis=1)
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
    several [T, 15625] -> [T, B], from one pass over the valid sets."""
    acc = np.asarray(acc, dtype=np.float64)
    tabs = acc.reshape(-1, acc.shape[-1])
    out = np.empty((len(tabs), len(betas)))
    for start in range(0, len(betas), CHUNK):
        valid = _valid_alphas(betas[start : start + CHUNK], mask)
        out[:, start : start + CHUNK] = (tabs @ valid.T) / valid.sum(axis=1)
    out -= tabs[:, nb201_index(betas)]
    return out if acc.ndim == 2 else out[0]
