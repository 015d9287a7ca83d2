"""Select on one measurement, report on another (NAS-Bench-201): best of k, the fixed rule and the optimum are
chosen on the reward table and reported on the official test accuracy; the tables show the honest number and
name both measurements. Small synthetic tables where the test accuracy is anti-correlated with the selection
table, so the oracle pick (best of k by test accuracy) and the honest pick differ."""

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from natrl.cells import to_arch_str
from natrl.evaluate import caption, evaluate_nb201, markdown_table, policy_actions
from natrl.policy.module import TransitionPolicy
from natrl.rewards import NB201Table
from natrl.spaces import NB201_CELLS, make_space, nb201_index

K, INPUTS, SEED = 5, 40, 0


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """(selection accuracies, test accuracies, path of an official-style CSV holding both)."""
    rng = np.random.default_rng(0)
    valid = rng.uniform(40, 90, 5**6)
    test = 130 - valid  # the cell best on valid is worst on test
    space = make_space("nb201")
    path = tmp_path_factory.mktemp("nb201") / "official.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("arch_str,valid-accuracy,test-accuracy\n")
        for i, cell in enumerate(NB201_CELLS):
            f.write(f"{to_arch_str(space.genotype(cell).normal)},{valid[i]},{test[i]}\n")
    return valid, test, path


def policy(space):
    torch.manual_seed(0)
    return TransitionPolicy(
        observation_space=space.observation_space(),
        action_space=space.action_space(),
        model_config={"encoder": "gcn", "hidden": 16, "gcn_layers": 2},
    )


def honest_and_oracle(module, space, valid, test) -> tuple[float, float]:
    """Mean test-accuracy gain of best of K chosen on ``valid`` (honest) and chosen on ``test`` (oracle), for
    the inputs and samples evaluate_nb201 draws with SEED."""
    held = np.random.default_rng(SEED).choice(space.heldout_cells, INPUTS, replace=False)
    betas = NB201_CELLS[np.sort(held)]
    _, samples = policy_actions(module, space.observe_batch(betas), K, torch.Generator().manual_seed(SEED))
    idx = nb201_index(samples)  # [K, B]
    cols = np.arange(len(betas))
    base = test[nb201_index(betas)]
    honest = test[idx[valid[idx].argmax(0), cols]] - base
    oracle = test[idx].max(0) - base
    return float(honest.mean()), float(oracle.mean())


@pytest.mark.slow
def test_official_table_as_reward_selects_on_valid_and_reports_test(tables):
    valid, test, path = tables
    space = make_space("nb201")
    module = policy(space)
    table = NB201Table.load(path)
    results, records = evaluate_nb201(module, space, table, seed=SEED, best_of=K, max_inputs=INPUTS)
    honest, oracle = honest_and_oracle(module, space, valid, test)
    assert honest < oracle - 1  # the two picks differ
    reported = results["rows"][f"policy (best of {K})"]["report"]["mean"]
    assert reported == pytest.approx(honest) and reported != pytest.approx(oracle)
    assert results["selected_on"] == "official NB201 valid-accuracy (official.csv.gz)"
    assert results["reported_on"] == "official NB201 test-accuracy (official.csv.gz)"
    best = records[0][f"policy (best of {K})"]
    assert best["report_acc"] == pytest.approx(test[nb201_index(np.array(_ops(best["arch_str"], space)))])
    md = markdown_table(results)
    assert "gain, selection: official NB201 valid-accuracy" in md and "gain, report: official NB201 test" in md
    assert f"{reported:+.2f}" in md.splitlines()[-1]


def _ops(arch_str: str, space) -> list[int]:
    from natrl.cells import from_arch_str

    return [space.ops.index(op) for op in from_arch_str(arch_str).normal.ops]


def test_report_table_gives_its_test_accuracy_and_no_report_is_optimistic(tables):
    valid, test, path = tables
    space = make_space("nb201")
    module = policy(space)
    reward = NB201Table(valid.copy())  # a selection table of its own (analog-nasbench's role)
    results, _ = evaluate_nb201(
        module, space, reward, seed=SEED, best_of=K, report=NB201Table.load(path), max_inputs=INPUTS
    )
    assert results["selected_on"] == "analog-nasbench" and "test-accuracy" in results["reported_on"]
    assert results["rows"][f"policy (best of {K})"]["report"]["mean"] == pytest.approx(
        honest_and_oracle(module, space, valid, test)[0]
    )
    alone, _ = evaluate_nb201(module, space, reward, seed=SEED, best_of=K, max_inputs=INPUTS)
    assert alone["reported_on"] is None and "optimistic" in caption(alone)
    assert "Report: official NB201 test-accuracy" in caption(results)


def _run_dir(root: Path, name: str, results: dict, records: list, seed: int) -> Path:
    d = root / name
    d.mkdir(parents=True)
    config = {"rule": "natpp", "space": "nb201", "reward": "nb201", "policy": "gcn", "gcn_layers": 2, "lam": 0.03}
    config |= {"m": 32, "n": 2, "iters": 10, "holdout_frac": 0.2, "table": None, "seed": seed, "tag": "policy"}
    (d / "config.json").write_text(json.dumps({"config": config}))
    (d / "results.json").write_text(json.dumps(results))
    (d / "derived.json").write_text(json.dumps(records))
    return d


@pytest.mark.slow
def test_tables_show_the_honest_pick_and_name_both_measurements(tables, tmp_path):
    from natrl.config import parse_config
    from natrl.tables import ablations, random_inputs

    valid, test, path = tables
    space = make_space("nb201")
    module = policy(space)
    results, records = evaluate_nb201(module, space, NB201Table.load(path), seed=SEED, best_of=K, max_inputs=INPUTS)
    _run_dir(tmp_path / "runs", "gcn-s0", results, records, seed=0)
    honest, oracle = honest_and_oracle(module, space, valid, test)
    out = tmp_path / "t"
    cfg, _ = parse_config(ablations.LearnersConfig, ["--paths", str(tmp_path / "runs"), "--out", str(out)])
    md = ablations.learners_command(cfg)
    assert f"| Sampling-GCN (best of k) | - | {honest:.2f} ± 0.00 (1) |" in md
    assert f"{oracle:.2f} ± 0.00" not in md
    assert "Selection (best of k, fixed rule, optimum) on official NB201 valid-accuracy" in md
    assert "report on official NB201 test-accuracy (official.csv.gz)" in md

    cfg, _ = parse_config(random_inputs.Table4Config, ["--paths", str(tmp_path / "runs"), "--out", str(out)])
    md4 = random_inputs.table4_command(cfg)
    assert "accuracy reported on official NB201 test-accuracy" in md4
    points = pd.read_csv(out / "fig6_points.csv")  # every derived cell at its test accuracy, not its valid one
    for _, p in points[points["who"] == "NAT++"].iterrows():
        rec = next(r for r in records if r["input"] == p["input"])
        assert p["acc"] == pytest.approx(rec[f"policy (best of {K})"]["report_acc"])
        assert p["acc"] != pytest.approx(rec[f"policy (best of {K})"]["acc"])


@pytest.mark.slow  # reads a 15,625-row CSV
def test_a_csv_without_test_accuracy_reports_its_valid_column(tables, tmp_path):
    from natrl.evaluate import report_measurement

    valid, _, path = tables
    only_valid = tmp_path / "valid_only.csv"
    with gzip.open(path, "rt") as f, open(only_valid, "w") as g:
        for line in f:
            g.write(",".join(line.split(",")[:2]) + "\n")
    table = NB201Table.load(only_valid)
    assert table.test_accuracy is None and table.accuracy == pytest.approx(valid)
    acc, label = report_measurement(NB201Table(valid.copy()), report=table)
    assert acc is table.accuracy and label == "official NB201 valid-accuracy (valid_only.csv)"
    assert report_measurement(table) == (None, None)  # the reward table itself: nothing independent to report on
