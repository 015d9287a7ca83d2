"""Data-parallel shards as real Ray actors with a real torch.distributed (gloo) process group on CPU."""
import numpy as np
import pytest
import ray
import torch

from natrl.rewards.shards import LinearWorker, free_port


def test_allreduced_update_equals_one_process_on_the_union(ray_session):
    Worker = ray.remote(num_cpus=1)(LinearWorker)
    shards = [Worker.remote(seed=r) for r in range(2)]  # different seeds: broadcast must align them
    address = f"127.0.0.1:{free_port()}"
    ray.get([s.setup_group.remote(r, 2, address, "gloo") for r, s in enumerate(shards)])
    ray.get([s.sync_initial_weights.remote() for s in shards])
    reference = LinearWorker(seed=0)  # rank 0's initial weights
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = torch.as_tensor(rng.normal(size=(16, 4)), dtype=torch.float32)
        y = torch.as_tensor(rng.normal(size=(16, 2)), dtype=torch.float32)
        ray.get([s.step.remote(x[r * 8:(r + 1) * 8], y[r * 8:(r + 1) * 8]) for r, s in enumerate(shards)])
        reference.step(x, y)
        w0, w1 = ray.get([s.weights.remote() for s in shards])
        for k in w0:
            torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)  # replicas identical after every step
            torch.testing.assert_close(w0[k], reference.weights()[k], rtol=1e-5, atol=1e-6)
    ray.get([s.shutdown_group.remote() for s in shards])
    for s in shards:
        ray.kill(s)
