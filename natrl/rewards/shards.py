"""Supernet shards: Ray actors that each hold a supernet replica on the accelerator Ray assigned it (or CPU).

Training is data-parallel and keeps the one-process recipe: every shard draws the same global batch, trains its
slice of it with BatchNorm statistics of the whole batch, and the shards' gradients are summed with one
all-reduce through torch.distributed (NCCL when every rank has its own GPU, gloo otherwise), never by shipping
weights through the object store. A parameter no rank used (an op the step did not run) keeps grad None, as in
one process, so momentum and weight decay leave it alone. Scoring spreads the genotypes of a call over the shards.

Placement: the shards are reserved in a placement group (the Tune trial's own when a sweep runs them); the
process group meets at rank 0's node address on a port that is free on that node.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from natrl.errors import NatrlError
from natrl.rewards.supernet import SupernetReward

if TYPE_CHECKING:
    import numpy as np


def allreduce_gradients(module: torch.nn.Module, world_size: int, average: bool = True):
    """Combine the ranks' gradients in one flat all-reduce: each gradient is summed over the ranks that have one
    (divided by ``world_size`` when ``average``: the mean of per-rank mean losses, where a rank without a
    gradient contributes zero). A presence flag per parameter rides along: a parameter that has a gradient on
    no rank keeps ``grad = None``, so the optimizer skips it exactly as one process would."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    ref = params[0]
    present = torch.tensor([p.grad is not None for p in params], dtype=ref.dtype, device=ref.device)
    grads = [p.grad.reshape(-1) if p.grad is not None else ref.new_zeros(p.numel()) for p in params]
    flat = torch.cat(grads + [present])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    if average:
        flat[: -len(params)] /= world_size
    offset = 0
    for p, anywhere in zip(params, flat[-len(params) :].tolist()):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone() if anywhere else None
        offset += n


def free_port(host: str = "") -> int:
    """A TCP port free on this node (``host`` "" = every interface, as the rendezvous store listens)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def assigned_device() -> torch.device:
    """The accelerator Ray assigned this actor, else the CPU (even on a machine with GPUs). Ray narrows
    CUDA_VISIBLE_DEVICES to the assigned GPU, which torch then calls cuda:0."""
    import ray

    ids = [str(i) for i in ray.get_runtime_context().get_accelerator_ids().get("GPU", [])]
    if not ids or not torch.cuda.is_available():
        return torch.device("cpu")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    index = 0 if visible.split(",") == ids else int(ids[0])  # Ray left CUDA_VISIBLE_DEVICES alone: global id
    return torch.device("cuda", index)


def choose_backend(infos: list[dict]) -> str:
    """NCCL only when every rank has its own GPU (distinct node and GPU id) and NCCL is built; gloo otherwise."""
    gpus = [(i["node"], i["gpu"]) for i in infos]
    own_gpus = all(g is not None for _, g in gpus) and len(set(gpus)) == len(gpus)
    return "nccl" if own_gpus and all(i["nccl"] for i in infos) else "gloo"


class DataParallelWorker:
    """The torch.distributed side of a shard: joins the process group, aligns and combines ``self.net``.
    Subclasses set ``self.net``; Ray turns them into actors with ``ray.remote(num_cpus=..., num_gpus=...)``."""

    def device_info(self) -> dict:
        """Where this rank runs: node, node IP, device, the Ray GPU id it holds (or None), NCCL built."""
        import ray

        ctx = ray.get_runtime_context()
        gpu = ctx.get_accelerator_ids().get("GPU", [])
        device = getattr(self, "device", torch.device("cpu"))
        return {
            "node": ctx.get_node_id(),
            "ip": ray.util.get_node_ip_address(),
            "device": str(device),
            "gpu": str(gpu[0]) if gpu and device.type == "cuda" else None,
            "nccl": dist.is_available() and dist.is_nccl_available(),
        }

    def rendezvous_address(self) -> str:
        """Rank 0's node address and a port free there: where the process group meets."""
        import ray

        return f"{ray.util.get_node_ip_address()}:{free_port()}"

    def setup_group(self, rank: int, world_size: int, address: str, backend: str = "gloo"):
        if backend == "nccl":
            torch.cuda.set_device(getattr(self, "device", torch.device("cuda", 0)))
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
    """One supernet replica (natrl.rewards.supernet.SupernetTrainer) on its device, holding the whole weights
    split and training its slice of every global batch. Made a Ray actor by ``SupernetShards``."""

    def __init__(self, rank: int, world_size: int, vocab, data, trainer_kwargs: dict, sync_batchnorm: bool = True):
        from natrl.datasets import load_cifar10
        from natrl.rewards.supernet import SupernetTrainer

        self.device = assigned_device()
        if self.device.type == "cpu":
            torch.set_num_threads(1)  # CPU shards share the machine's cores
        arrays = load_cifar10(data) if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__") else data
        self.trainer = SupernetTrainer(vocab, arrays, device=self.device, shard=(rank, world_size), **trainer_kwargs)
        self.net = self.trainer.net
        self.rank, self.world_size = rank, world_size
        self.sync_bn = sync_batchnorm

    def steps_per_epoch(self) -> int:
        return self.trainer.steps_per_epoch

    def train_epoch(self, betas, max_steps=None) -> dict:
        if self.world_size == 1:
            return self.trainer.train_epoch(betas, max_steps=max_steps)
        self.net.sync_batchnorm(self.sync_bn)  # BN over the global batch while training; scoring stays per shard
        try:
            reduce = lambda: allreduce_gradients(self.net, self.world_size, average=False)  # noqa: E731
            return self.trainer.train_epoch(betas, max_steps=max_steps, after_backward=reduce)
        finally:
            self.net.sync_batchnorm(False)

    def score(self, genotypes, batch_index: int):
        return self.trainer.score(genotypes, batch_index)

    def state_dict(self) -> dict:
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict):
        self.trainer.load_state_dict(state)

    def weights(self) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}

    def optimizer_state(self) -> dict:
        return self.trainer.optimizer.state_dict()


def combine_epoch_stats(stats: list[dict]) -> dict:
    """The shards' epoch sums as the numbers one process would report for the whole batches."""
    images = sum(s["images"] for s in stats)
    return {
        "epoch": stats[0]["epoch"],
        "loss": sum(s["loss_sum"] for s in stats) / max(images, 1),
        "train_acc": 100 * sum(s["correct"] for s in stats) / max(images, 1),
        "lr": stats[0]["lr"],
        "images": images,
        "steps": stats[0]["steps"],
    }


def scaled_trainer_kwargs(trainer_kwargs: dict, world_size: int) -> dict:
    """Opt-in larger global batch: ``batch_size`` per shard, so world_size x batch_size in all, with the linear
    scaling rule (Goyal et al. 2017): lr and lr_min times world_size. Fewer steps per epoch than one process."""
    import inspect

    from natrl.rewards.supernet import SupernetTrainer

    defaults = inspect.signature(SupernetTrainer).parameters
    kw = dict(trainer_kwargs)
    for key in ("batch_size", "lr", "lr_min"):
        kw[key] = kw.get(key, defaults[key].default) * world_size
    return kw


class SupernetShards(SupernetReward):
    """The supernet reward backend seen from the driver: ``num_shards`` SupernetShard actors (one GPU each when
    ``num_gpus > 0``, else one CPU each) in one placement group and one process group.

    - ``train_epoch(sample)``: the driver samples one input beta per step; every shard trains it on its slice of
      the same global batch (``trainer_kwargs["batch_size"]``, as in one process), gradients are summed: the
      step, the steps per epoch and the LR are those of one process. ``batch_per_shard=True`` instead makes
      ``batch_size`` per shard with the linear LR rule (:func:`scaled_trainer_kwargs`).
    - ``score(genotypes)`` (:class:`~natrl.rewards.supernet.SupernetReward`): the distinct genotypes of a call
      are spread over the shards, which all score the same reward batch, so R(alpha | beta) compares alpha and
      beta on the same images whichever shard scores them.
    ``placement`` is the placement-group strategy (PACK: as few nodes as fit; SPREAD / STRICT_SPREAD).
    The object is a set of actor handles: it pickles, so RLlib's env copies share the same shards.
    """

    def __init__(
        self,
        vocab,
        data,
        num_shards: int = 1,
        num_gpus: int = 0,
        trainer_kwargs: dict | None = None,
        batch_per_shard: bool = False,
        placement: str = "PACK",
        reserve_timeout_s: float = 300.0,
        sync_batchnorm: bool = True,
        cache_rewards: bool = False,
    ):
        self.world_size, self.num_gpus = num_shards, num_gpus
        kw = trainer_kwargs or {}
        SupernetReward.__init__(self, kw.get("space", "darts"), cache_rewards)
        kw = scaled_trainer_kwargs(kw, num_shards) if batch_per_shard else kw
        self._args = (vocab, data, kw)
        self.placement, self.reserve_timeout_s = placement, reserve_timeout_s
        self.sync_batchnorm = sync_batchnorm  # False: per-shard BN statistics, not the recipe (benchmarks only)
        self.last_state: dict[str, Any] | None = None  # the latest checkpointed state: a dead shard restarts from it
        self.restarts = 0
        self.pg: Any = None
        self._start()

    def _bundle(self) -> dict:
        return {"CPU": 1, "GPU": 1} if self.num_gpus else {"CPU": 1}

    def _shard_options(self) -> list[dict]:
        """Ray options of each shard: its bundle of the Tune trial's placement group, or of our own."""
        from ray.util import get_current_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        pg, first = get_current_placement_group(), 0
        if pg is not None:  # inside a Tune trial: its reservation ends with one bundle per shard
            first = len(pg.bundle_specs) - self.world_size
            if first < 0 or any(
                pg.bundle_specs[first + r].get("GPU", 0) < (1 if self.num_gpus else 0) for r in range(self.world_size)
            ):
                raise NatrlError(
                    f"the Tune trial reserved {pg.bundle_specs}, too little for {self.world_size} "
                    f"shard(s) of {self._bundle()}; give the trial one such bundle per shard"
                )
        else:
            pg = self.pg = self._reserve()
        resources = {"num_cpus": 1, "num_gpus": 1 if self.num_gpus else 0}
        return [
            dict(
                resources,
                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=first + r),
            )
            for r in range(self.world_size)
        ]

    def _reserve(self):
        """A placement group of one bundle per shard, or one line when the cluster cannot hold it in time."""
        import ray
        from ray.util import placement_group, remove_placement_group

        pg = placement_group([self._bundle()] * self.world_size, strategy=self.placement)
        ready, _ = ray.wait([pg.ready()], timeout=self.reserve_timeout_s)
        if not ready:
            remove_placement_group(pg)
            have = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
            raise NatrlError(
                f"cannot reserve {self.world_size} supernet shard(s) of {self._bundle()} "
                f"({self.placement}) within {self.reserve_timeout_s:.0f}s; the Ray cluster has {have}"
            )
        return pg

    def _start(self):
        import ray

        actor = ray.remote(SupernetShard)
        options = self._shard_options()
        self.shards = [
            actor.options(**o).remote(r, self.world_size, *self._args, sync_batchnorm=self.sync_batchnorm)
            for r, o in enumerate(options)
        ]
        self.devices = ray.get([s.device_info.remote() for s in self.shards])
        self.backend = "none"
        if self.world_size > 1:
            self.backend = choose_backend(self.devices)
            address = ray.get(self.shards[0].rendezvous_address.remote())
            ray.get(
                [s.setup_group.remote(r, self.world_size, address, self.backend) for r, s in enumerate(self.shards)]
            )
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
        self.new_weights()
        return combine_epoch_stats(stats)

    def _score_distinct(self, genotypes: list, k: int) -> np.ndarray:
        import numpy as np

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
        self.cache.clear()

    def shutdown(self):
        import ray
        from ray.util import remove_placement_group

        for s in self.shards:
            ray.kill(s)
        if self.pg is not None:
            remove_placement_group(self.pg)
            self.pg = None
