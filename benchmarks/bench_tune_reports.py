"""What reporting every policy update to Ray Tune costs (a benchmark, not a test).

Run:
    python benchmarks/bench_tune_reports.py [--updates 10000] [--rounds 2] [--out DIR]

A sweep trial is a full training run inside a Tune function trainable (natrl.runs.sweep). Its TuneReporter
sends progress to Tune at most once a second; before 2026-11-26 it sent every policy update. This runs the same
trial (the NAT++ paper preset, m = n = 1, cut to ``--updates`` updates, tabular reward) in one-trial Tune
fits, alternating the two reporters (``min_interval_s`` 0 = every update, and 1 s) for ``--rounds`` rounds, so
load on the machine hits both alike. Per fit: the trial's policy-training seconds (its results.json), the fit's
wall seconds and the CPU seconds of the driver process (Tune's controller, loggers and progress table), and
the number of results Tune recorded. Writes bench_tune_reports.json and .md under --out.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path


def trial(config: dict):
    """Tune trainable: one paper-preset run reporting through a TuneReporter with the given interval."""
    from ray import tune

    from natrl.config import resolve
    from natrl.runs.sweep import TuneReporter
    from natrl.runs.transformer import TrainConfig, train

    cfg = resolve(TrainConfig, {"preset": "natpp", "iters": config["updates"], "out": config["out"], "seed": 0})
    reporter = TuneReporter(min_interval_s=config["min_interval_s"])
    train(cfg, report=reporter)
    reporter.flush()
    tune.report({"done_updates": config["updates"]})


def one_fit(updates: int, min_interval_s: float, root: Path) -> dict:
    from ray import tune

    out = root / f"run-{min_interval_s:g}-{time.time_ns()}"
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"updates": updates, "min_interval_s": min_interval_s, "out": str(out)},
        run_config=tune.RunConfig(name=out.name, storage_path=str(root / "tune"), verbose=0),
    )
    (result,) = list(tuner.fit())
    wall, cpu1 = time.perf_counter() - wall0, resource.getrusage(resource.RUSAGE_SELF)
    res = json.loads((out / "results.json").read_text())
    return {
        "min_interval_s": min_interval_s,
        "policy_training_s": res["search_seconds"],
        "fit_wall_s": round(wall, 1),
        "driver_cpu_s": round((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), 1),
        "tune_results": result.metrics_dataframe.shape[0] if result.metrics_dataframe is not None else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--updates", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            for interval in (0.0, 1.0) if r % 2 == 0 else (1.0, 0.0):
                rows.append(one_fit(args.updates, interval, Path(d)))
                print(json.dumps(rows[-1]), flush=True)
    summary = []
    for interval, name in ((0.0, "every update"), (1.0, "at most once a second")):
        mine = [r for r in rows if r["min_interval_s"] == interval]
        summary.append(
            {
                "reports": name,
                **{
                    k: statistics.median(r[k] for r in mine)
                    for k in ("policy_training_s", "fit_wall_s", "driver_cpu_s")
                },
                "tune_results": statistics.median(r["tune_results"] for r in mine),
            }
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_tune_reports.json").write_text(json.dumps({"updates": args.updates, "fits": rows}, indent=1))
    cols = list(summary[0])
    md = [
        f"One Tune trial of {args.updates} policy updates (--preset natpp, tabular reward), medians of "
        f"{args.rounds} fits per reporter, alternating.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    md += ["| " + " | ".join(str(s[c]) for c in cols) + " |" for s in summary]
    (out / "bench_tune_reports.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
