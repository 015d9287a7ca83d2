"""The reward interface every backend implements (tabular NAS-Bench-201 here, supernet shards later)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from natrl.cells import Genotype


class RewardBackend(Protocol):
    space: str

    def score(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        """Validation accuracy (percent) of each genotype, in one batched call."""


def reward(backend: RewardBackend, alphas: Sequence[Genotype], betas: Sequence[Genotype]) -> np.ndarray:
    """R(alpha | beta) = acc(alpha) - acc(beta) for each pair (NAT Eqn. 2), scored in one batch."""
    acc = backend.score(list(alphas) + list(betas))
    return acc[: len(alphas)] - acc[len(alphas) :]
