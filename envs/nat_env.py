"""The one-step MDP of NAT / NAT++ (NAT Section 3.1).

reset() draws an input cell beta ~ p(beta) (uniform over the space's training inputs); the observation encodes
beta as a padded graph with each edge's valid-transition mask; step(action) applies one transition per edge,
giving alpha, and returns R(alpha | beta) = acc(alpha) - acc(beta) and terminates.

The n samples per input of Eqn. (5): with ``n > 1`` the env keeps the same beta for n consecutive episodes, so
an update over m * n consecutive episodes sees m inputs with n sampled transformations each. An action outside
the mask raises ValueError: it is a bug in the caller, never silently clipped.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from natrl.rewards import make_backend, reward
from natrl.spaces import make_space


class NATEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, config: dict | None = None, *, space: str = "nb201", rule: str = "natpp",
                 reward_backend: str = "nb201", n: int = 1, inputs: str = "train", holdout_frac: float = 0.2,
                 split_seed: int = 0, table: str | None = None, backend=None):
        # RLlib passes one EnvContext dict positionally; gymnasium.make passes keywords. Both work.
        if config:
            kw = dict(space=space, rule=rule, reward_backend=reward_backend, n=n, inputs=inputs,
                      holdout_frac=holdout_frac, split_seed=split_seed, table=table, backend=backend)
            unknown = set(config) - set(kw)
            if unknown:
                raise ValueError(f"unknown env_config key(s) {sorted(unknown)}; known: {sorted(kw)}")
            kw.update(config)
            space, rule, reward_backend, n, inputs, holdout_frac, split_seed, table, backend = kw.values()
        self.space = make_space(space, rule=rule, holdout_frac=holdout_frac, split_seed=split_seed)
        self.backend = backend or make_backend(reward_backend, **({"path": table} if table else {}))
        self.n = int(n)
        self.inputs = inputs
        self.observation_space = self.space.observation_space()
        self.action_space = self.space.action_space()
        self._beta = None
        self._uses = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._beta = None  # a seeded reset starts a fresh input sequence
        if options and "beta" in options:
            self._beta, self._uses = np.asarray(options["beta"], dtype=np.int64), 1
        elif self._beta is None or self._uses >= self.n:
            self._beta, self._uses = self.space.sample_input(self.np_random, self.inputs), 1
        else:
            self._uses += 1
        obs = self.space.observe(self._beta)
        self.action_space.valid = obs["action_mask"] > 0
        return obs, {"beta": self._beta.copy()}

    def step(self, action):
        if self._beta is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.int64)
        self.space.check_action(self._beta, action)
        alpha, beta = self.space.genotype(action), self.space.genotype(self._beta)
        r = float(reward(self.backend, [alpha], [beta])[0])
        info = {"beta": self._beta.copy(), "alpha": action.copy()}
        self.action_space.valid = self.action_space.always_valid  # the next input is not known yet
        return self.space.observe(action), r, True, False, info
