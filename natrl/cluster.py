"""One Ray start-up for every run kind: join an existing cluster when one is named, else start a local one."""

from __future__ import annotations

import os
from typing import Any

from natrl.errors import NatrlError


def start_ray(address: str | None = None, min_cpus: int = 2, num_gpus: int = 0):
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``) without passing local resources, or start a local
    Ray sized for this machine. A run in a Ray worker (a Tune trial) uses the running session as it is.
    ``num_gpus`` is checked against the cluster (locally: before Ray starts)."""
    import ray

    from natrl.rundir import quiet_ray_logs

    quiet_ray_logs()
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if not address and num_gpus:
        import torch

        if torch.cuda.device_count() < num_gpus:
            raise NatrlError(
                f"--num-gpus {num_gpus} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s); use --num-gpus 0 to run on CPU or join a cluster with GPUs (--address)"
            )
    common: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as e:
            msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else e.__class__.__name__
            raise NatrlError(
                f"cannot join the Ray cluster at {address} ({msg}); check --address / RAY_ADDRESS, "
                "or unset it to run locally"
            ) from None
        return
    # GPUs are detected by Ray itself: --num-gpus is then checked against what it found (check_gpus)
    ray.init(num_cpus=max(min_cpus, os.cpu_count() or 1), object_store_memory=256 * 1024**2, **common)


def cluster_gpus() -> int:
    """GPUs the Ray cluster offers (all nodes)."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def check_gpus(num_gpus: int):
    """``--num-gpus`` against the cluster (call after :func:`start_ray`)."""
    have = cluster_gpus()
    if num_gpus > have:
        raise NatrlError(
            f"--num-gpus {num_gpus} but the Ray cluster has {have} GPU(s); "
            "use --num-gpus 0 to run on CPU or join a cluster with GPUs (--address)"
        )
