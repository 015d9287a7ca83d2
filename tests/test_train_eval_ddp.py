"""train_eval --ranks N: data-parallel training (DDP, gloo on CPU) keeps the one-process recipe, and a stopped
2-rank run resumes exactly. Tiny data the tests make; a 1-cell NB201 network with BatchNorm."""

import csv
import json

import pytest
import torch

from natrl import ddp
from natrl.errors import NatrlError
from natrl.runs import train_eval as lib

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    from test_datasets import make_image_folder

    root = tmp_path_factory.mktemp("data") / "cifar"
    make_image_folder(root, n=10)
    return root


def _cfg(data, out, **kw):
    # 15 images in global batches of 6: 6, 6, 3, so the last batch splits 2 / 1 over two ranks (uneven slices)
    base = dict(arch=NB201, data=str(data), preset="tiny", epochs=2, train_subset=15, batch_size=6, layers=1)
    return lib.EvalConfig(**{**base, "channels": 4, "seed": 5, "out": str(out), **kw})


def _rows(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path / "progress.csv"))]


def _weights(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)["model"]


def _resume_then_reference(rank, world, resume, reference):
    """Ranks of one launch: resume the stopped run (the first thing these fresh processes do), then train the
    uninterrupted reference run (a launch saved: each takes seconds of imports on 2 cores)."""
    lib.train_rank(rank, world, lib.settle_config(resume), None)
    return lib.train_rank(rank, world, lib.settle_config(reference), None)


@pytest.mark.slow
def test_two_ranks_match_one_process_and_a_stopped_run_resumes_exactly(tmp_path, cifar):
    stopped, two = tmp_path / "stopped", tmp_path / "two"
    with pytest.raises(KeyboardInterrupt):  # stopped right after epoch 1's checkpoint, as by a kill
        lib.train(_cfg(cifar, stopped, ranks=2), stop_after=1)
    assert not (stopped / "results.json").exists() and len(_rows(stopped)) == 1
    ckpt = torch.load(stopped / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and len(ckpt["rank_rng"]) == 2
    assert not torch.equal(ckpt["rank_rng"][0], ckpt["rank_rng"][1])  # each rank's own stream, both saved
    resume = lib.EvalConfig(resume=str(stopped))
    ddp.launch(_resume_then_reference, 2, 0, (resume, _cfg(cifar, two, ranks=2)))

    # resumed: identical to the uninterrupted 2-rank run
    assert _rows(stopped) == _rows(two) and len(_rows(two)) == 2
    b, c = _weights(two), _weights(stopped)
    assert all(torch.equal(b[k], c[k]) for k in b)
    res = json.loads((stopped / "results.json").read_text())
    assert res["test_acc"] == json.loads((two / "results.json").read_text())["test_acc"] and res["ranks"] == 2
    assert "(resumed)" in (stopped / "log.txt").read_text()

    # the same global batches, the same steps: one process's weights, up to float rounding (BatchNorm on the
    # global batch, its running statistics included)
    a = _weights(lib.train(_cfg(cifar, tmp_path / "one")))
    assert a.keys() == b.keys() and any("running_var" in k for k in a)
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), rtol=1e-4, atol=1e-5), k
    rows_one = _rows(tmp_path / "one")
    assert [r["lr"] for r in rows_one] == [r["lr"] for r in _rows(two)]
    for r1, r2 in zip(rows_one, _rows(two)):
        assert abs(float(r1["train_loss"]) - float(r2["train_loss"])) < 2e-3


def test_slices_cover_every_global_batch():
    for n in range(1, 12):
        for world in (1, 2, 3, 5):
            parts = [torch.arange(n)[ddp.shard(n, r, world)] for r in range(world)]
            expected = torch.tensor_split(torch.arange(n), world)
            assert all(torch.equal(p, e) for p, e in zip(parts, expected))


def test_global_batchnorm_keeps_the_state_dict_and_is_batchnorm_outside_a_group():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    x = torch.randn(4, 3, 6, 6)
    net(x)
    keys, before = list(net.state_dict()), net(x)
    ddp.global_batchnorm(net)
    assert isinstance(net[1], ddp.GlobalBatchNorm2d) and list(net.state_dict()) == keys
    torch.testing.assert_close(net(x), before)  # no process group: plain BatchNorm


@pytest.mark.parametrize(
    "kw,message",
    [
        (dict(ranks=3, num_gpus=2), "every rank trains on a GPU of its own"),
        (dict(ranks=2, num_gpus=2), "--num-gpus 2 but no CUDA devices are visible"),
        (dict(ranks=4, batch_size=3), "every rank needs at least one image of each global batch"),
    ],
)
def test_bad_ranks_are_refused_before_anything_is_written(tmp_path, cifar, kw, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    with pytest.raises(NatrlError, match=message):
        lib.train(_cfg(cifar, tmp_path / "run", **kw))
    assert not (tmp_path / "run").exists()


def test_ranks_default_to_the_gpus():
    from natrl.config import parse_config

    assert parse_config(lib.EvalConfig, ["--data", "D"])[0].ranks == 1
    assert parse_config(lib.EvalConfig, ["--data", "D", "--num-gpus", "4"])[0].ranks == 4
    assert parse_config(lib.EvalConfig, ["--data", "D", "--ranks", "2"])[0].ranks == 2


def test_a_used_out_is_refused_before_the_ranks_start(tmp_path, cifar, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    monkeypatch.setattr(ddp, "launch", lambda *a: pytest.fail("the ranks were started"))
    with pytest.raises(NatrlError, match="already exists and is not empty"):
        lib.train(_cfg(cifar, out, ranks=2))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_imagenet_ranks_load_only_their_slice_of_the_same_global_batches():
    """ImageNetData's sampler (torchvision is optional: the sampler alone): the ranks' slices, joined, are the
    batches one process draws from the same seeded generator."""

    def batches(rank, world):
        g = torch.Generator().manual_seed(7)
        inner = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(range(11), generator=g), 4, False)
        return list(ddp.ShardedBatches(inner, rank, world) if world > 1 else inner)

    one = batches(0, 1)
    parts = [batches(r, 3) for r in range(3)]
    assert len(one) == 3 and all(len(p) == 3 for p in parts)
    assert [sum((p[i] for p in parts), []) for i in range(3)] == one


class _Ended:
    def __init__(self, exitcode):
        self.exitcode = exitcode


class _Reports:
    def __init__(self, *items):
        self.items = list(items)

    def empty(self):
        return not self.items

    def get(self):
        return self.items.pop(0)


def test_the_launcher_reports_what_the_ranks_reported():
    ok = [_Ended(0), _Ended(0)]
    assert ddp._outcome(ok, None, _Reports((1, "done", None), (0, "done", "runs/x"))) == "runs/x"
    refused = [_Ended(2), _Ended(2)]
    with pytest.raises(NatrlError, match="^rank 0's words$"):  # every rank raised: rank 0's message
        ddp._outcome(refused, 1, _Reports((1, "error", "rank 1's words"), (0, "error", "rank 0's words")))
    with pytest.raises(KeyboardInterrupt):
        ddp._outcome([_Ended(130), _Ended(130)], 0, _Reports((0, "interrupted", None), (1, "interrupted", None)))
    with pytest.raises(NatrlError, match=r"rank 1 of 2 stopped \(signal 9; .* --resume RUN_DIR"):
        ddp._outcome([_Ended(-15), _Ended(-9)], 1, _Reports())  # rank 1 died first; rank 0 was ended after it
