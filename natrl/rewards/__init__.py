"""Reward backends: score a batch of architectures; R(alpha | beta) = acc(alpha) - acc(beta) lives here."""

from natrl.rewards.base import RewardBackend, reward
from natrl.rewards.nb201 import NB201Table

__all__ = ["RewardBackend", "reward", "NB201Table", "make_backend", "share_backend"]

# Backends that hold state (a supernet's batch counter, its shard handles) must be one object, not the copies
# RLlib makes of env_config: envs in this process look them up by key.
_SHARED: dict[str, RewardBackend] = {}


def share_backend(backend: RewardBackend) -> str:
    """Register ``backend`` for the envs of this process; pass the returned key as env_config["backend"]."""
    key = f"shared:{id(backend)}"
    _SHARED[key] = backend
    return key


def make_backend(name: str, **kwargs) -> RewardBackend:
    from natrl.errors import NatrlError

    if name in _SHARED:
        return _SHARED[name]
    if name == "nb201":
        return NB201Table.load(**kwargs)
    raise NatrlError(f"unknown reward backend '{name}'; choose nb201 (the supernet backend comes with the DARTS space)")
