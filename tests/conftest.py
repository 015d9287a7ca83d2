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


# The fast tier (`pytest -m "not slow"`, under a minute) holds unit tests only. Besides the tests marked slow in
# their files, these are slow: every test that starts Ray (it uses the ray_session fixture, directly or through
# another fixture), every test that runs a script in a new Python process (the script fixture: 2-3 s of imports
# each; tests/test_bad_input.py covers the same command lines in-process), every bad-input case that needs the
# real run of test_bad_input.py, and the tests listed in SLOW_TESTS (network builds and training steps measured
# at over ~0.5 s each on 2 cores).
SLOW_FIXTURES = {"ray_session", "script"}
SLOW_TESTS = (
    "tests/test_costs.py::test_forward_backward_small",
    "tests/test_costs.py::test_cost_matches_paper",
    "tests/test_costs.py::test_aux_head_not_counted",
    "tests/test_costs.py::test_null_edges_cost_nothing",
    "tests/test_itnas.py::test_gradients_reach_alpha_P_and_beta",
    "tests/test_itnas.py::test_gumbel_annealing_schedule",
    "tests/test_itnas.py::test_resume_refuses_other_flags",
    "tests/test_analysis.py::test_refused_and_forced_on_the_command_line",
    "tests/test_handcrafted.py::test_forward_backward_at_small_width",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        params = getattr(item, "callspec", None) and item.callspec.params or {}
        fixtures = set(getattr(item, "fixturenames", ())) - set(params)  # a parameter may be called script too
        if (
            SLOW_FIXTURES & fixtures
            or item.nodeid.startswith(SLOW_TESTS)
            or "{run" in " ".join(map(str, params.get("argv") or []))
        ):
            item.add_marker(pytest.mark.slow)
