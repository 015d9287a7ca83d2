"""REINFORCE on RLlib against a plain PyTorch loop (a benchmark, not a test).

Run:
    python benchmarks/bench_rl.py [--blocks 7] [--updates 50] [--main-job [--main-job-runs 3]] [--out DIR]

1. Per-update cost on the NAS-Bench-201 reward, for m x n in {32 x 2, 1 x 1}: our update (``Algorithm.train()``
   of natrl's REINFORCE, the batched sampler) against a plain PyTorch loop on the same TransitionPolicy module,
   the same loss (Eqn. 5 with the leave-one-out baseline), the same m x n and the same table. The two run in
   one process in alternating blocks of ``--updates`` updates, so load on the machine hits both alike; the
   table gives the median ms per update over the blocks and the ratio.
2. ``--main-job``: the wall time of ``python experiments/train_natpp.py`` (a subprocess, fresh run directory)
   and where it goes: Python imports, Ray start, building the algorithm, training, evaluation (from the
   run's results.json ``timings``); with ``--main-job-runs N`` the medians of N runs in a row.
Writes bench_rl.json and bench_rl.md under --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


class PlainREINFORCE:
    """The math of one update and nothing else: indices in, one forward to sample, one to learn, Adam. (natrl's
    update samples from its training forward: one forward; this loop keeps the textbook two.)"""

    def __init__(self, m: int, n: int, seed: int = 0, lam: float = 3e-2, lr: float = 1e-3):
        from natrl.policy.module import TransitionPolicy
        from natrl.rewards import NB201Table
        from natrl.spaces import make_space

        torch.manual_seed(seed)
        self.space = make_space("nb201")
        self.acc = NB201Table.load(None).accuracy
        self.module = TransitionPolicy(
            observation_space=self.space.observation_space(),
            action_space=self.space.action_space(),
            model_config={"encoder": "gcn", "hidden": 64, "gcn_layers": 2},
        )
        self.opt = torch.optim.Adam(
            self.module.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=5e-4, foreach=True
        )
        self.rng, self.m, self.n, self.lam = np.random.default_rng(seed), m, n, lam

    def update(self):
        from natrl.algo.baseline import leave_one_out
        from natrl.policy.bmsoftmax import BinaryMaskedSoftmax
        from natrl.spaces import NB201_CELLS, nb201_index

        cells = self.space.train_cells[self.rng.integers(len(self.space.train_cells), size=self.m)]
        cells = np.repeat(cells, self.n)
        obs = {k: torch.from_numpy(v) for k, v in self.space.observe_batch(NB201_CELLS[cells]).items()}
        with torch.no_grad():
            actions = self.module.distribution(obs).sample()
        rewards = self.acc[nb201_index(actions.numpy())] - self.acc[cells]
        b = leave_one_out(rewards, cells, fallback=float(rewards.mean()))
        dist = BinaryMaskedSoftmax(self.module.distribution(obs).logits)
        adv = torch.as_tensor(rewards - b, dtype=torch.float32)
        loss = -(dist.logp(actions) * adv).mean() - self.lam * dist.entropy().mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


def rllib_update(m: int, n: int, seed: int = 0):
    from natrl.runs.transformer import UPDATES_PER_ITERATION, TrainConfig, build_algo

    algo = build_algo(TrainConfig(m=m, n=n, seed=seed))
    k = UPDATES_PER_ITERATION  # as a training run calls it; time_block counts updates, not iterations

    def step():
        algo.train_updates(k)
        algo.update_stats.clear()

    step.updates = k  # type: ignore[attr-defined]
    return step, algo


def time_block(step, updates: int) -> float:
    """ms per policy update over ``updates`` updates (a step may take several)."""
    per_call = getattr(step, "updates", 1)
    calls = max(1, updates // per_call)
    t = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - t) / (calls * per_call) * 1000


def per_update(m: int, n: int, blocks: int, updates: int) -> dict:
    plain = PlainREINFORCE(m, n)
    ours, algo = rllib_update(m, n)
    time_block(plain.update, 5), time_block(ours, 5)  # warm-up
    t_plain, t_ours = [], []
    for _ in range(blocks):
        t_plain.append(time_block(plain.update, updates))
        t_ours.append(time_block(ours, updates))
    algo.stop()
    med_p, med_o = statistics.median(t_plain), statistics.median(t_ours)
    return {
        "m": m,
        "n": n,
        "plain_ms": med_p,
        "rllib_ms": med_o,
        "ratio": med_o / med_p,
        "plain_blocks_ms": t_plain,
        "rllib_blocks_ms": t_ours,
    }


def main_job_once() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "experiments" / "train_natpp.py"), "--out", str(out)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t
        results = json.loads((out / "results.json").read_text())
    timings = results["timings"]
    return {
        "wall_s": round(wall, 1),
        **timings,
        "imports_and_exit_s": round(wall - sum(timings.values()), 1),
        "policy_1_sample": round(results["rows"]["policy (1 sample)"]["reward"]["mean"], 2),
    }


def main_job(runs: int = 1) -> dict:
    """The main job ``runs`` times in a row: the median of every number, and each run's."""
    each = [main_job_once() for _ in range(runs)]
    median = {k: round(statistics.median(r[k] for r in each), 2) for k in each[0]}
    return {**median, "runs": each} if runs > 1 else median


def markdown(rows: list[dict], job: dict | None) -> str:
    lines = ["| m x n | plain PyTorch (ms/update) | natrl on RLlib (ms/update) | ratio |", "|---|---|---|---|"]
    lines += [f"| {r['m']} x {r['n']} | {r['plain_ms']:.2f} | {r['rllib_ms']:.2f} | {r['ratio']:.2f}x |" for r in rows]
    if job:
        lines += ["", "| main job | seconds |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in job.items() if k != "runs"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--blocks", type=int, default=7, help="alternating timing blocks per m x n")
    p.add_argument("--updates", type=int, default=50, help="updates per block")
    p.add_argument("--main-job", action="store_true", help="also time the whole main job (a subprocess)")
    p.add_argument("--main-job-runs", type=int, default=1, help="main-job runs; the table gives their medians")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the JSON/Markdown")
    args = p.parse_args(argv)
    import ray

    torch.set_num_threads(1)  # as natrl's training driver does (natrl.runs.transformer)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = [per_update(m, n, args.blocks, args.updates) for m, n in ((32, 2), (1, 1))]
    ray.shutdown()
    job = main_job(args.main_job_runs) if args.main_job else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_rl.json").write_text(json.dumps({"per_update": rows, "main_job": job}, indent=1))
    md = markdown(rows, job)
    (out / "bench_rl.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
