"""One Ray start-up for every run kind: join an existing cluster when one is named, else start a local one."""

from __future__ import annotations

import importlib
import os
import socket
import threading
from typing import Any

from natrl.errors import NatrlError

# Imported while a local Ray starts: every run needs torch, and its first optimizer imports torch._dynamo
# (torch.optim's own decorators; ~2 s of CPU). ray.init mostly waits for Ray's processes to come up.
PRELOAD = ("torch", "torch._dynamo")


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
        probe_address(address)
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
    # address="local": a new instance even when a `ray start` cluster runs on this machine (ray.init would
    # otherwise join it and refuse num_cpus)
    loader = threading.Thread(target=_preload, args=(PRELOAD,), name="natrl-preload", daemon=True)
    loader.start()
    try:
        ray.init(
            address="local",
            num_cpus=max(min_cpus, os.cpu_count() or 1),
            object_store_memory=256 * 1024**2,
            # no idle workers started ahead of the first task: they would import Ray next to the driver's own
            # start-up, and a run's actors and tasks start their workers when they are created anyway
            _system_config={"prestart_worker_first_driver": False},
            **common,
        )
    finally:
        loader.join()


def _preload(modules: tuple[str, ...]):
    """Import ``modules`` (in a thread, next to ray.init); an import that fails fails again, with its message,
    where the run imports it."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # reported by the run's own import of it
            return


def gcs_host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address (``host:port`` or ``ray://host:port``); None for "auto" / "local", which Ray
    resolves from this machine's own session files."""
    text = address.strip()
    if text.lower() in ("auto", "local"):
        return None
    text = text.split("://", 1)[1] if "://" in text else text
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii() or not 0 < int(port) < 65536:
        raise NatrlError(f"--address {address!r} is not a Ray address (HOST:PORT, ray://HOST:PORT or auto)")
    return host.strip("[]") or "127.0.0.1", int(port)


def probe_address(address: str, timeout_s: float = 3.0):
    """Fail in seconds, with one line, when nothing listens at the cluster's address: ray.init would otherwise
    retry for minutes before giving up."""
    target = gcs_host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as e:
        reason = e.strerror or e.__class__.__name__
        raise NatrlError(
            f"cannot reach the Ray cluster at {address} ({reason}); check --address / RAY_ADDRESS "
            "(the head's HOST:PORT from `ray start --head`), or unset it to run locally"
        ) from None


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
