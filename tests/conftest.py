import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# decoded-data caches of the tests stay out of the user's ~/.cache
os.environ.setdefault("NATRL_CACHE", __import__("tempfile").mkdtemp(prefix="natrl-test-cache-"))


def run_script(script, *args, timeout=600):
    """Run a project script as a user would; returns CompletedProcess (text)."""
    import subprocess

    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.fixture
def script():
    return run_script


@pytest.fixture(scope="session")
def ray_session():
    """One Ray session for every test that needs Ray (2 CPUs, no dashboard, small object store)."""
    import ray

    ray.init(
        address="local",  # a new local instance even when a `ray start` cluster runs on this machine
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=256 * 1024**2,
    )
    yield ray
    ray.shutdown()


def load_script(name):
    """Import experiments/<name>.py as a module (scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod
