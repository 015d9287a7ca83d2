"""Data-parallel training on one machine: N processes (ranks), torch DistributedDataParallel, the one-process recipe.

Every rank draws the same global batch (the same data order and augmentation), trains its contiguous slice of it
(:func:`shard`), and scales its loss by its share of the batch so that DDP's gradient average is the gradient of
the global batch's mean loss, whatever the slice sizes. BatchNorm layers become :class:`GlobalBatchNorm2d` (and
1d): in training they normalise with the statistics of the whole global batch (one differentiable all-reduce of
per-channel sums per layer) and update their running statistics with them, identically on every rank; torch's own
SyncBatchNorm runs on GPUs only, this one on CPUs (gloo) and GPUs (NCCL) alike. So N ranks compute what one
process computes on the union batch, up to float rounding; what still differs is listed in docs/train_eval.md.

:func:`launch` starts the ranks with ``multiprocessing`` spawn on this machine (NCCL when every rank has its own
GPU, gloo on CPU), maps a rank's :class:`~natrl.errors.NatrlError` or interrupt back to the caller, stops every
rank when one dies, and makes the ranks die with the launcher (a ``kill -9`` leaves no rank writing behind it).
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing.connection
import os
import signal
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from natrl.errors import NatrlError

TIMEOUT = datetime.timedelta(minutes=60)  # rank 0 evaluates the test set alone while the others wait
GRACE_S = 120.0  # after a rank stops in order (an error every rank raises, an interrupt), the others' time to follow
INTERRUPTED = 130  # exit status of a rank that was interrupted (or stopped after a checkpoint)
REFUSED = 2  # exit status of a rank that raised NatrlError


def check_ranks(ranks: int, num_gpus: int, batch_size: int) -> None:
    """One GPU per rank when GPUs are used, all of them visible; at least one image per rank in every batch."""
    if num_gpus and num_gpus != ranks:
        raise NatrlError(
            f"--num-gpus {num_gpus} with --ranks {ranks}: every rank trains on a GPU of its own; give "
            f"--num-gpus {ranks} (or --ranks {num_gpus}), or --num-gpus 0 to train on the CPU"
        )
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if num_gpus > visible:
        fix = f"give --num-gpus {visible} or less, or 0" if visible else "give --num-gpus 0"
        raise NatrlError(
            f"--num-gpus {num_gpus} but {visible or 'no'} CUDA device{'' if visible == 1 else 's'} "
            f"{'is' if visible == 1 else 'are'} visible; {fix} to train on the CPU (--ranks N: N CPU ranks)"
        )
    if batch_size < ranks:
        raise NatrlError(
            f"--batch-size {batch_size} with --ranks {ranks}: every rank needs at least one image of each global "
            f"batch; give --batch-size {ranks} or more, or fewer ranks"
        )


def backend(num_gpus: int) -> str:
    """NCCL when every rank has its own GPU (and torch has NCCL), else gloo."""
    return "nccl" if num_gpus and dist.is_nccl_available() else "gloo"


def shard(n: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous slice of a global batch of ``n`` (sizes differ by at most one, the first
    ``n % world`` slices one larger: ``torch.tensor_split``'s rule)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


# ---- BatchNorm on the statistics of the global batch --------------------------------------------------------


class SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient (the ranks' output gradients, summed)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class _GlobalStats:
    """Mixin of GlobalBatchNorm{1,2}d: training mode inside a process group of 2 or more uses the global batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self
        if not (bn.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)  # type: ignore[misc]
        dims = [0, *range(2, x.dim())]
        C = x.shape[1]
        var_r, mean_r = torch.var_mean(x, dim=dims, unbiased=False)  # this rank's slice, in float32
        n_r = x.new_full((C,), x.numel() / C, dtype=torch.float64)
        m, v = mean_r.double(), var_r.double()
        total = SumOverRanks.apply(torch.cat([n_r * m, n_r * (v + m * m), n_r]))
        count = total[2 * C :]
        mean = total[:C] / count
        var = (total[C : 2 * C] / count - mean * mean).clamp_min(0)
        if bn.track_running_stats:
            _update_running(bn, mean.detach(), var.detach(), count.detach())
        shape = [1, C] + [1] * (x.dim() - 2)
        scale = torch.rsqrt(var + bn.eps).to(x.dtype)
        y = (x - mean.to(x.dtype).view(shape)) * scale.view(shape)
        if bn.affine:
            y = y * bn.weight.view(shape) + bn.bias.view(shape)
        return y


@torch.no_grad()
def _update_running(bn, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor):
    """BatchNorm's running averages, with the unbiased variance of the global batch (no host round trip)."""
    bn.num_batches_tracked.add_(1)
    momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    unbiased = var * count / (count - 1).clamp_min(1)
    bn.running_mean.mul_(1 - momentum).add_(mean.to(bn.running_mean.dtype) * momentum)
    bn.running_var.mul_(1 - momentum).add_(unbiased.to(bn.running_var.dtype) * momentum)


class GlobalBatchNorm2d(_GlobalStats, nn.BatchNorm2d):
    pass


class GlobalBatchNorm1d(_GlobalStats, nn.BatchNorm1d):
    pass


def global_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every BatchNorm1d/2d of ``module`` into its global-batch form, in place: same parameters, buffers
    and state_dict keys (a checkpoint loads into either form)."""
    swap: dict[type, type] = {nn.BatchNorm2d: GlobalBatchNorm2d, nn.BatchNorm1d: GlobalBatchNorm1d}
    for m in module.modules():
        if type(m) in swap:
            m.__class__ = swap[type(m)]
    return module


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` (on ``device``, BatchNorms global) in DDP. Buffers are not re-sent at every forward: every rank's
    running statistics are the global batch's already (they are equal at the start: the same seeded build)."""
    from torch.nn.parallel import DistributedDataParallel

    global_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids, forward_sync_buffers=False)


class ShardedBatches:
    """A batch sampler yielding this rank's slice (:func:`shard`) of each global batch of ``batches`` (a
    BatchSampler): every rank draws the same global batches from the same generator and loads only its slice."""

    def __init__(self, batches, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self):
        for b in self.batches:
            yield b[shard(len(b), self.rank, self.world)]

    def __len__(self) -> int:
        return len(self.batches)


def all_sum(values: list[float], device) -> list[float]:
    """Sum of a few numbers over the ranks (one all-reduce)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather(obj) -> list:
    """Every rank's ``obj`` (on rank 0 and the others alike)."""
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


# ---- launching the ranks ------------------------------------------------------------------------------------


def launch(fn: Callable[..., Any], ranks: int, num_gpus: int, args: tuple) -> Any:
    """Run ``fn(rank, ranks, *args)`` in ``ranks`` spawned processes joined in one process group; returns
    rank 0's return value. A NatrlError in a rank is raised here (rank 0's message first); an interrupt is
    KeyboardInterrupt here; a rank that dies otherwise stops the others and is reported in one line."""
    import socket

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    with socket.socket() as sock:  # a free port for rank 0's rendezvous store
        sock.bind(("127.0.0.1", 0))
        address = ("127.0.0.1", sock.getsockname()[1])
    procs = [
        ctx.Process(target=_rank_main, args=(fn, r, ranks, backend(num_gpus), address, args, queue))
        for r in range(ranks)
    ]
    for p in procs:
        p.start()
    try:
        first = _join(procs)
    except KeyboardInterrupt:
        _stop(procs, grace=30.0)
        raise
    finally:
        _stop(procs, grace=0.0)
    return _outcome(procs, first, queue)


def _join(procs: list) -> int | None:
    """Wait for every rank; when one stops with an error, give the others GRACE_S to stop too (a crash: none),
    then end them. Returns the rank that stopped first with an error, if one did."""
    waiting = list(procs)
    while waiting:
        multiprocessing.connection.wait([p.sentinel for p in waiting])
        done = [p for p in waiting if p.exitcode is not None]
        waiting = [p for p in waiting if p.exitcode is None]
        failed = [p for p in done if p.exitcode != 0]
        if failed:
            crash = any(p.exitcode not in (REFUSED, INTERRUPTED) for p in failed)
            _stop(waiting, grace=0.0 if crash else GRACE_S)  # after a crash the others would wait in a collective
            return procs.index(failed[0])
    return None


def _stop(procs: list, grace: float) -> None:
    for p in procs:
        p.join(grace)
    for p in procs:
        if p.exitcode is None:
            p.kill()
            p.join()


def _outcome(procs: list, first: int | None, queue) -> Any:
    results: dict[int, tuple[str, Any]] = {}
    while not queue.empty():
        rank, kind, value = queue.get()
        results.setdefault(rank, (kind, value))
    errors = sorted((r, v) for r, (k, v) in results.items() if k == "error")
    if errors:
        raise NatrlError(errors[0][1])
    if any(k == "interrupted" for k, _ in results.values()):
        raise KeyboardInterrupt
    if first is not None or 0 not in results:
        r = first if first is not None else 0
        code = procs[r].exitcode
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        raise NatrlError(
            f"rank {r} of {len(procs)} stopped ({how}; its message, if any, is above) and the other ranks "
            "were ended; a run with a checkpoint continues with --resume RUN_DIR"
        )
    return results[0][1]


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the launcher dies (kill -9 included); elsewhere nothing."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _rank_main(fn, rank: int, world: int, backend_name: str, address, args: tuple, queue) -> None:
    """A rank's process: join the group, run ``fn``, report its value or its error to the launcher."""
    _die_with_parent()
    os.environ.update(MASTER_ADDR=address[0], MASTER_PORT=str(address[1]))
    code = 0
    try:
        if backend_name == "nccl":
            torch.cuda.set_device(rank)
        else:  # CPU ranks share the machine's cores instead of each taking all of them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group(backend_name, rank=rank, world_size=world, timeout=TIMEOUT)
        queue.put((rank, "done", fn(rank, world, *args)))
    except NatrlError as e:
        queue.put((rank, "error", str(e)))
        code = REFUSED
    except KeyboardInterrupt:
        queue.put((rank, "interrupted", None))
        code = INTERRUPTED
    finally:
        if dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
    if code:
        raise SystemExit(code)
