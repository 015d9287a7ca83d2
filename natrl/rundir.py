"""The run lifecycle every run kind shares: a run directory, created only after every input was checked, or
reopened to resume; its config, versions and git commit; a ``progress.csv`` that a resume continues; a
``log.txt`` copy of stdout; atomic writes of every output; one checkpoint file of plain tensors.

    run = RunDir.start(cfg, kind="transformer", name="natpp-nb201-gcn-s0")   # or cfg.resume -> reopen
    with run:                                   # stdout -> log.txt; a failure before any checkpoint removes
        state = run.load_checkpoint()           # the directory again, so the same --out can be used again
        ...
        run.progress.log({"iter": i, ...})
        run.save_checkpoint({"algo": ..., "progress_rows": run.progress.rows})
        run.write_json("results.json", results)

Checkpoints hold only tensors, numbers, strings and containers of them (``torch.load(weights_only=True)``),
so resuming a directory someone gave you never runs code from it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from natrl.errors import NatrlError

PACKAGES = ("natrl", "torch", "ray", "gymnasium", "numpy", "pandas", "matplotlib", "analog-nasbench")
CONFIG, CHECKPOINT, PROGRESS, LOG = "config.json", "checkpoint.pt", "progress.csv", "log.txt"
MAX_CONFIG_BYTES = 10 * 1024**2


def versions() -> dict:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


# ---- atomic writes ---------------------------------------------------------------------------------------


def _replace_from_tmp(path: Path, write) -> Path:
    """Write through ``path.tmp`` and rename: a kill mid-write never leaves a truncated file behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str) -> Path:
    return _replace_from_tmp(path, lambda t: t.write_text(text))


def write_json(path: Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def write_csv(path: Path, rows: list[dict]) -> Path:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return write_text(path, buf.getvalue())


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """``fig.savefig`` through a temporary file (the format named by the final suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return _replace_from_tmp(path, lambda t: fig.savefig(t, dpi=dpi, format=fmt))


def check_new_output(path: Path, force: bool = False, flag: str = "--out") -> Path:
    """An output file we may write: not a directory, its folder exists, and no file there unless ``force``."""
    path = Path(path)
    if path.is_dir():
        raise NatrlError(f"{flag} {path} is a directory; give a file name")
    if path.exists() and not force:
        raise NatrlError(f"{path} exists; pass --force to overwrite it or give a new {flag}")
    if not path.parent.is_dir():
        raise NatrlError(f"{flag} {path}: folder {path.parent} does not exist; create it or give another path")
    return path


# ---- checkpoints -----------------------------------------------------------------------------------------


def save_checkpoint_file(path: Path, state: dict):
    """torch.save to ``path`` through a temporary file: a kill mid-write keeps the previous checkpoint."""
    import torch

    _replace_from_tmp(path, lambda t: torch.save(state, t))


def read_checkpoint_file(path: Path, what: str = "the run") -> dict:
    """torch.load(weights_only=True), or one line saying why the checkpoint cannot be resumed from."""
    import torch

    if Path(path).is_dir():
        raise NatrlError(f"checkpoint {path} is a directory; give the run directory that holds it")
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block torch.load
        raise NatrlError(f"checkpoint {path} is not a regular file; {what} cannot use it")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # torch raises many types for a truncated, foreign or unsafe file
        text = str(e).strip()
        if "Weights only load failed" in text:  # a pickle carrying objects: never unpickled
            reason = "it holds pickled objects, not plain tensors, and natrl does not unpickle those"
        else:
            reason = f"truncated or not a torch checkpoint: {e.__class__.__name__}"
        raise NatrlError(
            f"cannot read checkpoint {path} ({reason}); {what} cannot use it: restore the file or start a new run"
        ) from None
    if not isinstance(state, dict):
        raise NatrlError(f"checkpoint {path} is not a natrl checkpoint; {what} cannot use it")
    return state


def rng_state() -> dict:
    """The global RNGs a run draws from (Python, NumPy, torch), as plain data."""
    import torch

    py = random.getstate()
    _, keys, pos, *_ = np.random.get_state(legacy=True)
    return {
        "python": list(py[1]),
        "python_pos": py[2],
        "numpy": np.asarray(keys).tolist(),
        "numpy_pos": int(pos),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(s: dict):
    import torch

    random.setstate((3, tuple(s["python"]), s["python_pos"]))
    np.random.set_state(("MT19937", np.asarray(s["numpy"], dtype=np.uint32), s["numpy_pos"], 0, 0.0))
    torch.set_rng_state(s["torch"])


def seed_everything(seed: int):
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---- progress and log ------------------------------------------------------------------------------------


class Progress:
    """``progress.csv``, one row per step; a resumed run first cuts it back to the checkpoint's row count."""

    def __init__(self, path: Path, keep_rows: int | None = None):
        self.path, self.rows = path, []
        if keep_rows is not None and path.exists():
            with open(path, newline="") as f:
                self.rows = [{k: _number(v) for k, v in r.items()} for r in list(csv.DictReader(f))[:keep_rows]]
            if len(self.rows) != keep_rows:
                raise NatrlError(
                    f"{path} has fewer rows than its checkpoint ({len(self.rows)} < {keep_rows}); "
                    "the run directory was edited and cannot be resumed"
                )
        write_csv(path, self.rows)
        self._f = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._f, fieldnames=list(self.rows[0])) if self.rows else None

    def log(self, row: dict):
        if self._writer is None:
            self._writer = csv.DictWriter(self._f, fieldnames=list(row))
            self._writer.writeheader()
        self._writer.writerow(row)
        self.rows.append(row)

    def flush(self):
        self._f.flush()

    def close(self):
        self._f.close()


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


# ---- the run directory -----------------------------------------------------------------------------------


class RunDir:
    """One run's directory and its lifecycle (see the module docstring)."""

    def __init__(self, path: Path, kind: str, resumed: bool):
        self.path, self.kind, self.resumed = Path(path), kind, resumed
        self.progress: Progress | None = None
        self.record: dict = {}
        self._checkpointed = resumed
        self._log: Any = None
        self._stdout: Any = None

    # -- creating and reopening --
    @classmethod
    def start(cls, cfg, kind: str, name: str, root: str = "runs", marker: str = CHECKPOINT) -> RunDir:
        """A new run directory for ``cfg`` (``cfg.out`` or ``root/name-<time>``), or the one ``cfg.resume``
        names, reopened (it must hold ``marker``, the file or folder a resume continues from). Call it after
        every other input was checked: it is the first thing that writes."""
        if getattr(cfg, "resume", None):
            return cls.reopen(cfg.resume, kind, marker)
        out = Path(cfg.out) if getattr(cfg, "out", None) else Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        check_new_run_dir(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NatrlError(f"cannot create run directory {out}: {e.strerror}; choose a writable --out") from None
        record = {
            "kind": kind,
            "config": dataclasses.asdict(cfg),
            "argv": sys.argv,
            "versions": versions(),
            "git_commit": git_commit(),
            "host": platform.node(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json(out / CONFIG, record)
        run = cls(out, kind, resumed=False)
        run.record = json.loads((out / CONFIG).read_text())  # as a resume will read it back
        return run

    @classmethod
    def reopen(cls, path, kind: str, marker: str = CHECKPOINT) -> RunDir:
        path = Path(path)
        record = read_config(path, kind)
        _check_marker(path, marker)
        run = cls(path, kind, resumed=True)
        run.record = record
        return run

    # -- lifecycle --
    def __enter__(self) -> RunDir:
        self._log = open(self.path / LOG, "a")
        self._stdout = sys.stdout
        sys.stdout = _Tee(self._stdout, self._log)
        print(f"run directory: {self.path}" + (" (resumed)" if self.resumed else ""), flush=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.progress is not None:
            self.progress.close()
        sys.stdout = self._stdout
        self._log.close()
        if exc_type is not None and not self._checkpointed:
            shutil.rmtree(self.path, ignore_errors=True)  # nothing to resume: the same --out can be used again
        return False

    def keep(self):
        """From now on the directory holds work worth keeping: a failure no longer removes it."""
        self._checkpointed = True

    def open_progress(self, keep_rows: int | None = None) -> Progress:
        self.progress = Progress(self.path / PROGRESS, keep_rows if self.resumed else None)
        return self.progress

    # -- outputs --
    def write_json(self, name: str, obj) -> Path:
        return write_json(self.path / name, obj)

    def write_text(self, name: str, text: str) -> Path:
        return write_text(self.path / name, text)

    def write_csv(self, name: str, rows: list[dict]) -> Path:
        return write_csv(self.path / name, rows)

    def save_figure(self, name: str, fig) -> Path:
        return save_figure(fig, self.path / name)

    # -- checkpoints --
    def save_checkpoint(self, state: dict[str, Any]):
        """One file of plain data; ``state`` values with ``state_dict()`` are stored through it."""
        plain = {k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in state.items()}
        plain["__natrl__"] = {"kind": self.kind, "config": self.record["config"]}
        save_checkpoint_file(self.path / CHECKPOINT, plain)
        self._checkpointed = True

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint of a resumed run (None for a new run), checked to belong to this run's config."""
        if not self.resumed:
            return None
        return checked_checkpoint(self.path, self.kind, self.record)


# A checkpoint checked by resume_config (before Ray starts or anything is written), kept for the
# load_checkpoint that follows so that it is read once: {path: (file signature, state)}.
_CHECKED: dict[str, tuple[tuple, dict]] = {}


def _signature(path: Path) -> tuple:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def checked_checkpoint(path: Path, kind: str, record: dict, keep: bool = False) -> dict:
    """RUN/checkpoint.pt read with weights_only and checked to be of ``kind`` and of the config in ``record``
    (the run directory's config.json): a foreign, truncated or code-carrying file, or a config edited after
    the checkpoint, is one line. ``keep`` holds the state for the next call on the same unchanged file."""
    ckpt = Path(path) / CHECKPOINT
    key = str(ckpt.resolve())
    cached = _CHECKED.pop(key, None)
    if cached is not None and cached[0] == _signature(ckpt):
        state = cached[1]
    else:
        state = read_checkpoint_file(ckpt, f"the {kind} run")
        meta = state.pop("__natrl__", None)
        if not isinstance(meta, dict) or meta.get("kind") != kind:
            raise NatrlError(f"{ckpt} was not written by a {kind} run; give a run directory of the same script")
        if meta.get("config") != record["config"]:
            raise NatrlError(
                f"{Path(path) / CONFIG} no longer matches its checkpoint (the config was edited); "
                "restore it or start a new run"
            )
    if keep:
        _CHECKED.clear()
        _CHECKED[key] = (_signature(ckpt), state)
    return state


def check_new_run_dir(out: Path, flag: str = "--out") -> Path:
    """A directory a new run may write: absent or empty (a file or a directory with files is never reused)."""
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise NatrlError(f"{flag} {out} is a file; give a new directory name")
        if out.is_dir() and any(out.iterdir()):
            raise NatrlError(
                f"{out} already exists and is not empty; give a new {flag}, or --resume {out} "
                "to continue the run there (nothing was overwritten)"
            )
        parent = out.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():  # --out FILE/sub: mkdir would fail only after the run started
            raise NatrlError(f"{flag} {out}: {parent} is a file, not a folder; give a new directory name")
    except OSError as e:  # a name too long, a folder we may not list
        raise NatrlError(f"{flag} {str(out)[:200]}: {e.strerror}; choose another directory") from None
    return out


# the file or folder a resume continues from, per run kind (default: checkpoint.pt)
MARKERS = {"sweep": "tune"}


def _check_marker(path: Path, marker: str):
    if not (path / marker).exists():
        raise NatrlError(
            f"{path} has no {marker} to resume from (the run stopped before its first "
            "checkpoint); start it again with a new --out"
        )


def read_config(path: Path, kind: str) -> dict:
    """A run directory's config.json record, refused with one line if it is missing or of another kind."""
    path = Path(path)
    if not path.is_dir():
        raise NatrlError(f"{path} is not a run directory; --resume takes the directory a run wrote")
    try:
        if (path / CONFIG).is_file() and (path / CONFIG).stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError("too large")  # a config.json is a few kB: this is not one a run wrote
        record = json.loads((path / CONFIG).read_text())
    except FileNotFoundError:
        raise NatrlError(f"{path} has no {CONFIG}; --resume takes the directory a run wrote") from None
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise NatrlError(
            f"{path / CONFIG} is not readable JSON ({e.__class__.__name__}); --resume takes the directory a run wrote"
        ) from None
    if isinstance(record, dict) and record.get("kind") == kind and not isinstance(record.get("config"), dict):
        raise NatrlError(f"{path / CONFIG} has no config object (it was edited); restore it or start a new run")
    if not isinstance(record, dict) or record.get("kind") != kind or not isinstance(record.get("config"), dict):
        found = record.get("kind") if isinstance(record, dict) else None
        found = found if isinstance(found, str) and len(found) < 40 else None
        held = found or "foreign"
        raise NatrlError(
            f"{path} holds {_a(held)} {held} run, not {_a(kind)} {kind} run; give a run directory of the same script"
        )
    return record


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def resume_config(cfg_cls, cfg, given: set[str], kind: str):
    """The saved config of the run ``cfg.resume`` names. Flags given beside ``--resume`` must agree with it:
    a resume never silently changes a setting."""
    from natrl.config import config_from_dict

    record = read_config(Path(cfg.resume), kind)
    saved = config_from_dict(cfg_cls, record["config"], str(Path(cfg.resume) / CONFIG))
    differ = sorted(k for k in given - set(cfg_cls.RESUME_FREE) if getattr(cfg, k) != getattr(saved, k))
    if differ:
        flags = ", ".join(f"--{k.replace('_', '-')} (saved {getattr(saved, k)})" for k in differ)
        raise NatrlError(f"--resume continues the run with its saved config; drop {flags} or start a new run")
    # the checkpoint too, now: a truncated, foreign or code-carrying checkpoint, or a config edited after it,
    # must be refused before the caller starts Ray or reopens (and appends to) the run directory
    path = Path(cfg.resume)
    marker = MARKERS.get(kind, CHECKPOINT)
    _check_marker(path, marker)
    if marker == CHECKPOINT:
        state = checked_checkpoint(path, kind, record, keep=True)
        rows = state.get("progress_rows")
        if isinstance(rows, int) and not isinstance(rows, bool) and _csv_rows(path / PROGRESS) < rows:
            raise NatrlError(
                f"{path / PROGRESS} has fewer rows than its checkpoint ({rows}); the run directory "
                "was edited and cannot be resumed"
            )
    keep = {"resume": str(cfg.resume), "out": str(cfg.resume)}
    keep.update({k: getattr(cfg, k) for k in given & {"address"} if hasattr(saved, k)})
    return dataclasses.replace(saved, **keep)


def _csv_rows(path: Path) -> int:
    try:
        with open(path, newline="") as f:
            return sum(1 for _ in csv.DictReader(f))
    except (OSError, ValueError, csv.Error):
        return 0


def quiet_ray_logs():
    """Silence Ray/RLlib notices that say nothing about this run (deprecations inside RLlib, gputil), so the
    terminal shows progress. Errors still print."""
    import logging

    for name in ("ray._common.deprecation", "ray.tune.utils.util", "ray.rllib.algorithms.algorithm_config"):
        logging.getLogger(name).setLevel(logging.ERROR)
