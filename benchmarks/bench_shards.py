"""Shard benchmark (not a test): supernet training and scoring throughput of 1 vs 2 CPU shards (Ray actors).

Run:
    python benchmarks/bench_shards.py [--data path/to/cifar10_jpg.tar.gz] [--preset tiny] [--steps 10]
    python benchmarks/bench_shards.py --data path/to/cifar10 --preset paper --num-gpus 2 --steps 300   # GPUs

Measures, on a local Ray with one CPU per shard (torch.set_num_threads(1) in each shard), or one GPU per shard
with --num-gpus:
1. supernet training with the one-process recipe (global batch of --batch split over the shards, BatchNorm over
   the global batch, one gradient all-reduce per step): images/s and ms per step, after one warm-up step;
2. 2 shards with per-shard BatchNorm statistics (not the recipe: the cost of the BatchNorm all-reduces), and the
   opt-in larger global batch (--batch per shard, linear LR rule);
3. reward scoring spread over the shards: architectures/s for --genotypes architectures on one 64-image batch.
Prints a Markdown table and writes bench_shards.json in --out. Numbers depend on the machine's free cores: with
one core per shard, 2 shards can be at most 2x one shard.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from natrl.datasets import load_cifar10
from natrl.errors import ArgumentParser, cli_entry
from natrl.spaces import make_space


def bench_train(shards, space, steps: int, batch: int) -> dict:
    rng = np.random.default_rng(0)
    shards.train_epoch(lambda: space.sample_input(rng), max_steps=1)  # warm-up: allocations, first collectives
    start = time.perf_counter()
    stats = shards.train_epoch(lambda: space.sample_input(rng), max_steps=steps)
    wall = time.perf_counter() - start
    return {"images_per_s": stats["images"] / wall, "step_ms": 1000 * wall / stats["steps"], "global_batch": batch}


def batchnorm_layers_per_forward(space, preset: str, samples: int = 20) -> list[int]:
    """BatchNorm layers one supernet forward runs, for sampled inputs: each is one all-reduce forward and one
    backward when the shards train with global BatchNorm statistics."""
    import torch

    from natrl.nets.supernet import ShardBatchNorm2d, Supernet

    net, calls = Supernet(space.ops, preset), [0]
    for m in net.modules():
        if isinstance(m, ShardBatchNorm2d):
            m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    rng, counts = np.random.default_rng(0), []
    with torch.no_grad():
        for _ in range(samples):
            calls[0] = 0
            net(torch.zeros(2, 3, 32, 32), space.sample_input(rng))
            counts.append(calls[0])
    return counts


def bench_score(shards, space, genotypes: int, repeats: int = 2) -> float:
    rng = np.random.default_rng(1)
    gs = [space.sample_input(rng) for _ in range(genotypes)]
    shards.score(gs[:2])  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        shards.score(gs)
    return repeats * genotypes / (time.perf_counter() - start)


def bench_config(data_ref, space, num_shards: int, args, batch_per_shard: bool = False, sync_bn: bool = True) -> dict:
    from natrl.rewards.shards import SupernetShards

    kwargs = {"preset": args.preset, "batch_size": args.batch, "seed": 0}
    gpus = num_shards if args.num_gpus else 0
    shards = SupernetShards(
        space.ops, data_ref, num_shards, gpus, kwargs, batch_per_shard=batch_per_shard, sync_batchnorm=sync_bn
    )
    try:
        batch = args.batch * (num_shards if batch_per_shard else 1)
        out = bench_train(shards, space, args.steps, batch)
        out["score_architectures_per_s"] = bench_score(shards, space, args.genotypes)
        out.update(
            shards=num_shards,
            backend=shards.backend,
            batch_per_shard=batch_per_shard,
            devices=[d["device"] for d in shards.devices],
            sync_batchnorm=sync_bn,
        )
        return out
    finally:
        shards.shutdown()


def _data(path: str | None) -> dict:
    if path:
        return load_cifar10(path)
    rng = np.random.default_rng(0)
    return {"train_x": rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8), "train_y": rng.integers(0, 10, 10000)}


def _table(rows: list[dict], preset: str, device: str) -> str:
    lines = [
        f"| shards ({preset} preset, {device}) | global batch | train images/s | ms per step | scoring arch/s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        kind = f"{r['shards']}" + (f" (batch per shard, lr x{r['shards']})" if r["batch_per_shard"] else "")
        kind += "" if r["sync_batchnorm"] or r["shards"] == 1 else " (per-shard BN statistics: not the recipe)"
        lines.append(
            f"| {kind} | {r['global_batch']} | {r['images_per_s']:.0f} | {r['step_ms']:.0f} | "
            f"{r['score_architectures_per_s']:.1f} |"
        )
    return "\n".join(lines)


@cli_entry
def main(argv=None):
    import ray

    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="CIFAR-10 (any accepted layout); default: random images of CIFAR's shape")
    p.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    p.add_argument("--batch", type=int, default=64, help="global batch (per shard with the opt-in row)")
    p.add_argument("--genotypes", type=int, default=16, help="architectures per scoring call")
    p.add_argument("--num-gpus", type=int, default=0, help="GPUs: one shard per GPU, 1 and N shards (0 = CPU)")
    p.add_argument("--out", type=Path, default=Path("."))
    args = p.parse_args(argv)
    space = make_space("darts")
    bn = batchnorm_layers_per_forward(space, args.preset)
    n = max(2, args.num_gpus)  # shards in the multi-shard rows
    ray.init(
        num_cpus=n,
        num_gpus=args.num_gpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=256 * 1024**2,
    )
    try:
        data_ref = ray.put(_data(args.data))
        counts = [1] if args.num_gpus == 1 else [1, n]
        rows = [bench_config(data_ref, space, k, args) for k in counts]
        if len(counts) > 1:  # what the BatchNorm all-reduces cost, and the opt-in larger batch
            rows.append(bench_config(data_ref, space, n, args, sync_bn=False))
            rows.append(bench_config(data_ref, space, n, args, batch_per_shard=True))
    finally:
        ray.shutdown()
    res = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "load_avg_after": os.getloadavg(),
        "preset": args.preset,
        "steps": args.steps,
        "rows": rows,
        "batchnorm_layers_per_forward": bn,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_shards.json").write_text(json.dumps(res, indent=1) + "\n")
    print(_table(rows, args.preset, "GPU" if args.num_gpus else "CPU"))
    print(f"BatchNorm layers per forward (20 sampled inputs): min {min(bn)}, mean {np.mean(bn):.1f}, max {max(bn)}")
    print(f"load average (1, 5, 15 min) after the run: {res['load_avg_after']}")


if __name__ == "__main__":
    main()
