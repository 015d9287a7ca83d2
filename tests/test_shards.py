"""Data-parallel shards as real Ray actors with a real torch.distributed (gloo) process group on CPU."""

import numpy as np
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
        ray.get([s.step.remote(x[r * 8 : (r + 1) * 8], y[r * 8 : (r + 1) * 8]) for r, s in enumerate(shards)])
        reference.step(x, y)
        w0, w1 = ray.get([s.weights.remote() for s in shards])
        for k in w0:
            torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)  # replicas identical after every step
            torch.testing.assert_close(w0[k], reference.weights()[k], rtol=1e-5, atol=1e-6)
    ray.get([s.shutdown_group.remote() for s in shards])
    for s in shards:
        ray.kill(s)


def _tiny_data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.integers(0, 60, (n, 32, 32, 3)) + (y * 19)[:, None, None, None]).astype(np.uint8)
    return {"train_x": x, "train_y": y, "test_x": x[:8], "test_y": y[:8]}


def test_two_supernet_shards_stay_identical_and_score_like_one(ray_session):
    from natrl.nets.supernet import SupernetPreset
    from natrl.rewards.shards import SupernetShards
    from natrl.spaces import make_space

    space = make_space("darts")
    kwargs = {"preset": SupernetPreset(C=4, layers=3), "batch_size": 16, "seed": 0}
    shards = SupernetShards(space.ops, ray.put(_tiny_data()), num_shards=2, trainer_kwargs=kwargs)
    rng = np.random.default_rng(0)
    stats = shards.train_epoch(lambda: space.sample_input(rng), max_steps=2)
    assert stats["epoch"] == 1
    w0, w1 = ray.get([s.weights.remote() for s in shards.shards])
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)
    genotypes = [space.sample_input(rng) for _ in range(4)]
    spread = shards.score(genotypes)  # 2 on each shard, all on reward batch 0
    both = [ray.get(s.score.remote(genotypes, 0)) for s in shards.shards]
    np.testing.assert_array_equal(spread, both[0])
    np.testing.assert_array_equal(both[0], both[1])
    shards.shutdown()
