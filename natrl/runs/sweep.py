"""Ray Tune ablations of the RL core (NAT++ Fig. 7, Table 5; NAT Table 3) for NAT and NAT++, over seeds.

Each trial is one :func:`natrl.runs.transformer.train` run whose directory lives inside its Tune trial
directory (``tune/<trial>/run``). The trial reports its progress to Tune (``iter``, ``reward_mean``,
``entropy``, ``baseline``; the latest policy update, at most once a second: a report per update cost a paper
preset's 93,800-update trial more CPU in Tune's driver than in the trial) and registers each run checkpoint with Tune, so Tune's schedulers (ASHA, PBT) and
loggers (CSV, TensorBoard) see our trials; its last report carries the held-out headline metrics. A sweep killed
and restored with ``--resume`` reports finished trials from their results and continues the others from their
run checkpoints. Results are read back through Tune's ``ResultGrid``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError

KIND = "sweep"
ABLATIONS: dict[str, list[dict[str, Any]]] = {  # name -> list of TrainConfig overrides, one per grid point
    "lam": [{"lam": v} for v in (3e-4, 3e-3, 3e-2, 3e-1, 3.0)],
    "gcn_layers": [{"gcn_layers": v} for v in (1, 2, 5, 10)],
    "m": [{"m": v, "n": 1} for v in (1, 5, 10, 30)],  # Table 5 varies one of m, n with the other at 1
    "n": [{"m": 1, "n": v} for v in (1, 5, 10, 30)],
    "policy": [{"policy": v} for v in ("random", "lstm", "gcn")],
}
TRAIN_KNOBS = (
    "iters",
    "m",
    "n",
    "reward",
    "data",
    "supernet_size",
    "epochs",
    "supernet_steps",
    "cpu_shards",
    "num_gpus",
    "eval_inputs",
    "table",
    "report_table",
    "best_of",
)
Ablation = Literal["lam", "gcn_layers", "m", "n", "policy"]


@dataclass
class SweepConfig(RunConfig):
    ablations: list[Ablation] = knob(list(ABLATIONS), "which grids to run")
    rules: list[Literal["natpp", "nat"]] = knob(["natpp", "nat"], "transition rules, one grid each")
    values: list[str] = knob([], "replace the grid of a single ablation, e.g. --values 0.03 0.3")
    seeds: int = knob(3, "seeds 0 .. seeds-1 for every grid point", ge=1, le=1000)
    preset: Literal["natrl", "papers"] = knob(
        "natrl",
        "every trial's recipe before its grid point: natrl (our defaults, 1,500 updates of m=32 x n=2) or papers "
        "(each rule's paper recipe: --preset nat for NAT trials, natpp for NAT++; docs/papers.md#presets)",
    )
    iters: int | None = knob(
        None,
        "policy updates per trial (per supernet epoch with --reward supernet; default: the preset's)",
        ge=1,
        le=10**8,
    )
    m: int | None = knob(
        None, "inputs per update where the ablation does not set it (default: the preset's)", ge=1, le=100000
    )
    n: int | None = knob(
        None, "samples per input where the ablation does not set it (default: the preset's)", ge=1, le=10000
    )
    reward: Literal["nb201", "supernet"] = knob("nb201", "nb201 (tabular) or supernet (darts space, Algorithm 1)")
    table: str | None = knob(None, "NB201 reward table (default analog-nasbench)", metavar="PATH")
    report_table: str | None = knob(None, "official NB201 table to report on as well", metavar="PATH")
    data: str | None = knob(None, "CIFAR-10 for --reward supernet", metavar="PATH")
    supernet_size: Literal["tiny", "paper"] = knob("tiny", "supernet size")
    epochs: int | None = knob(None, "supernet epochs per trial (default: the preset's)", ge=1, le=100000)
    supernet_steps: int = knob(0, "cap on supernet steps per epoch (0 = full pass)", ge=0, le=10**8)
    cpu_shards: int = knob(1, "supernet shards per trial without GPUs", ge=1, le=1024)
    num_gpus: int = knob(0, "GPUs per supernet trial (one shard each)", ge=0, le=4096)
    eval_inputs: int = knob(20, "supernet trials: random inputs derived at the end", ge=1, le=100000)
    best_of: int = knob(10, "samples per input of the best-of-k row", ge=1, le=10000)
    max_concurrent: int = knob(0, "cap on trials running at once (0 = as many as the resources allow)", ge=0, le=100000)
    scheduler: Literal["fifo", "asha"] = knob(
        "fifo", "Tune trial scheduler: fifo (every trial to the end) or asha (stops trials whose reward_mean lags)"
    )
    address: str | None = knob(None, "Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    storage: str | None = knob(
        None,
        "shared storage URI for Tune's state, the trial logs and each trial's run directory (s3://, gs://, "
        "file://; default: inside the sweep directory)",
        metavar="URI",
    )
    out: str | None = knob(None, "sweep directory (default sweeps/sweep-<reward>-<time>)", metavar="DIR")
    resume: str | None = knob(None, "sweep directory to continue", metavar="DIR")

    def __post_init__(self):
        legacy: Any = self.preset
        if legacy in ("tiny", "paper"):  # config.json written before --preset named the recipe
            self.supernet_size, self.preset = legacy, "natrl"
            for k, v in (("iters", 300), ("m", 32), ("n", 2), ("epochs", 3)):  # that version's defaults
                if getattr(self, k) is None:
                    setattr(self, k, v)

    def validate(self):
        if self.values and len(self.ablations) != 1:
            raise NatrlError("--values replaces the grid of one ablation: give exactly one --ablations name")
        if self.values:
            grid_points(self.ablations[0], self.values)  # a bad value fails now
        if self.reward == "supernet" and not self.data:
            raise NatrlError("--reward supernet needs CIFAR-10: --data DIR_OR_TARBALL")
        if len(self.values) > 1000:
            raise NatrlError(f"--values: {len(self.values)} grid points; give at most 1000")
        if self.storage is not None and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", self.storage):
            raise NatrlError(
                f"--storage {self.storage!r} is not a URI (s3://BUCKET/PATH, gs://..., file:///PATH); "
                "for a folder every node mounts, give it as --out instead"
            )


def grid_points(ablation: str, values: list[str]) -> list[dict]:
    """ABLATIONS[ablation] with its varied value replaced by each of ``values`` (given as text)."""
    import math

    template = ABLATIONS[ablation][0]
    key = next(iter(template))
    kind = type(template[key])
    points = []
    for v in values:
        try:
            if not v.isascii():  # float() reads non-ASCII digits ('１' is 1.0): refuse what the user cannot see
                raise ValueError
            value = kind(float(v)) if kind in (int, float) else v
            if kind in (int, float) and (not math.isfinite(float(v)) or float(v) < 0 or float(v) != value):
                raise ValueError
        except (ValueError, OverflowError):
            raise NatrlError(
                f"--values {v!r} is not a valid {ablation} value (expected a finite "
                f"{'integer' if kind is int else 'number'} >= 0)"
            ) from None
        if kind is str and v not in {p[key] for p in ABLATIONS[ablation]}:
            raise NatrlError(
                f"--values {v!r} is not a {ablation}; choose from {', '.join(p[key] for p in ABLATIONS[ablation])}"
            )
        points.append({**template, key: value})
    return points


def trial_grid(cfg: SweepConfig) -> list[dict]:
    """One dict per trial: its ablation, a readable name, and the TrainConfig overrides."""
    trials = []
    for ablation in cfg.ablations:
        for rule in cfg.rules:
            for point in grid_points(ablation, cfg.values) if cfg.values else ABLATIONS[ablation]:
                for seed in range(cfg.seeds):
                    label = "-".join(f"{k}{v}" for k, v in point.items())
                    trials.append(
                        {
                            "ablation": ablation,
                            "name": f"{rule}-{label}-s{seed}",
                            "overrides": {**point, "rule": rule, "seed": seed, "preset": trial_preset(cfg, rule)},
                        }
                    )
    return trials


def trial_preset(cfg: SweepConfig, rule: str) -> str:
    """The TrainConfig preset of a ``rule`` trial: natrl, or that rule's paper (NAT runs use NAT's recipe)."""
    return rule if cfg.preset == "papers" else "natrl"


def trial_config(config: dict):
    """The trial's TrainConfig: its preset's recipe, then the sweep's given knobs, then its grid point."""
    from natrl.config import resolve
    from natrl.runs.transformer import TrainConfig

    trial = config["trial"]
    given = {k: v for k, v in config["base"].items() if v is not None}
    return resolve(TrainConfig, {**given, **trial["overrides"], "tag": trial["ablation"], "out": config["out"]})


def trial_resources(cfg: SweepConfig):
    """Placement group of one trial: the trial's own CPU, then one bundle per supernet shard."""
    from ray.tune import PlacementGroupFactory

    bundles: list[dict[str, float]] = [{"CPU": 1}]
    if cfg.reward == "supernet":
        bundles += [{"CPU": 1, "GPU": 1}] * cfg.num_gpus if cfg.num_gpus else [{"CPU": 1}] * cfg.cpu_shards
    return PlacementGroupFactory(bundles)


def metrics_of(run_dir: Path) -> dict:
    """The headline numbers of a finished trial (natrl.results reads the same ones for the tables)."""
    return metrics_from(json.loads((run_dir / "results.json").read_text()), str(run_dir))


def metrics_from(res: dict, run_dir: str) -> dict:
    from natrl.results import headline_metrics, result_kind

    return {
        "run_dir": run_dir,
        "search_seconds": res.get("search_seconds"),
        **headline_metrics(result_kind(res), res),
    }


class TuneReporter:
    """Sends progress rows to Tune, and each run checkpoint as a Tune checkpoint; ``upload`` (storage URI
    sweeps) copies the run directory to the storage after each checkpoint.

    Rows are throttled: a row is sent when ``min_interval_s`` has passed since the last report (the first row
    always is), a checkpoint carries the latest row, and :meth:`flush` sends a row not yet sent. Each row holds
    its update count (``iter``), which ASHA reads as time, so fewer reports do not change its milestones."""

    def __init__(self, upload=None, min_interval_s: float = 1.0):
        self.last: dict = {}
        self.upload = upload
        self.min_interval_s = min_interval_s
        self.sent_at = -math.inf
        self.pending = False

    def __call__(self, row: dict, checkpoint: Path | None):
        if row:
            self.last = {k: v for k, v in row.items() if isinstance(v, (int, float))}
            self.pending = True
        if checkpoint is None:
            if self.pending and time.monotonic() - self.sent_at >= self.min_interval_s:
                self._send()
            return
        if self.upload is not None:
            self.upload()
        with tempfile.TemporaryDirectory() as d:
            shutil.copy2(checkpoint, Path(d) / checkpoint.name)
            self._send(checkpoint=Path(d))

    def flush(self):
        if self.pending:
            self._send()

    def _send(self, checkpoint: Path | None = None):
        from ray import tune

        ckpt = tune.Checkpoint.from_directory(checkpoint) if checkpoint is not None else None
        tune.report(dict(self.last), checkpoint=ckpt)
        self.sent_at, self.pending = time.monotonic(), False


# ---- a sweep on a storage URI: run directories are worked on locally and kept in the storage -----------------


def run_store(storage: str, trial: dict) -> str:
    """The trial's run directory in the storage: inside its Tune trial directory there."""
    return f"{storage.rstrip('/')}/tune/{trial['name']}/run"


def store_file(uri: str, name: str) -> bytes | None:
    """The bytes of ``uri/name``, or None when it is not there."""
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(f"{uri}/{name}")
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.read()


def copy_tree(src: str, dst: str):
    """Copy a folder between a local path and a storage URI (pyarrow.fs), file by file."""
    import pyarrow.fs as pafs

    pafs.copy_files(src, dst)


def local_run_dir(config: dict) -> Path:
    """Where the trial's run directory is worked on: the sweep directory, or with a storage URI this node's
    copy of the trial directory (fetched from the storage when the run exists there)."""
    from ray import tune

    trial, storage = config["trial"], config.get("storage")
    if not storage:  # the trial's folder in the sweep directory (Tune's own trial dir may be a staging copy)
        return Path(config["sweep_dir"]) / "tune" / trial["name"] / "run"
    out = Path(tune.get_context().get_trial_dir()) / "run"
    store = run_store(storage, trial)
    if not out.exists() and store_file(store, "config.json") is not None:
        copy_tree(store, str(out))
    return out


def run_trial(config: dict):
    """Tune trainable: one transformer run in ``<trial dir>/run``. A finished run (the sweep was killed before
    Tune recorded it) is reported as it is; a run with a checkpoint resumes from it; a run that died before its
    first checkpoint starts over. With a storage URI the run directory is copied there after each checkpoint
    and at the end."""
    from ray import tune

    from natrl.runs.transformer import TrainConfig, train

    trial, out = config["trial"], local_run_dir(config)
    upload = (lambda: copy_tree(str(out), run_store(config["storage"], trial))) if config.get("storage") else None
    if not (out / "results.json").exists():
        reporter = TuneReporter(upload)
        if (out / "checkpoint.pt").exists():
            train(TrainConfig(resume=str(out)), given={"resume"}, report=reporter)
        else:
            shutil.rmtree(out, ignore_errors=True)
            train(trial_config({**config, "out": str(out)}), report=reporter)
        reporter.flush()  # the last policy update, if the throttle held it back
        if upload is not None:
            upload()
    tune.report(metrics_of(out))


def trial_row(trial: dict, metrics: dict | None, status: str = "done") -> dict:
    """One trials.csv row: the trial's grid point, status and headline metrics."""
    keep = ("run_dir", "search_seconds")
    picked = {
        k: v
        for k, v in (metrics or {}).items()
        if k in keep or k.startswith(("policy", "reward", "optimum", "gain", "acc"))
    }
    return {
        "ablation": trial["ablation"],
        "trial": trial["name"],
        **trial["overrides"],
        "status": status,
        **picked,
    }


def run_dir_of(sweep_dir: Path, trial: dict) -> Path:
    return sweep_dir / "tune" / trial["name"] / "run"


def finished_rows(cfg: SweepConfig, sweep_dir: Path, trials: list[dict]) -> list[dict]:
    """Rows of the trials whose run wrote results.json (plain JSON, in the sweep directory or the storage)."""
    rows = []
    for t in trials:
        if cfg.storage:
            text = store_file(run_store(cfg.storage, t), "results.json")
            if text is not None:
                rows.append(trial_row(t, metrics_from(json.loads(text), run_store(cfg.storage, t))))
        elif (run_dir_of(sweep_dir, t) / "results.json").is_file():
            rows.append(trial_row(t, metrics_of(run_dir_of(sweep_dir, t))))
    return rows


def write_trials_csv(sweep_dir: Path, rows: list[dict]) -> Path:
    import pandas as pd

    from natrl.rundir import write_text

    frame = pd.DataFrame(rows).sort_values(["ablation", "trial"])
    return write_text(sweep_dir / "trials.csv", frame.to_csv(index=False))


def check_inputs(cfg: SweepConfig):
    """A bad --table or --data fails here, once, not in every trial."""
    if cfg.reward == "nb201":
        from natrl.rewards import NB201Table

        NB201Table.load(cfg.table)
        if cfg.report_table:
            NB201Table.load(cfg.report_table)
    else:
        from natrl.datasets import load_cifar10

        load_cifar10(cfg.data)


def make_tuner(cfg: SweepConfig, sweep_dir: Path, trials: list[dict]):
    """A fresh Tuner over ``trials`` (never Tuner.restore, which unpickles tuner.pkl and the trial states)."""
    from ray import tune

    trainable = tune.with_resources(run_trial, trial_resources(cfg))
    base = train_base(cfg)
    scheduler = early_stopper(max_updates(cfg)) if cfg.scheduler == "asha" else None
    tuner = tune.Tuner(
        trainable,
        param_space={
            "trial": tune.grid_search(trials),
            "base": base,
            "sweep_dir": str(sweep_dir),
            "storage": cfg.storage,
        },
        tune_config=tune.TuneConfig(
            max_concurrent_trials=cfg.max_concurrent or None,
            scheduler=scheduler,
            trial_dirname_creator=lambda t: t.config["trial"]["name"],
            trial_name_creator=lambda t: t.config["trial"]["name"],
        ),
        run_config=tune.RunConfig(name="tune", storage_path=cfg.storage or str(sweep_dir), verbose=1),
    )
    return tuner, (scheduler.stopped if scheduler is not None else set())


def early_stopper(max_t: int):
    """ASHA over policy updates (``iter``; TuneReporter throttles the reports) that remembers the trials it
    stops: they end without results.json, and the sweep must tell them from trials that Ctrl-C stopped."""
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class RememberingASHA(ASHAScheduler):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.stopped: set[str] = set()

        def on_trial_result(self, tune_controller, trial, result: dict) -> str:
            action = super().on_trial_result(tune_controller, trial, result)
            if action == TrialScheduler.STOP:
                self.stopped.add(trial.config["trial"]["name"])
            return action

    return RememberingASHA(
        time_attr="iter", metric="reward_mean", mode="max", max_t=max_t, grace_period=max(1, max_t // 10)
    )


def max_updates(cfg: SweepConfig) -> int:
    """The most policy updates a trial of the sweep makes (ASHA's horizon)."""
    configs = [trial_config({"trial": t, "base": train_base(cfg), "out": None}) for t in trial_grid(cfg)]
    return max(c.iters * (c.epochs if c.reward == "supernet" else 1) for c in configs) + 1


def train_base(cfg: SweepConfig) -> dict:
    """The sweep's knobs every trial gets (None: the trial's preset decides)."""
    return {k: getattr(cfg, k) for k in TRAIN_KNOBS} | {"space": "darts" if cfg.reward == "supernet" else "nb201"}


def fit_rows(build_tuner, cfg: SweepConfig, sweep_dir: Path, pending: list[dict]) -> list[dict]:
    """Build the Tuner, fit it over the ``pending`` trials and return their trials.csv rows; a failure of Tune
    itself (not of a trial: a storage it cannot write, its internals) is one line.

    A trial is done when its run wrote results.json, failed when Tune recorded its error, stopped when ASHA
    stopped it (its row has its last progress), and otherwise unfinished: Ctrl-C makes Tune stop its trials and
    return from fit() normally, a stopped trial looking like one that reported and one not started yet absent."""
    try:
        tuner, early_stopped = build_tuner()
        grid = list(tuner.fit())
    except NatrlError:
        raise
    except Exception as e:  # TuneError, RayError, pyarrow errors of the storage: Tune's side, not a trial's
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise NatrlError(
            f"Ray Tune failed ({e.__class__.__name__}: {first}); finished trials are kept, "
            f"continue with: python experiments/sweep.py --resume {sweep_dir}"
        ) from None
    rows = {r["trial"]: r for r in finished_rows(cfg, sweep_dir, pending)}
    for r in grid:
        name = r.config["trial"]["name"] if r.config is not None else None
        if name in rows or name is None:
            continue
        if r.error:
            rows[name] = trial_row(r.config["trial"], r.metrics, "error")
        elif name in early_stopped:
            rows[name] = trial_row(r.config["trial"], r.metrics, "stopped")
    unfinished = len(pending) - len(rows)
    if unfinished:
        raise KeyboardInterrupt(
            f"interrupted: {unfinished} of {len(pending)} trial(s) unfinished; finished trials are kept, "
            f"continue with: python experiments/sweep.py --resume {sweep_dir}"
        )
    return [rows[t["name"]] for t in pending]


def sweep(cfg: SweepConfig, given=frozenset()) -> Path:
    """Run (or continue) the sweep; returns its directory."""
    from natrl.cluster import check_gpus, start_ray
    from natrl.rundir import RunDir, resume_config, write_json

    if cfg.resume:
        cfg = resume_config(SweepConfig, cfg, set(given), KIND)
    check_inputs(cfg)
    start_ray(cfg.address, num_gpus=cfg.num_gpus)
    check_gpus(cfg.num_gpus)
    run = RunDir.start(cfg, KIND, f"sweep-{cfg.reward}", root="sweeps", marker="tune")
    with run:
        sweep_dir = run.path.resolve()
        trials = trial_grid(cfg)
        print(
            f"{len(trials)} trials: {', '.join(cfg.ablations)} x {', '.join(cfg.rules)} x {cfg.seeds} seeds", flush=True
        )
        rows = finished_rows(cfg, sweep_dir, trials) if cfg.resume else []
        done = {r["trial"] for r in rows}
        pending = [t for t in trials if t["name"] not in done]
        if done:
            print(f"{len(done)} trial(s) finished before: reported from their results.json", flush=True)
        (sweep_dir / "tune").mkdir(exist_ok=True)
        run.keep()  # Tune's state is written from here on: the directory is resumable
        if pending:
            rows += fit_rows(lambda: make_tuner(cfg, sweep_dir, pending), cfg, sweep_dir, pending)
        csv_path = write_trials_csv(sweep_dir, rows)
        errors = sum(1 for r in rows if r["status"] == "error")
        stopped = sum(1 for r in rows if r["status"] == "stopped")
        write_json(sweep_dir / "status.json", {"trials": len(rows), "errors": errors, "stopped": stopped})
        early = f" ({stopped} stopped early by ASHA)" if stopped else ""
        print(f"{len(rows) - errors}/{len(rows)} trials done{early}; {csv_path}", flush=True)
        if errors:
            print(
                f"{errors} trial(s) failed (their error.txt is under {sweep_dir / 'tune'}); "
                f"rerun them with: python experiments/sweep.py --resume {sweep_dir}",
                flush=True,
            )
    print(json.dumps({"sweep_dir": str(sweep_dir)}))
    return sweep_dir
