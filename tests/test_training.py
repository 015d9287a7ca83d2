"""REINFORCE on RLlib end to end: a learning test whose direction fails if the gradient sign is wrong, the
training CLI with a small --iters, and derive. All in-process tests share one Ray session."""
import csv
import json

import numpy as np
import pytest
import torch

from conftest import load_script  # noqa: E402
from natrl.cells import from_arch_str
from natrl.spaces import make_space

train_natpp = load_script("train_natpp")


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
    for _ in range(25):
        res = algo.train()["learners"]["default_policy"]
        assert res["batch_size"] == 32  # m * n one-step episodes, no phantom rows
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
    train_natpp.main(["--iters", "3", "--m", "4", "--n", "2", "--seed", "1", "--out", str(out)])
    return out


def test_cli_end_to_end(trained_run):
    files = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "progress.csv", "curve.png", "policy.pt", "checkpoint", "results.json", "results.md",
            "derived.json"} <= files
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
    train_natpp.main(["--policy", "random", "--iters", "5", "--out", str(out)])
    rows = json.loads((out / "results.json").read_text())["rows"]
    # uniform over valid transitions: its 1-sample gain estimates the exact expectation (std 17 / sqrt(3125))
    assert rows["policy (1 sample)"]["reward"]["mean"] == pytest.approx(rows["random valid"]["reward"]["mean"], abs=1.5)


def test_cli_refuses_to_overwrite_a_run(trained_run, script):
    before = (trained_run / "results.json").read_text()
    r = script("experiments/train_natpp.py", "--iters", "1", "--out", trained_run)
    assert r.returncode == 2 and "already holds a run" in r.stderr and "Traceback" not in r.stderr
    assert (trained_run / "results.json").read_text() == before


@pytest.mark.parametrize("args,message", [
    (["--m", "0"], "--m must be >= 1"),
    (["--policy", "cnn"], "invalid choice: 'cnn'"),
    (["--lam", "x"], "invalid float value"),
    (["--table", "/nonexistent/t.anb"], "does not exist"),
    (["--num-gpus", "64"], "CUDA device(s) are visible"),
])
def test_cli_bad_flags_one_line(script, tmp_path, args, message):
    r = script("experiments/train_natpp.py", *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_derive_end_to_end(trained_run, tmp_path):
    derive = load_script("derive")
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    records = derive.main([str(trained_run), cell, "--mode", "best", "--out", str(tmp_path / "d.json")])
    assert json.loads((tmp_path / "d.json").read_text()) == records
    rec = records[0]
    space = derive.load_policy(trained_run)[1]
    beta = space.encode_genotype(from_arch_str(cell))
    alpha = space.encode_genotype(from_arch_str(rec["output"]))
    assert space.mask[beta, alpha].all()
    # best-of-k keeps the argmax as a candidate, so it is never worse than argmax on the table
    argmax = derive.main([str(trained_run), cell, "--mode", "argmax"])[0]
    assert rec["acc_after"] >= argmax["acc_after"]
    assert rec["madds_M"][0] == pytest.approx(argmax["madds_M"][0])


def test_derive_bad_inputs(script, tmp_path):
    (tmp_path / "policy.pt").write_bytes(b"not a checkpoint")
    r = script("experiments/derive.py", tmp_path, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert r.returncode == 2 and "cannot load policy" in r.stderr and "Traceback" not in r.stderr
    r = script("experiments/derive.py", tmp_path / "nope", "DARTS_V2")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_supernet_algorithm1_end_to_end(ray_session, tmp_path):
    """--space darts --reward supernet on a tiny image folder: shard actors, Algorithm 1, Table-4 evaluation."""
    from test_datasets import make_image_folder
    make_image_folder(tmp_path / "cifar", n=20)
    out = tmp_path / "darts"
    train_natpp.main(["--space", "darts", "--reward", "supernet", "--data", str(tmp_path / "cifar"),
                      "--epochs", "2", "--supernet-steps", "1", "--supernet-batch", "8", "--iters", "1", "--m", "2",
                      "--n", "1", "--eval-inputs", "2", "--best-of", "2", "--out", str(out)])
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


@pytest.mark.parametrize("args,message", [
    (["--space", "darts"], "the darts space needs --reward supernet"),
    (["--space", "darts", "--reward", "supernet"], "needs CIFAR-10: --data"),
    (["--space", "darts", "--reward", "supernet", "--data", "/nonexistent"], "no CIFAR-10 data at /nonexistent"),
])
def test_supernet_cli_errors(script, tmp_path, args, message):
    r = script("experiments/train_natpp.py", *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()  # nothing is created for a run that cannot start
