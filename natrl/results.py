"""Reading result directories and writing tables: the shared half of the analysis/ scripts.

A *run* is any directory holding ``config.json`` and ``results.json``: a train_natpp run (NB201 tabular or
supernet), a train_eval run (trained from scratch), or a trial of a sweep (``runs/<ablation>/<trial>/``).
``load_runs`` walks the given paths and returns one row per run; every row says where its numbers come from
(``source``), its seed and its run id, so every table can say the same.

Every file is read through :func:`read_json` and checked for the shape the tables need: a missing path, a
file given for a directory, undecodable bytes, malformed or deeply nested JSON, NaN, a list where an object
belongs, a missing key or a string where a number belongs is one :class:`~natrl.errors.NatrlError` line that
names the file and the fix. Outputs go through :class:`Outputs`: every file is checked before any is written
and each is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from natrl.errors import NatrlError
from natrl.rundir import check_new_output, save_figure, write_text

SOURCES = {  # results kind -> how its accuracy was measured
    "nb201": "tabular NAS-Bench-201",
    "supernet": "supernet proxy (60% split of the CIFAR-10 training set)",
    "scratch": "trained from scratch (test set, final epoch)",
}
FIX = "repair or remove that run"
# config fields the tables group or filter by, and their types (checked where present)
CONFIG_TYPES = {
    "seed": int,
    "m": int,
    "n": int,
    "gcn_layers": int,
    "iters": int,
    "lam": float,
    "holdout_frac": float,
    "rule": str,
    "policy": str,
    "tag": str,
    "space": str,
}


# ---- reading JSON ----------------------------------------------------------------------------------------


class _NonFinite(ValueError):
    pass


def _no_constants(name: str):
    raise _NonFinite(name)


def read_json(path, fix: str = FIX) -> Any:
    """The JSON value in ``path``; every way the file can be unreadable is one NatrlError naming it and ``fix``."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise NatrlError(f"{path} is not a regular file (a pipe or a device); {fix}")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NatrlError(f"{path} does not exist; {fix}") from None
    except IsADirectoryError:
        raise NatrlError(f"{path} is a directory, not a JSON file; {fix}") from None
    except OSError as e:
        raise NatrlError(f"cannot read {path} ({e.strerror}); {fix}") from None
    except UnicodeDecodeError:
        raise NatrlError(f"{path} is not UTF-8 text; {fix}") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise NatrlError(f"{path} is not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); {fix}") from None
    except RecursionError:
        raise NatrlError(f"{path} nests JSON too deeply to be a natrl file; {fix}") from None
    except _NonFinite as e:
        raise NatrlError(
            f"{path} holds {e}, not a finite number (the run failed or the file was edited); {fix}"
        ) from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value_at(obj, keys, where, kind: type = float, fix: str = FIX):
    """``obj[k0][k1]...`` checked to be a ``kind`` (float: any finite number), else one NatrlError line."""
    v = obj
    for i, k in enumerate(keys):
        if isinstance(k, int) and isinstance(v, list) and k < len(v):
            v = v[k]
            continue
        if not isinstance(v, dict) or k not in v:
            path = ".".join(map(str, keys[: i + 1]))
            raise NatrlError(f"{where} has no field '{path}'; {fix}")
        v = v[k]
    ok = _is_number(v) if kind is float else isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if not ok:
        name = {float: "a number", int: "an integer", str: "a string", list: "a list", dict: "an object"}[kind]
        raise NatrlError(f"{where}: field '{'.'.join(map(str, keys))}' is {v!r:.40}, not {name}; {fix}")
    return v


def read_object(path, fix: str = FIX) -> dict:
    """A JSON file that must hold an object."""
    obj = read_json(path, fix)
    if not isinstance(obj, dict):
        raise NatrlError(f"{path} holds a JSON {type(obj).__name__}, not an object; {fix}")
    return obj


# ---- one run ---------------------------------------------------------------------------------------------


def result_kind(results: dict) -> str:
    """nb201, supernet, scratch (train_eval) or unknown: what produced a results.json."""
    if results.get("kind") == "train_eval":
        return "scratch"
    if "rows" in results:
        return "nb201"
    if "gain" in results:
        return "supernet"
    return "unknown"


NB201_ROWS = {  # metric suffix -> row of an NB201 results.json
    "sample": "policy (1 sample)",
    "argmax": "policy (argmax)",
    "optimum": "per-input optimum",
    "random": "random valid",
    "fixed_rule": "best fixed per-op rule",
}


def measurements(res: dict) -> tuple[str, str | None]:
    """(selected on, reported on) of an NB201 results.json; results written before these were recorded chose
    on the reward table and, with a second table, reported its valid accuracy."""
    rows = res.get("rows", {})
    has_report = isinstance(rows.get("policy (1 sample)"), dict) and "report" in rows["policy (1 sample)"]
    selected = res.get("selected_on") or str(res.get("reward_table") or "the reward table")
    reported = res.get("reported_on") if "reported_on" in res else None
    if has_report and not reported:
        reported = f"{res.get('report_table') or 'report table'} valid-accuracy"
    return str(selected), (str(reported) if has_report else None)


def _nb201_metrics(res: dict, where: str) -> dict:
    """``gain_*``: the honest numbers, on the report measurement where there is one (else on the selection
    table, optimistic for the picks); ``select_gain_*``: on the selection (reward) table."""
    rows = value_at(res, ["rows"], where, dict)
    best = next((k for k in rows if k.startswith("policy (best of")), None)
    if best is None:
        raise NatrlError(f"{where} has no 'policy (best of k)' row; {FIX}")
    names = {**NB201_ROWS, "best_of": best}
    shown = "report" if measurements(res)[1] else "reward"
    out = {f"gain_{k}": value_at(rows, [row, shown, "mean"], where) for k, row in names.items()}
    out.update({f"select_gain_{k}": value_at(rows, [row, "reward", "mean"], where) for k, row in names.items()})
    return out


def headline_metrics(kind: str, res: dict, where: str = "results.json") -> dict:
    """The numbers tables are made of, flat, from a results.json of kind ``kind``; a missing or non-numeric
    field is one NatrlError line naming ``where``."""
    if kind == "nb201":
        return _nb201_metrics(res, where)
    if kind == "supernet":
        return {
            "gain_best_of": value_at(res, ["gain", "mean"], where),
            "acc_input": value_at(res, ["accuracy_input", "mean"], where),
            "acc_derived": value_at(res, ["accuracy_derived", "mean"], where),
        }
    if kind == "scratch":
        return {k: value_at(res, [k], where) for k in ("test_acc", "params_M", "madds_M")}
    return {}


def scratch_labels(res: dict, where: str) -> dict:
    """What a train_eval run trained: model, method, dataset (``ds``), epochs, layers, channels."""
    out = {k: value_at(res, [k], where, str) for k in ("model", "method")}
    out["ds"] = value_at(res, ["dataset"], where, str)
    out.update({k: value_at(res, [k], where, int) for k in ("epochs", "layers", "channels")})
    return out


def _checked_config(run: Path) -> dict:
    where = run / "config.json"
    record = read_object(where)
    cfg = record.get("config")
    if not isinstance(cfg, dict):
        raise NatrlError(f"{where} has no 'config' object (not written by a natrl run); {FIX}")
    value_at(cfg, ["seed"], where, int)
    for k, kind in CONFIG_TYPES.items():
        if cfg.get(k) is not None:
            value_at(cfg, [k], where, kind)
    return cfg


def _optional_number(res: dict, key: str, where: Path):
    return None if res.get(key) is None else value_at(res, [key], where)


def run_id(run: Path) -> str:
    """A run's name in tables: its directory's name, or for a sweep trial (``tune/<trial>/run``) the trial's."""
    return run.parent.name if run.name == "run" and run.parent.parent.name == "tune" else run.name


def load_run(run: Path) -> dict:
    """One table row of the run directory ``run`` (see :func:`load_runs`)."""
    cfg = _checked_config(run)
    where = run / "results.json"
    res = read_object(where)
    kind = result_kind(res)
    row = {
        **cfg,
        "kind": kind,
        "source": SOURCES.get(kind, kind),
        "run": run_id(run),
        "path": str(run),
        "search_seconds": _optional_number(res, "search_seconds", where),
        "reward_evaluations": _optional_number(res, "reward_evaluations", where),
    }
    row.update(headline_metrics(kind, res, str(where)))
    if kind == "nb201":
        row["selected_on"], row["reported_on"] = measurements(res)
    if kind == "scratch":
        row.update(scratch_labels(res, str(where)))
    return row


# ---- many runs -------------------------------------------------------------------------------------------


def _is_run(d: Path) -> bool:
    """results.json and a config.json (which :func:`load_run` refuses in one line if it is not a JSON file)."""
    return (d / "results.json").is_file() and (d / "config.json").exists()


def find_runs(root: Path) -> list[Path]:
    """The run directories at or below ``root`` (a run's own sub-folders are not searched)."""
    root = Path(root)
    if not root.exists():
        raise NatrlError(f"{root} does not exist; pass run or sweep directories (e.g. sweeps/nb201)")
    if not root.is_dir():
        raise NatrlError(f"{root} is a file; pass the run or sweep directory that holds it ({root.parent})")
    if (root / "results.json").exists() and not (root / "config.json").exists():
        raise NatrlError(f"{root} has results.json but no config.json; {FIX}")
    found = []
    for d, subdirs, _ in os.walk(root):
        subdirs.sort()
        if _is_run(Path(d)):
            found.append(Path(d))
            subdirs.clear()
    return found


def load_runs(paths) -> pd.DataFrame:
    """One row per run under ``paths``: config fields, ``kind``, ``source``, ``run`` (:func:`run_id`), ``path``,
    the headline metrics, and ``search_seconds`` / ``reward_evaluations`` where recorded. No run at all gives an
    empty frame (each table then says which runs it needs); a path without runs beside others with runs is an
    error (a mistyped directory is never silently left out)."""
    rows, empty = [], []
    for root in map(Path, paths):
        runs = find_runs(root)
        empty += [] if runs else [root]
        rows += [load_run(r) for r in runs]
    if rows and empty:
        raise NatrlError(
            f"{empty[0]} holds no runs (no folder with config.json and results.json); "
            "drop it or give the sweep or run directory you meant"
        )
    return pd.DataFrame(rows)


def read_derived(run: str | Path, kind: str) -> list[dict]:
    """derived.json of an NB201 or supernet run, one checked record per input:
    nb201 -> {input, input_acc, arch_str, acc} (the best-of-k derived cell; with a report measurement also
    input_report_acc, report_acc); supernet -> {input, derived,
    acc_input, acc_derived, params_M: (input, derived), madds_M: (input, derived)}."""
    path = Path(run) / "derived.json"
    records = read_json(path)
    if not isinstance(records, list) or not records:
        raise NatrlError(f"{path} holds no list of derived records; {FIX}")
    out = []
    for i, r in enumerate(records):
        where = f"{path} record {i}"
        if not isinstance(r, dict):
            raise NatrlError(f"{where} is not an object; {FIX}")
        out.append(_nb201_record(r, where) if kind == "nb201" else _supernet_record(r, where))
    return out


def _nb201_record(r: dict, where: str) -> dict:
    best = next((k for k in r if k.startswith("policy (best of")), None)
    if best is None:
        raise NatrlError(f"{where} has no 'policy (best of k)' entry; {FIX}")
    out = {
        "input": value_at(r, ["input"], where, str),
        "input_acc": value_at(r, ["input_acc"], where),
        "arch_str": value_at(r, [best, "arch_str"], where, str),
        "acc": value_at(r, [best, "acc"], where),
    }
    if "input_report_acc" in r:  # the report measurement of the same cells (the official test accuracy)
        out["input_report_acc"] = value_at(r, ["input_report_acc"], where)
        out["report_acc"] = value_at(r, [best, "report_acc"], where)
    return out


def _supernet_record(r: dict, where: str) -> dict:
    out = {
        "input": value_at(r, ["input_darts"], where, str),
        "derived": value_at(r, ["derived_darts"], where, str),
        "acc_input": value_at(r, ["acc_input"], where),
        "acc_derived": value_at(r, ["acc_derived"], where),
    }
    for k in ("params_M", "madds_M"):
        pair = value_at(r, [k], where, list)
        out[k] = (value_at(r, [k, 0], where), value_at(r, [k, 1], where)) if len(pair) == 2 else None
        if out[k] is None:
            raise NatrlError(f"{where}: field '{k}' must be [input, derived]; {FIX}")
    return out


def require(frame: pd.DataFrame, what: str, how: str) -> pd.DataFrame:
    """``frame`` itself, or a one-line error saying which runs are missing and the command that makes them."""
    if frame.empty:
        raise NatrlError(f"no {what} found; make them with: {how}")
    return frame


def require_fields(frame: pd.DataFrame, fields, what: str) -> pd.DataFrame:
    """Refuse runs that lack a config field a table groups by (naming the first such run)."""
    for f in fields:
        missing = frame[frame[f].isna()] if f in frame else frame
        if len(missing):
            raise NatrlError(f"{missing['path'].iloc[0]}/config.json has no '{f}', which {what} needs; {FIX}")
    return frame


def check_uniform(
    frame: pd.DataFrame, fields=("iters", "holdout_frac", "reward", "table", "reported_on")
) -> pd.DataFrame:
    """Refuse to average runs made with different budgets or reward tables into one cell. A table's cells are
    per transition rule, so the check is too: ``--preset papers`` runs NAT at NAT's budget and NAT++ at NAT++'s."""
    groups = frame.groupby("rule", dropna=False) if "rule" in frame else [(None, frame)]
    for rule, g in groups:
        for f in fields:
            if f in g and g[f].astype(str).nunique() > 1:
                values = ", ".join(sorted(g[f].astype(str).unique()))
                which = f" {rule} runs" if isinstance(rule, str) else " runs"
                raise NatrlError(f"the{which} differ in {f} ({values}); pass the directories of one sweep only")
    return frame


# ---- numbers and tables ----------------------------------------------------------------------------------


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(list(values), dtype=float)
    return float(v.mean()), float(v.std(ddof=0)) if len(v) > 1 else 0.0


def pm(mean: float, std: float, digits: int = 2) -> str:
    return (
        "-"
        if mean is None or (isinstance(mean, float) and math.isnan(mean))
        else f"{mean:.{digits}f} ± {std:.{digits}f}"
    )


def summarise(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of each metric per group, with the seeds and run ids that went in."""
    out = []
    for key, g in frame.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for m in metrics:  # a metric these runs do not record is NaN (shown as '-')
            row[f"{m}_mean"], row[f"{m}_std"] = mean_std(g.get(m, [math.nan]))
        row["seeds"] = " ".join(str(s) for s in sorted(g["seed"]))
        row["n_seeds"] = len(g)
        row["runs"] = " ".join(sorted(g["run"]))
        out.append(row)
    return pd.DataFrame(out)


def measurement_note(frame: pd.DataFrame) -> str:
    """For NB201 runs: the measurement every pick was chosen on and the one the numbers are reported on."""
    if "selected_on" not in frame or frame["selected_on"].isna().all():
        return ""
    selected = ", ".join(sorted(set(frame["selected_on"].dropna())))
    reported = sorted(set(frame["reported_on"].dropna())) if "reported_on" in frame else []
    if reported:
        return f" Selection (best of k, fixed rule, optimum) on {selected}; report on {', '.join(reported)}."
    return (
        f" Selection (best of k, fixed rule, optimum) and report both on {selected}: best-of-k numbers are "
        "optimistic (chosen and reported on one table)."
    )


def provenance(frame: pd.DataFrame) -> str:
    """Sentences saying where the numbers of ``frame`` come from and what chose and what reports them."""
    sources = sorted(set(frame["source"]))
    seeds = sorted({int(s) for s in frame["seed"]})
    return (
        f"Source: {'; '.join(sources)}; seeds {', '.join(map(str, seeds))}; {len(frame)} runs (run ids in the CSV)."
        + budget_note(frame)
        + measurement_note(frame)
    )


def budget_note(frame: pd.DataFrame) -> str:
    """' Policy updates per run: 1500.' or, when the rules ran different budgets (``--preset papers``),
    ' Policy updates per run: NAT 46900, NAT++ 93800.' (runs that trained 0 updates by design are left out)."""
    if "iters" not in frame or frame["iters"].isna().all():
        return ""
    runs = frame[frame["policy"] != "random"] if "policy" in frame else frame
    runs = runs.dropna(subset=["iters"])
    if runs.empty or ("kind" in runs and (runs["kind"] != "nb201").any()):
        return ""  # a supernet run's iters counts updates per supernet epoch; its own tables say so
    if "rule" in runs and runs.groupby("rule")["iters"].nunique().max() == 1 and runs["iters"].nunique() > 1:
        from natrl.tables.common import RULES

        per_rule = runs.groupby("rule")["iters"].first()
        return " Policy updates per run: " + ", ".join(f"{RULES.get(r, r)} {int(i)}" for r, i in per_rule.items()) + "."
    return " Policy updates per run: " + ", ".join(str(int(i)) for i in sorted(runs["iters"].unique())) + "."


def _latex_escape(s: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("±", r"$\pm$"),
        ("~", r"\textasciitilde{}"),
    ):
        s = s.replace(a, b)
    return s


def markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def latex(table: pd.DataFrame, caption: str) -> str:
    cols = list(table.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(caption)}}}",
        r"\begin{tabular}{" + "l" * len(cols) + "}",
        r"\toprule",
        " & ".join(_latex_escape(str(c)) for c in cols) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex_escape(str(v)) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


# ---- writing ---------------------------------------------------------------------------------------------


class Outputs:
    """The files a script writes into one ``--out`` folder: collected first, then :meth:`commit` checks every
    target (an existing file is refused unless ``force``), creates the folder and writes each file atomically.
    Nothing is written when any check fails."""

    def __init__(self, out_dir, force: bool = False, flag: str = "--out"):
        self.dir, self.force, self.flag = Path(out_dir), force, flag
        self.items: dict[str, tuple[str, Any]] = {}

    def text(self, name: str, text: str) -> str:
        self.items[name] = ("text", text)
        return text

    def csv(self, name: str, data):
        """A DataFrame, or a list of dicts (written as ``csv.DictWriter`` does: None -> empty, 528 -> 528); the
        columns are every key of any row, in order of first appearance (runs of older versions have fewer)."""
        if isinstance(data, pd.DataFrame):
            self.items[name] = ("text", data.to_csv(index=False))
            return
        buf = io.StringIO()
        if data:
            w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in data for k in row)))
            w.writeheader()
            w.writerows(data)
        self.items[name] = ("text", buf.getvalue())

    def figure(self, name: str, fig):
        self.items[name] = ("figure", fig)

    def table(self, stem: str, shown: pd.DataFrame, caption: str, data: pd.DataFrame | None = None) -> str:
        """``stem``.md (caption + table), ``stem``.tex and ``stem``.csv (``data``: the full numbers, seeds and
        run ids; default ``shown``). Returns the Markdown."""
        md = self.text(f"{stem}.md", f"{caption}\n\n{markdown(shown)}\n")
        self.text(f"{stem}.tex", latex(shown, caption) + "\n")
        self.csv(f"{stem}.csv", data if data is not None else shown)
        return md

    def check(self, names=None):
        """Refuse (one line) if ``--out`` is a file or a target exists and ``force`` is off; writes nothing."""
        if self.dir.exists() and not self.dir.is_dir():
            raise NatrlError(f"{self.flag} {self.dir} is a file; give a directory")
        if self.dir.is_dir():
            for name in self.items if names is None else names:
                check_new_output(self.dir / name, self.force, self.flag)

    def commit(self) -> list[Path]:
        self.check()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NatrlError(f"cannot create {self.flag} {self.dir}: {e.strerror}; choose a writable folder") from None
        written = []
        for name, (how, content) in self.items.items():
            written.append(write_file(self.dir / name, how, content, self.flag))
        return written


def write_file(path: Path, how: str, content, flag: str = "--out") -> Path:
    """``content`` (how="text": a str; "figure": a matplotlib figure, closed after) written atomically to
    ``path``; an OSError is one NatrlError line."""
    try:
        if how == "text":
            return write_text(path, content)
        return save_figure(content, path)
    except OSError as e:
        raise NatrlError(f"cannot write {path}: {e.strerror}; choose a writable {flag}") from None
    finally:
        if how == "figure":
            import matplotlib.pyplot as plt

            plt.close(content)


def write_table(
    out_dir: Path, stem: str, shown: pd.DataFrame, caption: str, data: pd.DataFrame | None = None, force: bool = True
) -> str:
    """``stem``.md, ``stem``.tex and ``stem``.csv written atomically into ``out_dir`` (see
    :meth:`Outputs.table`). Returns the Markdown."""
    out = Outputs(out_dir, force)
    md = out.table(stem, shown, caption, data)
    out.commit()
    return md
