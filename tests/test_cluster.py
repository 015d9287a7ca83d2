"""Shards on real Ray clusters started on this machine: two nodes (ray.cluster_utils.Cluster) whose shards train
together through one gloo group, and a `ray start --head` cluster that a supernet run joins through RAY_ADDRESS.
Each cluster runs in its own processes and temp dir and is stopped by its own process ids: other Ray sessions on
the machine are left alone."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT

from natrl.cluster import gcs_host_port, probe_address
from natrl.errors import NatrlError
from natrl.rewards.shards import free_port


def test_unreachable_address_fails_in_seconds_with_one_line():
    port = free_port()
    start = time.time()
    with pytest.raises(NatrlError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        probe_address(f"127.0.0.1:{port}")
    assert time.time() - start < 2
    assert gcs_host_port("ray://10.0.0.5:10001") == ("10.0.0.5", 10001)
    assert gcs_host_port("auto") is None
    for bad in ("nohost", "h:port", "h:99999", "h:１２"):
        with pytest.raises(NatrlError, match="is not a Ray address"):
            gcs_host_port(bad)


def test_unreachable_address_from_the_command_line(script):
    r = script("experiments/sweep.py", "--address", f"127.0.0.1:{free_port()}", "--out", "/nonexistent/s")
    assert r.returncode == 2 and "cannot reach the Ray cluster" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def two_node_main():
    """In its own process (the test session may hold another Ray): a 2-node cluster, one CPU per node."""
    import numpy as np
    import ray
    import torch
    from ray.cluster_utils import Cluster
    from test_shards import _tiny_data

    from natrl.nets.supernet import SupernetPreset
    from natrl.rewards.shards import SupernetShards
    from natrl.spaces import make_space

    node = {"num_cpus": 1, "object_store_memory": 80 * 1024**2}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        space = make_space("darts")
        kwargs = {"preset": SupernetPreset(C=4, layers=3), "batch_size": 16, "seed": 0}
        shards = SupernetShards(space.ops, ray.put(_tiny_data()), 2, trainer_kwargs=kwargs, placement="STRICT_SPREAD")
        rng = np.random.default_rng(0)
        stats = shards.train_epoch(lambda: space.sample_input(rng), max_steps=2)
        w0, w1 = ray.get([s.weights.remote() for s in shards.shards])
        same = all(torch.equal(w0[k], w1[k]) for k in w0)
        scores = shards.score([space.sample_input(rng) for _ in range(4)]).tolist()
        print(
            json.dumps(
                {
                    "nodes": [d["node"] for d in shards.devices],
                    "backend": shards.backend,
                    "images": stats["images"],
                    "identical": same,
                    "scores": scores,
                }
            )
        )
        shards.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_two_shards_on_two_nodes_train_together():
    r = subprocess.run([sys.executable, __file__, "two-node"], capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(set(out["nodes"])) == 2  # one shard per node
    assert out["backend"] == "gloo" and out["identical"] and out["images"] == 32 and len(out["scores"]) == 4


def _pids_using(temp_dir: str) -> list[int]:
    """Process ids whose command line names ``temp_dir``, and their descendants (Ray workers rename their
    command line to ray::...), read from /proc."""
    parents, ours = {}, set()
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if temp_dir.encode() in (proc / "cmdline").read_bytes():
                ours.add(int(proc.name))
        except (OSError, IndexError, ValueError):  # the process ended while we looked
            pass
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours |= more
        grew = bool(more)
    return sorted(ours)


def _stop_cluster(temp_dir: str):
    """End the processes of the cluster that uses ``temp_dir`` (and only those), by process id."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_using(temp_dir):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 15
        while _pids_using(temp_dir) and time.time() < deadline:
            time.sleep(0.5)


TINY_SUPERNET_RUN = (
    "--space darts --reward supernet --epochs 1 --supernet-steps 1 --supernet-batch 8 --iters 1 --m 2 --n 1 "
    "--eval-inputs 1 --best-of 1 --cpu-shards 2"
).split()


def _ray_start_head(port: int, temp_dir: str, env: dict):
    """`ray start --head` of a private cluster: its own port, temp dir (short: Ray's socket paths live under
    it) and auth setting."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    flags = [
        f"--port={port}",
        "--num-cpus=3",
        f"--temp-dir={temp_dir}",
        "--include-dashboard=false",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]
    subprocess.run([ray_bin, "start", "--head", *flags], check=True, capture_output=True, timeout=120, env=env)


@pytest.mark.slow
def test_supernet_run_joins_a_ray_start_cluster_through_ray_address(tmp_path):
    from test_datasets import make_image_folder

    make_image_folder(tmp_path / "cifar", n=10)
    temp_dir, port = tempfile.mkdtemp(prefix="natrl-rs-", dir="/tmp"), free_port()
    # this cluster's own auth setting: ~/.ray/auth_token is shared with other Ray users of the machine
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    try:
        _ray_start_head(port, temp_dir, env)
        args = [*TINY_SUPERNET_RUN, "--data", str(tmp_path / "cifar"), "--out", str(tmp_path / "run")]
        env["RAY_ADDRESS"] = f"127.0.0.1:{port}"
        script = str(ROOT / "experiments" / "train_natpp.py")
        r = subprocess.run(
            [sys.executable, script, *args], capture_output=True, text=True, timeout=400, env=env, cwd=ROOT
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert "2 supernet shard(s)" in r.stdout and (tmp_path / "run" / "results.json").exists()
        drivers = list(Path(temp_dir).glob("session_*/logs/python-core-driver-*"))
        assert drivers, "no driver joined the started cluster"
    finally:
        _stop_cluster(temp_dir)


if __name__ == "__main__" and sys.argv[1:] == ["two-node"]:
    sys.path.insert(0, str(Path(__file__).parent))
    two_node_main()
