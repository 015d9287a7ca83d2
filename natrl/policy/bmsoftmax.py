"""Binary-Masked Softmax (NAT++ Eqn. 6) as an RLlib action distribution.

p(o' | o) = m(o, o') exp(z_o') / sum_j m(o, j) exp(z_j): a softmax over the valid transitions only. Invalid
entries get the most negative float added to their logit (never -inf, which would give NaN gradients and
entropies), so after the softmax their probability is exactly 0 and they are never sampled.

Logits are [B, E, K] (one categorical per edge); log-probabilities and entropies sum over edges.
"""

from __future__ import annotations

import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchDeterministic, TorchDistribution
from ray.rllib.utils.torch_utils import FLOAT_MIN


def apply_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """logits + log(mask), clamped: 0 where valid, FLOAT_MIN where not."""
    return logits + torch.clamp(torch.log(mask), min=FLOAT_MIN)


class BinaryMaskedSoftmax(TorchDistribution):
    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        super().__init__(logits=logits)

    def _get_torch_distribution(self, logits):
        return torch.distributions.Independent(torch.distributions.Categorical(logits=logits, validate_args=False), 1)

    @staticmethod
    def required_input_dim(space, **kwargs) -> int:
        return int(sum(space.nvec))

    def rsample(self, *, sample_shape=None):
        raise NotImplementedError("transitions are discrete: use sample()")

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    def to_deterministic(self) -> TorchDeterministic:
        """Maximum-GCN: the most probable valid transition of every edge."""
        return TorchDeterministic(loc=torch.argmax(self.logits, dim=-1))
