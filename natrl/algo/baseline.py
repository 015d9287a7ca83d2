"""The reward baseline b of REINFORCE (NAT Eqn. 5), computed once per update over the update's whole batch.

It runs on the driver, before the batch goes to the learner(s): with several learners each sees a shard of the
batch, and a baseline computed per shard would differ from the one of the update (the papers' m x n rows).

Kinds:
- ``ema`` (the released code's; the papers' Eqn. 5 states none): an exponential moving average of the
  *reward* (the released code averaged the advantage, docs/papers.md), b_t = decay b_{t-1} + (1 - decay)
  mean(R_t), started at the first batch's mean. Update t uses b_{t-1}, the value from *before* its own batch,
  so a row's reward never enters its own baseline.
- ``input``: for n >= 2, the mean reward of the *other* rows of the same input beta (leave-one-out, so the
  gradient stays unbiased); it removes the large input-to-input spread of R. Rows without siblings use ema.
- ``none``: b = 0.
"""

from __future__ import annotations

import numpy as np

KINDS = ("ema", "input", "none")


class RewardBaseline:
    def __init__(self, kind: str = "ema", decay: float = 0.99):
        if kind not in KINDS:
            raise ValueError(f"unknown baseline '{kind}'; choose {', '.join(KINDS)}")
        self.kind, self.decay = kind, float(decay)
        self.ema = 0.0  # b_{t-1}
        self.steps = 0

    def __call__(self, rewards: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """b for every row of one update; ``groups[i]`` numbers the input beta of row i. Advances the EMA."""
        rewards = np.asarray(rewards, dtype=np.float64)
        mean_r = float(rewards.mean())
        previous = self.ema if self.steps > 0 else mean_r  # b_{t-1}; the first batch starts it
        self.ema = self.decay * previous + (1 - self.decay) * mean_r
        self.steps += 1
        if self.kind == "none":
            return np.zeros_like(rewards)
        if self.kind == "ema":
            return np.full_like(rewards, previous)
        return leave_one_out(rewards, groups, fallback=previous)

    def state_dict(self) -> dict:
        return {"ema": self.ema, "steps": self.steps}

    def load_state_dict(self, state: dict):
        self.ema, self.steps = float(state["ema"]), int(state["steps"])


def leave_one_out(rewards: np.ndarray, groups: np.ndarray, fallback: float) -> np.ndarray:
    """Mean reward of the other rows of the same group; ``fallback`` for a row alone in its group."""
    _, g = np.unique(groups, return_inverse=True)
    total = np.bincount(g, weights=rewards)
    count = np.bincount(g)
    others = count[g] - 1
    loo = (total[g] - rewards) / np.maximum(others, 1)
    return np.where(others > 0, loo, fallback)
