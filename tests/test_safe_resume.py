"""Resuming a run or a sweep someone gave you runs no code from it: a live pickle payload planted in every pickle
and state file of the directory (RLlib's checkpoint, policy.pt, Tune's tuner.pkl, experiment and searcher
state, params.pkl, the run checkpoint itself) is never unpickled; the payload would write a marker file."""

import json
import pickle
from pathlib import Path

import pytest
import torch

from natrl.errors import NatrlError


class Payload:
    """Unpickling this calls exec(...), which writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _live_payload(marker: Path) -> bytes:
    data = pickle.dumps(Payload(marker))
    pickle.loads(data)  # the payload really runs when unpickled ...
    assert marker.exists()
    marker.unlink()  # ... and the tests below check that nothing unpickles it
    return data


def _plant(root: Path, marker: Path, names=("*.pkl", "tuner.pkl", "experiment_state-*.json", "basic-variant-*.json")):
    """Overwrite every matching file under ``root`` with the payload; returns how many were planted."""
    data = _live_payload(marker)
    files = {p for pattern in names for p in root.rglob(pattern)}
    for p in files:
        p.write_bytes(data)
    return len(files)


def _plant_checkpoint(path: Path, marker: Path):
    torch.save({"module": Payload(marker)}, path)


@pytest.mark.slow
def test_run_resume_never_unpickles_planted_files(ray_session, tmp_path):
    from natrl.runs.transformer import TrainConfig, train

    run, marker = tmp_path / "run", tmp_path / "MARKER"
    train(TrainConfig(iters=2, m=2, n=1, checkpoint_every=1, out=str(run)))
    assert _plant(run, marker) >= 10  # RLlib's checkpoint/ holds a dozen pickles
    _plant_checkpoint(run / "policy.pt", marker)  # derive reads it (weights_only); resume does not
    train(TrainConfig(resume=str(run)), given={"resume"})
    assert not marker.exists()
    assert json.loads((run / "results.json").read_text())["run"] == "run"

    _plant_checkpoint(run / "checkpoint.pt", marker)
    with pytest.raises(NatrlError, match="holds pickled objects, not plain tensors"):
        train(TrainConfig(resume=str(run)), given={"resume"})
    assert not marker.exists()


@pytest.mark.slow
def test_sweep_resume_never_unpickles_planted_files(ray_session, tmp_path):
    from natrl.runs.sweep import SweepConfig, sweep

    out, marker = tmp_path / "sweep", tmp_path / "MARKER"
    grid = {"ablations": ["lam"], "values": ["0.03"], "rules": ["natpp"], "seeds": 1, "iters": 2, "m": 2, "n": 1}
    sweep(SweepConfig(**grid, out=str(out)))
    trial = out / "tune" / "natpp-lam0.03-s0"
    planted = _plant(out, marker)
    assert (out / "tune" / "tuner.pkl").read_bytes() == (trial / "params.pkl").read_bytes() and planted >= 12
    _plant_checkpoint(trial / "run" / "policy.pt", marker)

    # every trial finished: reported from results.json, Tune is not even started
    sweep(SweepConfig(resume=str(out)), given={"resume"})
    assert not marker.exists()
    assert "natpp-lam0.03-s0,0.03,natpp,0,natrl,done" in (out / "trials.csv").read_text()

    # an unfinished trial whose run checkpoint is a payload: a fresh Tuner runs it, the trial refuses the file
    (trial / "run" / "results.json").unlink()
    _plant_checkpoint(trial / "run" / "checkpoint.pt", marker)
    sweep(SweepConfig(resume=str(out)), given={"resume"})
    assert not marker.exists()
    assert json.loads((out / "status.json").read_text()) == {"trials": 1, "errors": 1, "stopped": 0}
    errors = " ".join(p.read_text() for p in trial.rglob("error.txt"))
    assert "holds pickled objects, not plain tensors" in errors
