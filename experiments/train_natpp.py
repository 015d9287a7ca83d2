"""Train the NAT++ transformer policy with REINFORCE on RLlib, then evaluate it on held-out input cells.

Run (the embedded default main job: NAT++ on NAS-Bench-201 with the tabular reward, CPU, a few minutes):
    python experiments/train_natpp.py
    python experiments/train_natpp.py --policy lstm --seed 1 --out runs/lstm-s1
    python experiments/train_natpp.py --report-table ../shared/data/nb201_cifar10_valid_avg.csv.gz

Expected (seed 0, ~3 minutes on 2 cores): the single-sample policy gains +3.96 points on held-out inputs, well
above the best fixed per-op rule (+1.25) and 83% of the per-input optimum (+4.79), all on the analog-nasbench table.
With --space darts --reward supernet --data CIFAR10 it runs Algorithm 1 on supernet shards (README).

The run directory (``--out``, default runs/<name>) gets: config.json (config, versions, git commit),
progress.csv and curve.png (training curve), policy.pt (the trained RLModule, plain tensors), checkpoint/
(the RLlib algorithm checkpoint), results.json and results.md (held-out evaluation), derived.json (one record
per held-out input with the policy's outputs as arch_str).
"""
from __future__ import annotations

import csv
import dataclasses
import os
import sys
import time

import numpy as np
from dataclasses import dataclass
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry


@dataclass
class TrainConfig:
    rule: str = "natpp"  # transition rule: natpp (two-level) or nat (keep / null / skip)
    space: str = "nb201"  # search space: nb201 (one cell) or darts (normal + reduction cell)
    reward: str = "nb201"  # reward: nb201 (tabular, nb201 space) or supernet (darts space, Algorithm 1)
    table: str | None = None  # NB201 table the reward reads (default: analog-nasbench's data.anb)
    report_table: str | None = None  # optional second NB201 table (official CSV) to report on as well
    policy: str = "gcn"  # encoder: gcn, lstm, or random (uniform over valid transitions, not trained)
    gcn_layers: int = 2  # graph-convolution depth
    hidden: int = 64  # width of embeddings and GCN layers
    lam: float = 3e-2  # entropy weight lambda of Eqn. (5)
    m: int = 32  # inputs beta per update
    n: int = 2  # sampled transformations alpha per input
    lr: float = 1e-3  # Adam learning rate
    baseline: str = "input"  # ema (the papers' moving average), input (leave-one-out over the n samples), none
    baseline_decay: float = 0.99  # decay of the moving-average baseline
    iters: int = 1500  # policy updates (per supernet epoch with --reward supernet)
    data: str | None = None  # CIFAR-10 for the supernet: cifar-10-batches-py, image folder or .tar.gz
    preset: str = "tiny"  # supernet size: tiny (CPU minutes) or paper (C=20, 8 cells)
    intermediate_nodes: int = 4  # k of the darts space: 4 (DARTS-like cells) or 5 (ENAS-like cells)
    epochs: int = 3  # supernet epochs of Algorithm 1
    supernet_batch: int = 64  # supernet batch size per shard
    supernet_steps: int = 0  # cap on supernet steps per epoch (0 = a full pass over the 40% split)
    cpu_shards: int = 1  # supernet shards when --num-gpus 0 (with --num-gpus N: one shard per GPU)
    eval_inputs: int = 20  # random inputs derived and scored at the end of a supernet run
    resume: str | None = None  # run directory of a killed supernet run: continue it from its last checkpoint
    holdout_frac: float = 0.2  # share of the 15,625 NB201 cells held out from training (fixed split, seed 0)
    best_of: int = 10  # samples per held-out input for the best-of-k row
    seed: int = 0  # seeds numpy, torch, RLlib's env runners and the evaluation
    num_gpus: int = 0  # GPUs for the learner (the tabular reward needs none)
    out: str | None = None  # run directory (default runs/<run name>)
    tag: str = ""  # free label stored in config.json (the sweep writes its ablation name here for analysis/)

    @property
    def run_name(self) -> str:
        return f"{self.rule}-{self.space}-{self.policy}-s{self.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def parse_args(argv, defaults: TrainConfig) -> TrainConfig:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
        choices = {"rule": ["natpp", "nat"], "space": ["nb201", "darts"], "reward": ["nb201", "supernet"],
                   "preset": ["tiny", "paper"],
                   "policy": ["gcn", "lstm", "random"], "baseline": ["ema", "input", "none"]}.get(f.name)
        p.add_argument(flag, type=kind, default=default, choices=choices, help=f"(default: {default})")
    args = p.parse_args(argv)
    cfg = TrainConfig(**vars(args))
    for name in ("m", "n", "hidden", "best_of"):
        if getattr(cfg, name) < 1:
            raise NatrlError(f"--{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.num_gpus > 0:
        import torch
        if torch.cuda.device_count() < cfg.num_gpus:
            raise NatrlError(f"--num-gpus {cfg.num_gpus} but {torch.cuda.device_count()} CUDA device(s) are visible; "
                             "use --num-gpus 0 to run on CPU")
    if (cfg.space == "darts") != (cfg.reward == "supernet"):
        raise NatrlError("the darts space needs --reward supernet and the nb201 space --reward nb201")
    if cfg.space == "nb201" and cfg.intermediate_nodes != 4:
        raise NatrlError("--intermediate-nodes applies to the darts space; NAS-Bench-201 cells are fixed")
    if cfg.intermediate_nodes < 1:
        raise NatrlError(f"--intermediate-nodes must be >= 1, got {cfg.intermediate_nodes}")
    if cfg.reward == "supernet" and not cfg.data:
        raise NatrlError("--reward supernet needs CIFAR-10: --data DIR_OR_TARBALL (e.g. ../shared/data/cifar10_jpg.tar.gz)")
    if cfg.iters < 0 or cfg.gcn_layers < 1 or cfg.num_gpus < 0 or not 0 < cfg.holdout_frac < 1:
        raise NatrlError("--iters >= 0, --gcn-layers >= 1, --num-gpus >= 0 and 0 < --holdout-frac < 1 are required")
    return cfg


def build_algo(cfg: TrainConfig, backend=None):
    """The RLlib REINFORCE algorithm on the NAT env: m sub-envs, each repeating its input n times.
    ``backend`` replaces the reward backend named by ``cfg.reward``: the supernet shards (shared with the envs
    of this process, never copied), or a toy reward in tests."""
    import envs
    from natrl.algo.reinforce import REINFORCEConfig
    from natrl.policy.module import DEFAULT_MODEL_CONFIG
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from natrl.policy.module import TransitionPolicy
    from natrl.rewards import share_backend
    from ray.tune.registry import register_env
    register_env("natrl-nat", envs.make_env)  # a registered creator lets RLlib ask for a whole vector env
    if backend is not None:
        backend = share_backend(backend)  # envs run in this process (num_env_runners=0) and look it up
    env_config = {"space": cfg.space, "rule": cfg.rule, "reward_backend": cfg.reward, "n": cfg.n,
                  "holdout_frac": cfg.holdout_frac, "table": cfg.table, "backend": backend,
                  "num_intermediate": cfg.intermediate_nodes if cfg.space == "darts" else 3}
    model_config = {**DEFAULT_MODEL_CONFIG, "encoder": cfg.policy, "hidden": cfg.hidden, "gcn_layers": cfg.gcn_layers}
    algo_cfg = (REINFORCEConfig()
                .environment("natrl-nat", env_config=env_config)
                # m sub-envs in one NATVectorEnv: each vector step scores all m pairs in one backend call
                .env_runners(num_env_runners=0, num_envs_per_env_runner=cfg.m,
                             gym_env_vectorize_mode="vector_entry_point")
                .rl_module(rl_module_spec=RLModuleSpec(module_class=TransitionPolicy, model_config=model_config))
                .training(m=cfg.m, n=cfg.n, lam=cfg.lam, lr=cfg.lr, baseline=cfg.baseline, baseline_decay=cfg.baseline_decay)
                .learners(num_learners=0, num_gpus_per_learner=1 if cfg.num_gpus else 0)
                .debugging(seed=cfg.seed, log_level="ERROR"))
    return algo_cfg.build_algo()


def save_policy(module, model_config: dict, path: Path):
    """Plain tensors + the spaces' description, loadable with torch.load(weights_only=True)."""
    import torch
    torch.save({"state_dict": module.state_dict(), "model_config": model_config}, path)


def plot_curve(rows: list[dict], path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    it = [r["iter"] for r in rows]
    ax.plot(it, [r["reward_mean"] for r in rows], lw=0.6, alpha=0.4, label="batch mean reward")
    k = max(1, len(rows) // 50)
    smooth = [sum(r["reward_mean"] for r in rows[max(0, i - k):i + 1]) / len(rows[max(0, i - k):i + 1])
              for i in range(len(rows))]
    ax.plot(it, smooth, lw=1.5, label=f"moving mean ({k})")
    ax.set_xlabel("policy update")
    ax.set_ylabel("accuracy gain R(alpha|beta) (points)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class Progress:
    """progress.csv (one row per policy update) and a terminal line every ``every`` updates."""

    def __init__(self, path: Path, total: int, started: float, rows: list[dict] | None = None):
        self.f, self.writer, self.rows = open(path, "w", newline=""), None, []
        self.total, self.started, self.every = total, started, max(1, total // 20)
        for row in rows or []:  # a resumed run rewrites the rows up to its checkpoint
            self._write(row)

    def _write(self, row: dict):
        self.rows.append(row)
        if self.writer is None:
            self.writer = csv.DictWriter(self.f, fieldnames=list(row))
            self.writer.writeheader()
        self.writer.writerow(row)

    def log(self, row: dict):
        row = {**row, "time_s": round(time.time() - self.started, 2)}
        self._write(row)
        i = len(self.rows)
        if i % self.every == 0 or i == self.total:
            self.f.flush()
            recent = self.rows[-self.every:]
            eta = (time.time() - self.started) / i * (self.total - i)
            print(f"iter {i:5d}/{self.total}  reward {sum(r['reward_mean'] for r in recent) / len(recent):+6.2f}  "
                  f"entropy {row['entropy']:.2f}  baseline {row['baseline']:+.2f}  "
                  f"{row['time_s']:6.1f}s  eta {eta:5.0f}s", flush=True)

    def close(self):
        self.f.close()


def policy_update(algo, progress: Progress, cfg: TrainConfig, **extra):
    res = algo.train()["learners"]["default_policy"]
    i = len(progress.rows) + 1
    progress.log({"iter": i, **extra, "episodes": i * cfg.m * cfg.n, "reward_mean": float(res["reward_mean"]),
                  "entropy": float(res["entropy"]), "baseline": float(res["baseline"])})


def sub_envs(algo):
    """The NATEnv instances inside the local EnvRunner's vector env."""
    return [e.unwrapped for e in algo.env_runner.env.unwrapped.envs]


def save_checkpoint(out: Path, epoch: int, algo, backend, rng, rows):
    """Everything a killed run needs to continue exactly: the RLlib algorithm (policy, its Adam state, the
    reward baseline), the supernet (weights, SGD state, schedule, data RNGs, reward-batch counter), the envs'
    input streams, and the driver's RNGs. Written to resume.tmp, then swapped in by renames."""
    import shutil

    import torch
    tmp, cur, old = out / "resume.tmp", out / "resume", out / "resume.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    algo.save_to_path(str((tmp / "algo").resolve()))
    torch.save({"epoch": epoch, "supernet": backend.state_dict(), "envs": [e.get_state() for e in sub_envs(algo)],
                "torch_rng": torch.get_rng_state(), "rng": rng.bit_generator.state, "rows": rows}, tmp / "state.pt")
    if cur.exists():
        os.replace(cur, old)
    os.replace(tmp, cur)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out: Path):
    from natrl.rundir import read_checkpoint_file
    for d in (out / "resume", out / "resume.old"):  # resume.old survives a kill between the two renames
        if (d / "state.pt").exists():
            return d, read_checkpoint_file(d / "state.pt")
    raise NatrlError(f"{out} has no checkpoint to resume (checkpoints are written after each supernet epoch)")


def resume_config(run_dir: str) -> TrainConfig:
    from natrl.rundir import resume_config as load
    return load(run_dir, TrainConfig, "train_natpp.py")


def train(cfg: TrainConfig) -> Path:
    import json

    import ray

    from natrl.rundir import create_run_dir, quiet_ray_logs, seed_everything, write_json
    from natrl.spaces import make_space

    quiet_ray_logs()
    supernet = cfg.reward == "supernet"
    if supernet:
        from natrl.datasets import load_cifar10
        data = load_cifar10(cfg.data)  # fail early, before Ray starts, on missing data
    else:
        from natrl.rewards import NB201Table
        table = NB201Table.load(cfg.table)  # likewise for a bad --table
        report = NB201Table.load(cfg.report_table) if cfg.report_table else None
    if cfg.resume:
        out = Path(cfg.resume)
        ckpt_dir, ckpt = load_checkpoint(out)
    else:
        out, ckpt = create_run_dir(Path(cfg.out or Path("runs") / cfg.run_name), cfg), None
    seed_everything(cfg.seed)
    print(f"run directory: {out}", flush=True)
    started = time.time()
    if not ray.is_initialized():
        shard_cpus = (cfg.num_gpus or cfg.cpu_shards) if supernet else 0  # each shard actor reserves one CPU
        ray.init(num_cpus=max(2, shard_cpus + 1), num_gpus=cfg.num_gpus, include_dashboard=False,
                 log_to_driver=False, object_store_memory=256 * 1024 ** 2, configure_logging=False)
    cleanup = []  # actors and the algorithm stop even when the run is interrupted
    try:
        space = make_space(cfg.space, rule=cfg.rule, holdout_frac=cfg.holdout_frac,
                           num_intermediate=cfg.intermediate_nodes if cfg.space == "darts" else 3)
        backend = None
        if supernet:
            from natrl.rewards.shards import SupernetShards
            shards = cfg.num_gpus or cfg.cpu_shards
            backend = SupernetShards(space.ops, ray.put(data), num_shards=shards, num_gpus=cfg.num_gpus,
                                     trainer_kwargs={"preset": cfg.preset, "batch_size": cfg.supernet_batch,
                                                     "epochs": cfg.epochs, "seed": cfg.seed,
                                                     "num_intermediate": cfg.intermediate_nodes})
            cleanup.append(backend.shutdown)
            print(f"{shards} supernet shard(s) on {'GPU' if cfg.num_gpus else 'CPU'}, "
                  f"{backend.steps_per_epoch} steps per epoch each", flush=True)
        algo = build_algo(cfg, backend=backend)
        cleanup.append(algo.stop)
        iters = 0 if cfg.policy == "random" else cfg.iters  # the random policy has nothing to learn
        rng = np.random.default_rng(cfg.seed)
        first_epoch = 1
        if ckpt is not None:
            import torch
            algo.restore_from_path(str((ckpt_dir / "algo").resolve()))
            # the EnvRunner samples the first resumed batch: give it the restored weights now
            algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
            backend.load_state_dict(ckpt["supernet"])
            for env, state in zip(sub_envs(algo), ckpt["envs"]):
                env.set_state(state)
            rng.bit_generator.state = ckpt["rng"]
            torch.set_rng_state(ckpt["torch_rng"])
            first_epoch = ckpt["epoch"] + 1
            print(f"resumed from {ckpt_dir} after epoch {ckpt['epoch']}", flush=True)
        progress = Progress(out / "progress.csv", iters * (cfg.epochs if supernet else 1), started,
                            rows=ckpt["rows"] if ckpt else None)
        if supernet:  # Algorithm 1: alternate a supernet pass on the 40% split and policy updates on the 60% split
            for epoch in range(first_epoch, cfg.epochs + 1):
                stats = backend.train_epoch(lambda: space.sample_input(rng), max_steps=cfg.supernet_steps or None)
                print(f"epoch {epoch}/{cfg.epochs}  supernet loss {stats['loss']:.3f}  train acc {stats['train_acc']:.1f}%"
                      f"  lr {stats['lr']:.4f}  {time.time() - started:6.1f}s", flush=True)
                for _ in range(iters):
                    policy_update(algo, progress, cfg, epoch=epoch)
                save_checkpoint(out, epoch, algo, backend, rng, progress.rows)
        else:
            for _ in range(iters):
                policy_update(algo, progress, cfg)
        progress.close()
        search_seconds = round(time.time() - started, 1)  # the search cost: everything before evaluation
        module = algo.get_module()
        model_config = {**module.model_config, "space": cfg.space, "rule": cfg.rule, "holdout_frac": cfg.holdout_frac,
                        "num_intermediate": cfg.intermediate_nodes if cfg.space == "darts" else 3}
        save_policy(module, model_config, out / "policy.pt")
        algo.save_to_path(str((out / "checkpoint").resolve()))
        if progress.rows:
            plot_curve(progress.rows, out / "curve.png")

        if supernet:
            from natrl.evaluate import evaluate_supernet, supernet_markdown
            print(f"deriving {cfg.eval_inputs} random inputs (best of {cfg.best_of} by supernet accuracy) ...", flush=True)
            results, records = evaluate_supernet(module, space, backend, cfg.eval_inputs, cfg.best_of, seed=cfg.seed)
            results.update({"run": out.name, "seed": cfg.seed, "search_seconds": search_seconds,
                            "reward_evaluations": len(progress.rows) * cfg.m * cfg.n,
                            "train_seconds": round(time.time() - started, 1)})
            md = f"# {out.name}\n\n{supernet_markdown(results)}\n"
        else:
            from natrl.evaluate import evaluate_nb201, markdown_table
            print("evaluating on held-out inputs ...", flush=True)
            results, records = evaluate_nb201(module, space, table, seed=cfg.seed, best_of=cfg.best_of, report=report)
            results.update({"run": out.name, "seed": cfg.seed, "reward_table": table.name,
                            "report_table": report.name if report else None, "search_seconds": search_seconds,
                            "reward_evaluations": len(progress.rows) * cfg.m * cfg.n,
                            "train_seconds": round(time.time() - started, 1)})
            md = (f"# {out.name}\n\n{cfg.rule} on {cfg.space}, policy {cfg.policy}, seed {cfg.seed}, {cfg.iters} updates "
                  f"of m={cfg.m} x n={cfg.n}, lambda={cfg.lam}. Mean accuracy gain (points) over {results['num_inputs']} "
                  f"held-out inputs; reward table: {table.name}.\n\n{markdown_table(results)}\n\n"
                  f"Single-sample policy / per-input optimum: {results['optimum_fraction']['reward']:.0%}.\n")
    finally:
        for stop in reversed(cleanup):
            stop()
    write_json(out / "results.json", results)
    write_json(out / "derived.json", records)
    (out / "results.md").write_text(md)
    print(md)
    print(json.dumps({"run_dir": str(out)}))
    return out


@cli_entry
def main(argv=None, defaults: TrainConfig = TrainConfig()):
    cfg = parse_args(argv, defaults)
    return train(resume_config(cfg.resume) if cfg.resume else cfg)


if __name__ == "__main__":
    main()
    sys.exit(0)
