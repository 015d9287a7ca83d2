"""Transition rules: which new op may replace an edge's current op, as a boolean matrix over a vocabulary.

``mask[i, j]`` is True when op ``vocab[i]`` may become op ``vocab[j]``. Both rules are derived from the ops'
(type, kernel) attributes in natrl.ops, never typed in; tests compare the NAT++ result with docs/papers.md.

- NAT (keep / null / skip): O -> {O, N, S}; S -> {S, N}; N -> {N, S}.
- NAT++ (two-level): type may only move conv -> sep -> dil -> pool (max and avg pooling are one type) and the
  kernel may only shrink (5 -> 3 -> 1), both at once; every op may also become skip or null; skip <-> null.
"""

from __future__ import annotations

import numpy as np

from natrl.errors import NatrlError
from natrl.ops import OP_INFO, vocabulary

# Position in the one-way type order of NAT++: an op may only move to a type at the same or a later position.
TYPE_ORDER = {"conv": 0, "sep": 1, "dil": 2, "pool": 3}
ESSENTIAL = ("skip", "null")  # types every op may become


def nat_allows(src: str, dst: str) -> bool:
    return src == dst or OP_INFO[dst].type in ESSENTIAL


def natpp_allows(src: str, dst: str) -> bool:
    a, b = OP_INFO[src], OP_INFO[dst]
    if b.type in ESSENTIAL or src == dst:
        return True
    if a.type not in TYPE_ORDER or b.type not in TYPE_ORDER:
        return False  # skip/null only move among themselves; "other" ops are outside the rule
    return TYPE_ORDER[b.type] >= TYPE_ORDER[a.type] and b.kernel <= a.kernel


RULES = {"nat": nat_allows, "natpp": natpp_allows}


def transition_mask(rule: str, vocab) -> np.ndarray:
    """Boolean [K, K] matrix of valid transitions of ``rule`` over ``vocab`` (a name or a tuple of ops)."""
    if rule not in RULES:
        raise NatrlError(f"unknown transition rule '{rule}'; choose one of {', '.join(RULES)}")
    ops = vocabulary(vocab) if isinstance(vocab, str) else tuple(vocab)
    allows = RULES[rule]
    return np.array([[allows(a, b) for b in ops] for a in ops], dtype=bool)


# The named rule/vocabulary pairs that `analysis/arch_info.py --transitions` and the envs use.
PRESETS = {"nat": ("nat", "nat"), "natpp": ("natpp", "natpp"), "nb201": ("natpp", "nb201")}
