"""NAT++ Fig. 8: convergence of the transformer on NAS-Bench-201, from run directories.

Two curves per run against the policy update: the training reward (the batch mean of R(alpha | beta), from
progress.csv, smoothed) and the mean gain of the cells the policy derives for the held-out inputs at that
point (one sample and the argmax; convergence.csv, written by ``train_natpp.py --eval-every N``). The derived
cells are reported on the report measurement (the official test accuracy) when the run had one, else on the
reward table; nothing on the curve is chosen, so neither is optimistic.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from natrl.errors import NatrlError
from natrl.results import Outputs
from natrl.tables.common import RunsTableConfig


@dataclass
class Fig8Config(RunsTableConfig):
    """NAT++ Fig. 8 from NB201 runs trained with --eval-every."""


def read_rows(path: Path, fix: str, key: str = "iter") -> list[dict]:
    """The rows of a run's CSV as floats (with a ``key`` column); one line naming the file and ``fix`` otherwise."""
    if not path.is_file():
        raise NatrlError(f"{path} does not exist; {fix}")
    try:
        with open(path, newline="") as f:
            rows = [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as e:
        raise NatrlError(f"{path} is not a readable CSV of numbers ({e.__class__.__name__}); {fix}") from None
    if not rows or key not in rows[0]:
        raise NatrlError(f"{path} has no rows with an {key} column; {fix}")
    return rows


def run_curves(run: Path) -> dict:
    """(update, smoothed training reward) and (update, held-out gains) of one run."""
    fix = f"train it with: python experiments/train_natpp.py --eval-every 100 --out {run}"
    progress = read_rows(run / "progress.csv", fix)
    points = read_rows(run / "convergence.csv", fix)
    reward = np.array([r.get("reward_mean", np.nan) for r in progress])
    k = max(1, len(reward) // 50)
    smooth = np.array([np.nanmean(reward[max(0, i - k + 1) : i + 1]) for i in range(len(reward))])
    measure = "report" if "sample_report" in points[0] else "reward"
    return {
        "run": run.name,
        "updates": np.array([r["iter"] for r in progress]),
        "reward": smooth,
        "eval_updates": np.array([p["iter"] for p in points]),
        "sample": np.array([p[f"sample_{measure}"] for p in points]),
        "argmax": np.array([p[f"argmax_{measure}"] for p in points]),
        "measure": "official test accuracy" if measure == "report" else "the reward table",
    }


def fig8_figure(curves: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_g) = plt.subplots(1, 2, figsize=(10, 3.6))
    for c in curves:
        ax_r.plot(c["updates"], c["reward"], lw=1.2, label=c["run"])
        (line,) = ax_g.plot(c["eval_updates"], c["sample"], "o-", ms=3, label=f"{c['run']} (1 sample)")
        ax_g.plot(c["eval_updates"], c["argmax"], "--", color=line.get_color(), label=f"{c['run']} (argmax)")
    ax_r.set(xlabel="policy update", ylabel="training reward R(alpha|beta) (points)", title="transformer reward")
    ax_g.set(xlabel="policy update", ylabel="held-out gain (points)", title="derived cells, held-out inputs")
    for ax in (ax_r, ax_g):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig8(cfg: Fig8Config, given=None) -> list[Path]:
    runs = [Path(p) for p in cfg.paths]
    for run in runs:
        if not run.is_dir():
            raise NatrlError(f"{run} is not a run directory; give directories written by train_natpp.py")
    curves = [run_curves(run) for run in runs]
    rows = [
        {"run": c["run"], "iter": int(u), "gain_sample": s, "gain_argmax": a, "measurement": c["measure"]}
        for c in curves
        for u, s, a in zip(c["eval_updates"], c["sample"], c["argmax"])
    ]
    last = "\n".join(
        f"- {c['run']}: after {int(c['eval_updates'][-1])} updates {c['sample'][-1]:+.2f} (1 sample), "
        f"{c['argmax'][-1]:+.2f} (argmax) on {c['measure']}"
        for c in curves
    )
    caption = (
        "NAT++ Fig. 8: training reward (batch mean, smoothed) and the mean gain (points) of the cells the policy "
        "derives for every held-out input, against the policy update. Nothing is chosen on the curve (no best of "
        "k): the held-out gains are not optimistic."
    )
    out = Outputs(cfg.out, cfg.force)
    out.csv("fig8.csv", rows)
    out.text("fig8.md", f"{caption}\n\n{last}\n")
    out.figure("fig8.png", fig8_figure(curves))
    written = out.commit()
    print(f"{caption}\n\n{last}")
    return written
