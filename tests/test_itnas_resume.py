"""Resuming an ITNAS ablation sweep someone gave you runs no code from it: live pickle payloads planted in every
pickle and state file of the sweep directory (Tune's tuner.pkl, experiment and searcher state, each trial's
params.pkl) are never unpickled; finished searches are read from their results.json, unfinished ones continue
from their own plain checkpoint in a fresh Tuner, and the sweep ends with its table."""

import json

import pytest
from test_itnas import _search_args, cifar, search_main  # noqa: F401 (cifar is a fixture)
from test_safe_resume import _plant, _plant_checkpoint


def _ablation(data, sweep):
    args = _search_args(data, sweep, variant="darts", epochs=1)
    search_main([*args, "--ablation", "--variants", "darts", "gumbel", "itnas", "--seeds", "1"])


def _resume_fails(sweep, message, capsys):
    """--resume stops with one line (exit 2) naming ``message``."""
    with pytest.raises(SystemExit) as e:
        search_main(["--resume", sweep])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_ablation_resume_never_unpickles_planted_files(ray_session, tmp_path, cifar, capsys):  # noqa: F811
    sweep, marker = tmp_path / "sweep", tmp_path / "MARKER"
    _ablation(cifar, sweep)
    darts, gumbel, itnas = (sweep / "runs" / f"{v}-s0" for v in ("darts", "gumbel", "itnas"))
    assert all((d / "results.json").is_file() for d in (darts, gumbel, itnas))
    assert _plant(sweep, marker) >= 6 and (sweep / "tune" / "tuner.pkl").read_bytes().startswith(b"\x80")
    _plant_checkpoint(itnas / "arch.pt", marker)  # derive reads it (weights_only); a resume does not
    stamp = (darts / "results.json").stat().st_mtime_ns
    # darts-s0 finished: read, not rerun. itnas-s0 unfinished: a fresh Tuner continues it from its plain
    # checkpoint. gumbel-s0 unfinished with a payload for a checkpoint: its trial refuses the file
    (itnas / "results.json").unlink()
    (gumbel / "results.json").unlink()
    _plant_checkpoint(gumbel / "checkpoint.pt", marker)
    capsys.readouterr()
    search_main(["--resume", sweep])
    out = capsys.readouterr().out
    assert not marker.exists()
    assert "1 search(es) finished before" in out and "1 search(es) failed" in out
    assert "| darts | ✗ | ✗ | ✗ |" in out and "| itnas | ✓ | ✓ | ✓ |" in out and "| gumbel |" not in out
    assert (darts / "results.json").stat().st_mtime_ns == stamp
    assert json.loads((itnas / "results.json").read_text())["variant"] == "itnas"
    assert "resumed after epoch 1" in (itnas / "log.txt").read_text()
    assert "| itnas | ✓ | ✓ | ✓ |" in (sweep / "ablation.md").read_text()
    errors = " ".join(p.read_text() for p in (sweep / "tune").rglob("error.txt"))
    assert "holds pickled objects, not plain tensors" in errors and not (gumbel / "results.json").exists()


def test_ablation_resume_refuses_a_corrupt_sweep_in_one_line(tmp_path, cifar, capsys, monkeypatch):  # noqa: F811
    """A sweep directory whose checkpoint or results were replaced stops before Ray starts: one line, exit 2."""
    import natrl.cluster
    from natrl.rundir import RunDir
    from natrl.runs.itnas import ABLATION_KIND, SearchConfig

    monkeypatch.setattr(natrl.cluster, "start_ray", lambda *a, **k: pytest.fail("Ray started"))
    sweep, marker = tmp_path / "sweep", tmp_path / "MARKER"
    cfg = SearchConfig(data=str(cifar), space="nb201", ablation=True, variants=["darts"], seeds=1, out=str(sweep))
    RunDir.start(cfg, ABLATION_KIND, "x").save_checkpoint({"searches": 1})
    (sweep / "runs" / "darts-s0").mkdir(parents=True)
    results = sweep / "runs" / "darts-s0" / "results.json"
    for text, message in (
        (b"\x80\x04not json", "is not readable search results (UnicodeDecodeError)"),
        (b"[1, 2]", "is not readable search results (not a search's results)"),
        (json.dumps({"variant": "itnas", "seed": 0}).encode(), "holds the results of itnas seed 0, not of darts-s0"),
    ):
        results.write_bytes(text)
        _resume_fails(sweep, message, capsys)
    _plant_checkpoint(sweep / "checkpoint.pt", marker)
    _resume_fails(sweep, "holds pickled objects, not plain tensors", capsys)
    assert not marker.exists()
