"""Ray Tune ablations of the RL core (NAT++ Fig. 7, Table 5; NAT Table 3) for NAT and NAT++, over several seeds.

Run:
    python experiments/sweep.py                                   # every ablation, NB201 tabular reward, 3 seeds
    python experiments/sweep.py --ablations lam gcn_layers --seeds 5 --iters 1500 --out sweeps/fig7
    python experiments/sweep.py --resume sweeps/fig7              # continue an interrupted sweep
    python experiments/sweep.py --reward supernet --data DATA --num-gpus 1 --ablations lam   # supernet trials

Ablations (each a Tune grid over trials; every trial is one ``train_natpp.train`` run with the other knobs at
their defaults):
    lam         entropy weight lambda in {3e-4, 3e-3, 3e-2, 3e-1, 3}             (NAT++ Fig. 7b)
    gcn_layers  GCN depth in {1, 2, 5, 10}                                      (NAT++ Fig. 7a)
    m           inputs per update in {1, 5, 10, 30} with n = 1                  (NAT++ Table 5, with search cost)
    n           samples per input in {1, 5, 10, 30} with m = 1                  (NAT++ Table 5)
    policy      random, lstm, gcn (the gcn run gives Maximum- and Sampling-GCN)  (NAT Table 3)

Each trial reserves its resources in a placement group: one CPU for the driver of the trial, plus one bundle per
supernet shard (a GPU each with --num-gpus, else --cpu-shards CPUs), so a 2-core machine runs two NB201 trials
at a time. Everything lands in one directory (default sweeps/<name>): sweep.json (config, versions, commit),
runs/<ablation>/<trial>/ (each a complete train_natpp run directory), trials.csv (one row per trial), and tune/
(Tune's state, which --resume restores). The analysis/ scripts read these directories.

Expected (NB201, 2 cores): a trial takes 1-2 minutes (training + held-out evaluation), two run at a time; the lam
grid (30 trials, 400 updates) took about an hour beside other work, the rest (90 trials, 200 updates) about 70
minutes. README shows the resulting tables and how far the papers' trends hold.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry

HERE = Path(__file__).resolve().parent
ABLATIONS = {  # name -> list of TrainConfig overrides, one per grid point
    "lam": [{"lam": v} for v in (3e-4, 3e-3, 3e-2, 3e-1, 3.0)],
    "gcn_layers": [{"gcn_layers": v} for v in (1, 2, 5, 10)],
    "m": [{"m": v, "n": 1} for v in (1, 5, 10, 30)],  # Table 5 varies one of m, n with the other at 1
    "n": [{"m": 1, "n": v} for v in (1, 5, 10, 30)],
    "policy": [{"policy": v} for v in ("random", "lstm", "gcn")],
}
TRAIN_KNOBS = ("iters", "m", "n", "reward", "data", "preset", "epochs", "supernet_steps", "cpu_shards", "num_gpus",
               "eval_inputs", "table", "report_table", "best_of")


@dataclass
class SweepConfig:
    ablations: list[str] = field(default_factory=lambda: list(ABLATIONS))  # which grids to run
    rules: list[str] = field(default_factory=lambda: ["natpp", "nat"])  # transition rules, one grid each
    values: list[str] = field(default_factory=list)  # replace the grid of a single ablation, e.g. --values 0.03 0.3
    seeds: int = 3  # seeds 0 .. seeds-1 for every grid point
    iters: int = 300  # policy updates per trial (per supernet epoch with --reward supernet)
    m: int = 32  # inputs per update where the ablation does not set it
    n: int = 2  # samples per input where the ablation does not set it
    reward: str = "nb201"  # nb201 (tabular) or supernet (darts space, Algorithm 1)
    table: str | None = None  # NB201 reward table (default analog-nasbench)
    report_table: str | None = None  # optional official NB201 table to report on as well
    data: str | None = None  # CIFAR-10 for --reward supernet
    preset: str = "tiny"  # supernet size
    epochs: int = 3  # supernet epochs per trial
    supernet_steps: int = 0  # cap on supernet steps per epoch (0 = full pass)
    cpu_shards: int = 1  # supernet shards per trial without GPUs
    num_gpus: int = 0  # GPUs per supernet trial (one shard each)
    eval_inputs: int = 20  # supernet trials: random inputs derived at the end
    best_of: int = 10  # samples per input of the best-of-k row
    max_concurrent: int = 0  # cap on trials running at once (0 = as many as the resources allow)
    out: str | None = None  # sweep directory (default sweeps/<name>)
    resume: str | None = None  # sweep directory to continue

    @property
    def name(self) -> str:
        return f"sweep-{self.reward}-{time.strftime('%Y%m%d-%H%M%S')}"


def parse_args(argv) -> SweepConfig:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(SweepConfig):
        flag, default = "--" + f.name.replace("_", "-"), SweepConfig().__getattribute__(f.name)
        if f.name == "ablations":
            p.add_argument(flag, nargs="+", choices=list(ABLATIONS), default=default)
        elif f.name == "values":
            p.add_argument(flag, nargs="+", default=default, help="values of the one ablation given")
        elif f.name == "rules":
            p.add_argument(flag, nargs="+", choices=["natpp", "nat"], default=default)
        else:
            kind = {"int": int}.get(str(f.type), str)
            choices = {"reward": ["nb201", "supernet"], "preset": ["tiny", "paper"]}.get(f.name)
            p.add_argument(flag, type=kind, default=default, choices=choices, help=f"(default: {default})")
    cfg = SweepConfig(**vars(p.parse_args(argv)))
    if cfg.seeds < 1 or cfg.iters < 1 or cfg.m < 1 or cfg.n < 1 or cfg.max_concurrent < 0:
        raise NatrlError("--seeds, --iters, --m and --n must be >= 1 and --max-concurrent >= 0")
    if cfg.values and len(cfg.ablations) != 1:
        raise NatrlError("--values replaces the grid of one ablation: give exactly one --ablations name")
    if cfg.values:
        grid_points(cfg.ablations[0], cfg.values)  # a bad value fails now
    if cfg.reward == "supernet" and not cfg.data and not cfg.resume:
        raise NatrlError("--reward supernet needs CIFAR-10: --data DIR_OR_TARBALL")
    return cfg


def grid_points(ablation: str, values: list[str]) -> list[dict]:
    """ABLATIONS[ablation] with its varied value replaced by each of ``values`` (given as text)."""
    template = ABLATIONS[ablation][0]
    key = {"m": "m", "n": "n"}.get(ablation, next(iter(template)))
    kind = type(template[key])
    points = []
    for v in values:
        try:
            value = kind(float(v)) if kind in (int, float) else v
        except ValueError:
            raise NatrlError(f"--values {v!r} is not a valid {ablation} value (expected a number)") from None
        if kind is str and v not in {p[key] for p in ABLATIONS[ablation]}:
            raise NatrlError(f"--values {v!r} is not a {ablation}; choose from "
                             f"{', '.join(p[key] for p in ABLATIONS[ablation])}")
        points.append({**template, key: value})
    return points


def trial_grid(cfg: SweepConfig) -> list[dict]:
    """One dict per trial: its ablation, a readable name, and the TrainConfig overrides."""
    trials = []
    for ablation in cfg.ablations:
        for rule in cfg.rules:
            for point in (grid_points(ablation, cfg.values) if cfg.values else ABLATIONS[ablation]):
                for seed in range(cfg.seeds):
                    label = "-".join(f"{k}{v}" for k, v in point.items())
                    trials.append({"ablation": ablation, "name": f"{rule}-{label}-s{seed}",
                                   "overrides": {**point, "rule": rule, "seed": seed}})
    return trials


def trial_resources(cfg: SweepConfig):
    """Placement group of one trial: the trial's own CPU, then one bundle per supernet shard."""
    from ray.tune import PlacementGroupFactory
    bundles = [{"CPU": 1}]
    if cfg.reward == "supernet":
        bundles += [{"CPU": 1, "GPU": 1}] * cfg.num_gpus if cfg.num_gpus else [{"CPU": 1}] * cfg.cpu_shards
    return PlacementGroupFactory(bundles)


def run_trial(config: dict):
    """Tune trainable: one train_natpp run in runs/<ablation>/<name>. A run already finished (the sweep was
    killed before Tune recorded it) is reported as it is; a supernet run with a checkpoint resumes from it; any
    other partial run starts over."""
    import importlib.util

    from ray import tune
    spec = importlib.util.spec_from_file_location("train_natpp", config["experiments"] + "/train_natpp.py")
    tn = importlib.util.module_from_spec(spec)
    sys.modules["train_natpp"] = tn  # the dataclass looks its module up here
    spec.loader.exec_module(tn)

    trial = config["trial"]
    out = Path(config["sweep_dir"]) / "runs" / trial["ablation"] / trial["name"]
    if not (out / "results.json").exists():
        if (out / "resume" / "state.pt").exists():
            tn.train(tn.resume_config(str(out)))
        else:
            shutil.rmtree(out, ignore_errors=True)
            tn.train(tn.TrainConfig(**{**config["base"], **trial["overrides"], "tag": trial["ablation"],
                                       "out": str(out)}))
    tune.report(metrics_of(out))


def metrics_of(run_dir: Path) -> dict:
    """The headline numbers of a trial (natrl.results reads the same ones for the tables)."""
    from natrl.results import headline_metrics, result_kind
    res = json.loads((run_dir / "results.json").read_text())
    return {"run_dir": str(run_dir), "search_seconds": res.get("search_seconds"),
            **headline_metrics(result_kind(res), res)}


def write_trials_csv(sweep_dir: Path, result_grid) -> Path:
    import pandas as pd
    rows = []
    for r in result_grid:
        t = r.config["trial"]
        rows.append({"ablation": t["ablation"], "trial": t["name"], **t["overrides"],
                     "status": "error" if r.error else "done", **(r.metrics or {})})
    frame = pd.DataFrame(rows).drop(columns=["config", "trial_id", "done", "training_iteration", "date",
                                             "timestamp", "time_this_iter_s", "time_total_s", "pid", "hostname",
                                             "node_ip", "time_since_restore", "iterations_since_restore",
                                             "checkpoint_dir_name", "experiment_tag"], errors="ignore")
    path = sweep_dir / "trials.csv"
    frame.sort_values(["ablation", "trial"]).to_csv(path, index=False)
    return path


def run(cfg: SweepConfig) -> Path:
    import ray
    from ray import tune

    from natrl.rundir import create_run_dir, quiet_ray_logs, write_json

    quiet_ray_logs()
    if cfg.resume:
        sweep_dir = Path(cfg.resume).resolve()
        if not tune.Tuner.can_restore(str(sweep_dir / "tune")):
            raise NatrlError(f"{sweep_dir} holds no Tune state to resume (expected {sweep_dir / 'tune'}); "
                             "start a new sweep with --out")
        saved = json.loads((sweep_dir / "config.json").read_text())["config"]
        cfg = SweepConfig(**{**saved, "resume": str(sweep_dir)})
    else:
        if cfg.reward == "nb201":
            from natrl.rewards import NB201Table
            NB201Table.load(cfg.table)  # a bad --table fails here, not in every trial
        else:
            from natrl.datasets import load_cifar10
            load_cifar10(cfg.data)
        sweep_dir = create_run_dir(Path(cfg.out or Path("sweeps") / cfg.name), cfg).resolve()
    trials = trial_grid(cfg)
    print(f"sweep directory: {sweep_dir}\n{len(trials)} trials: {', '.join(cfg.ablations)} x {', '.join(cfg.rules)} "
          f"x {cfg.seeds} seeds", flush=True)
    if not ray.is_initialized():
        import os
        ray.init(num_cpus=max(2, os.cpu_count() or 2), num_gpus=cfg.num_gpus, include_dashboard=False,
                 log_to_driver=False, object_store_memory=256 * 1024 ** 2, configure_logging=False)
    trainable = tune.with_resources(run_trial, trial_resources(cfg))
    if cfg.resume:
        tuner = tune.Tuner.restore(str(sweep_dir / "tune"), trainable=trainable, resume_errored=True)
    else:
        base = {k: getattr(cfg, k) for k in TRAIN_KNOBS}
        base["space"] = "darts" if cfg.reward == "supernet" else "nb201"
        param_space = {"trial": tune.grid_search(trials), "base": base, "sweep_dir": str(sweep_dir),
                       "experiments": str(HERE)}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=cfg.max_concurrent or None,
                                        trial_dirname_creator=lambda t: t.config["trial"]["name"],
                                        trial_name_creator=lambda t: t.config["trial"]["name"]),
            run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=1))
    grid = tuner.fit()
    csv_path = write_trials_csv(sweep_dir, grid)
    errors = sum(1 for r in grid if r.error)
    write_json(sweep_dir / "status.json", {"trials": len(grid), "errors": errors})
    print(f"{len(grid) - errors}/{len(grid)} trials done; {csv_path}", flush=True)
    if errors:
        print(f"{errors} trial(s) failed (their error.txt is under {sweep_dir / 'tune'}); "
              f"rerun them with: python experiments/sweep.py --resume {sweep_dir}", flush=True)
    print(json.dumps({"sweep_dir": str(sweep_dir)}))
    return sweep_dir


@cli_entry
def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
