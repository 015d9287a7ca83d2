"""End to end: a two-trial Ray Tune sweep killed with kill -9 and resumed; Tune sees the trials' progress."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT
from test_analysis import nb201_results

from natrl.runs import sweep

SWEEP = [
    "--ablations",
    "lam",
    "--values",
    "0.03",
    "0.3",
    "--rules",
    "natpp",
    "--seeds",
    "1",
    "--iters",
    "3",
    "--max-concurrent",
    "1",
]


@pytest.mark.slow
def test_two_trial_sweep_killed_then_resumed(tmp_path, script):
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "sweep.py"), *SWEEP, "--out", str(out)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first = out / "tune" / "natpp-lam0.03-s0" / "run" / "results.json"
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
    assert [(row["trial"], row["status"]) for row in rows] == [
        ("natpp-lam0.03-s0", "done"),
        ("natpp-lam0.3-s0", "done"),
    ]
    assert first.stat().st_mtime_ns == stamp  # the finished trial was not run again
    for row in rows:
        run = json.loads((out / "tune" / row["trial"] / "run" / "config.json").read_text())["config"]
        assert run["tag"] == "lam" and run["iters"] == 3 and run["lam"] == float(row["lam"])
        assert (
            float(row["gain_sample"])
            == json.loads((out / "tune" / row["trial"] / "run" / "results.json").read_text())["rows"][
                "policy (1 sample)"
            ]["reward"]["mean"]
        )
    # Tune saw the second trial's progress (the first update, throttled ones, the last) and the headline last
    reports = [json.loads(line) for line in open(out / "tune" / "natpp-lam0.3-s0" / "result.json")]
    iters = [r["iter"] for r in reports if "iter" in r]
    assert iters[0] == 1 and iters[-1] == 3 and iters == sorted(set(iters)) and "gain_sample" in reports[-1]
    assert json.loads((out / "config.json").read_text())["config"]["values"] == ["0.03", "0.3"]

    r = script("analysis/fig7_ablations.py", out, "--out", tmp_path / "tables")
    assert r.returncode == 0, r.stderr
    assert "| 0.03 | - | - |" in (tmp_path / "tables" / "fig7_lam.md").read_text()
    runs = [row["runs"] for row in csv.DictReader(open(tmp_path / "tables" / "fig7_lam.csv"))]
    assert runs == ["natpp-lam0.03-s0", "natpp-lam0.3-s0"]  # a trial's name, not its run folder's ("run")


@pytest.mark.slow
def test_ctrl_c_on_a_real_sweep_leaves_no_unfinished_trial_marked_done(tmp_path):
    # Tune handles SIGINT itself and returns from fit() with the running trial's progress as its metrics
    out = tmp_path / "sweep"
    argv = [*SWEEP[: SWEEP.index("--iters")], "--iters", "100000", "--max-concurrent", "1", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "sweep.py"), *argv],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    progress = out / "tune" / "natpp-lam0.03-s0" / "run" / "progress.csv"
    deadline = time.time() + 300
    while not (progress.exists() and progress.stat().st_size > 200) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: 2 of 2 trial(s) unfinished" in err and f"--resume {out}" in err
    assert not (out / "trials.csv").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--values", "0.1"], "--values replaces the grid of one ablation"),
        (["--ablations", "lam", "--values", "abc"], "is not a valid lam value"),
        (["--ablations", "lam", "--values", "nan"], "is not a valid lam value"),
        (["--ablations", "policy", "--values", "transformer"], "is not a policy; choose from random, lstm, gcn"),
        (["--ablations", "depth"], "invalid choice: 'depth'"),
        (["--reward", "supernet"], "--reward supernet needs CIFAR-10"),
        (["--seeds", "0"], "--seeds must be >= 1"),
    ],
)
def test_sweep_cli_errors(script, tmp_path, args, message):
    r = script("experiments/sweep.py", *args, "--out", tmp_path / "s")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_sweep_resume_without_state(script, tmp_path):
    r = script("experiments/sweep.py", "--resume", tmp_path)
    assert r.returncode == 2 and "has no config.json" in r.stderr


def test_trial_resources_reserve_the_shards():
    cfg = sweep.SweepConfig(reward="supernet", num_gpus=2)
    assert sweep.trial_resources(cfg).bundles == [{"CPU": 1}, {"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}]
    assert sweep.trial_resources(sweep.SweepConfig(reward="supernet", cpu_shards=2)).bundles == [{"CPU": 1}] * 3
    assert sweep.trial_resources(sweep.SweepConfig()).bundles == [{"CPU": 1}]
    assert len(sweep.trial_grid(sweep.SweepConfig())) == 2 * 3 * (5 + 4 + 4 + 4 + 3)


def _trial_configs(cfg):
    return [
        (t, sweep.trial_config({"trial": t, "base": sweep.train_base(cfg), "out": None})) for t in sweep.trial_grid(cfg)
    ]


def test_trials_take_their_presets_recipe_then_the_given_knobs_then_the_grid_point():
    from natrl.runs.transformer import RECIPES, recipe

    for t, c in _trial_configs(sweep.SweepConfig(ablations=["lam"])):  # our recipe: the main job's knobs
        assert (c.preset, c.m, c.n, c.iters, c.lr, c.baseline) == ("natrl", 32, 2, 1500, 1e-3, "input")
        assert c.lam == t["overrides"]["lam"] and c.rule == t["overrides"]["rule"] and c.tag == "lam"
    papers = _trial_configs(sweep.SweepConfig(preset="papers", ablations=["m"], seeds=1))
    assert {c.rule for _, c in papers} == {"nat", "natpp"}
    for t, c in papers:  # NAT trials on NAT's recipe, NAT++ trials on NAT++'s; the grid point wins over both
        assert c.preset == c.rule and c.m == t["overrides"]["m"] and c.n == 1
        assert (c.lam, c.lr, c.baseline, c.hidden) == tuple(
            RECIPES[c.rule][k] for k in ("lam", "lr", "baseline", "hidden")
        )
        assert c.iters == recipe(c.rule, "nb201")["iters"] == {"nat": 46_900, "natpp": 93_800}[c.rule]
    _, given = _trial_configs(sweep.SweepConfig(preset="papers", ablations=["lam"], iters=500, seeds=1))[0]
    assert given.iters == 500 and given.m == 1  # a knob the sweep was given beats the preset
    assert sweep.max_updates(sweep.SweepConfig(preset="papers", ablations=["lam"])) == 93_801


def test_an_old_sweep_config_keeps_its_supernet_size_and_budget():
    old = sweep.SweepConfig(preset="tiny")  # config.json written when --preset was the supernet size
    assert (old.preset, old.supernet_size, old.iters, old.m, old.n, old.epochs) == ("natrl", "tiny", 300, 32, 2, 3)


@pytest.mark.slow
def test_supernet_shards_use_the_tune_trials_reservation(ray_session, tmp_path):
    """A sweep trial reserves [trial CPU] + one bundle per shard; the shards go into those bundles (with 2 CPUs
    in the session, a placement group of their own could never be scheduled)."""
    from ray import tune
    from test_shards import _tiny_data

    from natrl.nets.supernet import SupernetPreset
    from natrl.rewards.shards import SupernetShards
    from natrl.spaces import make_space

    data = ray_session.put(_tiny_data())

    def trainable(config):
        space = make_space("darts")
        kwargs = {"preset": SupernetPreset(C=4, layers=3), "batch_size": 16}
        shards = SupernetShards(space.ops, config["data"], 1, trainer_kwargs=kwargs, reserve_timeout_s=5)
        own_group = shards.pg is not None
        shards.train_epoch(lambda: space.sample_input(np.random.default_rng(0)), max_steps=1)
        shards.shutdown()
        tune.report({"own_group": own_group, "device": shards.devices[0]["device"]})

    cfg = sweep.SweepConfig(reward="supernet", cpu_shards=1, data="-")
    tuner = tune.Tuner(
        tune.with_resources(trainable, sweep.trial_resources(cfg)),
        param_space={"data": data},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    (result,) = list(tuner.fit())
    assert result.error is None and result.metrics["own_group"] is False and result.metrics["device"] == "cpu"


@pytest.mark.slow
def test_sweep_on_a_storage_uri_keeps_runs_in_their_trial_dirs_there(ray_session, tmp_path):
    """--storage file://...: Tune's state, the trial logs and each trial's run directory live in the storage
    (the run inside its trial directory); a resume reads finished trials from there, not from the local copy."""
    store = tmp_path / "store"
    grid = {"ablations": ["lam"], "values": ["0.03"], "rules": ["natpp"], "seeds": 1, "iters": 2, "m": 2, "n": 1}
    out = sweep.sweep(sweep.SweepConfig(**grid, storage=f"file://{store}", out=str(tmp_path / "sweep")))
    trial = store / "tune" / "natpp-lam0.03-s0"
    assert (trial / "run" / "results.json").is_file() and (trial / "run" / "checkpoint").is_dir()
    assert (trial / "result.json").is_file()  # Tune's trial log, beside the run
    assert not (out / "tune" / "natpp-lam0.03-s0" / "run").exists()  # nothing written to the sweep dir's copy
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [(r["trial"], r["status"]) for r in rows] == [("natpp-lam0.03-s0", "done")]
    sweep.sweep(sweep.SweepConfig(resume=str(out)), given={"resume"})
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert rows[0]["status"] == "done" and rows[0]["run_dir"].startswith("file://")


def test_storage_must_be_a_uri(script, tmp_path):
    r = script("experiments/sweep.py", "--storage", str(tmp_path), "--out", tmp_path / "s")
    assert r.returncode == 2 and "is not a URI" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_tune_failure_is_one_line(script, tmp_path):
    """Tune itself failing (here: a storage it cannot create) is one line with exit status 2, no traceback."""
    args = ["--ablations", "lam", "--values", "0.03", "--rules", "natpp", "--seeds", "1", "--iters", "2"]
    r = script("experiments/sweep.py", *args, "--storage", "file:///proc/natrl-no-dir", "--out", tmp_path / "s")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    ours = [line for line in r.stderr.splitlines() if "error" in line.lower()]  # Ray may print its own notices
    assert len(ours) == 1 and ours[0].startswith("sweep.py: error: Ray Tune failed (")


def test_ctrl_c_during_a_sweep_says_interrupted_and_how_to_continue(tmp_path, capsys):
    """Tune answers Ctrl-C by stopping its trials and returning from fit(): a stopped trial has its progress
    reports as metrics and no error, and a trial not started yet is not in the grid. Only a run that wrote
    results.json is done. The sweep says how many are unfinished, keeps the finished trials and names --resume;
    a stand-in for the fitted Tuner (narrowly: fit() and its ResultGrid's three fields)."""
    from types import SimpleNamespace

    from natrl.errors import cli_entry
    from natrl.runs.sweep import SweepConfig, fit_rows, run_dir_of

    cfg = SweepConfig(out=str(tmp_path))
    trials = [{"ablation": "lam", "name": f"natpp-lam{lam}-s0", "overrides": {"lam": lam}} for lam in (0.03, 0.3, 3.0)]
    run_dir_of(tmp_path, trials[0]).mkdir(parents=True)
    (run_dir_of(tmp_path, trials[0]) / "results.json").write_text(json.dumps(nb201_results(4.0)))
    done = SimpleNamespace(config={"trial": trials[0]}, metrics={"iter": 3}, error=None)
    stopped = SimpleNamespace(config={"trial": trials[1]}, metrics={"iter": 2, "reward_mean": -5.7}, error=None)
    tuner = SimpleNamespace(fit=lambda: [done, stopped])  # trials[2] never started
    with pytest.raises(SystemExit) as exit_:
        cli_entry(lambda: fit_rows(lambda: (tuner, set()), cfg, tmp_path, trials))()
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 of 3 trial(s) unfinished" in err and f"--resume {tmp_path}" in err
    assert "Traceback" not in err and "TypeError" not in err
    failed = SimpleNamespace(config={"trial": trials[1]}, metrics={"iter": 2}, error=RuntimeError("boom"))
    rows = fit_rows(lambda: (SimpleNamespace(fit=lambda: [done, failed]), set()), cfg, tmp_path, trials[:2])
    assert [(r["trial"], r["status"]) for r in rows] == [(trials[0]["name"], "done"), (trials[1]["name"], "error")]
    # a trial ASHA stopped early is not unfinished: its row says so and keeps its last progress
    asha = (SimpleNamespace(fit=lambda: [done, stopped]), {trials[1]["name"]})
    rows = fit_rows(lambda: asha, cfg, tmp_path, trials[:2])
    assert (rows[1]["status"], rows[1]["reward_mean"]) == ("stopped", -5.7)
    assert rows[0]["gain_sample"] == 4.0  # read from the run's results.json, not from Tune's last report


def test_tune_reports_are_throttled_to_one_a_second_and_the_last_row_is_sent(monkeypatch, tmp_path):
    # a 93,800-update paper preset must not send 93,800 reports through Tune's driver
    from ray import tune

    sent, clock = [], [0.0]
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: sent.append((metrics, checkpoint)))
    monkeypatch.setattr(sweep.time, "monotonic", lambda: clock[0])
    reporter = sweep.TuneReporter()
    for i in range(1, 101):  # 100 updates in 0.99 s: only the first is sent
        reporter({"iter": i, "reward_mean": 0.5, "note": "text is not a metric"}, None)
        clock[0] += 0.01
    assert [m["iter"] for m, _ in sent] == [1]
    reporter({"iter": 101, "reward_mean": 0.5}, None)  # 1.0 s after the first report
    assert [m["iter"] for m, _ in sent] == [1, 101]
    reporter({"iter": 102, "reward_mean": 0.7}, None)
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"x")
    reporter({}, ckpt)  # a checkpoint is always sent, with the latest row
    assert sent[-1][0] == {"iter": 102, "reward_mean": 0.7} and sent[-1][1] is not None
    reporter.flush()  # nothing pending: nothing sent
    reporter({"iter": 103, "reward_mean": 0.9}, None)
    reporter.flush()
    assert [m["iter"] for m, _ in sent] == [1, 101, 102, 103]


def test_asha_counts_policy_updates_and_remembers_whom_it_stopped():
    # reports are throttled, so ASHA's time must be the update count in the report, not the number of reports
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    asha = sweep.early_stopper(max_t=1001)
    trials = [SimpleNamespace(trial_id=str(i), config={"trial": {"name": f"t{i}"}}) for i in range(5)]
    for t in trials:
        asha.on_trial_add(None, t)
    actions = [asha.on_trial_result(None, t, {"iter": 100, "reward_mean": float(-i)}) for i, t in enumerate(trials)]
    assert actions[0] == TrialScheduler.CONTINUE and actions[-1] == TrialScheduler.STOP  # the worst, at 100 updates
    assert asha.stopped == {t.config["trial"]["name"] for t, a in zip(trials, actions) if a == TrialScheduler.STOP}
    assert asha.on_trial_result(None, trials[0], {"reward_mean": 1.0}) == TrialScheduler.CONTINUE  # no iter: ignored
