"""The m x n one-step episodes of one policy update, as one batch: the same rows from two samplers.

- :class:`BatchedSampler` (the fast path, in the driver): draws the m inputs beta, encodes them in one go,
  samples the n transformations alpha of every input in ONE no-grad forward of the policy, and scores all
  (alpha, beta) pairs in ONE reward call. No episodes, no per-sub-env Python, no forward on terminal states.
- :func:`episodes_to_batch` (the Gymnasium path): the one-step episodes RLlib's EnvRunners sampled from the
  NAT env, turned into the same rows.

Both draw input slot j of every update from the generator seeded ``seed + j`` (sub-env j of
``envs.NATVectorEnv``), so for one seed they see the same inputs in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from natrl.errors import NatrlError
from natrl.policy.bmsoftmax import BinaryMaskedSoftmax
from natrl.spaces import NB201_CELLS, NB201Space


@dataclass
class OneStepBatch:
    """The rows of one update: row i is one episode (beta_i, alpha_i, R(alpha_i | beta_i))."""

    obs: dict[str, np.ndarray]  # observations of the inputs beta, [B, ...] each
    actions: np.ndarray  # [B, E] new op of every edge (alpha)
    rewards: np.ndarray  # [B] accuracy gain R(alpha | beta), points
    entropy: float  # mean entropy (summed over edges) of the distributions the actions were drawn from

    def __len__(self) -> int:
        return len(self.rewards)

    @cached_property
    def groups(self) -> np.ndarray:
        """Row i's input id (in order of first appearance): rows with the same input cell (its ops and edges)
        share one."""
        key = np.ascontiguousarray(np.concatenate([self.obs["op"], self.obs["src"]], axis=1))
        ids: dict[bytes, int] = {}
        return np.array([ids.setdefault(row.tobytes(), len(ids)) for row in key], dtype=np.int64)

    def samples_per_input(self) -> list[int]:
        return sorted(np.bincount(self.groups).tolist())


class InputStreams:
    """p(beta) for the m input slots of an update; slot j draws from its own generator seeded ``seed + j``."""

    def __init__(self, space, m: int, seed: int, split: str = "train"):
        self.space, self.split = space, split
        self.rngs = [np.random.default_rng(seed + j) for j in range(m)]

    def draw(self) -> list:
        return [self.space.sample_input(rng, self.split) for rng in self.rngs]

    def draw_cells(self) -> np.ndarray:
        """NB201: the inputs :meth:`draw` would give (the same draws of ``NB201Space.sample_input``), as op-index
        vectors [m, 6] instead of genotypes."""
        space = self.space
        if self.split == "all":
            index = [rng.integers(len(NB201_CELLS)) for rng in self.rngs]
        elif self.split in ("train", "heldout"):
            cells = space.train_cells if self.split == "train" else space.heldout_cells
            index = [cells[rng.integers(len(cells))] for rng in self.rngs]
        else:
            raise NatrlError(f"unknown input split '{self.split}'; choose train, heldout or all")
        return NB201_CELLS[np.asarray(index, dtype=np.int64)]

    def state_dict(self) -> dict:
        return {"rngs": [rng.bit_generator.state for rng in self.rngs]}

    def load_state_dict(self, state: dict):
        if len(state["rngs"]) != len(self.rngs):
            raise ValueError(f"{len(state['rngs'])} input streams saved, {len(self.rngs)} expected")
        for rng, s in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = s


class BatchedSampler:
    """Samples the m inputs x n transformations of one update in one forward and one reward call."""

    def __init__(self, space, backend, m: int, n: int, seed: int, split: str = "train"):
        self.space, self.backend, self.m, self.n = space, backend, m, n
        self.inputs = InputStreams(space, m, seed, split)
        # NB201 on a table: an update stays in op-index vectors (an alpha's vector is its action), no genotypes
        self.indexed = isinstance(space, NB201Space) and hasattr(backend, "score_ops")

    def observe(self) -> tuple[list | np.ndarray, dict[str, np.ndarray]]:
        """The next update's m inputs beta (genotypes, or op-index vectors [m, 6] when ``indexed``) and the
        observations of its m x n rows (each input n times)."""
        if self.indexed:
            betas: list | np.ndarray = self.inputs.draw_cells()
            encoded = self.space.observe_batch(betas)
        else:
            betas = self.inputs.draw()
            encoded = self.space.encode_batch(betas)
        return betas, {k: np.repeat(v, self.n, axis=0) for k, v in encoded.items()}

    def score(self, betas: list | np.ndarray, obs: dict, actions: np.ndarray, entropy: float) -> OneStepBatch:
        """The rows of an update whose actions were sampled for ``obs``: all pairs in one reward call."""
        if self.indexed:
            codes = np.repeat(np.asarray(betas), self.n, axis=0)
            if actions.shape != codes.shape or not self.space.mask[codes, actions].all():
                for beta, action in zip(codes, actions):
                    self.space.check_action(beta, action)  # raises with the offending edge named
            acc = self.backend.score_ops(np.concatenate([actions, betas]))  # alpha's op vector is its action
            rewards = acc[: len(actions)] - np.repeat(acc[len(actions) :], self.n)
            return OneStepBatch(obs, actions, rewards, entropy)
        alphas = self.space.apply_batch([b for b in betas for _ in range(self.n)], actions)
        acc = self.backend.score(alphas + betas)  # each beta once: its n rows share its accuracy
        rewards = acc[: len(alphas)] - np.repeat(acc[len(alphas) :], self.n)
        return OneStepBatch(obs, actions, rewards, entropy)

    @torch.no_grad()
    def sample(self, module) -> OneStepBatch:
        betas, obs = self.observe()
        # module.distribution runs the module's forward as it is (RLlib's forward_exploration would switch every
        # submodule to eval mode and back; the policy has no dropout or batch norm)
        dist = module.distribution({k: torch.from_numpy(v) for k, v in obs.items()})
        actions = sample_actions(dist)
        return self.score(betas, obs, actions, float(dist.entropy().mean()))

    def state_dict(self) -> dict:
        return self.inputs.state_dict()

    def load_state_dict(self, state: dict):
        self.inputs.load_state_dict(state)


@torch.no_grad()
def sample_actions(dist: BinaryMaskedSoftmax) -> np.ndarray:
    """One transformation per row of ``dist``; a diverged policy (non-finite outputs) stops the run instead."""
    if not torch.isfinite(dist.logits).all():  # a diverged update: never sample (or report) from NaN
        raise NatrlError("the policy's outputs are not finite (a policy update diverged); lower --lr or --lam")
    actions = dist.sample()
    assert isinstance(actions, torch.Tensor)
    return actions.numpy()


def episodes_to_batch(episodes) -> OneStepBatch:
    """The rows of finished one-step SingleAgentEpisodes (the EnvRunner path)."""
    first = [e.get_observations(0) for e in episodes]
    obs = {k: np.stack([o[k] for o in first]) for k in first[0]}
    actions = np.stack([np.asarray(e.get_actions(0)) for e in episodes])
    rewards = np.array([e.get_rewards(0) for e in episodes], dtype=np.float64)
    logits = np.stack([e.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS, 0) for e in episodes])
    entropy = float(BinaryMaskedSoftmax.from_logits(torch.from_numpy(logits)).entropy().mean())
    return OneStepBatch(obs, actions, rewards, entropy)
