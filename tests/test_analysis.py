"""The analysis scripts on small synthetic result directories: known numbers in, exact table cells out."""
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analysis"))


def fake_run(root: Path, name: str, config: dict, results: dict, derived=None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    base = {"rule": "natpp", "space": "nb201", "reward": "nb201", "policy": "gcn", "gcn_layers": 2, "lam": 0.03,
            "m": 32, "n": 2, "iters": 400, "holdout_frac": 0.2, "table": None, "seed": 0, "tag": ""}
    (d / "config.json").write_text(json.dumps({"config": {**base, **config}}))
    (d / "results.json").write_text(json.dumps(results))
    if derived is not None:
        (d / "derived.json").write_text(json.dumps(derived))
    return d


def nb201_results(sample, argmax=None, best=None, seconds=10.0, evaluations=100):
    row = lambda v: {"reward": {"mean": v, "std": 1.0}}  # noqa: E731
    return {"num_inputs": 5, "search_seconds": seconds, "reward_evaluations": evaluations, "rows": {
        "keep-all": row(0.0), "random valid": {"reward": {"mean": -11.0, "std": None}},
        "best fixed per-op rule": row(1.0), "per-input optimum": row(5.0), "policy (1 sample)": row(sample),
        "policy (argmax)": row(argmax if argmax is not None else sample),
        "policy (best of 10)": row(best if best is not None else sample)},
        "optimum_fraction": {"reward": sample / 5.0}}


def run_main(module, argv):
    mod = __import__(module)
    return mod.main(argv)


def test_fig7_cells(tmp_path):
    # lambda 3e-2: seeds give 3.0 and 5.0 -> 4.00 ± 1.00; lambda 3: one seed -1.5
    fake_run(tmp_path, "a", {"tag": "lam", "lam": 0.03, "seed": 0}, nb201_results(3.0, best=4.0))
    fake_run(tmp_path, "b", {"tag": "lam", "lam": 0.03, "seed": 1}, nb201_results(5.0, best=6.0))
    fake_run(tmp_path, "c", {"tag": "lam", "lam": 3.0, "seed": 0}, nb201_results(-1.5))
    fake_run(tmp_path, "d", {"tag": "lam", "lam": 3.0, "seed": 0, "rule": "nat"}, nb201_results(-2.0))
    fake_run(tmp_path, "e", {"tag": "gcn_layers", "gcn_layers": 10, "seed": 0}, nb201_results(2.25))
    out = tmp_path / "tables"
    run_main("fig7_ablations", [str(tmp_path), "--out", str(out)])
    lam = pd.read_csv(out / "fig7_lam.csv")
    md = (out / "fig7_lam.md").read_text()
    assert "| 0.03 | - | - | 4.00 ± 1.00 (2) | 5.00 ± 1.00 (2) |" in md
    assert "| 3 | -2.00 ± 0.00 (1) | -2.00 ± 0.00 (1) | -1.50 ± 0.00 (1) | -1.50 ± 0.00 (1) |" in md
    assert "Source: tabular NAS-Bench-201" in md and "seeds 0, 1" in md
    assert set(lam["runs"]) == {"a b", "c", "d"}
    assert "| 10 | - | - | 2.25 ± 0.00 (1) |" in (out / "fig7_gcn_layers.md").read_text()
    assert (out / "fig7.png").stat().st_size > 0 and "\\begin{tabular}" in (out / "fig7_lam.tex").read_text()


def test_table5_and_learner_cells(tmp_path):
    fake_run(tmp_path, "m1", {"tag": "m", "m": 1, "n": 1}, nb201_results(1.0, seconds=10, evaluations=400))
    fake_run(tmp_path, "m30", {"tag": "m", "m": 30, "n": 1}, nb201_results(3.0, seconds=50, evaluations=12000))
    fake_run(tmp_path, "n30", {"tag": "n", "m": 1, "n": 30, "rule": "nat"}, nb201_results(2.5, seconds=40, evaluations=12000))
    out = tmp_path / "t"
    run_main("table5_mn", [str(tmp_path), "--out", str(out)])
    md = (out / "table5.md").read_text()
    assert "| m | 30 | 1 | - | - | - | 3.00 ± 0.00 (1) | 50 | 12000 |" in md
    assert "| n | 1 | 30 | 2.50 ± 0.00 (1) | 40 | 12000 | - | - | - |" in md

    learners = tmp_path / "learners"
    fake_run(learners, "r", {"tag": "policy", "policy": "random", "iters": 0}, nb201_results(-11.0))
    fake_run(learners, "l", {"tag": "policy", "policy": "lstm"}, nb201_results(2.0))
    fake_run(learners, "g0", {"tag": "policy", "policy": "gcn", "seed": 0}, nb201_results(3.0, argmax=2.0, best=4.0))
    fake_run(learners, "g1", {"tag": "policy", "policy": "gcn", "seed": 1}, nb201_results(4.0, argmax=3.0, best=5.0))
    run_main("nat_table3_learners", [str(learners), "--out", str(out)])
    md = (out / "nat_table3.md").read_text()
    assert "| Random Search | - | -11.00 ± 0.00 (1) |" in md
    assert "| Maximum-GCN | - | 2.50 ± 0.50 (2) |" in md
    assert "| Sampling-GCN (1 sample) | - | 3.50 ± 0.50 (2) |" in md
    assert "| Sampling-GCN (best of k) | - | 4.50 ± 0.50 (2) |" in md


def test_table4_costs_and_accuracies(tmp_path):
    from natrl.cells import from_arch_str
    from natrl.costs import genotype_cost
    beta = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    nat = "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    natpp = "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    def rec(alpha, acc):
        return [{"input": beta, "input_acc": 90.0, "policy (best of 10)": {"arch_str": alpha, "acc": acc}}]
    fake_run(tmp_path, "nat", {"tag": "policy", "rule": "nat"}, nb201_results(1.0), rec(nat, 91.0))
    fake_run(tmp_path, "natpp", {"tag": "policy", "rule": "natpp"}, nb201_results(1.0), rec(natpp, 92.5))
    out = tmp_path / "t"
    run_main("table4_random", [str(tmp_path), "--out", str(out), "--inputs", "1"])
    md = (out / "table4.md").read_text()
    cost = {a: genotype_cost(from_arch_str(a)) for a in (beta, nat, natpp)}
    assert f"| random inputs | {cost[beta].params_m:.3f} ± 0.000 | {cost[beta].madds_m:.1f} ± 0.0 | 90.00 ± 0.00 | 1 | 0 |" in md
    assert f"| NAT | {cost[nat].params_m:.3f} ± 0.000 | {cost[nat].madds_m:.1f} ± 0.0 | 91.00 ± 0.00 | 1 | 0 |" in md
    assert f"| NAT++ | {cost[natpp].params_m:.3f} ± 0.000 | {cost[natpp].madds_m:.1f} ± 0.0 | 92.50 ± 0.00 |" in md
    assert (out / "fig6.png").exists() and len(pd.read_csv(out / "fig6_points.csv")) == 4


def test_table_models_puts_ours_beside_quoted(tmp_path):
    for seed, acc in ((0, 97.0), (1, 97.5)):
        fake_run(tmp_path, f"ev{seed}", {"seed": seed}, {
            "kind": "train_eval", "arch": "NATv2_DARTS", "model": "DARTS", "method": "NAT++", "dataset": "cifar10",
            "params_M": 2.48, "madds_M": 394.2, "test_acc": acc, "epochs": 600, "layers": 20, "channels": 36})
    out = tmp_path / "t"
    run_main("table_models", [str(tmp_path), "--table", "3", "--out", str(out)])
    md = (out / "table3.md").read_text()
    assert "| DARTS | NAT++ | quoted (NAT++ Table 3) | 2.5 | 395 | 97.30 | 83.56 |" in md
    assert "| DARTS | NAT++ | ours, trained from scratch (20 cells, C=36, 600 epochs; seeds 0 1) | 2.48 | 394 | 97.25 ± 0.25 | - |" in md
    lines = md.splitlines()
    assert lines.index(next(x for x in lines if "| ours" in x)) == lines.index(
        "| DARTS | NAT++ | quoted (NAT++ Table 3) | 2.5 | 395 | 97.30 | 83.56 |") + 1  # ours right below the quote


@pytest.mark.parametrize("script,args,message", [
    ("analysis/fig7_ablations.py", [], "no runs of the gcn_layers or lam ablations found"),
    ("analysis/table5_mn.py", [], "no runs of the m or n ablations found; make them with: python experiments/sweep.py"),
    ("analysis/nat_table3_learners.py", [], "no runs of the policy ablation found"),
    ("analysis/table4_random.py", [], "no GCN-policy runs"),
    ("analysis/table_models.py", ["--table", "1"], "no train_eval.py runs of Table 1's models"),
])
def test_missing_inputs_give_a_clear_message(script, tmp_path, args, message):
    from conftest import run_script
    (tmp_path / "empty").mkdir()
    r = run_script(script, tmp_path / "empty", *args, "--out", tmp_path / "t")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()  # no empty table is written


def test_runs_of_different_budgets_are_not_averaged(tmp_path, script):
    fake_run(tmp_path, "a", {"tag": "lam", "iters": 400}, nb201_results(3.0))
    fake_run(tmp_path, "b", {"tag": "lam", "iters": 20, "seed": 1}, nb201_results(1.0))
    r = script("analysis/fig7_ablations.py", tmp_path, "--out", tmp_path / "t")
    assert r.returncode == 2 and "the runs differ in iters (20, 400)" in r.stderr


def test_nb201_cost_decomposition_is_exact():
    import numpy as np

    from natrl.cells import nb201_cell
    from natrl.costs import genotype_cost, nb201_cost
    from natrl.ops import NB201_OPS
    rng = np.random.default_rng(0)
    for _ in range(4):
        ops = list(rng.choice(NB201_OPS, 6))
        assert nb201_cost(ops) == genotype_cost(nb201_cell(ops))


def test_fig5_cells_published_and_nb201(tmp_path, script):
    r = script("analysis/fig5_cells.py", "--rows", "DARTS_V2 NAT_DARTS NATv2_DARTS", "--reduce", "--out", tmp_path / "a")
    assert r.returncode == 0 and "(1 rows)" in r.stdout and (tmp_path / "a" / "fig5.png").stat().st_size > 0
    beta = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    rec = [{"input": beta, "input_acc": 90.0, "policy (best of 10)": {"arch_str": beta, "acc": 90.0}}]
    runs = [fake_run(tmp_path, name, {}, nb201_results(0.0), rec) for name in ("nat", "natpp")]
    r = script("analysis/fig5_cells.py", "--nb201", *runs, "--out", tmp_path / "b")
    assert r.returncode == 0 and "(1 rows)" in r.stdout
    r = script("analysis/fig5_cells.py", "--rows", "NoSuchNet", "--out", tmp_path / "c")
    assert r.returncode == 2 and "NoSuchNet" in r.stderr and "Traceback" not in r.stderr
