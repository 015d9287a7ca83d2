"""Run directories: every run records its full config, package versions and git commit next to its results."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from natrl.errors import NatrlError

PACKAGES = ("natrl", "torch", "ray", "gymnasium", "numpy", "pandas", "matplotlib", "analog-nasbench")


def versions() -> dict:
    out = {"python": platform.python_version()}
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
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def write_json(path: Path, obj) -> Path:
    """Atomic write: a kill mid-write never leaves a truncated file behind."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)
    return path


def create_run_dir(out: Path, config) -> Path:
    """Make ``out`` and record the config; refuse to overwrite a directory that already holds a run."""
    if (out / "config.json").exists():
        raise NatrlError(f"{out} already holds a run; choose a new --out (nothing was overwritten)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NatrlError(f"cannot create run directory {out}: {e.strerror}; choose a writable --out") from None
    record = {"config": dataclasses.asdict(config), "argv": sys.argv, "versions": versions(),
              "git_commit": git_commit(), "host": platform.node(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(out / "config.json", record)
    return out


def seed_everything(seed: int):
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet_ray_logs():
    """Silence Ray/RLlib notices that say nothing about this run (deprecations inside RLlib, gputil), so the
    terminal shows progress. Errors still print."""
    import logging
    for name in ("ray._common.deprecation", "ray.tune.utils.util", "ray.rllib.algorithms.algorithm_config"):
        logging.getLogger(name).setLevel(logging.ERROR)


def resume_config(run_dir, config_cls, script: str):
    """The ``config_cls`` a run directory was started with, set to resume into that directory."""
    path = Path(run_dir) / "config.json"
    try:
        saved = json.loads(path.read_text())["config"]
        return config_cls(**{**saved, "resume": str(run_dir), "out": str(run_dir)})
    except FileNotFoundError:
        raise NatrlError(f"{path} does not exist; --resume takes a run directory of {script}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise NatrlError(f"{path} is not a {script} run config ({e.__class__.__name__}); "
                         f"--resume takes a run directory of {script}") from None


def save_checkpoint_file(path: Path, state: dict):
    """torch.save to ``path`` through a temporary file: a kill mid-write keeps the previous checkpoint."""
    import torch
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_checkpoint_file(path: Path, what: str = "the run") -> dict:
    """torch.load(weights_only=True), or a one-line error saying the checkpoint cannot be resumed from."""
    import torch
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else e.__class__.__name__
        raise NatrlError(f"cannot read checkpoint {path} ({reason}); {what} cannot be resumed from it") from None
