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


def _assert_same_tree(a, b, **tol):
    """Equal nested dicts/lists of tensors and numbers (optimizer states, state dicts)."""
    if isinstance(a, dict):
        assert sorted(a, key=str) == sorted(b, key=str)
        for k in a:
            _assert_same_tree(a[k], b[k], **tol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_tree(x, y, **tol)
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, **tol)
    else:
        assert a == b


@pytest.mark.slow
def test_two_shards_train_exactly_what_one_process_trains(ray_session):
    """N=2 CPU shards vs one SupernetTrainer on the same global batches: same weights, same SGD state (momentum
    buffers exist for the same parameters: ops that never ran stay untouched), BatchNorm over the global batch,
    same steps per epoch and LR, including an uneven last batch (51 images in batches of 16: 16, 16, 16, 3).
    In float64, so that the comparison is exact up to rounding (float32 rounding differences between a sum over
    one batch and two summed halves grow to ~1e-4 after 8 steps; the float64 run differs by ~1e-15)."""
    from natrl.nets.supernet import SupernetPreset
    from natrl.rewards.shards import SupernetShards
    from natrl.rewards.supernet import SupernetTrainer
    from natrl.spaces import make_space

    space, data = make_space("darts"), _tiny_data()
    kwargs = {"preset": SupernetPreset(C=4, layers=3), "batch_size": 16, "seed": 0, "epochs": 4, "dtype": torch.float64}
    rng = np.random.default_rng(0)
    betas = [space.sample_input(rng) for _ in range(8)]
    one = SupernetTrainer(space.ops, data, **kwargs)
    initial = {k: v.clone() for k, v in one.net.state_dict().items()}
    shards = SupernetShards(space.ops, ray.put(data), num_shards=2, trainer_kwargs=kwargs)
    assert shards.backend == "gloo" and shards.steps_per_epoch == one.steps_per_epoch == 4
    assert [d["device"] for d in shards.devices] == ["cpu", "cpu"] and len({d["ip"] for d in shards.devices}) == 1
    for epoch in range(2):
        ref = one.train_epoch(betas[4 * epoch : 4 * epoch + 4])
        got = shards.train_epoch(iter(betas[4 * epoch : 4 * epoch + 4]).__next__)
        assert got["images"] == ref["images"] == 51 and got["lr"] == ref["lr"]
        assert abs(got["loss"] - ref["loss"]) < 1e-9
    tol = {"rtol": 1e-9, "atol": 1e-12}
    w0, w1 = ray.get([s.weights.remote() for s in shards.shards])
    _assert_same_tree(w0, w1, rtol=0, atol=0)  # replicas bit-identical
    _assert_same_tree(w0, dict(one.net.state_dict()), **tol)
    opt0, opt1 = ray.get([s.optimizer_state.remote() for s in shards.shards])
    _assert_same_tree(opt0, opt1, rtol=0, atol=0)
    _assert_same_tree(opt0, one.optimizer.state_dict(), **tol)
    untouched = [k for k in initial if torch.equal(initial[k], w0[k])]
    assert len(untouched) > len(initial) // 2  # most ops of the banks never ran: not moved by momentum/decay
    assert len(opt0["state"]) < len(list(one.net.parameters()))
    shards.shutdown()


@pytest.mark.slow
def test_allreduce_keeps_grad_none_where_no_rank_has_one(ray_session):
    """A parameter with a gradient on one rank only is summed with zeros; one with none anywhere stays None."""

    class PresenceWorker:  # defined here: pickled by value for the actors
        def __init__(self):
            from natrl.rewards.shards import DataParallelWorker

            self.group = DataParallelWorker()

        def setup_group(self, rank, world, address, backend):
            return self.group.setup_group(rank, world, address, backend)

        def shutdown_group(self):
            self.group.shutdown_group()

        def reduce(self, rank):
            from natrl.rewards.shards import allreduce_gradients

            net = torch.nn.ParameterDict(
                {k: torch.nn.Parameter(torch.zeros(1)) for k in ("only_rank0", "both", "none")}
            )
            if rank == 0:
                net["only_rank0"].grad = torch.tensor([2.0])
            net["both"].grad = torch.tensor([1.0 + rank])
            allreduce_gradients(net, 2, average=False)
            return {k: None if p.grad is None else p.grad.tolist() for k, p in net.items()}

    Worker = ray.remote(num_cpus=1)(PresenceWorker)
    shards = [Worker.remote() for _ in range(2)]
    address = f"127.0.0.1:{free_port()}"
    ray.get([s.setup_group.remote(r, 2, address, "gloo") for r, s in enumerate(shards)])
    a, b = ray.get([s.reduce.remote(r) for r, s in enumerate(shards)])
    assert a == b == {"only_rank0": [2.0], "both": [3.0], "none": None}
    ray.get([s.shutdown_group.remote() for s in shards])
    for s in shards:
        ray.kill(s)


def test_backend_batch_split_and_opt_in_batch_rules():
    from types import SimpleNamespace

    from natrl.rewards.shards import choose_backend, scaled_trainer_kwargs
    from natrl.rewards.supernet import SupernetTrainer

    def ranks(*gpus, nccl=True):
        return [{"node": node, "gpu": gpu, "nccl": nccl} for node, gpu in gpus]

    assert choose_backend(ranks(("a", "0"), ("a", "1"), ("b", "0"))) == "nccl"  # every rank its own GPU
    assert choose_backend(ranks(("a", "0"), ("a", "0"))) == "gloo"  # two ranks on one GPU
    assert choose_backend(ranks(("a", "0"), ("a", None))) == "gloo"  # a CPU rank
    assert choose_backend(ranks(("a", None), ("b", None))) == "gloo"
    assert choose_backend(ranks(("a", "0"), ("b", "0"), nccl=False)) == "gloo"  # torch without NCCL
    slices = [SupernetTrainer.local_slice(SimpleNamespace(rank=r, world=3), 16) for r in range(3)]  # type: ignore
    assert [(s.start, s.stop) for s in slices] == [(0, 6), (6, 11), (11, 16)]
    assert SupernetTrainer.local_slice(SimpleNamespace(rank=1, world=2), 1) == slice(1, 1)  # an empty part
    kw = scaled_trainer_kwargs({"batch_size": 32, "seed": 1}, 4)
    assert kw == {"batch_size": 128, "lr": 0.04, "lr_min": 0.004, "seed": 1}
