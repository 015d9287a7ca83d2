"""Reward backends: score a batch of architectures; R(alpha | beta) = acc(alpha) - acc(beta) lives here."""
from natrl.rewards.base import RewardBackend, reward
from natrl.rewards.nb201 import NB201Table

__all__ = ["RewardBackend", "reward", "NB201Table", "make_backend"]


def make_backend(name: str, **kwargs) -> RewardBackend:
    from natrl.errors import NatrlError
    if name == "nb201":
        return NB201Table.load(**kwargs)
    raise NatrlError(f"unknown reward backend '{name}'; choose nb201 (the supernet backend comes with the DARTS space)")
