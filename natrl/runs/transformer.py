"""The NAT / NAT++ transformer run: train the policy with REINFORCE on RLlib, then evaluate it on held-out inputs.

Two reward kinds share one lifecycle (:class:`TransformerRun`):
- ``nb201``: the tabular NAS-Bench-201 reward; policy updates only, a checkpoint every ``checkpoint_every``.
- ``supernet``: Algorithm 1 on the darts space: per epoch, one supernet pass on the 40% split (Ray shard
  actors), then the policy updates scored on the 60% split; a checkpoint after every epoch.
Every input is checked before the run directory is written (:func:`load_inputs`); a kill -9 resumes exactly
from the last checkpoint (``--resume RUN_DIR``), which holds plain tensors only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError
from natrl.rundir import Progress, RunDir, rng_state, seed_everything, set_rng_state

if TYPE_CHECKING:
    from natrl.cells import Genotype

KIND = "transformer"
# Policy updates per RLlib training iteration (Algorithm.train()): RLlib's per-iteration bookkeeping (results,
# the config copied into them, metrics reduction) then costs a hundredth of what it would per update; an
# iteration also ends at every checkpoint and curve point; progress rows stay one per update.
UPDATES_PER_ITERATION = 100

# Algorithm 1 makes one policy update per batch of the 60% split: ceil(0.6 * 50,000 / 64) = 469 per epoch.
POLICY_UPDATES_PER_EPOCH = math.ceil(0.6 * 50_000 / 64)
PAPERS = {"natrl": "natrl", "nat": "NAT", "natpp": "NAT++"}
REWARD_SCALE = {"points": 1.0, "fraction": 0.01}  # --reward-unit -> the factor on R - b in the policy loss
# The presets: every knob each paper states (NAT Section 4.1, NAT++ Section 5.1; the released code where the
# papers are silent, docs/papers.md#presets), and our tuned defaults, which equal TrainConfig's field defaults.
# ``iters`` is per supernet epoch; on the tabular reward a paper preset runs epochs x 469 updates in all.
RECIPES: dict[str, dict[str, Any]] = {
    "natrl": {
        "m": 32,
        "n": 2,
        "lam": 3e-2,
        "lr": 1e-3,
        "baseline": "input",
        "baseline_decay": 0.99,
        "reward_unit": "points",
        "gcn_layers": 2,
        "hidden": 64,
        "supernet_size": "tiny",
        "supernet_batch": 64,
        "supernet_steps": 0,
        "epochs": 3,
        "iters": 1500,
        "best_of": 10,
    },
    "nat": {
        "rule": "nat",
        "m": 1,
        "n": 1,
        "lam": 3e-3,
        "lr": 3e-4,
        "baseline": "ema",
        "baseline_decay": 0.99,
        "reward_unit": "fraction",
        "gcn_layers": 2,
        "hidden": 100,
        "supernet_size": "paper",
        "supernet_batch": 64,
        "supernet_steps": 0,
        "epochs": 100,
        "iters": POLICY_UPDATES_PER_EPOCH,
        "best_of": 10,
    },
}
RECIPES["natpp"] = {**RECIPES["nat"], "rule": "natpp", "epochs": 200}  # NAT++ 5.1: as NAT, 200 epochs


# knob -> (where the papers state it, why natrl's default differs): the "why" column of docs/papers.md#presets
RECIPE_NOTES = {
    "rule": ("NAT / NAT++ (the paper's own rule)", "natrl: the script's rule (train_natpp.py, train_nat.py)"),
    "m": ("NAT 4.1, NAT++ 5.1", "at a fixed number of updates gains grow with m (Table 5, nb201.md)"),
    "n": ("NAT 4.1, NAT++ 5.1", "the leave-one-out baseline needs n >= 2; gains grow with n (Table 5)"),
    "lam": ("NAT 4.1, NAT++ 5.1 (6.3: 3e-2)", "best single-sample lambda of Fig. 7(b) here, and NAT++ 6.3"),
    "lr": ("released code (papers silent)", "1,500 updates instead of 93,800: a larger step (not tuned)"),
    "baseline": ("released code (Eqn. 5 has none)", "leave-one-out over an input's n samples, per input"),
    "baseline_decay": ("released code", "-"),
    "reward_unit": ("released code (accuracy / 100; papers silent)", "our lambda grid was measured in points"),
    "gcn_layers": ("NAT Eqn. (3), NAT++ 6.2", "-"),
    "hidden": ("released code (papers silent)", "our Kipf GCN with a per-edge head; cheaper on CPU (not tuned)"),
    "supernet_size": ("NAT 4.1 (8 cells), NAT++ 5.1 (8 cells, C = 20)", "C = 8, 5 cells: CPU minutes per epoch"),
    "supernet_batch": ("released code", "-"),
    "supernet_steps": ("Algorithm 1 (a full pass)", "-"),
    "epochs": ("NAT 4.1, NAT++ 5.1", "a CPU check of the supernet path"),
    "iters": ("Algorithm 1: one update per batch of the 60% split", "96,000 reward evaluations, as NAT++'s 93,800"),
    "best_of": ("NAT 3.4 (several), released code (10)", "-"),
}


def _recipe_cell(preset: str, knob_name: str) -> str:
    value = RECIPES[preset].get(knob_name)
    if knob_name == "iters" and preset != "natrl":
        return f"{value} per epoch; nb201: {recipe(preset, 'nb201')['iters']:,} in all"
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def recipe_table() -> str:
    """The presets side by side, as docs/papers.md#presets shows them (tests/test_presets.py checks it)."""
    lines = [
        "| knob | `--preset natrl` (default) | `--preset nat` | `--preset natpp` | stated in | why natrl differs |",
        "|---|---|---|---|---|---|",
    ]
    for name, (where, why) in RECIPE_NOTES.items():
        cells = [_recipe_cell(p, name) for p in ("natrl", "nat", "natpp")]
        same = len(set(cells)) == 1
        lines.append(f"| `--{name.replace('_', '-')}` | {' | '.join(cells)} | {where} | {'-' if same else why} |")
    return "\n".join(lines)


def recipe(preset: str, reward: str) -> dict[str, Any]:
    """The knob values of ``preset`` for a run on ``reward``: on the tabular reward (no supernet epochs) a
    paper preset makes all of its epochs' policy updates in one run (NAT++: 200 x 469 = 93,800)."""
    values = dict(RECIPES[preset])
    if preset != "natrl" and reward == "nb201":
        values["iters"] = values["epochs"] * POLICY_UPDATES_PER_EPOCH
    return values


@dataclass
class TrainConfig(RunConfig):
    preset: Literal["natrl", "nat", "natpp"] = knob(
        "natrl",
        "recipe for the knobs not given: natrl (our tuned defaults), nat or natpp (every setting the NAT / "
        "NAT++ paper states; docs/papers.md#presets)",
    )
    rule: Literal["natpp", "nat"] = knob("natpp", "transition rule: natpp (two-level) or nat (keep / null / skip)")
    space: Literal["nb201", "darts"] = knob("nb201", "search space: nb201 (one cell) or darts (normal + reduction)")
    reward: Literal["nb201", "supernet"] = knob(
        "nb201", "reward: nb201 (the tabular NAS-Bench-201 reward) or supernet (Algorithm 1, darts or nb201 space)"
    )
    table: str | None = knob(
        None,
        "NB201 table the reward reads (default: analog-nasbench's data.anb); with --reward supernet only the "
        "evaluation against the truth reads it, never the search",
        metavar="PATH",
    )
    report_table: str | None = knob(None, "a second NB201 table (official CSV) to report on as well", metavar="PATH")
    policy: Literal["gcn", "lstm", "random"] = knob(
        "gcn", "encoder: gcn, lstm, or random (uniform over valid transitions, not trained)"
    )
    gcn_layers: int = knob(2, "graph-convolution depth", ge=1, le=64)
    hidden: int = knob(64, "width of embeddings and GCN layers", ge=1, le=4096)
    lam: float = knob(3e-2, "entropy weight lambda of Eqn. (5)", ge=0, le=1000)
    m: int = knob(32, "inputs beta per update", ge=1, le=100000)
    n: int = knob(2, "sampled transformations alpha per input", ge=1, le=10000)
    lr: float = knob(1e-3, "Adam learning rate of the policy", gt=0, le=10)
    sampler: Literal["batched", "env_runners"] = knob(
        "batched",
        "how an update's m x n episodes are sampled: batched (one policy forward and one reward call "
        "in the driver) or env_runners (RLlib's EnvRunners step the Gymnasium env)",
    )
    env_runners: int = knob(0, "remote EnvRunners for --sampler env_runners (0 = sample in the driver)", ge=0, le=1024)
    learners: int = knob(0, "remote RLlib Learners (0 = one learner in the driver)", ge=0, le=1024)
    baseline: Literal["ema", "input", "none"] = knob(
        "input",
        "reward baseline: ema (moving average, as in the released code), input (leave-one-out over the n "
        "samples), none",
    )
    baseline_decay: float = knob(0.99, "decay of the moving-average baseline", ge=0, le=1)
    reward_unit: Literal["points", "fraction"] = knob(
        "points",
        "unit of R in the policy loss: points (accuracy in %) or fraction (accuracy / 100, the released code's); "
        "it sets what lambda weighs the entropy against. Logs stay in points",
    )
    iters: int = knob(1500, "policy updates (per supernet epoch with --reward supernet)", ge=0, le=10**8)
    eval_every: int = knob(
        0,
        "nb201 reward: every N updates, the held-out gain of the cells the policy derives then goes to "
        "convergence.csv (NAT++ Fig. 8: analysis/fig8_convergence.py); 0 = off",
        ge=0,
        le=10**8,
    )
    checkpoint_every: int = knob(100, "nb201 reward: policy updates between checkpoints", ge=1, le=10**8)
    data: str | None = knob(
        None, "CIFAR-10 for the supernet: cifar-10-batches-py, image folder or .tar.gz", metavar="PATH"
    )
    supernet_size: Literal["tiny", "paper"] = knob(
        "tiny",
        "supernet size: tiny (darts: C=8, 5 cells; nb201: C=8, 1 cell a stage; CPU minutes) or paper (darts: C=20, "
        "8 cells; nb201: NAS-Bench-201's C=16, 5 cells a stage)",
    )
    intermediate_nodes: int = knob(4, "k of the darts space: 4 (DARTS-like cells) or 5 (ENAS-like cells)", ge=1, le=8)
    epochs: int = knob(3, "supernet epochs of Algorithm 1", ge=1, le=100000)
    supernet_batch: int = knob(64, "supernet global batch, split over the shards", ge=1, le=65536)
    supernet_batch_per_shard: bool = knob(
        False, "opt in: --supernet-batch per shard (global batch x shards), lr and lr_min x shards (linear scaling)"
    )
    supernet_steps: int = knob(
        0, "cap on supernet steps per epoch (0 = a full pass over the 40% split)", ge=0, le=10**8
    )
    reward_images: int = knob(
        0,
        "supernet reward: images per reward evaluation (0 = --supernet-batch: one batch, Algorithm 1)",
        ge=0,
        le=10**6,
    )
    reward_cache: bool = knob(
        False,
        "supernet reward: score every reward of an epoch on the same images, each cell once per epoch (exact: "
        "the supernet does not change between its epochs); default: a new batch per update (Algorithm 1)",
    )
    supernet_sampling: Literal["inputs", "fair"] = knob(
        "inputs",
        "cells the supernet trains on: inputs (Algorithm 1: a random training input cell per step) or fair "
        "(nb201; FairNAS-style: every 5 steps, 5 cells whose ops on each edge are a permutation of the 5 ops)",
    )
    warmup_epochs: int = knob(
        0, "supernet epochs before the first policy update (Algorithm 1: 0, the policy learns from epoch 1)", ge=0
    )
    corr_pairs: int = knob(
        500,
        "nb201 space, --reward supernet: (alpha, beta) pairs whose supernet reward is rank-correlated with the "
        "table's true gain after every supernet epoch (correlation.csv); 0 = off",
        ge=0,
        le=10**6,
    )
    corr_batches: int = knob(
        0,
        "nb201 space: score each correlation point's pairs on the mean of K fixed evaluation batches of the 60% "
        "split (the same images every epoch); 0 = like a reward, on the epoch's reward batch",
        ge=0,
        le=1000,
    )
    corr_every: int = knob(1, "supernet epochs between two correlation points (the last epoch always has one)", ge=1)
    supernet_lr: float = knob(
        0.01, "supernet SGD learning rate, cosine-annealed to 0.001 (released code: 0.01)", gt=0, le=10
    )
    cpu_shards: int = knob(1, "supernet shards when --num-gpus 0 (with --num-gpus N: one shard per GPU)", ge=1, le=1024)
    eval_inputs: int = knob(20, "random inputs derived and scored at the end of a supernet run", ge=1, le=100000)
    holdout_frac: float = knob(
        0.2, "share of the 15,625 NB201 cells held out from training (fixed split)", gt=0, le=0.99
    )
    best_of: int = knob(10, "samples per held-out input for the best-of-k row", ge=1, le=10000)
    seed: int = knob(0, "seeds numpy, torch, RLlib's env runners and the evaluation", ge=0, le=2**31 - 1)
    num_gpus: int = knob(
        0, "GPUs: one supernet shard each, and the learner (the tabular reward needs none)", ge=0, le=4096
    )
    address: str | None = knob(None, "Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    out: str | None = knob(None, "run directory (default runs/<rule>-<space>-<policy>-s<seed>-<time>)", metavar="DIR")
    resume: str | None = knob(
        None, "run directory of a killed run: continue it from its last checkpoint", metavar="DIR"
    )
    tag: str = knob("", "free label stored in config.json (the sweep writes its ablation name here)")

    def __post_init__(self):
        legacy: Any = self.preset
        if legacy in ("tiny", "paper"):  # config.json written before --preset named the recipe
            self.supernet_size, self.preset = legacy, "natrl"

    def preset_values(self) -> dict[str, Any]:
        return recipe(self.preset, self.reward)

    @property
    def run_name(self) -> str:
        return f"{self.rule}-{self.space}-{self.policy}-s{self.seed}"

    @property
    def num_intermediate(self) -> int:
        return self.intermediate_nodes if self.space == "darts" else 3

    def validate(self):
        paper_rule = RECIPES[self.preset].get("rule")
        if paper_rule and self.rule != paper_rule:
            raise NatrlError(
                f"--preset {self.preset} is the {PAPERS[self.preset]} recipe (rule {paper_rule}), not --rule "
                f"{self.rule}; use --preset {self.rule} (train_{self.rule}.py) or --preset natrl"
            )
        if self.supernet_sampling == "fair" and (self.space != "nb201" or self.reward != "supernet"):
            raise NatrlError("--supernet-sampling fair is for the nb201 supernet: give --space nb201 --reward supernet")
        if self.space == "darts" and self.reward != "supernet":
            raise NatrlError("the darts space needs --reward supernet (no table knows its cells)")
        if self.warmup_epochs >= self.epochs and self.iters:
            raise NatrlError(
                f"--warmup-epochs {self.warmup_epochs} leaves no epoch of the {self.epochs} for policy updates; "
                "make it smaller than --epochs"
            )
        if self.space == "nb201" and self.intermediate_nodes != 4:
            raise NatrlError("--intermediate-nodes applies to the darts space; NAS-Bench-201 cells are fixed")
        if self.reward == "supernet" and not self.data:
            raise NatrlError(
                "--reward supernet needs CIFAR-10: --data DIR_OR_TARBALL (cifar-10-batches-py, "
                "an image folder or a .tar.gz of one)"
            )
        if self.reward == "nb201" and self.data:
            raise NatrlError("--data is for --reward supernet; the nb201 reward reads --table")
        if self.env_runners and self.sampler != "env_runners":
            raise NatrlError("--env-runners needs --sampler env_runners (the batched sampler runs in the driver)")
        if self.env_runners and self.m % self.env_runners:
            raise NatrlError(
                f"--m {self.m} inputs do not split evenly over --env-runners {self.env_runners}; "
                "make m a multiple of the runner count"
            )
        if self.env_runners and self.reward == "supernet":
            raise NatrlError("--env-runners applies to --reward nb201: the supernet shards serve the driver's sampler")
        if self.space == "darts" and (self.table or self.report_table):
            raise NatrlError("--table and --report-table apply to the nb201 space")


@dataclass
class Inputs:
    """What a run reads from files, loaded (and so checked) before its directory is written."""

    table: Any = None
    report: Any = None
    data: dict | None = None


def load_inputs(cfg: TrainConfig) -> Inputs:
    """Everything the run reads from files. On the nb201 space the table is the tabular reward, or, with
    ``--reward supernet``, the truth the evaluation compares with (the search never reads it)."""
    inputs = Inputs()
    if cfg.space == "nb201":  # first: a table is checked in a second, CIFAR-10 decoded (and cached) in 20
        from natrl.rewards import NB201Table

        inputs.report = NB201Table.load(cfg.report_table) if cfg.report_table else None
        inputs.table = NB201Table.load(cfg.table)
    if cfg.reward == "supernet":
        from natrl.datasets import load_cifar10

        inputs.data = load_cifar10(cfg.data)
    return inputs


def build_algo(cfg: TrainConfig, backend=None):
    """The RLlib REINFORCE algorithm on the NAT env: m sub-envs, each repeating its input n times.
    ``backend`` replaces the reward backend named by ``cfg.reward``: the supernet shards (shared with the envs
    of this process, never copied), or a toy reward in tests."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    import envs
    from natrl.algo.reinforce import REINFORCEConfig
    from natrl.policy.module import DEFAULT_MODEL_CONFIG, TransitionPolicy
    from natrl.rewards import share_backend

    register_env("natrl-nat", envs.make_env)  # a registered creator lets RLlib ask for a whole vector env
    if backend is not None:
        backend = share_backend(backend)  # envs run in this process (num_env_runners=0) and look it up
    env_config = {
        "space": cfg.space,
        "rule": cfg.rule,
        "reward_backend": cfg.reward,
        "n": cfg.n,
        "holdout_frac": cfg.holdout_frac,
        "table": cfg.table,
        "backend": backend,
        "num_intermediate": cfg.num_intermediate,
    }
    model_config = {**DEFAULT_MODEL_CONFIG, "encoder": cfg.policy, "hidden": cfg.hidden, "gcn_layers": cfg.gcn_layers}
    algo_cfg = (
        REINFORCEConfig()
        .environment("natrl-nat", env_config=env_config)
        # m sub-envs in one NATVectorEnv (m / runners per remote runner): a vector step scores all its
        # pairs in one backend call. The batched sampler reads only the env's spaces from it.
        .env_runners(
            num_env_runners=cfg.env_runners,
            num_envs_per_env_runner=cfg.m // max(cfg.env_runners, 1),
            gym_env_vectorize_mode="vector_entry_point",
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=TransitionPolicy, model_config=model_config))
        .training(
            m=cfg.m,
            n=cfg.n,
            lam=cfg.lam,
            lr=cfg.lr,
            baseline=cfg.baseline,
            baseline_decay=cfg.baseline_decay,
            reward_scale=REWARD_SCALE[cfg.reward_unit],
            sampler=cfg.sampler,
        )
        # the policy learns on CPU: a 64-wide GCN does not need a GPU, and the GPUs are the shards'
        .learners(num_learners=cfg.learners, num_gpus_per_learner=0)
        .debugging(seed=cfg.seed, log_level="ERROR")
    )
    return algo_cfg.build_algo()


def plot_curve(rows: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from natrl.rundir import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.5))
    it = [r["iter"] for r in rows]
    reward = np.array([r["reward_mean"] for r in rows], dtype=float)
    ax.plot(it, reward, lw=0.6, alpha=0.4, label="batch mean reward")
    k = max(1, len(rows) // 50)
    smooth = [reward[max(0, i - k) : i + 1].mean() for i in range(len(rows))]
    ax.plot(it, smooth, lw=1.5, label=f"moving mean ({k})")
    ax.set_xlabel("policy update")
    ax.set_ylabel("accuracy gain R(alpha|beta) (points)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


class TransformerRun:
    """One training run: the algorithm, its reward backend, the progress log and the checkpoints.
    ``report`` (optional) receives every progress row and each checkpoint path: a Tune trial passes one."""

    def __init__(
        self, cfg: TrainConfig, inputs: Inputs, run: RunDir, report: Callable[[dict, Path | None], None] | None = None
    ):
        self.cfg, self.inputs, self.run, self.report = cfg, inputs, run, report
        self.supernet = cfg.reward == "supernet"
        self.iters = 0 if cfg.policy == "random" else cfg.iters  # the random policy has nothing to learn
        self.total = self.iters * (cfg.epochs - cfg.warmup_epochs if self.supernet else 1)
        self.rng = np.random.default_rng(cfg.seed)  # the supernet's input cells
        self.backend: Any = None
        self.algo: Any = None
        self.started, self.done_epochs = time.time(), 0
        self.timings: dict[str, float] = {}
        self.curve: list[
            dict
        ] = []  # convergence.csv rows (--eval-every)  # seconds per phase of this process, written to results.json

    # ---- building and stopping -----------------------------------------------------------------------
    def build(self):
        import torch

        from natrl.spaces import make_space

        cfg = self.cfg
        # The policy's tensors are tiny (a 64-wide GCN on m x n graphs of <= 20 nodes): one intra-op thread is
        # several times faster than a thread pool that contends with Ray and the reward (benchmarks/bench_rl.py).
        torch.set_num_threads(1)
        self.space = make_space(
            cfg.space, rule=cfg.rule, holdout_frac=cfg.holdout_frac, num_intermediate=cfg.num_intermediate
        )
        if self.supernet:
            self.backend = self._build_shards()
        self.algo = build_algo(cfg, backend=self.backend)

    def _build_shards(self):
        import ray

        from natrl.rewards.shards import SupernetShards

        cfg = self.cfg
        shards = cfg.num_gpus or cfg.cpu_shards
        backend = SupernetShards(
            self.space.ops,
            ray.put(self.inputs.data),
            num_shards=shards,
            num_gpus=cfg.num_gpus,
            batch_per_shard=cfg.supernet_batch_per_shard,
            cache_rewards=cfg.reward_cache,
            trainer_kwargs={
                "space": cfg.space,
                "preset": cfg.supernet_size,
                "batch_size": cfg.supernet_batch,
                "lr": cfg.supernet_lr,
                "reward_batch": cfg.reward_images or None,
                "epochs": cfg.epochs,
                "seed": cfg.seed,
                "num_intermediate": cfg.intermediate_nodes,
            },
        )
        print(
            f"{shards} supernet shard(s) on {'GPU' if cfg.num_gpus else 'CPU'}, "
            f"{backend.steps_per_epoch} steps per epoch",
            flush=True,
        )
        return backend

    def stop(self):
        if self.algo is not None:
            self.algo.stop()
        if self.backend is not None:
            self.backend.shutdown()

    # ---- checkpoints: plain tensors, numbers and strings ---------------------------------------------
    def _on_learners(self, fn) -> list:
        """fn(learner) on every RLlib Learner (the one in this process, or the remote ones)."""
        return [r.get() for r in self.algo.learner_group.foreach_learner(fn)]

    @property
    def progress(self) -> Progress:
        assert self.run.progress is not None, "open_progress() first"
        return self.run.progress

    def state_dict(self) -> dict:
        module, optimizer = self._on_learners(_learner_state)[0]  # every learner holds the same weights
        state = {
            "module": module,
            "optimizer": optimizer,
            "sampling": self.algo.sampling_state(),
            "rng": self.rng.bit_generator.state,
            "global_rng": rng_state(),
            "epoch": self.done_epochs,
            "progress_rows": len(self.progress.rows),
            "curve": self.curve,
            "seconds": time.time() - self.started,
        }
        if self.backend is not None:
            state["supernet"] = self.backend.state_dict()
        return state

    def load_state_dict(self, state: dict):
        try:
            module, optimizer = state["module"], state["optimizer"]
            self._on_learners(lambda learner: _load_learner_state(learner, module, optimizer))
            self.algo.load_sampling_state(state["sampling"])
            if self.backend is not None:
                self.backend.load_state_dict(state["supernet"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise NatrlError(
                f"{self.run.path} holds a checkpoint that does not fit this run "
                f"({e.__class__.__name__}: {str(e)[:80]}); start a new run"
            ) from None
        # the EnvRunner samples the next batch: give it the restored weights now
        self.algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.algo.learner_group, inference_only=True
        )
        self.rng.bit_generator.state = state["rng"]
        set_rng_state(state["global_rng"])
        self.done_epochs = state["epoch"]
        self.curve = list(state.get("curve", []))
        self.started = time.time() - state["seconds"]

    def checkpoint(self):
        self.progress.flush()
        self.run.save_checkpoint(self.state_dict())
        if self.report is not None:
            self.report({}, self.run.path / "checkpoint.pt")

    # ---- Algorithm 1 ---------------------------------------------------------------------------------
    def policy_updates(self, k: int, **extra):
        """k policy updates in one RLlib training iteration; one progress row each."""
        self.algo.train_updates(k)
        for stats in self.algo.update_stats:
            i = len(self.progress.rows) + 1
            row = {
                "iter": i,
                **extra,
                "episodes": i * self.cfg.m * self.cfg.n,
                **{k: stats[k] for k in ("reward_mean", "entropy", "baseline")},
                "time_s": round(time.time() - self.started, 2),
            }
            if not all(np.isfinite(float(row[k])) for k in ("reward_mean", "entropy", "baseline")):
                raise NatrlError(
                    f"the policy update {i} gave a non-finite loss term ({row}); lower --lr or "
                    "--lam (the last checkpoint is kept; no results were written)"
                )
            self.progress.log(row)
            self._print(row)
            if self.report is not None:
                self.report(row, None)
        self.algo.update_stats.clear()

    def _print(self, row: dict):
        rows, every = self.progress.rows, max(1, self.total // 20)
        i = len(rows)
        if i % every == 0 or i == self.total:
            recent = rows[-every:]
            # a supernet run's time is mostly supernet epochs: its epoch lines carry the ETA
            eta = "" if self.supernet else f"  eta {row['time_s'] / i * (self.total - i):5.0f}s"
            print(
                f"iter {i:5d}/{self.total}  reward {sum(r['reward_mean'] for r in recent) / len(recent):+6.2f}  "
                f"entropy {row['entropy']:.2f}  baseline {row['baseline']:+.2f}  "
                f"{row['time_s']:6.1f}s{eta}",
                flush=True,
            )

    def search_tabular(self):
        done, every, ev = len(self.progress.rows), self.cfg.checkpoint_every, self.cfg.eval_every
        if ev and done == 0:
            self.curve_point(0)
        while done < self.iters:
            k = min(UPDATES_PER_ITERATION, self.iters - done, every - done % every)  # stop at checkpoints
            k = min(k, ev - done % ev) if ev else k  # ... and at curve points
            self.policy_updates(k)
            done += k
            if ev and (done % ev == 0 or done == self.iters):
                self.curve_point(done)
            if done % every == 0 and done < self.iters:
                self.checkpoint()

    def curve_point(self, updates: int):
        """A Fig. 8 point: the held-out gain of the policy's derived cells after ``updates`` updates."""
        from natrl.evaluate import heldout_gains_now

        module = self.algo.get_module()  # synced with the learner first
        point = heldout_gains_now(module, self.space, self.inputs.table, self.inputs.report, seed=self.cfg.seed)
        self.curve.append({"iter": updates, **point})
        self.run.write_csv("convergence.csv", self.curve)

    def search_supernet(self):
        """Algorithm 1: per epoch one supernet pass on the 40% split, then the policy updates (from epoch
        ``warmup_epochs + 1``) scored on the 60% split; on nb201 a correlation point after every epoch."""
        cfg = self.cfg
        for epoch in range(self.done_epochs + 1, cfg.epochs + 1):
            stats = self.backend.train_epoch(self.supernet_cells(), max_steps=cfg.supernet_steps or None)
            elapsed = time.time() - self.started
            print(
                f"epoch {epoch}/{cfg.epochs}  supernet loss {stats['loss']:.3f}  train acc {stats['train_acc']:.1f}%"
                f"  lr {stats['lr']:.4f}  {elapsed:6.1f}s  eta {self.epoch_eta(epoch, elapsed):5.0f}s",
                flush=True,
            )
            if cfg.space == "nb201" and cfg.corr_pairs and (epoch % cfg.corr_every == 0 or epoch == cfg.epochs):
                self.correlation_point(epoch, stats)
            if epoch > cfg.warmup_epochs:
                for done in range(0, self.iters, UPDATES_PER_ITERATION):
                    self.policy_updates(min(UPDATES_PER_ITERATION, self.iters - done), epoch=epoch)
            self.done_epochs = epoch
            self.checkpoint()

    def epoch_eta(self, epoch: int, elapsed: float) -> float:
        """Seconds left, from the mean time per epoch so far; a policy epoch (its updates, and on nb201 its
        correlation points) is counted as costly as the mean epoch, so the estimate falls as the run goes on."""
        return elapsed / epoch * (self.cfg.epochs - epoch)

    def supernet_cells(self) -> Callable[[], Genotype]:
        """One epoch's source of the cells the supernet trains on (its step i trains the i-th call's cell)."""
        if self.cfg.supernet_sampling == "fair":
            from natrl.spaces import fair_cells

            return fair_cells(self.space, self.rng)
        return lambda: self.space.sample_input(self.rng)

    def correlation_point(self, epoch: int, stats: dict):
        """The supernet's R(alpha | beta) against the table's true gain (evaluation only: nothing learns from it)."""
        from natrl.truth import correlation_point, random_pairs

        pairs = random_pairs(self.space, self.cfg.corr_pairs, seed=self.cfg.seed)
        point = correlation_point(
            self.backend, self.space, self.inputs.table, self.inputs.report, pairs, self.cfg.corr_batches
        )
        self.curve.append({"epoch": epoch, "supernet_loss": round(stats["loss"], 4), **point})
        self.run.write_csv("correlation.csv", self.curve)
        taus = ", ".join(f"{k} {v:+.3f}" for k, v in point.items() if k.startswith("kendall"))
        print(f"epoch {epoch}: supernet R vs true gain over {point['pairs']} pairs: {taus}", flush=True)

    # ---- outputs -------------------------------------------------------------------------------------
    def save_policy(self):
        from natrl.rundir import save_checkpoint_file

        module = self.algo.get_module()
        model_config = {
            **module.model_config,
            "space": self.cfg.space,
            "rule": self.cfg.rule,
            "holdout_frac": self.cfg.holdout_frac,
            "num_intermediate": self.cfg.num_intermediate,
        }
        # plain tensors + the spaces' description, loadable with torch.load(weights_only=True)
        save_checkpoint_file(
            self.run.path / "policy.pt", {"state_dict": module.state_dict(), "model_config": model_config}
        )
        self.algo.save_to_path(str((self.run.path / "checkpoint").resolve()))  # RLlib's own, for RLlib users
        return module

    def evaluate(self, module, search_seconds: float) -> tuple[dict, list, str]:
        cfg, name = self.cfg, self.run.path.name
        common = {
            "run": name,
            "seed": cfg.seed,
            "search_seconds": search_seconds,
            "reward_evaluations": len(self.progress.rows) * cfg.m * cfg.n,
        }
        if self.supernet and cfg.space == "nb201":
            from natrl.truth import evaluate_nb201_supernet, truth_markdown

            print(f"deriving {cfg.eval_inputs} held-out inputs; true gains from {self.inputs.table.label} ...")
            results, records = evaluate_nb201_supernet(
                module,
                self.space,
                self.backend,
                self.inputs.table,
                self.inputs.report,
                cfg.eval_inputs,
                cfg.best_of,
                seed=cfg.seed,
                corr_batches=cfg.corr_batches if cfg.corr_pairs else None,  # tau on the policy's own samples too
            )
            results.update(common, train_seconds=round(time.time() - self.started, 1), correlation=self.curve)
            return results, records, f"# {name}\n\n{truth_markdown(results)}\n"
        if self.supernet:
            from natrl.evaluate import evaluate_supernet, supernet_markdown

            print(
                f"deriving {cfg.eval_inputs} random inputs (best of {cfg.best_of} by supernet accuracy) ...", flush=True
            )
            results, records = evaluate_supernet(
                module, self.space, self.backend, cfg.eval_inputs, cfg.best_of, seed=cfg.seed
            )
            results.update(common, train_seconds=round(time.time() - self.started, 1))
            return results, records, f"# {name}\n\n{supernet_markdown(results)}\n"
        from natrl.evaluate import caption, evaluate_nb201, markdown_table

        print("evaluating on held-out inputs ...", flush=True)
        table, report = self.inputs.table, self.inputs.report
        results, records = evaluate_nb201(module, self.space, table, seed=cfg.seed, best_of=cfg.best_of, report=report)
        results.update(
            common,
            reward_table=table.name,
            report_table=report.name if report else None,
            train_seconds=round(time.time() - self.started, 1),
        )
        fractions = ", ".join(f"{v:.0%} ({t})" for t, v in results["optimum_fraction"].items())
        md = (
            f"# {name}\n\n{cfg.rule} on {cfg.space}, policy {cfg.policy}, preset {cfg.preset}, seed {cfg.seed}, "
            f"{cfg.iters} updates of m={cfg.m} x n={cfg.n}, lambda={cfg.lam}. Mean accuracy gain (points) over "
            f"{results['num_inputs']} held-out inputs; reward table: {table.label}. {caption(results)}\n\n"
            f"{markdown_table(results)}\n\nSingle-sample policy / per-input optimum: {fractions}.\n"
        )
        return results, records, md

    def execute(self, state: dict | None) -> dict:
        """Search (from ``state`` when resuming), then save the policy and evaluate it."""
        t = time.time()
        self.build()
        self.timings["build_s"] = round(time.time() - t, 2)
        self.run.open_progress(keep_rows=state["progress_rows"] if state else None)
        if state is not None:
            self.load_state_dict(state)
            print(f"resumed after {len(self.progress.rows)} policy updates", flush=True)
        t = time.time()
        (self.search_supernet if self.supernet else self.search_tabular)()
        self.timings["search_s"] = round(time.time() - t, 2)
        search_seconds = round(time.time() - self.started, 1)  # the search cost: everything before evaluation
        t = time.time()
        module = self.save_policy()
        if self.progress.rows:
            plot_curve(self.progress.rows, self.run.path / "curve.png")
        results, records, md = self.evaluate(module, search_seconds)
        self.timings["evaluate_s"] = round(time.time() - t, 2)
        results["timings"] = self.timings
        self.run.write_json("derived.json", records)
        self.run.write_json("results.json", results)
        self.run.write_text("results.md", md)
        print(md)
        return results


def _learner_state(learner) -> tuple[dict, dict]:
    module = learner.module["default_policy"].unwrapped()  # remote learners wrap it in DDP
    return module.state_dict(), learner.get_optimizer(module_id="default_policy").state_dict()


def _load_learner_state(learner, module: dict, optimizer: dict):
    learner.module["default_policy"].unwrapped().load_state_dict(module)
    learner.get_optimizer(module_id="default_policy").load_state_dict(optimizer)


def train(cfg: TrainConfig, given: set[str] | frozenset = frozenset(), report=None) -> Path:
    """Run (or, with ``cfg.resume``, continue) one transformer training run; returns its directory."""
    import json

    from natrl.cluster import check_gpus, start_ray
    from natrl.config import check_config
    from natrl.rundir import resume_config

    if cfg.resume:
        cfg = resume_config(TrainConfig, cfg, set(given), KIND)
    check_config(cfg)  # library callers (a Tune trial) pass configs no parser has checked
    inputs = load_inputs(cfg)  # a bad --table or --data fails here, before anything is written
    shards = cfg.num_gpus or cfg.cpu_shards if cfg.reward == "supernet" else 1
    t = time.time()
    start_ray(cfg.address, min_cpus=1 + shards + cfg.env_runners + cfg.learners, num_gpus=cfg.num_gpus)
    check_gpus(cfg.num_gpus)
    run = RunDir.start(cfg, KIND, cfg.run_name)
    with run:
        state = run.load_checkpoint()
        seed_everything(cfg.seed)
        job = TransformerRun(cfg, inputs, run, report)
        job.timings["ray_start_s"] = round(time.time() - t, 2)
        try:
            job.execute(state)
        finally:
            job.stop()
    print(json.dumps({"run_dir": str(run.path)}))
    return run.path
