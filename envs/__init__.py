"""Gymnasium environments of natrl; importing this package registers the env ids.

import gymnasium, envs
env = gymnasium.make("natrl/NATPP-NB201-v0")   # NAT++ rule, tabular NAS-Bench-201 reward
env = gymnasium.make("natrl/NAT-NB201-v0")     # NAT rule (keep / null / skip)
"""

from gymnasium.envs.registration import register

from envs.nat_env import NATEnv, NATVectorEnv, make_env

register(id="natrl/NATPP-NB201-v0", entry_point="envs.nat_env:NATEnv", kwargs={"space": "nb201", "rule": "natpp"})
register(id="natrl/NAT-NB201-v0", entry_point="envs.nat_env:NATEnv", kwargs={"space": "nb201", "rule": "nat"})

__all__ = ["NATEnv", "NATVectorEnv", "make_env"]
