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

    # Every setting, with its default; RLlib passes them as one env_config dict, gymnasium.make as keywords.
    DEFAULTS = {
        "space": "nb201",  # search space (natrl.spaces)
        "rule": "natpp",  # transition rule: natpp or nat
        "reward_backend": "nb201",  # reward backend name (natrl.rewards.make_backend)
        "table": None,  # the backend's table file (default: its packaged table)
        "backend": None,  # a RewardBackend object, or a natrl.rewards.share_backend key; overrides the above
        "n": 1,  # consecutive episodes on the same input beta
        "inputs": "train",  # p(beta): uniform over the train split, the heldout split, or all cells
        "holdout_frac": 0.2,  # share of cells held out from training (fixed split)
        "split_seed": 0,
        "num_intermediate": None,  # darts space: intermediate nodes per cell (4 DARTS-like, 5 ENAS-like)
    }

    def __init__(self, config: dict | None = None, **kwargs):
        given = {**(config or {}), **kwargs}
        unknown = sorted(set(given) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"unknown env setting(s) {unknown}; known: {sorted(self.DEFAULTS)}")
        cfg = {**self.DEFAULTS, **given}
        extra = {} if cfg["num_intermediate"] is None else {"num_intermediate": cfg["num_intermediate"]}
        self.space = make_space(
            cfg["space"], rule=cfg["rule"], holdout_frac=cfg["holdout_frac"], split_seed=cfg["split_seed"], **extra
        )
        if isinstance(cfg["backend"], str):  # a key from natrl.rewards.share_backend
            self.backend = make_backend(cfg["backend"])
        else:
            self.backend = cfg["backend"] or make_backend(
                cfg["reward_backend"], **({"path": cfg["table"]} if cfg["table"] else {})
            )
        self.n = int(cfg["n"])
        self.inputs = cfg["inputs"]
        self.observation_space = self.space.observation_space()
        self.action_space = self.space.action_space()
        self._beta = None
        self._uses = 0
        self._resumed = False

    # ---- checkpoint / resume: the input stream continues exactly where it stopped -------------------
    def get_state(self) -> dict:
        return {
            "rng": self.np_random.bit_generator.state,
            "uses": self._uses,
            "beta": None if self._beta is None else self._beta.to_json(),
        }

    def set_state(self, state: dict):
        from natrl.cells import genotype_from_dict

        self.np_random.bit_generator.state = state["rng"]
        self._uses = state["uses"]
        self._beta = None if state["beta"] is None else genotype_from_dict(state["beta"])
        self._resumed = True  # the next reset continues this stream even if the caller passes a seed

    def reset(self, *, seed=None, options=None):
        if self._resumed:  # RLlib's first reset after a restore re-seeds; keep the restored stream instead
            seed, self._resumed = None, False
        super().reset(seed=seed)
        if seed is not None:
            self._beta = None  # a seeded reset starts a fresh input sequence
        if options and "beta" in options:  # a given input (a Genotype of this space)
            self._beta, self._uses = options["beta"], 1
        elif self._beta is None or self._uses >= self.n:
            self._beta, self._uses = self.space.sample_input(self.np_random, self.inputs), 1
        else:
            self._uses += 1
        obs = self.space.encode(self._beta)
        self.action_space.valid = obs["action_mask"] > 0
        return obs, {"beta": self.space.describe(self._beta)}

    def step(self, action):
        alpha = self.transform(action)
        return self.finish(alpha, float(reward(self.backend, [alpha], [self._beta])[0]))

    # step() in two halves, so that NATVectorEnv can score all sub-envs' (alpha, beta) pairs in one call
    def transform(self, action):
        """alpha = the current input with ``action`` applied (ValueError outside the mask)."""
        if self._beta is None:
            raise RuntimeError("call reset() before step()")
        return self.space.apply(self._beta, np.asarray(action, dtype=np.int64))

    def finish(self, alpha, r: float):
        info = {"beta": self.space.describe(self._beta), "alpha": self.space.describe(alpha)}
        self.action_space.valid = self.action_space.always_valid  # the next input is not known yet
        return self.space.encode(alpha), r, True, False, info


class NATVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` NATEnvs stepped together, with the rewards of all their (alpha, beta) pairs scored in ONE
    backend call (one table lookup, or one batched call spread over the supernet shards). Autoreset follows
    gymnasium's NEXT_STEP mode, like SyncVectorEnv: a finished sub-env is reset by the following step()."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, config: dict | None = None, num_envs: int = 1, **kwargs):
        self.envs = [NATEnv(config, **kwargs) for _ in range(num_envs)]
        self.first_slot, self.seed_offset = 0, 0  # see set_input_slots
        self.backend = self.envs[0].backend
        for e in self.envs[1:]:
            e.backend = self.backend  # one backend object (and one supernet batch counter) for all
        self.num_envs = num_envs
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)

    def set_input_slots(self, first: int, seed_offset: int):
        """Make sub-env i input slot ``first + i`` of an update, seeded ``seed + first + i`` by a reset with
        ``seed + seed_offset`` (RLlib's EnvRunner k resets with seed + k): remote runners then draw disjoint
        streams that together equal those of one runner holding every slot."""
        self.first_slot, self.seed_offset = first, seed_offset

    def _stack(self, obs):
        return {k: np.stack([o[k] for o in obs]) for k in obs[0]}

    def reset(self, *, seed=None, options=None):
        base = None if seed is None else seed - self.seed_offset + self.first_slot
        seeds = [None] * self.num_envs if base is None else [base + i for i in range(self.num_envs)]
        obs = [e.reset(seed=s, options=options)[0] for e, s in zip(self.envs, seeds)]
        self._autoreset[:] = False
        return self._stack(obs), {}

    def step(self, actions):
        obs, rewards = [None] * self.num_envs, np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        stepping = [i for i in range(self.num_envs) if not self._autoreset[i]]
        for i in np.flatnonzero(self._autoreset):
            obs[i] = self.envs[i].reset()[0]
        alphas = [self.envs[i].transform(actions[i]) for i in stepping]
        betas = [self.envs[i]._beta for i in stepping]
        r = reward(self.backend, alphas, betas) if stepping else []
        for j, i in enumerate(stepping):
            obs[i], rewards[i], terminated[i], _, _ = self.envs[i].finish(alphas[j], float(r[j]))
        self._autoreset = terminated.copy()
        return self._stack(obs), rewards, terminated, np.zeros(self.num_envs, dtype=bool), {}

    def close(self, **kwargs):
        for e in self.envs:
            e.close()


def make_env(config: dict | None = None):
    """RLlib's env factory: a NATVectorEnv when RLlib asks for ``num_envs`` sub-envs, else a NATEnv."""
    config = dict(config or {})
    num_envs = config.pop("num_envs", None)
    return NATEnv(config) if num_envs is None else NATVectorEnv(config, num_envs=num_envs)
