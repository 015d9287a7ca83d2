"""End to end: a two-trial Ray Tune sweep (with a kill and --resume), and train_eval on tiny data with resume."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, load_script

SWEEP = ["--ablations", "lam", "--values", "0.03", "0.3", "--rules", "natpp", "--seeds", "1", "--iters", "3",
         "--max-concurrent", "1"]


def test_two_trial_sweep_killed_then_resumed(tmp_path, script):
    out = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, str(ROOT / "experiments" / "sweep.py"), *SWEEP, "--out", str(out)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "runs" / "lam" / "natpp-lam0.03-s0" / "results.json"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert first.exists(), "the first trial never finished"
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep dies with its second trial pending or running
    proc.wait()
    stamp = first.stat().st_mtime_ns

    r = script("experiments/sweep.py", "--resume", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2/2 trials done" in r.stdout
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [(row["trial"], row["status"]) for row in rows] == [("natpp-lam0.03-s0", "done"), ("natpp-lam0.3-s0", "done")]
    assert first.stat().st_mtime_ns == stamp  # the finished trial was not run again
    for row in rows:
        run = json.loads((out / "runs" / "lam" / row["trial"] / "config.json").read_text())["config"]
        assert run["tag"] == "lam" and run["iters"] == 3 and run["lam"] == float(row["lam"])
    assert json.loads((out / "config.json").read_text())["config"]["values"] == ["0.03", "0.3"]

    r = script("analysis/fig7_ablations.py", out, "--out", tmp_path / "tables")
    assert r.returncode == 0, r.stderr
    assert "| 0.03 | - | - |" in (tmp_path / "tables" / "fig7_lam.md").read_text()


@pytest.mark.parametrize("args,message", [
    (["--values", "0.1"], "--values replaces the grid of one ablation"),
    (["--ablations", "lam", "--values", "abc"], "is not a valid lam value"),
    (["--ablations", "policy", "--values", "transformer"], "is not a policy; choose from random, lstm, gcn"),
    (["--ablations", "depth"], "invalid choice: 'depth'"),
    (["--reward", "supernet"], "--reward supernet needs CIFAR-10"),
])
def test_sweep_cli_errors(script, tmp_path, args, message):
    r = script("experiments/sweep.py", *args, "--out", tmp_path / "s")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()


def test_sweep_resume_without_state(script, tmp_path):
    r = script("experiments/sweep.py", "--resume", tmp_path)
    assert r.returncode == 2 and "holds no Tune state to resume" in r.stderr


def test_trial_resources_reserve_the_shards():
    sweep = load_script("sweep")
    cfg = sweep.SweepConfig(reward="supernet", num_gpus=2)
    assert sweep.trial_resources(cfg).bundles == [{"CPU": 1}, {"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}]
    assert sweep.trial_resources(sweep.SweepConfig(reward="supernet", cpu_shards=2)).bundles == [{"CPU": 1}] * 3
    assert sweep.trial_resources(sweep.SweepConfig()).bundles == [{"CPU": 1}]
    assert len(sweep.trial_grid(sweep.SweepConfig())) == 2 * 3 * (5 + 4 + 4 + 4 + 3)


# ---- train_eval ---------------------------------------------------------------------------------------------

def _eval_args(data, out, epochs=2):
    return ["--arch", "NATv2_DARTS", "--data", str(data), "--preset", "tiny", "--epochs", str(epochs),
            "--train-subset", "16", "--batch-size", "8", "--layers", "3", "--channels", "4", "--seed", "3",
            "--out", str(out)]


def test_train_eval_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from test_datasets import make_image_folder
    make_image_folder(tmp_path / "cifar", n=10)
    te = load_script("train_eval")
    full, killed = tmp_path / "full", tmp_path / "killed"
    te.main(_eval_args(tmp_path / "cifar", full))

    original = te.save_checkpoint

    def save_then_die(out, state):
        original(out, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(te, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        te.main(_eval_args(tmp_path / "cifar", killed))
    assert (killed / "checkpoint.pt").exists() and not (killed / "results.json").exists()
    monkeypatch.setattr(te, "save_checkpoint", original)
    te.main(["--resume", str(killed)])

    strip = lambda path: [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path))]  # noqa: E731
    assert strip(killed / "log.csv") == strip(full / "log.csv") and len(strip(full / "log.csv")) == 2
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (full, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    res = json.loads((full / "results.json").read_text())
    assert res["kind"] == "train_eval" and (res["model"], res["method"]) == ("DARTS", "NAT++")
    assert res["test_acc"] == json.loads((killed / "results.json").read_text())["test_acc"]
    assert res["params_M"] > 0 and res["madds_M"] > 0 and 0 <= res["test_acc"] <= 100


def test_train_eval_nb201_arch_and_json_genotype(tmp_path, script):
    from test_datasets import make_image_folder
    make_image_folder(tmp_path / "cifar", n=4)
    arch = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    te = load_script("train_eval")
    args = _eval_args(tmp_path / "cifar", tmp_path / "nb", epochs=1)
    args[1] = arch
    te.main(args)
    assert json.loads((tmp_path / "nb" / "results.json").read_text())["genotype"]["arch_str"] == arch


@pytest.mark.parametrize("args,message", [
    (["--arch", "NATv2_DARTS"], "--data is required"),
    (["--arch", "NoSuchNet", "--data", "DATA"], "NoSuchNet"),
    (["--arch", "NATv2_DARTS", "--data", "/nonexistent"], "no CIFAR-10 data at /nonexistent"),
    (["--arch", "NATv2_DARTS", "--data", "/nonexistent", "--dataset", "cifar100"], "no CIFAR-100 data at /nonexistent"),
    (["--arch", "NATv2_DARTS", "--data", "/nonexistent", "--dataset", "imagenet"], "ImageNet"),
    (["--arch", "NATv2_DARTS", "--data", "DATA", "--epochs", "0"], "--epochs must be >= 1"),
    (["--resume", "/nonexistent/run"], "does not exist; --resume takes a run directory of train_eval.py"),
])
def test_train_eval_errors(script, tmp_path, args, message):
    from test_datasets import make_image_folder
    make_image_folder(tmp_path / "DATA", n=2)
    args = [str(tmp_path / "DATA") if a == "DATA" else a for a in args]
    r = script("experiments/train_eval.py", *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_train_eval_unreadable_checkpoint(script, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"arch": "NATv2_DARTS", "data": str(tmp_path / "DATA"),
                                                            "preset": "tiny"}}))
    from test_datasets import make_image_folder
    make_image_folder(tmp_path / "DATA", n=2)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    r = script("experiments/train_eval.py", "--resume", run)
    assert r.returncode == 2 and "cannot read checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert (run / "checkpoint.pt").read_bytes() == b"not a checkpoint"  # nothing already written is lost
