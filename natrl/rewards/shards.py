"""Supernet shards: Ray actors that each hold a supernet replica on one GPU (or CPU) and a shard of the data.

Training is data-parallel: every shard trains the *same* sampled input beta on its own batch, then the gradients
are averaged with one all-reduce through torch.distributed (NCCL on GPUs, gloo on CPU), never by shipping
weights through the object store; identical initial weights + identical averaged updates keep the replicas
identical. Scoring spreads the genotypes of a call over the shards.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    import numpy as np


def allreduce_gradients(module: torch.nn.Module, world_size: int):
    """Average every parameter's gradient across the process group in one flat all-reduce.
    A parameter that got no gradient on this rank (an op this step did not run) contributes zeros."""
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DataParallelWorker:
    """The torch.distributed side of a shard: joins the process group, aligns and averages ``self.net``.
    Subclasses set ``self.net``; Ray turns them into actors with ``ray.remote(num_cpus=..., num_gpus=...)``."""

    def setup_group(self, rank: int, world_size: int, address: str, backend: str | None = None):
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend, init_method=f"tcp://{address}", rank=rank, world_size=world_size)
        self.rank, self.world_size = rank, world_size
        return backend

    def sync_initial_weights(self):
        """Make every replica start from rank 0's weights."""
        for t in list(self.net.parameters()) + [b for b in self.net.buffers() if b is not None]:
            dist.broadcast(t.data, src=0)

    def shutdown_group(self):
        if dist.is_initialized():
            dist.destroy_process_group()


class LinearWorker(DataParallelWorker):
    """A BatchNorm-free test network trained data-parallel: the tests check that the all-reduced update of the
    shards equals one process training on the union of their data."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.9)

    def step(self, x, y):
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.opt.zero_grad()
        loss.backward()
        if getattr(self, "world_size", 1) > 1:
            allreduce_gradients(self.net, self.world_size)
        self.opt.step()
        return loss.item()

    def weights(self):
        return {k: v.clone() for k, v in self.net.state_dict().items()}


class SupernetShard(DataParallelWorker):
    """One supernet replica (natrl.rewards.supernet.SupernetTrainer) on its device with its part of the
    weights split. Made a Ray actor by ``SupernetShards``."""

    def __init__(self, rank: int, world_size: int, vocab, data, trainer_kwargs: dict):
        from natrl.datasets import load_cifar10
        from natrl.rewards.supernet import SupernetTrainer

        if not torch.cuda.is_available():
            torch.set_num_threads(1)  # CPU shards share the machine's cores
        arrays = load_cifar10(data) if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__") else data
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.trainer = SupernetTrainer(vocab, arrays, device=device, shard=(rank, world_size), **trainer_kwargs)
        self.net = self.trainer.net
        self.rank, self.world_size = rank, world_size

    def steps_per_epoch(self) -> int:
        return self.trainer.steps_per_epoch

    def train_epoch(self, betas, max_steps=None) -> dict:
        reduce = (lambda: allreduce_gradients(self.net, self.world_size)) if self.world_size > 1 else None
        return self.trainer.train_epoch(betas, max_steps=max_steps, after_backward=reduce)

    def score(self, genotypes, batch_index: int):
        return self.trainer.score(genotypes, batch_index)

    def state_dict(self) -> dict:
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict):
        self.trainer.load_state_dict(state)

    def weights(self) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}


class SupernetShards:
    """The supernet reward backend seen from the driver: ``num_shards`` SupernetShard actors (one GPU each when
    ``num_gpus > 0``, else one CPU each) in one process group.

    - ``train_epoch(sample)``: the driver samples one input beta per step, every shard trains it on its own
      batch, gradients are all-reduced: one data-parallel pass over the 40% split.
    - ``score(genotypes)``: the genotypes are spread over the shards; all score reward batch k (a counter), so
      R(alpha | beta) compares alpha and beta on the same images whichever shard scores them.
    The object is a set of actor handles: it pickles, so RLlib's env copies share the same shards.
    """

    space = "darts"

    def __init__(self, vocab, data, num_shards: int = 1, num_gpus: int = 0, trainer_kwargs: dict | None = None):
        self.world_size, self.num_gpus = num_shards, num_gpus
        self._args = (vocab, data, trainer_kwargs or {})
        self.last_state: dict[str, Any] | None = None  # the latest checkpointed state: a dead shard restarts from it
        self.restarts = 0
        self._start()
        self.batch_counter = 0

    def _start(self):
        import ray

        per_shard = {"num_gpus": 1, "num_cpus": 1} if self.num_gpus else {"num_cpus": 1}
        actor = ray.remote(**per_shard)(SupernetShard)
        self.shards = [actor.remote(r, self.world_size, *self._args) for r in range(self.world_size)]
        if self.world_size > 1:
            address = f"127.0.0.1:{free_port()}"  # single-node; a cluster would publish rank 0's address
            ray.get([s.setup_group.remote(r, self.world_size, address) for r, s in enumerate(self.shards)])
            ray.get([s.sync_initial_weights.remote() for s in self.shards])
        self.steps_per_epoch = ray.get(self.shards[0].steps_per_epoch.remote())

    def _run(self, call):
        """ray.get(call()), restarting every shard from the last checkpoint once if one has died."""
        import ray
        from ray.exceptions import RayActorError

        try:
            return ray.get(call())
        except RayActorError:
            if self.last_state is None:
                raise
            self.restarts += 1
            print(f"a supernet shard died; restarting {self.world_size} shard(s) from the last checkpoint", flush=True)
            self.shutdown()
            self._start()
            ray.get([s.load_state_dict.remote(self.last_state["shard"]) for s in self.shards])
            return ray.get(call())

    def train_epoch(self, sample, max_steps: int | None = None) -> dict:
        steps = min(self.steps_per_epoch, max_steps or self.steps_per_epoch)
        betas = [sample() for _ in range(steps)]
        stats = self._run(lambda: [s.train_epoch.remote(betas, max_steps) for s in self.shards])
        return {k: sum(st[k] for st in stats) / len(stats) for k in stats[0]}

    def score(self, genotypes) -> np.ndarray:
        import numpy as np

        k, self.batch_counter = self.batch_counter, self.batch_counter + 1
        chunks = np.array_split(np.arange(len(genotypes)), min(self.world_size, len(genotypes)))
        return np.concatenate(
            self._run(lambda: [s.score.remote([genotypes[i] for i in c], k) for s, c in zip(self.shards, chunks)])
        )

    def state_dict(self) -> dict:
        """Replicas are identical: rank 0's state is the state of all (remembered for restarts)."""
        self.last_state = {
            "shard": self._run(lambda: self.shards[0].state_dict.remote()),
            "batch_counter": self.batch_counter,
        }
        return self.last_state

    def load_state_dict(self, state: dict):
        self._run(lambda: [s.load_state_dict.remote(state["shard"]) for s in self.shards])
        self.batch_counter = state["batch_counter"]
        self.last_state = state

    def shutdown(self):
        import ray

        for s in self.shards:
            ray.kill(s)
