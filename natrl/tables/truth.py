"""The supernet reward against ground truth on NAS-Bench-201 (issue 14), from run directories.

Reads runs of ``train_natpp.py --space nb201 --reward supernet`` (results.json, correlation.csv) and, for
comparison, tabular-reward runs (results.json): one table of true gains, mean +- std over the runs (seeds),
on the selection measurement and on the report measurement, and the curve of the rank correlation between the
supernet's R(alpha | beta) and the true gain against the supernet epoch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from natrl.config import knob
from natrl.errors import NatrlError
from natrl.results import Outputs
from natrl.tables.common import RunsTableConfig
from natrl.tables.convergence import read_rows

FIX = "train it with: python experiments/train_natpp.py --space nb201 --reward supernet --data CIFAR10"


@dataclass
class TruthConfig(RunsTableConfig):
    """Supernet-reward NB201 runs judged by the table's true accuracies."""

    tabular: list[str] = knob([], "tabular-reward NB201 runs (train_natpp.py) to show next to them", metavar="DIR")
    rescore_images: list[int] = knob(
        [],
        "re-score each run's final supernet on this many reward images (e.g. 64 128 256 512) and correlate "
        "R with the true gain for each (nb201_supernet_reward_images.csv/.md; minutes on CPU)",
    )

    rescore_batches: int = knob(
        0,
        "score each run's final supernet on this many reward batches (its reward size) and correlate R of each "
        "batch, and R averaged over the first k, with the true gain (nb201_supernet_batches.csv/.md); 0 = off",
        ge=0,
        le=400,
    )

    policy_pairs: bool = knob(
        False,
        "re-score each run's final supernet on its policy's own samples (5 per evaluation input) and on the random "
        "pairs of its correlation curve, on the same fixed batches; both correlated with the true gain "
        "(nb201_supernet_policy_pairs.csv/.md; minutes on CPU)",
    )

    def validate(self):
        super().validate()
        if any(not 1 <= k <= 30000 for k in self.rescore_images):
            raise NatrlError("--rescore-images takes image counts from 1 to 30000 (the 60% split)")


def read_results(run: Path, fix: str = FIX) -> dict:
    path = run / "results.json"
    if not path.is_file():
        raise NatrlError(f"{path} does not exist; {fix}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise NatrlError(f"{path} is not a readable results.json ({e.__class__.__name__}); {fix}") from None


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    a = np.array(values, dtype=float)
    return f"{a.mean():+.2f} ± {a.std():.2f}" if len(a) > 1 else f"{a[0]:+.2f}"


def gains_table(results: list[dict], tabular: list[dict]) -> tuple[list[dict], str]:
    """Rows (method, measurement -> mean +- std over runs) and their Markdown."""
    measures = [t for t in ("reward", "report") if all(t in r["rows"]["keep-all"] for r in results)]
    names = list(results[0]["rows"])
    rows = [
        {"method": name, **{m: [r["rows"][name][m]["mean"] for r in results if name in r["rows"]] for m in measures}}
        for name in names
    ]
    held = [r["all_heldout"] for r in results]
    for kind in ("sample", "argmax"):
        rows.append(
            {
                "method": f"policy ({kind}), all held-out inputs",
                **{m: [h[f"{kind}_{m}"] for h in held] for m in measures},
            }
        )
    same = {  # a tabular run's number is shown only where it measures what the supernet runs' column measures
        "reward": lambda t: t.get("selected_on") == results[0]["selected_on"],
        "report": lambda t: t.get("reported_on") == results[0]["reported_on"],
    }
    for kind, key in (("1 sample", "policy (1 sample)"), ("argmax", "policy (argmax)")):
        if tabular:
            rows.append(
                {
                    "method": f"tabular-reward policy ({kind}), all held-out inputs",
                    **{
                        m: [t["rows"][key][m]["mean"] for t in tabular if m in t["rows"][key] and same[m](t)]
                        for m in measures
                    },
                }
            )
    label = {"reward": f"selection: {results[0]['selected_on']}", "report": f"report: {results[0]['reported_on']}"}
    lines = ["| method | " + " | ".join(f"gain, {label[m]}" for m in measures) + " |", "|---|" + "---|" * len(measures)]
    lines += [f"| {r['method']} | " + " | ".join(_mean_std(r[m]) for m in measures) + " |" for r in rows]
    return rows, "\n".join(lines)


ABLATION_KNOBS = {  # config knob -> column: the supernet training choices the runs of one table may differ in
    "epochs": "epochs",
    "supernet_sampling": "sampling",
    "supernet_lr": "lr",
    "reward_images": "reward images",
    "reward_cache": "cached",
    "warmup_epochs": "warm-up",
    "iters": "updates / epoch",
    "seed": "seed",
}


def runs_table(
    runs: list[Path], results: list[dict], curves: list[dict], policy_tau: dict[str, float] | None = None
) -> tuple[list[dict], str]:
    """One row per run: its supernet choices, the last correlation point (and the tau on its policy's own
    samples: from the run, or ``policy_tau`` re-scored), and its true gains on the report measurement (the
    ablation table: every number is the run's own; nothing is chosen across runs)."""
    from natrl.rundir import read_config
    from natrl.runs.transformer import KIND

    rows = []
    for run, res, curve in zip(runs, results, curves):
        cfg = read_config(run, KIND)["config"]
        last = curve["rows"][-1]
        m = "report" if res.get("reported_on") else "reward"
        best = next(k for k in res["rows"] if k.startswith("policy (best of"))
        rows.append(
            {
                "run": run.name,
                **{col: cfg.get(k) for k, col in ABLATION_KNOBS.items()},
                "tau epoch": int(last["epoch"]),
                "eval batches": int(last.get("eval_batches", 0)),
                "kendall tau": last.get("kendall_select"),
                "spearman rho": last.get("spearman_select"),
                "kendall tau, policy's samples": (policy_tau or {}).get(
                    run.name, (res.get("policy_correlation") or {}).get("kendall_select")
                ),
                "1 sample, all held-out": round(res["all_heldout"][f"sample_{m}"], 2),
                "argmax, all held-out": round(res["all_heldout"][f"argmax_{m}"], 2),
                f"best of k by the supernet ({res['num_inputs']} inputs)": round(res["rows"][best][m]["mean"], 2),
            }
        )
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("-" if r[c] is None else str(r[c]) for c in cols) + " |" for r in rows]
    return rows, "\n".join(lines)


def rescore(run: Path, sizes: list[int], batches: int = 0) -> tuple[list[dict], list[dict]]:
    """The correlation of ``run``'s final supernet on each number of reward images, and over reward batches
    (natrl.truth); [] for what is not asked."""
    from natrl.config import config_from_dict
    from natrl.rewards import NB201Table
    from natrl.rundir import read_config
    from natrl.runs.derive import load_supernet
    from natrl.runs.transformer import KIND, TrainConfig
    from natrl.spaces import make_space
    from natrl.truth import correlation_by_reward_images, correlation_over_batches, random_pairs

    cfg = config_from_dict(TrainConfig, read_config(run, KIND)["config"], str(run / "config.json"))
    space = make_space("nb201", rule=cfg.rule, holdout_frac=cfg.holdout_frac)
    trainer = load_supernet(run, space)
    table = NB201Table.load(cfg.table)
    report = NB201Table.load(cfg.report_table) if cfg.report_table else None
    pairs = random_pairs(space, cfg.corr_pairs or 500, seed=cfg.seed)
    tag = {"run": run.name, "epoch": trainer.epoch}
    per_batch = [{**tag, **p} for p in correlation_over_batches(trainer, space, table, pairs, batches)]
    points = correlation_by_reward_images(trainer, space, table, report, pairs, sorted(sizes)) if sizes else []
    return [{**tag, **p} for p in points], per_batch


def policy_pairs_rescore(run: Path) -> list[dict]:
    """``run``'s final supernet on two sets of pairs, scored on the same fixed evaluation batches (the run's
    --corr-batches, else 2): the random pairs of its correlation curve and its policy's own samples (the
    evaluation's inputs and samples, re-drawn with the run's seed)."""
    import torch

    from natrl.config import config_from_dict
    from natrl.rewards import NB201Table
    from natrl.rewards.supernet import SupernetReward  # torch: imported only when re-scoring
    from natrl.rundir import read_config
    from natrl.runs.derive import load_policy, load_supernet
    from natrl.runs.transformer import KIND, TrainConfig
    from natrl.truth import correlation_point, policy_pairs, policy_samples, random_pairs

    class TrainerScores(SupernetReward):
        """The reloaded trainer as a reward backend: its score_on_batches is what correlation_point uses."""

        def __init__(self, trainer):
            super().__init__(trainer.space)
            self.trainer = trainer

        def _score_distinct(self, genotypes: list, batch_index: int) -> np.ndarray:
            with torch.no_grad():
                return self.trainer.score(genotypes, batch_index)

    cfg = config_from_dict(TrainConfig, read_config(run, KIND)["config"], str(run / "config.json"))
    module, space = load_policy(run)
    backend = TrainerScores(load_supernet(run, space))
    table = NB201Table.load(cfg.table)
    report = NB201Table.load(cfg.report_table) if cfg.report_table else None
    betas, _, samples = policy_samples(module, space, cfg.eval_inputs, cfg.best_of, cfg.seed)
    batches = cfg.corr_batches or 2
    rows = []
    for name, pairs in (
        ("random", random_pairs(space, cfg.corr_pairs or 500, seed=cfg.seed)),
        ("policy", policy_pairs(samples, betas)),
    ):
        started = time.time()
        point = correlation_point(backend, space, table, report, pairs, batches)
        rows.append({"run": run.name, "pairs_from": name, "epoch": backend.trainer.epoch, **point})
        print(
            f"{run.name}: {point['pairs']} {name} pairs re-scored, Kendall tau {point['kendall_select']:+.3f} "
            f"({time.time() - started:.0f} s)",
            flush=True,
        )
    return rows


def policy_pair_rows(run: Path, results: dict, curve: dict) -> list[dict]:
    """The random-pair and policy-pair rows of ``run``: from the run itself when its evaluation scored its
    policy's samples (``policy_correlation``; the random pairs are its curve's last point, on the same fixed
    batches), else re-scored from its files (minutes on CPU). A test checks the two ways agree."""
    stored, last = results.get("policy_correlation"), curve["rows"][-1]
    if stored is None or int(last.get("eval_batches", 0)) != stored["eval_batches"]:
        return [{**row, "source": "re-scored"} for row in policy_pairs_rescore(run)]
    tag = {"run": run.name, "epoch": int(last["epoch"])}
    random_point = {k: v for k, v in last.items() if k not in ("epoch", "supernet_loss")}
    return [
        {**tag, "pairs_from": "random", **random_point, "source": "in run"},
        {**tag, "pairs_from": "policy", **stored, "source": "in run"},
    ]


def policy_pairs_markdown(rows: list[dict]) -> str:
    cols = [k for k in rows[0] if k not in ("run", "pairs_from", "epoch", "eval_batches", "source")] + ["source"]
    lines = ["| run | pairs from | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    lines += [f"| {r['run']} | {r['pairs_from']} | " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return (
        "The final supernet's R(alpha|beta) against the true gain on two sets of pairs of the same held-out inputs: "
        "uniformly random valid transformations (the correlation curve's), and the policy's own samples (5 of "
        f"each input). Each R is the mean over {rows[0]['eval_batches']} fixed evaluation batches; mean_R is the "
        "supernet's mean gain (points), mean_gain the true one (selection table / report).\n\n"
        + "\n".join(lines)
        + "\n"
    )


def correlation_curves(runs: list[Path]) -> list[dict]:
    return [{"run": run.name, "rows": read_rows(run / "correlation.csv", FIX, key="epoch")} for run in runs]


def reward_images_markdown(points: list[dict]) -> str:
    """Kendall tau / Spearman rho by reward images, mean ± std over runs."""
    sizes = sorted({p["reward_images"] for p in points})
    keys = [k for k in ("kendall_select", "spearman_select", "kendall_report", "spearman_report") if k in points[0]]
    lines = ["| reward images | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for size in sizes:
        at = [p for p in points if p["reward_images"] == size]
        lines.append(f"| {size} | " + " | ".join(_mean_std([p[k] for p in at]).replace("+", "") for k in keys) + " |")
    runs = sorted({p["run"] for p in points})
    return (
        f"Rank correlation of the final supernet's R(alpha|beta) with the true gain, by the number of reward "
        f"images a reward is measured on ({points[0]['pairs']} pairs; runs: {', '.join(runs)}).\n\n"
        + "\n".join(lines)
        + "\n"
    )


def batches_markdown(rows: list[dict]) -> str:
    """Per run: tau of single reward batches (mean, min, max) and of the average of all of them."""
    lines = [
        "| run | batches x images | tau of one batch: mean (min..max) | tau of their average | rho of their average |",
        "|---|---|---|---|---|",
    ]
    for run in sorted({r["run"] for r in rows}):
        mine = [r for r in rows if r["run"] == run]
        single = np.array([r["kendall_this_batch"] for r in mine])
        last = mine[-1]
        lines.append(
            f"| {run} | {len(mine)} x {mine[0]['batch_images']} | {single.mean():.3f} ({single.min():.3f}.."
            f"{single.max():.3f}) | {last['kendall_mean_of_batches']:.3f} | {last['spearman_mean_of_batches']:.3f} |"
        )
    return (
        "Kendall tau of the final supernet's R(alpha|beta) with the true gain (selection table) when R is measured "
        "on one reward batch, and on the average of the batches.\n\n" + "\n".join(lines) + "\n"
    )


def curve_figure(curves: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    cmap = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    colors = [cmap(i) for i in range(cmap.N)]
    for i, c in enumerate(curves):  # a color per run; the line style tells the measurement
        epochs = [r["epoch"] for r in c["rows"]]
        for key, style in (("kendall_select", "o-"), ("kendall_report", "s:")):
            if key in c["rows"][0]:
                label = f"{c['run']} ({key.split('_')[1]})"
                ax.plot(epochs, [r[key] for r in c["rows"]], style, color=colors[i % len(colors)], ms=3, label=label)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="supernet epoch", ylabel="Kendall tau, supernet R vs true gain", title="supernet vs NAS-Bench-201")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: lines stay visible
    fig.tight_layout()
    return fig


def truth_tables(cfg: TruthConfig, given=None) -> list[Path]:
    runs, tab_runs = [Path(p) for p in cfg.paths], [Path(p) for p in cfg.tabular]
    for run in runs + tab_runs:
        if not run.is_dir():
            raise NatrlError(f"{run} is not a run directory; give directories written by train_natpp.py")
    results = [read_results(r) for r in runs]
    if any("all_heldout" not in r for r in results):
        raise NatrlError(f"{', '.join(cfg.paths)}: not all are --reward supernet runs on nb201; {FIX}")
    tabular = [read_results(r, "train it with: python experiments/train_natpp.py") for r in tab_runs]
    rows, table = gains_table(results, tabular)
    curves = correlation_curves(runs)
    last = [c["rows"][-1] for c in curves]
    taus = {k: [p[k] for p in last if k in p] for k in ("kendall_select", "spearman_select", "kendall_report")}
    caption = (
        f"True accuracy gain (points) of the cells derived with a supernet-trained policy, mean ± std over "
        f"{len(runs)} run(s), on {results[0]['num_inputs']} random held-out inputs unless stated. Picks: "
        f"{results[0]['picks']}. Rank correlation of the supernet's R(alpha|beta) with the true gain after the "
        f"last supernet epoch: " + ", ".join(f"{k} {_mean_std(v)}" for k, v in taus.items() if v) + "."
    )
    rescored: list[dict] = []
    per_batch: list[dict] = []
    if cfg.rescore_images or cfg.rescore_batches:
        for i, run in enumerate(runs, 1):
            print(f"re-scoring {run.name} ({i}/{len(runs)}) ...", flush=True)
            sizes, batches = rescore(run, cfg.rescore_images, cfg.rescore_batches)
            rescored += sizes
            per_batch += batches
    policy_rows = (
        [row for run, res, c in zip(runs, results, curves) for row in policy_pair_rows(run, res, c)]
        if cfg.policy_pairs
        else []
    )
    out = Outputs(cfg.out, cfg.force)
    if policy_rows:
        out.csv("nb201_supernet_policy_pairs.csv", policy_rows)
        out.text("nb201_supernet_policy_pairs.md", policy_pairs_markdown(policy_rows))
    if rescored:
        out.csv("nb201_supernet_reward_images.csv", rescored)
        out.text("nb201_supernet_reward_images.md", reward_images_markdown(rescored))
    if per_batch:
        out.csv("nb201_supernet_batches.csv", per_batch)
        out.text("nb201_supernet_batches.md", batches_markdown(per_batch))
    out.csv(
        "nb201_supernet_gains.csv",
        [{"method": r["method"], **{m: json.dumps(r[m]) for m in r if m != "method"}} for r in rows],
    )
    out.csv("nb201_supernet_correlation.csv", [{"run": c["run"], **r} for c in curves for r in c["rows"]])
    out.text("nb201_supernet.md", f"{caption}\n\n{table}\n")
    policy_tau = {r["run"]: r["kendall_select"] for r in policy_rows if r["pairs_from"] == "policy"}
    per_run, per_run_md = runs_table(runs, results, curves, policy_tau)
    report = results[0]["reported_on"] or results[0]["selected_on"]
    out.csv("nb201_supernet_runs.csv", per_run)
    out.text(
        "nb201_supernet_runs.md",
        f"Per run: the supernet's training choices, the Kendall tau / Spearman rho of its R(alpha|beta) with the "
        f"true gain on the selection table at its last correlation point (eval batches 0: one reward batch) and "
        f"on its policy's own samples (where measured; '-' otherwise), and "
        f"the true gains (points) of its derived cells on {report}.\n\n{per_run_md}\n",
    )
    out.figure("nb201_supernet_correlation.png", curve_figure(curves))
    written = out.commit()
    print(f"{caption}\n\n{table}")
    return written
