"""Train the NAT++ transformer policy with REINFORCE on RLlib, then evaluate it on held-out input cells.

Run (the embedded default main job: NAT++ on NAS-Bench-201 with the tabular reward, CPU, a few minutes):
    python experiments/train_natpp.py
    python experiments/train_natpp.py --policy lstm --seed 1 --out runs/lstm-s1
    python experiments/train_natpp.py --report-table ../shared/data/nb201_cifar10_valid_avg.csv.gz

Expected (seed 0): the single-sample policy gains about +3.9 points on held-out inputs, well above the best
fixed per-op rule (+1.5) and about 85% of the per-input optimum (+4.6), all on the analog-nasbench table.

The run directory (``--out``, default runs/<name>) gets: config.json (config, versions, git commit),
progress.csv and curve.png (training curve), policy.pt (the trained RLModule, plain tensors), checkpoint/
(the RLlib algorithm checkpoint), results.json and results.md (held-out evaluation), derived.json (one record
per held-out input with the policy's outputs as arch_str).
"""
from __future__ import annotations

import csv
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry


@dataclass
class TrainConfig:
    rule: str = "natpp"  # transition rule: natpp (two-level) or nat (keep / null / skip)
    space: str = "nb201"  # search space; the supernet's darts space comes with the supernet reward
    reward: str = "nb201"  # reward backend: nb201 = tabular NAS-Bench-201 accuracies
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
    iters: int = 1500  # policy updates
    holdout_frac: float = 0.2  # share of the 15,625 NB201 cells held out from training (fixed split, seed 0)
    best_of: int = 10  # samples per held-out input for the best-of-k row
    seed: int = 0  # seeds numpy, torch, RLlib's env runners and the evaluation
    num_gpus: int = 0  # GPUs for the learner (the tabular reward needs none)
    out: str | None = None  # run directory (default runs/<run name>)

    @property
    def run_name(self) -> str:
        return f"{self.rule}-{self.space}-{self.policy}-s{self.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def parse_args(argv, defaults: TrainConfig) -> TrainConfig:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
        choices = {"rule": ["natpp", "nat"], "space": ["nb201"], "reward": ["nb201"],
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
    if cfg.iters < 0 or cfg.gcn_layers < 1 or cfg.num_gpus < 0 or not 0 < cfg.holdout_frac < 1:
        raise NatrlError("--iters >= 0, --gcn-layers >= 1, --num-gpus >= 0 and 0 < --holdout-frac < 1 are required")
    return cfg


def build_algo(cfg: TrainConfig, backend=None):
    """The RLlib REINFORCE algorithm on the NAT env: m sub-envs, each repeating its input n times.
    ``backend`` replaces the reward backend named by ``cfg.reward`` (tests use toy rewards)."""
    import envs
    from natrl.algo.reinforce import REINFORCEConfig
    from natrl.policy.module import DEFAULT_MODEL_CONFIG
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from natrl.policy.module import TransitionPolicy
    env_config = {"space": cfg.space, "rule": cfg.rule, "reward_backend": cfg.reward, "n": cfg.n,
                  "holdout_frac": cfg.holdout_frac, "table": cfg.table, "backend": backend}
    model_config = {**DEFAULT_MODEL_CONFIG, "encoder": cfg.policy, "hidden": cfg.hidden, "gcn_layers": cfg.gcn_layers}
    algo_cfg = (REINFORCEConfig()
                .environment(envs.NATEnv, env_config=env_config)
                .env_runners(num_env_runners=0, num_envs_per_env_runner=cfg.m)
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


def train(cfg: TrainConfig) -> Path:
    import json

    import ray

    from natrl.evaluate import evaluate_nb201, markdown_table
    from natrl.rewards import NB201Table
    from natrl.rundir import create_run_dir, quiet_ray_logs, seed_everything, write_json
    from natrl.spaces import make_space

    quiet_ray_logs()
    out = create_run_dir(Path(cfg.out or Path("runs") / cfg.run_name), cfg)
    seed_everything(cfg.seed)
    table = NB201Table.load(cfg.table)  # fail early, before Ray starts, on a bad --table
    report = NB201Table.load(cfg.report_table) if cfg.report_table else None
    print(f"run directory: {out}", flush=True)
    started = time.time()
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=cfg.num_gpus, include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 1024 ** 2, configure_logging=False)
    algo = build_algo(cfg)
    rows = []
    iters = 0 if cfg.policy == "random" else cfg.iters  # the random policy has nothing to learn
    with open(out / "progress.csv", "w", newline="") as f:
        writer = None
        for i in range(1, iters + 1):
            res = algo.train()["learners"]["default_policy"]
            row = {"iter": i, "episodes": i * cfg.m * cfg.n, "reward_mean": res["reward_mean"],
                   "entropy": res["entropy"], "baseline": res["baseline"], "time_s": round(time.time() - started, 2)}
            rows.append(row)
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            if i % max(1, iters // 20) == 0 or i == iters:
                f.flush()
                recent = rows[-max(1, iters // 20):]
                eta = (time.time() - started) / i * (iters - i)
                print(f"iter {i:5d}/{iters}  reward {sum(r['reward_mean'] for r in recent) / len(recent):+6.2f}  "
                      f"entropy {row['entropy']:.2f}  baseline {row['baseline']:+.2f}  "
                      f"{row['time_s']:6.1f}s  eta {eta:5.0f}s", flush=True)
    module = algo.get_module()
    model_config = {**module.model_config, "space": cfg.space, "rule": cfg.rule, "holdout_frac": cfg.holdout_frac}
    save_policy(module, model_config, out / "policy.pt")
    algo.save_to_path(str((out / "checkpoint").resolve()))
    algo.stop()
    if rows:
        plot_curve(rows, out / "curve.png")

    print("evaluating on held-out inputs ...", flush=True)
    space = make_space(cfg.space, rule=cfg.rule, holdout_frac=cfg.holdout_frac)
    results, records = evaluate_nb201(module, space, table, seed=cfg.seed, best_of=cfg.best_of, report=report)
    results.update({"run": out.name, "seed": cfg.seed, "reward_table": table.name,
                    "report_table": report.name if report else None, "train_seconds": round(time.time() - started, 1)})
    write_json(out / "results.json", results)
    write_json(out / "derived.json", records)
    md = (f"# {out.name}\n\n{cfg.rule} on {cfg.space}, policy {cfg.policy}, seed {cfg.seed}, {cfg.iters} updates of "
          f"m={cfg.m} x n={cfg.n}, lambda={cfg.lam}. Mean accuracy gain (points) over {results['num_inputs']} "
          f"held-out inputs; reward table: {table.name}.\n\n{markdown_table(results)}\n\n"
          f"Single-sample policy / per-input optimum: {results['optimum_fraction']['reward']:.0%}.\n")
    (out / "results.md").write_text(md)
    print(md)
    print(json.dumps({"run_dir": str(out)}))
    return out


@cli_entry
def main(argv=None, defaults: TrainConfig = TrainConfig()):
    return train(parse_args(argv, defaults))


if __name__ == "__main__":
    main()
    sys.exit(0)
