"""REINFORCE with an entropy bonus (NAT Eqn. 5) as an RLlib custom algorithm (the new API stack's VPG pattern).

    grad J(theta) ~ 1/(m n) sum_i sum_j [ grad log pi(alpha_j | beta_i) (R(alpha_j | beta_i) - b)
                                          + lambda grad H(pi(. | beta_i)) ]

Each ``training_step`` samples the m * n one-step episodes of an update (m inputs beta, n transformations
alpha of each), computes the baseline b over the whole batch (natrl.algo.baseline), hands the learner group
a ready batch and takes one Adam step. Two samplers give the same rows (natrl.algo.sampler):
- ``sampler="batched"`` (default): in the driver, one no-grad forward of the learner's module for all m * n
  samples and one reward call; an episode costs what its math costs.
- ``sampler="env_runners"``: RLlib's EnvRunners step the Gymnasium NAT env (m sub-envs, each repeating its
  input n times); with ``num_env_runners`` > 0 each remote runner holds m / runners sub-envs, so the n samples
  of an input stay in one update and the runners' input streams do not overlap.
Run: ``python experiments/train_natpp.py`` (natrl.runs.transformer builds this algorithm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from ray.rllib.algorithms import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from natrl.algo.baseline import RewardBaseline
from natrl.algo.sampler import BatchedSampler, OneStepBatch, episodes_to_batch, sample_actions
from natrl.policy.bmsoftmax import BinaryMaskedSoftmax
from natrl.policy.module import DEFAULT_MODEL_CONFIG, TransitionPolicy

SAMPLERS = ("batched", "env_runners")


class REINFORCEConfig(AlgorithmConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or REINFORCE)
        self.lam = 3e-2  # entropy weight lambda (NAT++ Section 6.3; the released code used 3e-3)
        self.m = 16  # inputs beta per update
        self.n = 1  # sampled transformations alpha per input
        self.baseline = "ema"  # ema, input, or none (natrl.algo.baseline)
        self.baseline_decay = 0.99  # EMA decay of the reward baseline
        # Multiplies R - b in the loss: 1 for rewards in accuracy points; 0.01 makes them fractions, the
        # released code's unit (accuracy / 100), against which its lambda was set. Logs stay in points.
        self.reward_scale = 1.0
        self.sampler = "batched"  # batched (one forward per update, in the driver) or env_runners
        self.updates_per_iteration = 1  # policy updates per Algorithm.train() (see train_updates)
        self.lr = 3e-4
        self.adam_betas = (0.5, 0.999)
        self.weight_decay = 5e-4
        self.batch_mode = "complete_episodes"
        self.num_env_runners = 0  # one-step episodes are cheap: sample in the driver process
        # RLlib checks every gradient for NaN twice per step (26 device syncs) and zeroes bad ones silently;
        # natrl stops a run whose update went non-finite instead (BatchedSampler, TransformerRun).
        self.torch_skip_nan_gradients = True
        # The NAT env's connectors hold no state (no observation filters): nothing to sync after every update.
        self._dont_auto_sync_env_runner_states = True

    # REINFORCE's own settings, accepted by training() next to RLlib's (lr, train_batch_size, ...)
    OWN_SETTINGS = (
        "lam",
        "m",
        "n",
        "baseline",
        "baseline_decay",
        "reward_scale",
        "sampler",
        "updates_per_iteration",
        "adam_betas",
        "weight_decay",
    )

    @override(AlgorithmConfig)
    def training(self, **kwargs):
        own = {k: kwargs.pop(k) for k in self.OWN_SETTINGS if k in kwargs}
        super().training(**kwargs)
        for key, value in own.items():
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler '{self.sampler}'; choose {', '.join(SAMPLERS)}")
        if self.num_env_runners and self.sampler != "env_runners":
            raise ValueError("remote EnvRunners sample only with sampler='env_runners'")
        if self.num_env_runners and self.m % self.num_env_runners:
            raise ValueError(f"m={self.m} inputs do not split evenly over {self.num_env_runners} EnvRunners")

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self):
        return RLModuleSpec(module_class=TransitionPolicy, model_config=dict(DEFAULT_MODEL_CONFIG))

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        return REINFORCELearner


class REINFORCELearner(TorchLearner):
    # Set by REINFORCE for one update whose batch holds observations only: actions -> advantages (R - b) of the
    # rows. The learner then samples the actions from the logits of its own training forward (one forward per
    # update instead of a no-grad one in the driver and the training one: the same logits, the same draws).
    score_actions: Callable[[np.ndarray, float], np.ndarray] | None = None

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None):
        module = self._module[module_id]
        params = self.get_parameters(module)
        # foreach: one fused kernel per step for all parameters (CPU defaults to a loop over them)
        optimizer = torch.optim.Adam(
            params, betas=tuple(config.adam_betas), weight_decay=config.weight_decay, foreach=True
        )
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        dist = BinaryMaskedSoftmax.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        if Columns.ACTIONS in batch:
            actions = batch[Columns.ACTIONS].long()
            advantage = batch[Columns.ADVANTAGES].float()  # R - b, b over the whole update (the driver's)
        else:  # sampled here, from this forward's logits (REINFORCE._update_in_learner)
            actions, advantage = self._sample_and_score(dist.logits.detach())
        logp = dist.logp(actions)  # sum over edges
        entropy = dist.entropy()  # sum over edges
        loss = -(logp * advantage).mean() - config.lam * entropy.mean()
        return loss

    @torch.no_grad()
    def _sample_and_score(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actions, advantages) of an update sampled from ``logits``: the draws, the entropy and the order of
        the loss's graph (logp, then entropy) are those of sampling in the driver, so the update is the same."""
        assert self.score_actions is not None, "a batch without actions needs REINFORCE's score_actions"
        probe = BinaryMaskedSoftmax(logits)
        sampled = sample_actions(probe)
        advantage = self.score_actions(sampled, float(probe.entropy().mean()))
        return torch.from_numpy(sampled).long(), torch.from_numpy(advantage)


class REINFORCE(Algorithm):
    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> REINFORCEConfig:
        return REINFORCEConfig()

    @override(Algorithm)
    def setup(self, config):
        super().setup(config)
        cfg = cast(REINFORCEConfig, self.config)
        self.baseline = RewardBaseline(cfg.baseline, cfg.baseline_decay)
        self.reward_scale = float(cfg.reward_scale)
        self.sampler: BatchedSampler | None = None
        self.update_stats: list[dict] = []  # one dict per policy update; the caller drains it
        self._next_updates: int | None = None
        self._env_runners_stale = False  # the fast path syncs the EnvRunners' weights only when read
        if cfg.sampler == "batched":
            import envs

            env = envs.NATEnv(dict(cfg.env_config))  # the MDP's space, reward backend and p(beta)
            self.sampler = BatchedSampler(env.space, env.backend, cfg.m, cfg.n, seed=cfg.seed or 0, split=env.inputs)
        elif self.env_runner_group is not None and self.env_runner_group.num_remote_workers():
            k = cfg.m // cfg.num_env_runners  # sub-envs per runner: runner w holds input slots (w - 1) k ..
            self.env_runner_group.foreach_env_runner(
                lambda r: r.env.unwrapped.set_input_slots((r.worker_index - 1) * k, r.worker_index),
                local_env_runner=False,
            )

    def train_updates(self, k: int) -> dict:
        """``Algorithm.train()`` taking exactly ``k`` policy updates (one iteration's count may differ from the
        config's, e.g. to stop at a checkpoint boundary)."""
        self._next_updates = k
        return self.train()

    @override(Algorithm)
    def training_step(self) -> None:
        """``updates_per_iteration`` policy updates; each appends its statistics to ``self.update_stats``.
        Learner metrics are reduced once per iteration, which is what makes an update cheap."""
        config = cast(REINFORCEConfig, self.config)
        assert self.metrics is not None and self.learner_group is not None
        k, self._next_updates = self._next_updates or config.updates_per_iteration, None
        learner: Any = self.learner_group._learner  # None unless the learner runs in this process
        for i in range(k):
            reduce_metrics = i == k - 1 or not self.learner_group.is_local
            if self.sampler is not None and learner is not None:
                self._update_in_learner(learner, reduce_metrics)
                self._env_runners_stale = True
                continue
            with self.metrics.log_time((TIMERS, SAMPLE_TIMER)):
                rows = self._sample_batch() if self.sampler is not None else self._sample_env_runners(config)
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                self._learn(rows, reduce_metrics=reduce_metrics)
            # the next batch is sampled by the EnvRunners' (or, with remote learners, the local) module
            self._sync_env_runners()

    def _update_in_learner(self, learner: REINFORCELearner, reduce_metrics: bool):
        """One update of the batched sampler with the learner in this process: the batch holds the m x n
        observations only; the learner samples the actions from its training forward's logits, the reward and
        b are computed here in between (``score_actions``), then the same loss and Adam step as :meth:`_learn`.
        Same rows, same random numbers, same weights as sampling first with a no-grad forward."""
        assert self.sampler is not None and self.metrics is not None and self.learner_group is not None
        sampler = self.sampler
        betas, obs = sampler.observe()
        done: list = []

        def score_actions(actions: np.ndarray, entropy: float) -> np.ndarray:
            rows = sampler.score(betas, obs, actions, entropy)
            b = self.baseline(rows.rewards, rows.groups)
            done.append((rows, b))
            return ((rows.rewards - b) * self.reward_scale).astype(np.float32)

        size = sampler.m * sampler.n
        self.metrics.log_value((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), size, reduce="lifetime_sum")
        batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch({Columns.OBS: obs})}, env_steps=size)
        learner.score_actions = score_actions
        try:
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                self._update_learners(batch, reduce_metrics)
        finally:
            learner.score_actions = None
        rows, b = done[0]
        self._record(rows, b)

    def _learn(self, rows: OneStepBatch, reduce_metrics: bool):
        """One Adam step on Eqn. (5) over ``rows``; b is computed here, over the whole update."""
        assert self.metrics is not None and self.learner_group is not None
        b = self.baseline(rows.rewards, rows.groups)
        columns: dict[str, Any] = {
            Columns.OBS: rows.obs,
            Columns.ACTIONS: rows.actions,
            Columns.REWARDS: rows.rewards.astype(np.float32),
            Columns.ADVANTAGES: ((rows.rewards - b) * self.reward_scale).astype(np.float32),
        }
        batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(columns)}, env_steps=len(rows))
        self._update_learners(batch, reduce_metrics)
        self._record(rows, b)

    def _update_learners(self, batch: MultiAgentBatch, reduce_metrics: bool):
        assert self.metrics is not None and self.learner_group is not None
        lifetime = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        options: dict[str, Any] = {} if reduce_metrics else {"_no_metrics_reduce": True}
        results = self.learner_group.update(
            batch=batch, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: lifetime}, **options
        )
        if reduce_metrics:
            self.metrics.aggregate(results, key=LEARNER_RESULTS)

    def _record(self, rows: OneStepBatch, b: np.ndarray):
        self.update_stats.append(
            {
                "reward_mean": float(rows.rewards.mean()),
                "entropy": rows.entropy,
                "baseline": float(b.mean()),
                "batch_size": len(rows),
                "inputs": int(rows.groups.max()) + 1,
            }
        )

    def _sample_batch(self) -> OneStepBatch:
        """The fast path: the learner's own module when it is local, else the (synced) local EnvRunner's."""
        assert self.sampler is not None and self.metrics is not None and self.learner_group is not None
        learner: Any = self.learner_group._learner  # None unless the learner runs in this process
        module = learner.module[DEFAULT_MODULE_ID] if learner is not None else self.get_module()
        rows = self.sampler.sample(module)
        self.metrics.log_value((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), len(rows), reduce="lifetime_sum")
        return rows

    def _sample_env_runners(self, config: REINFORCEConfig) -> OneStepBatch:
        # Sample by timesteps, not episodes: RLlib's sample(num_episodes=...) resets every sub-env with the
        # configured seed on *each* call, so every update would see the same m inputs. Episodes are one step
        # long, so k * n timesteps over k sub-envs are n samples of each sub-env's input. force_reset starts
        # every call with an unseeded reset instead of a wasted forward for the autoreset step: an update
        # then depends only on the state at its start, which makes a resumed run identical.
        assert self.env_runner_group is not None and self.metrics is not None
        runners = self.env_runner_group.num_remote_workers()
        if runners == 0:
            episodes = self.env_runner.sample(num_timesteps=config.m * config.n, force_reset=True)
            metrics = [self.env_runner.get_metrics()]
        else:
            per_runner = config.m // runners * config.n
            out = self.env_runner_group.foreach_env_runner(
                lambda r: (r.sample(num_timesteps=per_runner, force_reset=True), r.get_metrics()),
                local_env_runner=False,
            )
            episodes, metrics = [e for o in out for e in o[0]], [o[1] for o in out]
        assert all(e.is_done and len(e) == 1 for e in episodes), "NAT episodes are one step long"
        self.metrics.aggregate(metrics, key=ENV_RUNNER_RESULTS)
        return episodes_to_batch(episodes)

    def _sync_env_runners(self):
        assert self.env_runner_group is not None and self.metrics is not None
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
        self._env_runners_stale = False

    @override(Algorithm)
    def get_module(self, module_id=DEFAULT_MODULE_ID):
        if self._env_runners_stale:
            self._sync_env_runners()
        return super().get_module(module_id)

    @override(Algorithm)
    def get_state(self, *args, **kwargs):
        if self._env_runners_stale:
            self._sync_env_runners()
        return super().get_state(*args, **kwargs)

    def sampling_state(self) -> dict:
        """What the next update's rows depend on besides the weights: input streams and the baseline."""
        state: dict = {"baseline": self.baseline.state_dict()}
        if self.sampler is not None:
            state["inputs"] = self.sampler.state_dict()
        else:
            state["envs"] = [s for states in self._foreach_vector_env(_sub_env_states) for s in states]
        return state

    def _foreach_vector_env(self, fn) -> list:
        """fn(NATVectorEnv, runner index) on the EnvRunners that sample: the remote ones if any (index w - 1
        for runner w), else the local one (index 0)."""
        group: Any = self.env_runner_group
        remote = group.num_remote_workers() > 0
        return group.foreach_env_runner(
            lambda r: fn(r.env.unwrapped, max(r.worker_index, 1) - 1), local_env_runner=not remote
        )

    def load_sampling_state(self, state: dict):
        self.baseline.load_state_dict(state["baseline"])
        if self.sampler is not None:
            self.sampler.load_state_dict(state["inputs"])
            return
        saved = state["envs"]
        if sum(self._foreach_vector_env(lambda v, w: v.num_envs)) != len(saved):
            raise ValueError(f"{len(saved)} sub-envs saved; this algorithm samples with a different count")

        def restore(vector_env, w: int):  # runner w holds input slots w k .. (w + 1) k - 1
            k = vector_env.num_envs
            for env, s in zip(vector_env.envs, saved[w * k : (w + 1) * k]):
                env.unwrapped.set_state(s)

        self._foreach_vector_env(restore)


def _sub_env_states(vector_env, w: int) -> list[dict]:
    return [e.unwrapped.get_state() for e in vector_env.envs]
