"""REINFORCE on RLlib end to end: a learning test whose direction fails if the gradient sign is wrong, the
training CLI with a small --iters, and derive. All in-process tests share one Ray session."""

import csv
import json

import numpy as np
import pytest
import torch

from natrl import cli
from natrl.cells import from_arch_str
from natrl.runs import derive as derive_lib
from natrl.runs import transformer as train_natpp
from natrl.spaces import make_space


def train_main(argv):
    """experiments/train_natpp.py in-process."""
    return cli.main(train_natpp.TrainConfig, train_natpp.train, None, argv)


def derive_main(argv):
    return cli.main(derive_lib.DeriveConfig, derive_lib.derive, None, argv)


class SkipCounter:
    """Toy reward backend: 'accuracy' = number of skip_connect edges, so R = #skip(alpha) - #skip(beta)."""

    space = "nb201"

    def score(self, genotypes):
        return np.array([float(g.normal.ops.count("skip_connect")) for g in genotypes])


def skip_probability(module, space):
    from natrl.spaces import NB201_CELLS

    betas = NB201_CELLS[::13]
    obs = {k: torch.as_tensor(v) for k, v in space.observe_batch(betas).items()}
    with torch.no_grad():
        probs = module.distribution(obs).probs()
    return float(probs[..., space.ops.index("skip_connect")].mean())


@pytest.mark.parametrize("baseline", ["ema", "input"])
def test_reinforce_learns_toy_reward(ray_session, baseline):
    cfg = train_natpp.TrainConfig(m=16, n=2, lr=1e-2, lam=1e-3, hidden=16, baseline=baseline, seed=0)
    algo = train_natpp.build_algo(cfg, backend=SkipCounter())
    space = make_space("nb201")
    before = skip_probability(algo.get_module(), space)
    for _ in range(5):
        algo.train_updates(5)
        assert [s["batch_size"] for s in algo.update_stats] == [32] * 5  # m * n one-step episodes, no phantom
        algo.update_stats.clear()
    after = skip_probability(algo.get_module(), space)
    algo.stop()
    assert before < 0.5 and after > 0.85, (before, after)


def test_same_inputs_are_not_reused_across_updates(ray_session):
    cfg = train_natpp.TrainConfig(m=8, n=2, seed=0)
    algo = train_natpp.build_algo(cfg)
    batches = []
    for _ in range(3):
        eps = algo.env_runner.sample(num_timesteps=16, random_actions=False)
        batches.append({tuple(e.get_observations(0)["op"]) for e in eps})
    algo.stop()
    assert all(len(b) == 8 for b in batches)  # m inputs, each sampled n times
    assert not batches[0] & batches[1] and not batches[1] & batches[2]


@pytest.fixture(scope="module")
def trained_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train_main(["--iters", "3", "--m", "4", "--n", "2", "--seed", "1", "--out", str(out)])
    return out


def test_cli_end_to_end(trained_run):
    files = {p.name for p in trained_run.iterdir()}
    assert {
        "config.json",
        "progress.csv",
        "curve.png",
        "policy.pt",
        "checkpoint",
        "results.json",
        "results.md",
        "derived.json",
    } <= files
    config = json.loads((trained_run / "config.json").read_text())
    assert config["config"]["seed"] == 1 and config["versions"]["ray"] == "2.60.0" and "git_commit" in config
    rows = list(csv.DictReader(open(trained_run / "progress.csv")))
    assert [int(r["iter"]) for r in rows] == [1, 2, 3] and rows[-1]["episodes"] == "24"
    results = json.loads((trained_run / "results.json").read_text())
    assert results["num_inputs"] == 3125
    rows = results["rows"]
    assert rows["keep-all"]["reward"]["mean"] == 0.0
    assert rows["per-input optimum"]["reward"]["mean"] >= max(r["reward"]["mean"] for r in rows.values()) - 1e-9
    assert rows["random valid"]["reward"]["mean"] < 0 < rows["best fixed per-op rule"]["reward"]["mean"]
    derived = json.loads((trained_run / "derived.json").read_text())
    assert len(derived) == 3125 and from_arch_str(derived[0]["policy (argmax)"]["arch_str"])
    assert "| policy (1 sample) |" in (trained_run / "results.md").read_text()


def test_random_policy_matches_exact_random_baseline(ray_session, tmp_path):
    out = tmp_path / "random"
    train_main(["--policy", "random", "--iters", "5", "--out", str(out)])
    rows = json.loads((out / "results.json").read_text())["rows"]
    # uniform over valid transitions: its 1-sample gain estimates the exact expectation (std 17 / sqrt(3125))
    assert rows["policy (1 sample)"]["reward"]["mean"] == pytest.approx(rows["random valid"]["reward"]["mean"], abs=1.5)


def test_cli_refuses_to_overwrite_a_run(trained_run, script):
    before = (trained_run / "results.json").read_text()
    r = script("experiments/train_natpp.py", "--iters", "1", "--out", trained_run)
    assert r.returncode == 2 and "already exists and is not empty" in r.stderr and "Traceback" not in r.stderr
    assert (trained_run / "results.json").read_text() == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["--m", "0"], "--m must be >= 1"),
        (["--policy", "cnn"], "invalid choice: 'cnn'"),
        (["--lam", "x"], "'x' is not a number"),
        (["--lam", "nan"], "--lam nan is not a finite number"),
        (["--iters", "1e12"], "--iters must be <= 1e+08"),
        (["--table", "/nonexistent/t.anb"], "does not exist"),
        (["--num-gpus", "64"], "this machine has 0 CUDA device(s)"),
    ],
)
def test_cli_bad_flags_one_line(script, tmp_path, args, message):
    r = script("experiments/train_natpp.py", *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_derive_end_to_end(trained_run, tmp_path):
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    records = derive_main([str(trained_run), cell, "--mode", "best", "--out", str(tmp_path / "d.json")])
    assert json.loads((tmp_path / "d.json").read_text()) == records
    rec = records[0]
    space = derive_lib.load_policy(trained_run)[1]
    beta = space.encode_genotype(from_arch_str(cell))
    alpha = space.encode_genotype(from_arch_str(rec["output"]["arch_str"]))
    assert space.mask[beta, alpha].all()
    # best-of-k keeps the argmax as a candidate, so it is never worse than argmax on the table
    argmax = derive_main([str(trained_run), cell, "--mode", "argmax"])[0]
    assert rec["acc_after"] >= argmax["acc_after"]
    assert rec["costs"]["cifar10"]["madds_M"][0] == pytest.approx(argmax["costs"]["cifar10"]["madds_M"][0])


def test_derive_bad_inputs(script, tmp_path):
    (tmp_path / "policy.pt").write_bytes(b"not a checkpoint")
    r = script("experiments/derive.py", tmp_path, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert r.returncode == 2 and "cannot read checkpoint" in r.stderr and "Traceback" not in r.stderr
    r = script("experiments/derive.py", tmp_path / "nope", "DARTS_V2")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_supernet_algorithm1_end_to_end(ray_session, tmp_path):
    """--space darts --reward supernet on a tiny image folder: shard actors, Algorithm 1, Table-4 evaluation."""
    from test_datasets import make_image_folder

    make_image_folder(tmp_path / "cifar", n=20)
    out = tmp_path / "darts"
    train_main(
        [
            "--space",
            "darts",
            "--reward",
            "supernet",
            "--data",
            str(tmp_path / "cifar"),
            "--epochs",
            "2",
            "--supernet-steps",
            "1",
            "--supernet-batch",
            "8",
            "--iters",
            "1",
            "--m",
            "2",
            "--n",
            "1",
            "--eval-inputs",
            "2",
            "--best-of",
            "2",
            "--out",
            str(out),
        ]
    )
    rows = list(csv.DictReader(open(out / "progress.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    results = json.loads((out / "results.json").read_text())
    assert results["num_inputs"] == 2 and 0 <= results["accuracy_derived"]["mean"] <= 100
    records = json.loads((out / "derived.json").read_text())
    from natrl.cells import genotype_from_dict

    space = make_space("darts")
    for rec in records:
        beta, alpha = genotype_from_dict(rec["input"]), genotype_from_dict(rec["derived"])
        assert space.mask[space.encode(beta)["op"], space.encode(alpha)["op"]].all()  # a valid transformation
    assert "derived (best of 2)" in (out / "results.md").read_text()
    assert (out / "policy.pt").exists() and (out / "checkpoint").is_dir()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--space", "darts"], "the darts space needs --reward supernet"),
        (["--space", "darts", "--reward", "supernet"], "needs CIFAR-10: --data"),
        (["--space", "darts", "--reward", "supernet", "--data", "/nonexistent"], "no CIFAR-10 data at /nonexistent"),
    ],
)
def test_supernet_cli_errors(script, tmp_path, args, message):
    r = script("experiments/train_natpp.py", *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()  # nothing is created for a run that cannot start


def _supernet_args(data_dir, out, epochs=2, nodes=4):
    return [
        "--space",
        "darts",
        "--reward",
        "supernet",
        "--data",
        str(data_dir),
        "--epochs",
        str(epochs),
        "--intermediate-nodes",
        str(nodes),
        "--supernet-steps",
        "1",
        "--supernet-batch",
        "8",
        "--iters",
        "2",
        "--m",
        "2",
        "--n",
        "2",
        "--eval-inputs",
        "2",
        "--best-of",
        "2",
        "--seed",
        "5",
        "--out",
        str(out),
    ]


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(ray_session, tmp_path, monkeypatch):
    from test_datasets import make_image_folder

    make_image_folder(tmp_path / "cifar", n=20)
    full, killed = tmp_path / "full", tmp_path / "killed"
    train_main(_supernet_args(tmp_path / "cifar", full))

    original = train_natpp.TransformerRun.checkpoint

    def save_then_die(self):
        original(self)
        if self.done_epochs == 1:
            raise RuntimeError("killed")  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(train_natpp.TransformerRun, "checkpoint", save_then_die)
    with pytest.raises(RuntimeError):
        train_main(_supernet_args(tmp_path / "cifar", killed))
    assert (killed / "checkpoint.pt").exists() and not (killed / "results.json").exists()
    monkeypatch.setattr(train_natpp.TransformerRun, "checkpoint", original)
    train_main(["--resume", str(killed)])

    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(csv.DictReader(open(killed / "progress.csv"))) == strip(csv.DictReader(open(full / "progress.csv")))
    a = torch.load(full / "policy.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "policy.pt", weights_only=True)["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, killed))
    for k in ("accuracy_input", "accuracy_derived", "madds_M_derived"):
        assert ra[k] == rb[k]


def test_resume_errors(script, tmp_path):
    r = script("experiments/train_natpp.py", "--resume", tmp_path / "nope")
    assert r.returncode == 2 and "is not a run directory" in r.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"config": {"seed": 0}}))
    r = script("experiments/train_natpp.py", "--resume", tmp_path / "run")
    assert r.returncode == 2 and "not a transformer run" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "run" / "config.json").write_text(json.dumps({"kind": "transformer", "config": {"seed": 0}}))
    r = script("experiments/train_natpp.py", "--resume", tmp_path / "run")
    assert r.returncode == 2 and "has no checkpoint.pt to resume" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"truncated")
    r = script("experiments/train_natpp.py", "--resume", tmp_path / "run")
    assert r.returncode == 2 and "cannot read checkpoint" in r.stderr


@pytest.mark.parametrize("sampler", ["batched", "env_runners"])
def test_nb201_kill_then_resume_is_identical(ray_session, tmp_path, monkeypatch, sampler):
    """A tabular run killed between checkpoints (the policy updates after the last one are lost, as with
    kill -9) and resumed ends exactly where the uninterrupted run ends: progress, policy weights, results."""
    args = ["--iters", "12", "--checkpoint-every", "4", "--m", "4", "--n", "2", "--seed", "3", "--sampler", sampler]
    train_main([*args, "--out", str(tmp_path / "full")])
    original = train_natpp.TransformerRun.policy_updates

    def die_after_update_8(self, k, **kw):
        original(self, k, **kw)
        if len(self.run.progress.rows) == 8:
            raise RuntimeError("killed")  # updates 5-8 are lost: the checkpoint at 8 is never written

    monkeypatch.setattr(train_natpp.TransformerRun, "policy_updates", die_after_update_8)
    with pytest.raises(RuntimeError):
        train_main([*args, "--out", str(tmp_path / "killed")])
    monkeypatch.setattr(train_natpp.TransformerRun, "policy_updates", original)
    assert len(list(csv.DictReader(open(tmp_path / "killed" / "progress.csv")))) == 8
    with pytest.raises(SystemExit):  # a resume never silently changes a setting
        train_main(["--resume", str(tmp_path / "killed"), "--lam", "0.5"])
    train_main(["--resume", str(tmp_path / "killed")])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert strip(csv.DictReader(open(killed / "progress.csv"))) == strip(csv.DictReader(open(full / "progress.csv")))
    a = torch.load(full / "policy.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "policy.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (
        json.loads((full / "results.json").read_text())["rows"]
        == json.loads((killed / "results.json").read_text())["rows"]
    )
    assert "(resumed)" in (killed / "log.txt").read_text()


def test_failed_start_leaves_no_directory(ray_session, tmp_path, monkeypatch):
    def broken(self):
        raise RuntimeError("broken build")

    monkeypatch.setattr(train_natpp.TransformerRun, "build", broken)
    with pytest.raises(RuntimeError):
        train_main(["--iters", "2", "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()  # nothing to resume: the same --out can be used again


def test_dead_shard_restarts_from_last_checkpoint(ray_session):
    import ray as _ray
    from test_shards import _tiny_data

    from natrl.nets.supernet import SupernetPreset
    from natrl.rewards.shards import SupernetShards

    space = make_space("darts")
    shards = SupernetShards(
        space.ops,
        _ray.put(_tiny_data()),
        num_shards=1,
        trainer_kwargs={"preset": SupernetPreset(C=4, layers=3), "batch_size": 16},
    )
    rng = np.random.default_rng(0)
    shards.train_epoch(lambda: space.sample_input(rng), max_steps=1)
    state = shards.state_dict()
    g = [space.sample_input(rng)]
    expected = shards.score(g)
    shards.batch_counter = 0
    _ray.kill(shards.shards[0])
    assert shards.score(g) == expected and shards.restarts == 1  # same weights, same batch after the restart
    assert shards.state_dict()["shard"]["epoch"] == state["shard"]["epoch"]
    shards.shutdown()


@pytest.mark.parametrize("nodes,names", [(4, ("DARTS_V2", "VGG")), (5, ("ENAS", "NATv2_ENAS"))])
def test_derive_on_the_darts_space(ray_session, tmp_path, nodes, names):
    """Transform registry genotypes with a darts run's policy, scored by its trained supernet (4-node cells,
    and a run with 5 intermediate nodes for ENAS-like cells)."""
    from test_datasets import make_image_folder

    from natrl import zoo
    from natrl.cells import load_genotype, parse_darts_text

    make_image_folder(tmp_path / "cifar", n=20)
    run = tmp_path / "run"
    train_main(_supernet_args(tmp_path / "cifar", run, epochs=1, nodes=nodes))
    records = derive_main([str(run), *names, "--out", str(tmp_path / "out"), "--samples", "3"])
    space = make_space("darts", num_intermediate=nodes)
    for rec, name in zip(records, names):
        beta, alpha = zoo.get(name), load_genotype(tmp_path / "out" / f"{name}_derived.json")
        assert space.mask[space.encode(beta)["op"], space.encode(alpha)["op"]].all()
        assert alpha.normal.concat == beta.normal.concat  # the input's graph is kept, only ops change
        assert parse_darts_text((tmp_path / "out" / f"{name}_derived.txt").read_text()) == alpha
        assert (tmp_path / "out" / f"{name}_derived.png").read_bytes()[:4] == b"\x89PNG"
        assert set(rec["costs"]) == {"cifar10", "imagenet"} and rec["scored_on"] == "supernet"
    assert json.loads((tmp_path / "out" / "derived.json").read_text())[0]["name"] == names[0]


def test_convergence_curve_leaves_training_unchanged_and_makes_fig8(ray_session, tmp_path):
    """--eval-every writes the held-out gain of the derived cells every N updates (NAT++ Fig. 8) without
    touching training: progress and policy equal a run without it; analysis/fig8_convergence.py plots it."""
    from natrl.tables.convergence import Fig8Config, fig8

    args = ["--iters", "20", "--m", "4", "--n", "2", "--seed", "2"]
    train_main([*args, "--out", str(tmp_path / "plain")])
    train_main([*args, "--eval-every", "10", "--out", str(tmp_path / "curve")])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    plain, curve = tmp_path / "plain", tmp_path / "curve"
    assert strip(csv.DictReader(open(curve / "progress.csv"))) == strip(csv.DictReader(open(plain / "progress.csv")))
    points = list(csv.DictReader(open(curve / "convergence.csv")))
    assert [int(p["iter"]) for p in points] == [0, 10, 20]
    final = json.loads((curve / "results.json").read_text())["rows"]
    assert float(points[-1]["argmax_reward"]) == pytest.approx(final["policy (argmax)"]["reward"]["mean"], abs=1e-3)
    written = fig8(Fig8Config(paths=[str(curve)], out=str(tmp_path / "tables")))
    assert {p.name for p in written} == {"fig8.csv", "fig8.md", "fig8.png"}
    with pytest.raises(Exception, match="convergence.csv does not exist"):
        fig8(Fig8Config(paths=[str(plain)], out=str(tmp_path / "t2")))
