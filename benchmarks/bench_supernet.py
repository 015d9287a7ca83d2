"""Supernet benchmarks (not tests): training and scoring throughput, and where a training iteration's time goes.

Run:
    python benchmarks/bench_supernet.py [--data path/to/cifar10_jpg.tar.gz] [--preset tiny] [--steps 30]

Measures, in one process on the current machine:
1. supernet training throughput (images/s): our path (uint8 data on the device, batched on-device crop/flip)
   versus the authors' way (torch DataLoader over a Dataset with per-sample numpy transforms), same supernet,
   same number of steps, same sampled architectures;
2. reward scoring throughput (architectures/s) on one 64-image validation batch;
3. a full policy update of Algorithm 1 at the tiny preset (RLlib REINFORCE, m x n episodes, one SupernetShard
   actor): the share of wall time spent inside supernet compute (timed inside the actor) versus
   Ray/RLlib/environment overhead.
Prints a Markdown table and writes bench_supernet.json next to --out.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

from natrl.datasets import MEAN, STD, load_cifar10  # noqa: E402
from natrl.errors import ArgumentParser, cli_entry  # noqa: E402
from natrl.rewards.supernet import SupernetTrainer  # noqa: E402
from natrl.spaces import make_space  # noqa: E402


class PerSampleCIFAR(torch.utils.data.Dataset):
    """The released code's input path: one image at a time through Python transforms."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.mean, self.std = np.array(MEAN, np.float32), np.array(STD, np.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = np.pad(self.x[i], ((4, 4), (4, 4), (0, 0)))
        oy, ox = np.random.randint(0, 9, 2)
        img = img[oy : oy + 32, ox : ox + 32]
        if np.random.rand() < 0.5:
            img = img[:, ::-1]
        img = (img.astype(np.float32) / 255 - self.mean) / self.std
        return torch.from_numpy(img.transpose(2, 0, 1).copy()), int(self.y[i])


def _loader(data, batch_size):
    return torch.utils.data.DataLoader(
        PerSampleCIFAR(data["train_x"][:20000], data["train_y"][:20000]),
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
    )


def bench_input_pipeline(trainer, data, batches, batch_size):
    """Augmented training batches per second alone: on-device batched vs per-sample DataLoader."""
    t = time.perf_counter()
    for _i, _ in zip(range(batches), trainer.weights.batches()):
        pass
    ours = batches * batch_size / (time.perf_counter() - t)
    t = time.perf_counter()
    for _i, _ in zip(range(batches), _loader(data, batch_size)):
        pass
    return ours, batches * batch_size / (time.perf_counter() - t)


def bench_training(trainer, space, data, steps, batch_size, repeats=2):
    """Supernet training steps per second, both input paths, alternating, best of ``repeats``."""
    rng = np.random.default_rng(0)
    betas = [space.sample_input(rng) for _ in range(steps)]
    net, opt = trainer.net, trainer.optimizer
    ours, theirs = 0.0, 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        trainer.train_epoch(betas, max_steps=steps)
        ours = max(ours, steps * batch_size / (time.perf_counter() - t))
        t = time.perf_counter()
        for step, (x, y) in enumerate(_loader(data, batch_size)):
            if step == steps:
                break
            loss = torch.nn.functional.cross_entropy(net(x, betas[step]), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        theirs = max(theirs, steps * batch_size / (time.perf_counter() - t))
    return ours, theirs


def bench_scoring(trainer, space, n=32):
    rng = np.random.default_rng(1)
    genotypes = [space.sample_input(rng) for _ in range(n)]
    trainer.score(genotypes[:2], 0)  # warm-up
    t = time.perf_counter()
    trainer.score(genotypes, 0)
    return n / (time.perf_counter() - t)


def bench_iteration(data, preset, iters, m, n):
    """Wall time of RLlib policy updates vs supernet compute time measured inside the shard actor."""
    import ray

    from natrl.rewards.shards import SupernetShard, SupernetShards
    from natrl.runs.transformer import TrainConfig, build_algo

    class TimedShard(SupernetShard):
        def score(self, genotypes, batch_index):
            t = time.perf_counter()
            out = super().score(genotypes, batch_index)
            self.busy = getattr(self, "busy", 0.0) + time.perf_counter() - t
            return out

        def busy_seconds(self):
            return getattr(self, "busy", 0.0)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    space = make_space("darts")
    import natrl.rewards.shards as shards_mod

    shards_mod.SupernetShard, original = TimedShard, shards_mod.SupernetShard
    backend = SupernetShards(space.ops, ray.put(data), 1, 0, {"preset": preset, "batch_size": 64})
    shards_mod.SupernetShard = original
    algo = build_algo(TrainConfig(space="darts", reward="supernet", m=m, n=n, data="-"), backend=backend)
    algo.train()  # warm-up
    busy0 = ray.get(backend.shards[0].busy_seconds.remote())
    t = time.perf_counter()
    for _ in range(iters):
        algo.train()
    wall = time.perf_counter() - t
    busy = ray.get(backend.shards[0].busy_seconds.remote()) - busy0
    algo.stop()
    backend.shutdown()
    ray.shutdown()
    return wall / iters, busy / iters


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="CIFAR-10 (any accepted layout); default: random images of CIFAR's shape")
    p.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("."))
    args = p.parse_args(argv)
    torch.manual_seed(0)
    if args.data:
        data = load_cifar10(args.data)
    else:
        rng = np.random.default_rng(0)
        data = {
            "train_x": rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8),
            "train_y": rng.integers(0, 10, 50000),
            "test_x": None,
            "test_y": None,
        }
    space = make_space("darts")
    trainer = SupernetTrainer(space.ops, data, preset=args.preset, batch_size=64)
    pipe_ours, pipe_theirs = bench_input_pipeline(trainer, data, 100, 64)
    ours, theirs = bench_training(trainer, space, data, args.steps, 64)
    scoring = bench_scoring(trainer, space)
    wall, busy = bench_iteration(data, args.preset, args.iters, args.m, args.n)
    res = {
        "machine": f"{torch.get_num_threads()} torch threads, cuda={torch.cuda.is_available()}",
        "date": time.strftime("%Y-%m-%d"),
        "preset": args.preset,
        "input_images_per_s_ours": pipe_ours,
        "input_images_per_s_per_sample_dataloader": pipe_theirs,
        "train_images_per_s_ours": ours,
        "train_images_per_s_per_sample_dataloader": theirs,
        "score_architectures_per_s": scoring,
        "iteration_wall_s": wall,
        "iteration_supernet_s": busy,
        "overhead_share": 1 - busy / wall,
        "m": args.m,
        "n": args.n,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_supernet.json").write_text(json.dumps(res, indent=1) + "\n")
    print(
        f"| measure ({args.preset} preset) | value |\n|---|---|\n"
        f"| augmented input batches alone, on-device batched | {pipe_ours:.0f} images/s |\n"
        f"| augmented input batches alone, per-sample DataLoader | {pipe_theirs:.0f} images/s |\n"
        f"| supernet training, on-device batches | {ours:.0f} images/s |\n"
        f"| supernet training, per-sample DataLoader | {theirs:.0f} images/s |\n"
        f"| reward scoring (64-image batch) | {scoring:.1f} architectures/s |\n"
        f"| policy update, m={args.m} x n={args.n} | {wall:.2f} s wall, {busy:.2f} s supernet compute |\n"
        f"| framework overhead (Ray + RLlib + env) | {100 * (1 - busy / wall):.0f}% of the update |"
    )


if __name__ == "__main__":
    main()
