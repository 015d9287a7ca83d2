"""REINFORCE with an entropy bonus (NAT Eqn. 5) as an RLlib custom algorithm (the new API stack's VPG pattern).

    grad J(theta) ~ 1/(m n) sum_i sum_j [ grad log pi(alpha_j | beta_i) (R(alpha_j | beta_i) - b)
                                          + lambda grad H(pi(. | beta_i)) ]

Each ``training_step`` samples m * n one-step episodes (m inputs beta, n transformations alpha of each: the env
repeats each input n times), takes one Adam step on the loss below, and syncs the weights to the EnvRunners.
The baseline b (``baseline``):
- ``ema`` (the released code's; the papers' Eqn. 5 states no baseline): an exponential moving average of
  the *reward* (the released code averaged the
  advantage, docs/papers.md): b <- decay * b + (1 - decay) * mean(R), started at the first batch's mean,
  applied before it is updated with the current batch. It lives in the RLModule as a buffer, so checkpoints
  hold it.
- ``input``: for n >= 2, the mean reward of the *other* n - 1 samples of the same input beta (leave-one-out, so
  the gradient stays unbiased); it removes the large input-to-input spread of R. Rows without siblings use ema.
- ``none``: b = 0.
"""

from __future__ import annotations

from typing import cast

import torch
from ray.rllib.algorithms import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from natrl.policy.bmsoftmax import BinaryMaskedSoftmax
from natrl.policy.module import DEFAULT_MODEL_CONFIG, TransitionPolicy


class REINFORCEConfig(AlgorithmConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or REINFORCE)
        self.lam = 3e-2  # entropy weight lambda (NAT++ Section 6.3; the released code used 3e-3)
        self.m = 16  # inputs beta per update
        self.n = 1  # sampled transformations alpha per input
        self.baseline = "ema"  # ema, input, or none (see the module docstring)
        self.baseline_decay = 0.99  # EMA decay of the reward baseline
        self.lr = 3e-4
        self.adam_betas = (0.5, 0.999)
        self.weight_decay = 5e-4
        self.batch_mode = "complete_episodes"
        self.num_env_runners = 0  # one-step episodes are cheap: sample in the driver process

    def training(
        self,
        *,
        lam=NotProvided,
        m=NotProvided,
        n=NotProvided,
        baseline=NotProvided,
        baseline_decay=NotProvided,
        adam_betas=NotProvided,
        weight_decay=NotProvided,
        **kwargs,
    ):
        super().training(**kwargs)
        for key, value in dict(
            lam=lam,
            m=m,
            n=n,
            baseline=baseline,
            baseline_decay=baseline_decay,
            adam_betas=adam_betas,
            weight_decay=weight_decay,
        ).items():
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    def get_default_rl_module_spec(self):
        return RLModuleSpec(module_class=TransitionPolicy, model_config=dict(DEFAULT_MODEL_CONFIG))

    def get_default_learner_class(self):
        return REINFORCELearner


class REINFORCELearner(TorchLearner):
    def configure_optimizers_for_module(self, module_id, config=None):
        module = self._module[module_id]
        params = self.get_parameters(module)
        optimizer = torch.optim.Adam(params, betas=tuple(config.adam_betas), weight_decay=config.weight_decay)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        module = self.module[module_id].unwrapped()
        dist = BinaryMaskedSoftmax.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS].long())  # sum over edges
        entropy = dist.entropy()  # sum over edges
        rewards = batch[Columns.REWARDS].float()
        with torch.no_grad():
            baseline = self._baseline(module, config, rewards, batch[Columns.OBS]["op"])
        advantage = rewards - baseline
        loss = -(logp * advantage.detach()).mean() - config.lam * entropy.mean()
        self.metrics.log_dict(
            {
                "reward_mean": rewards.mean().item(),
                "entropy": entropy.mean().item(),
                "baseline": float(module.reward_baseline),
                "batch_size": len(rewards),
            },
            key=module_id,
            window=1,
        )
        return loss

    @staticmethod
    def _baseline(module, config, rewards: torch.Tensor, beta_ops: torch.Tensor) -> torch.Tensor:
        if config.baseline == "none":
            return torch.zeros_like(rewards)
        mean_r = rewards.mean()
        ema = module.reward_baseline if module.baseline_steps > 0 else mean_r
        module.reward_baseline.copy_(config.baseline_decay * ema + (1 - config.baseline_decay) * mean_r)
        module.baseline_steps += 1
        if config.baseline == "ema":
            return ema.expand_as(rewards)
        # leave-one-out mean over the rows that share the same input beta
        _, group = torch.unique(beta_ops.reshape(len(rewards), -1), dim=0, return_inverse=True)
        total = torch.zeros(int(group.max()) + 1, device=rewards.device).index_add_(0, group, rewards)
        count = torch.zeros_like(total).index_add_(0, group, torch.ones_like(rewards))
        others = count[group] - 1
        loo = (total[group] - rewards) / others.clamp(min=1)
        return torch.where(others > 0, loo, ema.expand_as(rewards))


class REINFORCE(Algorithm):
    @classmethod
    def get_default_config(cls) -> REINFORCEConfig:
        return REINFORCEConfig()

    def training_step(self) -> None:
        # Sample by timesteps, not episodes: RLlib's sample(num_episodes=...) resets every sub-env with the
        # configured seed on *each* call, so every update would see the same m inputs. Episodes are one step
        # long, so m * n timesteps are m * n complete episodes (n vector steps of m sub-envs). force_reset
        # starts every call with an unseeded reset of the (finished) sub-envs instead of a wasted policy
        # forward for the autoreset step: an update then depends only on the state at its start, which is
        # what makes a resumed run identical to an uninterrupted one.
        config = cast(REINFORCEConfig, self.config)
        assert self.env_runner_group is not None and self.metrics is not None and self.learner_group is not None
        batch = config.m * config.n
        runners = self.env_runner_group.num_remote_workers()
        if runners == 0:
            episodes = self.env_runner.sample(num_timesteps=batch, random_actions=False, force_reset=True)
            metrics = [self.env_runner.get_metrics()]
        else:
            out = self.env_runner_group.foreach_env_runner(
                lambda r: (r.sample(num_timesteps=batch // runners, force_reset=True), r.get_metrics()),
                local_env_runner=False,
            )
            episodes, metrics = [e for o in out for e in o[0]], [o[1] for o in out]
        assert all(e.is_done for e in episodes), "NAT episodes are one step long"
        self.metrics.aggregate(metrics, key=ENV_RUNNER_RESULTS)
        learner_results = self.learner_group.update(
            episodes=episodes,
            timesteps={
                NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                    (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                )
            },
        )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
