import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def run_script(script, *args, timeout=600):
    """Run a project script as a user would; returns CompletedProcess (text)."""
    import subprocess
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def script():
    return run_script
