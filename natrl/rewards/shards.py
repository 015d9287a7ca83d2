"""Supernet shards: Ray actors that each hold a supernet replica on one GPU (or CPU) and a shard of the data.

Training is data-parallel: every shard trains the *same* sampled input beta on its own batch, then the gradients
are averaged with one all-reduce through torch.distributed (NCCL on GPUs, gloo on CPU), never by shipping
weights through the object store; identical initial weights + identical averaged updates keep the replicas
identical. Scoring spreads the genotypes of a call over the shards.
"""
from __future__ import annotations

import socket

import torch
import torch.distributed as dist


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
        p.grad = flat[offset:offset + n].view_as(p).clone()
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
