"""Reading result directories and writing tables: the shared half of the analysis/ scripts.

A *run* is any directory holding ``config.json`` and ``results.json``: a train_natpp run (NB201 tabular or
supernet), a train_eval run (trained from scratch), or a trial of a sweep (``runs/<ablation>/<trial>/``).
``load_runs`` walks the given paths and returns one row per run; every row says where its numbers come from
(``source``), its seed and its run id, so every table can say the same.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from natrl.errors import NatrlError

SOURCES = {  # results kind -> how its accuracy was measured
    "nb201": "tabular NAS-Bench-201",
    "supernet": "supernet proxy (60% split of the CIFAR-10 training set)",
    "scratch": "trained from scratch (test set, final epoch)",
}


def result_kind(results: dict) -> str:
    """nb201, supernet, scratch (train_eval) or unknown: what produced a results.json."""
    if results.get("kind") == "train_eval":
        return "scratch"
    if "rows" in results:
        return "nb201"
    if "gain" in results:
        return "supernet"
    return "unknown"


def headline_metrics(kind: str, res: dict) -> dict:
    """The numbers tables are made of, flat, from a results.json of kind ``kind``."""
    if kind == "nb201":
        rows = res["rows"]
        best = next(k for k in rows if k.startswith("policy (best of"))
        out = {"gain_sample": rows["policy (1 sample)"]["reward"]["mean"],
               "gain_argmax": rows["policy (argmax)"]["reward"]["mean"],
               "gain_best_of": rows[best]["reward"]["mean"],
               "gain_optimum": rows["per-input optimum"]["reward"]["mean"],
               "gain_random": rows["random valid"]["reward"]["mean"],
               "gain_fixed_rule": rows["best fixed per-op rule"]["reward"]["mean"]}
        if "report" in rows["policy (1 sample)"]:
            out.update({"report_gain_sample": rows["policy (1 sample)"]["report"]["mean"],
                        "report_gain_argmax": rows["policy (argmax)"]["report"]["mean"],
                        "report_gain_best_of": rows[best]["report"]["mean"]})
        return out
    if kind == "supernet":
        return {"gain_best_of": res["gain"]["mean"], "acc_input": res["accuracy_input"]["mean"],
                "acc_derived": res["accuracy_derived"]["mean"]}
    if kind == "scratch":
        return {"test_acc": res["test_acc"], "params_M": res["params_M"], "madds_M": res["madds_M"]}
    return {}


def load_runs(paths) -> pd.DataFrame:
    """One row per run under ``paths``: config fields, ``kind``, ``source``, ``run`` (directory name), ``path``,
    the headline metrics, and ``search_seconds`` / ``reward_evaluations`` where recorded."""
    rows = []
    for root in map(Path, paths):
        if not root.exists():
            raise NatrlError(f"{root} does not exist; pass run or sweep directories (e.g. sweeps/nb201)")
        found = [root / "results.json"] if (root / "results.json").exists() else sorted(root.rglob("results.json"))
        for res_path in found:
            run = res_path.parent
            if not (run / "config.json").exists():
                continue
            try:
                res = json.loads(res_path.read_text())
                cfg = json.loads((run / "config.json").read_text())["config"]
            except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
                raise NatrlError(f"{run} has an unreadable config.json/results.json ({e.__class__.__name__}); "
                                 "remove or repair that run") from None
            kind = result_kind(res)
            row = {**cfg, "kind": kind, "source": SOURCES.get(kind, kind), "run": run.name, "path": str(run),
                   "search_seconds": res.get("search_seconds"), "reward_evaluations": res.get("reward_evaluations")}
            row.update(headline_metrics(kind, res))
            rows.append(row)
    return pd.DataFrame(rows)


def require(frame: pd.DataFrame, what: str, how: str) -> pd.DataFrame:
    """``frame`` itself, or a one-line error saying which runs are missing and the command that makes them."""
    if frame.empty:
        raise NatrlError(f"no {what} found; make them with: {how}")
    return frame


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(list(values), dtype=float)
    return float(v.mean()), float(v.std(ddof=0)) if len(v) > 1 else 0.0


def pm(mean: float, std: float, digits: int = 2) -> str:
    return "-" if mean is None or (isinstance(mean, float) and math.isnan(mean)) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarise(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of each metric per group, with the seeds and run ids that went in."""
    out = []
    for key, g in frame.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_std"] = mean_std(g[m])
        row["seeds"] = " ".join(str(s) for s in sorted(g["seed"]))
        row["n_seeds"] = len(g)
        row["runs"] = " ".join(sorted(g["run"]))
        out.append(row)
    return pd.DataFrame(out)


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("~", r"\textasciitilde{}")):
        s = s.replace(a, b)
    return s


def markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def latex(table: pd.DataFrame, caption: str) -> str:
    cols = list(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex_escape(caption)}}}",
             r"\begin{tabular}{" + "l" * len(cols) + "}", r"\toprule",
             " & ".join(_latex_escape(str(c)) for c in cols) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(str(v)) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def write_table(out_dir: Path, stem: str, shown: pd.DataFrame, caption: str, data: pd.DataFrame | None = None) -> str:
    """``stem``.md (caption + table), ``stem``.tex and ``stem``.csv (``data``: the full numbers, seeds and run
    ids; default ``shown``). Returns the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = f"{caption}\n\n{markdown(shown)}\n"
    (out_dir / f"{stem}.md").write_text(md)
    (out_dir / f"{stem}.tex").write_text(latex(shown, caption) + "\n")
    (data if data is not None else shown).to_csv(out_dir / f"{stem}.csv", index=False)
    return md


def provenance(frame: pd.DataFrame) -> str:
    """A sentence saying where the numbers of ``frame`` come from."""
    sources = sorted(set(frame["source"]))
    seeds = sorted(set(int(s) for s in frame["seed"]))
    return f"Source: {'; '.join(sources)}; seeds {', '.join(map(str, seeds))}; {len(frame)} runs (run ids in the CSV)."


def check_uniform(frame: pd.DataFrame, fields=("iters", "holdout_frac", "reward", "table")) -> pd.DataFrame:
    """Refuse to average runs made with different budgets or reward tables into one cell."""
    for f in fields:
        if f in frame and frame[f].astype(str).nunique() > 1:
            values = ", ".join(sorted(frame[f].astype(str).unique()))
            raise NatrlError(f"the runs differ in {f} ({values}); pass the directories of one sweep only")
    return frame
