"""The tables of natrl.tables on small synthetic result directories: known numbers in, exact table cells out;
every malformed input one line; outputs refused unless --force. A few checks run the analysis/ scripts."""

import json
from pathlib import Path

import pandas as pd
import pytest

from natrl.config import parse_config
from natrl.errors import NatrlError
from natrl.tables import ablations, cells, models, random_inputs
from natrl.tables.common import with_positionals

BETA = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def fake_run(root: Path, name: str, config: dict, results: dict, derived=None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    base = {
        "rule": "natpp",
        "space": "nb201",
        "reward": "nb201",
        "policy": "gcn",
        "gcn_layers": 2,
        "lam": 0.03,
        "m": 32,
        "n": 2,
        "iters": 400,
        "holdout_frac": 0.2,
        "table": None,
        "seed": 0,
        "tag": "",
    }
    (d / "config.json").write_text(json.dumps({"config": {**base, **config}}))
    (d / "results.json").write_text(json.dumps(results))
    if derived is not None:
        (d / "derived.json").write_text(json.dumps(derived))
    return d


def nb201_results(sample, argmax=None, best=None, seconds=10.0, evaluations=100):
    row = lambda v: {"reward": {"mean": v, "std": 1.0}}
    return {
        "num_inputs": 5,
        "search_seconds": seconds,
        "reward_evaluations": evaluations,
        "rows": {
            "keep-all": row(0.0),
            "random valid": {"reward": {"mean": -11.0, "std": None}},
            "best fixed per-op rule": row(1.0),
            "per-input optimum": row(5.0),
            "policy (1 sample)": row(sample),
            "policy (argmax)": row(argmax if argmax is not None else sample),
            "policy (best of 10)": row(best if best is not None else sample),
        },
        "optimum_fraction": {"reward": sample / 5.0},
    }


def derived(alpha, acc, beta=BETA):
    return [{"input": beta, "input_acc": 90.0, "policy (best of 10)": {"arch_str": alpha, "acc": acc}}]


COMMANDS = {
    "fig7": (ablations.Fig7Config, ablations.fig7),
    "table5": (ablations.Table5Config, ablations.table5_command),
    "learners": (ablations.LearnersConfig, ablations.learners_command),
    "table4": (random_inputs.Table4Config, random_inputs.table4_command),
    "models": (models.ModelsConfig, models.models_command),
}


def run(command: str, *argv):
    """What ``python analysis/<script>.py argv`` does, in this process (bad input raises NatrlError)."""
    cfg_cls, fn = COMMANDS[command]
    cfg, given = parse_config(cfg_cls, with_positionals(cfg_cls, [str(a) for a in argv]))
    return fn(cfg, given)


def one_line_error(command: str, *argv) -> str:
    with pytest.raises(NatrlError) as e:
        run(command, *argv)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_fig7_cells(tmp_path):
    # lambda 3e-2: seeds give 3.0 and 5.0 -> 4.00 ± 1.00; lambda 3: one seed -1.5
    fake_run(tmp_path, "a", {"tag": "lam", "lam": 0.03, "seed": 0}, nb201_results(3.0, best=4.0))
    fake_run(tmp_path, "b", {"tag": "lam", "lam": 0.03, "seed": 1}, nb201_results(5.0, best=6.0))
    fake_run(tmp_path, "c", {"tag": "lam", "lam": 3.0, "seed": 0}, nb201_results(-1.5))
    fake_run(tmp_path, "d", {"tag": "lam", "lam": 3.0, "seed": 0, "rule": "nat"}, nb201_results(-2.0))
    fake_run(tmp_path, "e", {"tag": "gcn_layers", "gcn_layers": 10, "seed": 0}, nb201_results(2.25))
    out = tmp_path / "tables"
    run("fig7", tmp_path, "--out", out)
    lam = pd.read_csv(out / "fig7_lam.csv")
    md = (out / "fig7_lam.md").read_text()
    assert "| 0.03 | - | - | 4.00 ± 1.00 (2) | 5.00 ± 1.00 (2) |" in md
    assert "| 3 | -2.00 ± 0.00 (1) | -2.00 ± 0.00 (1) | -1.50 ± 0.00 (1) | -1.50 ± 0.00 (1) |" in md
    assert "Source: tabular NAS-Bench-201" in md and "seeds 0, 1" in md
    assert "report both on the reward table: best-of-k numbers are optimistic" in md  # no report measurement
    assert set(lam["runs"]) == {"a b", "c", "d"}
    assert "| 10 | - | - | 2.25 ± 0.00 (1) |" in (out / "fig7_gcn_layers.md").read_text()
    assert (out / "fig7.png").stat().st_size > 0 and "\\begin{tabular}" in (out / "fig7_lam.tex").read_text()
    assert not list(out.glob("*.tmp"))  # every file went through its temporary twin and was renamed


def test_table5_and_learner_cells(tmp_path):
    fake_run(tmp_path, "m1", {"tag": "m", "m": 1, "n": 1}, nb201_results(1.0, seconds=10, evaluations=400))
    fake_run(tmp_path, "m30", {"tag": "m", "m": 30, "n": 1}, nb201_results(3.0, seconds=50, evaluations=12000))
    fake_run(
        tmp_path, "n30", {"tag": "n", "m": 1, "n": 30, "rule": "nat"}, nb201_results(2.5, seconds=40, evaluations=12000)
    )
    out = tmp_path / "t"
    run("table5", tmp_path, "--out", out)
    md = (out / "table5.md").read_text()
    assert "| m | 30 | 1 | - | - | - | 3.00 ± 0.00 (1) | 50 | 12000 |" in md
    assert "| n | 1 | 30 | 2.50 ± 0.00 (1) | 40 | 12000 | - | - | - |" in md

    learners = tmp_path / "learners"
    fake_run(learners, "r", {"tag": "policy", "policy": "random", "iters": 0}, nb201_results(-11.0))
    fake_run(learners, "l", {"tag": "policy", "policy": "lstm"}, nb201_results(2.0, best=3.5))
    fake_run(learners, "g0", {"tag": "policy", "policy": "gcn", "seed": 0}, nb201_results(3.0, argmax=2.0, best=4.0))
    fake_run(learners, "g1", {"tag": "policy", "policy": "gcn", "seed": 1}, nb201_results(4.0, argmax=3.0, best=5.0))
    run("learners", learners, "--out", out)
    md = (out / "nat_table3.md").read_text()
    assert "| Random Search | - | -11.00 ± 0.00 (1) |" in md
    assert "| LSTM | - | 2.00 ± 0.00 (1) |" in md and "| LSTM (best of k) | - | 3.50 ± 0.00 (1) |" in md
    assert "| Maximum-GCN | - | 2.50 ± 0.50 (2) |" in md
    assert "| Sampling-GCN (1 sample) | - | 3.50 ± 0.50 (2) |" in md
    assert "| Sampling-GCN (best of k) | - | 4.50 ± 0.50 (2) |" in md


NAT = "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NATPP = "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def table4_runs(root: Path) -> Path:
    fake_run(root, "nat", {"tag": "policy", "rule": "nat"}, nb201_results(1.0), derived(NAT, 91.0))
    fake_run(root, "natpp", {"tag": "policy", "rule": "natpp"}, nb201_results(1.0), derived(NATPP, 92.5))
    return root


@pytest.mark.slow
def test_table4_costs_and_accuracies(tmp_path):
    from natrl.cells import from_arch_str
    from natrl.costs import genotype_cost

    out = tmp_path / "t"
    run("table4", table4_runs(tmp_path / "runs"), "--out", out, "--inputs", "1")
    md = (out / "table4.md").read_text()
    cost = {a: genotype_cost(from_arch_str(a)) for a in (BETA, NAT, NATPP)}
    assert (
        f"| random inputs | {cost[BETA].params_m:.3f} ± 0.000 | {cost[BETA].madds_m:.1f} ± 0.0 | 90.00 ± 0.00 | 1 | 0 |"
        in md
    )
    assert f"| NAT | {cost[NAT].params_m:.3f} ± 0.000 | {cost[NAT].madds_m:.1f} ± 0.0 | 91.00 ± 0.00 | 1 | 0 |" in md
    assert f"| NAT++ | {cost[NATPP].params_m:.3f} ± 0.000 | {cost[NATPP].madds_m:.1f} ± 0.0 | 92.50 ± 0.00 |" in md
    assert (out / "fig6.png").exists() and len(pd.read_csv(out / "fig6_points.csv")) == 4


def test_table4_supernet_runs(tmp_path):
    res = {"gain": {"mean": 1.0}, "accuracy_input": {"mean": 80.0}, "accuracy_derived": {"mean": 81.0}}
    rec = lambda a, b: {
        "input_darts": f"Genotype(in{a})",
        "derived_darts": "Genotype(out)",
        "acc_input": a,
        "acc_derived": b,
        "params_M": [3.0, 2.0],
        "madds_M": [500.0, 400.0],
    }
    fake_run(tmp_path, "natpp", {"space": "darts", "reward": "supernet"}, res, [rec(80.0, 82.0), rec(70.0, 71.0)])
    out = tmp_path / "t"
    shown = random_inputs.table4(random_inputs.load_runs([tmp_path]))[0]
    assert list(shown.iloc[0]) == ["random inputs", "3.000 ± 0.000", "500.0 ± 0.0", "75.00 ± 5.00", 2, "0"]
    assert list(shown.iloc[1]) == ["NAT++", "2.000 ± 0.000", "400.0 ± 0.0", "76.50 ± 5.50", 2, "0"]
    run("table4", tmp_path, "--out", out)
    assert "supernet proxy" in (out / "table4.md").read_text() and len(pd.read_csv(out / "fig6_points.csv")) == 4
    spoil(tmp_path / "natpp", "derived.json", [{**rec(1.0, 2.0), "params_M": [3.0]}])
    assert "field 'params_M' must be [input, derived]" in one_line_error("table4", tmp_path, "--out", out)


def scratch_results(acc, **extra):
    return {
        "kind": "train_eval",
        "arch": "NATv2_DARTS",
        "model": "DARTS",
        "method": "NAT++",
        "dataset": "cifar10",
        "params_M": 2.48,
        "madds_M": 394.2,
        "test_acc": acc,
        "epochs": 600,
        "layers": 20,
        "channels": 36,
        **extra,
    }


def test_table_models_puts_ours_beside_quoted(tmp_path):
    for seed, acc in ((0, 97.0), (1, 97.5)):
        fake_run(tmp_path, f"ev{seed}", {"seed": seed}, scratch_results(acc))
    out = tmp_path / "t"
    run("models", tmp_path, "--table", "3", "--out", out)
    md = (out / "table3.md").read_text()
    assert "| DARTS | NAT++ | quoted (NAT++ Table 3) | 2.5 | 395 | 97.30 | 83.56 |" in md
    assert (
        "| DARTS | NAT++ | ours, trained from scratch (20 cells, C=36, 600 epochs; seeds 0 1) | 2.48 | 394 "
        "| 97.25 ± 0.25 | - |" in md
    )
    lines = md.splitlines()
    assert (
        lines.index(next(x for x in lines if "| ours" in x))
        == lines.index("| DARTS | NAT++ | quoted (NAT++ Table 3) | 2.5 | 395 | 97.30 | 83.56 |") + 1
    )  # ours right below the quote
    assert "give --table 1" in one_line_error("models", tmp_path, "--out", out)


def test_quoted_rows_match_the_paper_layout():
    from natrl.tables.quoted import METHODS, TABLE1, TABLE3, quoted_frame

    t1, t3 = quoted_frame(1), quoted_frame(3)
    assert len(t3) == len(TABLE3) * len(METHODS) and len(t1) == len(TABLE1) * len(METHODS) - 1
    assert t1[t1["model"] == "MobileNetV2"]["method"].iloc[-1] == "NAT/NAT++"
    assert tuple(t3.iloc[-1]) == ("PC-DARTS", "NAT++", 3.3, 512, 97.57, 84.37)


def test_positional_paths_and_flags_in_any_order():
    cfg = ablations.Fig7Config
    assert with_positionals(cfg, ["a", "--out", "t", "b"]) == ["--paths", "a", "b", "--out", "t"]
    assert with_positionals(cfg, ["--out", "t", "--force"]) == ["--out", "t", "--force"]
    assert with_positionals(cfg, ["x", "--paths", "y"]) == ["--paths", "x", "y"]
    assert with_positionals(cfg, ["--ou", "t", "a"]) == ["--paths", "a", "--ou", "t"]  # argparse's prefixes
    assert with_positionals(random_inputs.Table4Config, ["--inputs", "-1", "a"]) == ["--paths", "a", "--inputs", "-1"]


# ---- outputs ---------------------------------------------------------------------------------------------


def test_existing_outputs_are_refused_unless_force(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "a", {"tag": "lam"}, nb201_results(3.0))
    out = tmp_path / "t"
    out.mkdir()
    (out / "fig7.png").write_text("an older figure")
    message = one_line_error("fig7", runs, "--out", out)
    assert "fig7.png exists; pass --force" in message
    assert sorted(p.name for p in out.iterdir()) == ["fig7.png"]  # checked before anything was written
    run("fig7", runs, "--out", out, "--force")
    assert (out / "fig7.png").read_bytes()[:4] == b"\x89PNG" and (out / "fig7_lam.md").exists()
    (out.parent / "file").write_text("")
    assert "is a file" in one_line_error("fig7", runs, "--out", out.parent / "file")


def test_fig5_refuses_existing_figure(tmp_path):
    cfg, given = parse_config(cells.Fig5Config, ["--rows", "VGG", "--out", str(tmp_path)])
    (tmp_path / "fig5.png").write_text("")
    with pytest.raises(NatrlError, match="fig5.png exists; pass --force"):
        cells.fig5(cfg, given)
    cells.fig5(cfg.__class__(rows=["VGG"], out=str(tmp_path), force=True))
    assert (tmp_path / "fig5.png").read_bytes()[:4] == b"\x89PNG"


def test_refused_and_forced_on_the_command_line(tmp_path, script):
    fake_run(tmp_path / "runs", "m1", {"tag": "m", "m": 1, "n": 1}, nb201_results(1.0))
    out = tmp_path / "t"
    assert script("analysis/table5_mn.py", tmp_path / "runs", "--out", out).returncode == 0
    before = (out / "table5.md").read_text()
    (out / "table5.md").write_text("edited")
    r = script("analysis/table5_mn.py", tmp_path / "runs", "--out", out)
    assert r.returncode == 2 and "table5.md exists; pass --force" in r.stderr and len(r.stderr.splitlines()) == 1
    assert (out / "table5.md").read_text() == "edited"
    r = script("analysis/table5_mn.py", tmp_path / "runs", "--out", out, "--force")
    assert r.returncode == 0 and (out / "table5.md").read_text() == before


# ---- malformed inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script,args,message",
    [
        ("analysis/fig7_ablations.py", [], "no runs of the gcn_layers or lam ablations found"),
        (
            "analysis/table5_mn.py",
            [],
            "no runs of the m or n ablations found; make them with: python experiments/sweep.py",
        ),
        ("analysis/nat_table3_learners.py", [], "no runs of the policy ablation found"),
        ("analysis/table4_random.py", [], "no GCN-policy runs"),
        ("analysis/table_models.py", ["--table", "1"], "no train_eval.py runs of Table 1's models"),
    ],
)
def test_missing_inputs_give_a_clear_message(script, tmp_path, args, message):
    from conftest import run_script

    (tmp_path / "empty").mkdir()
    r = run_script(script, tmp_path / "empty", *args, "--out", tmp_path / "t")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()  # no empty table is written


def test_runs_of_different_budgets_are_not_averaged(tmp_path, script):
    fake_run(tmp_path, "a", {"tag": "lam", "iters": 400}, nb201_results(3.0))
    fake_run(tmp_path, "b", {"tag": "lam", "iters": 20, "seed": 1}, nb201_results(1.0))
    r = script("analysis/fig7_ablations.py", tmp_path, "--out", tmp_path / "t")
    assert r.returncode == 2 and "the natpp runs differ in iters (20, 400)" in r.stderr


def test_each_rule_on_its_own_papers_budget_is_one_table(tmp_path):
    # --preset papers: NAT trials run NAT's 46,900 updates, NAT++ trials NAT++'s 93,800; the cells are per rule
    fake_run(tmp_path, "a", {"tag": "lam", "iters": 46900, "rule": "nat"}, nb201_results(3.0))
    fake_run(tmp_path, "b", {"tag": "lam", "iters": 93800}, nb201_results(4.0))
    run("fig7", tmp_path, "--out", tmp_path / "t")
    md = (tmp_path / "t" / "fig7_lam.md").read_text()
    assert "| 0.03 | 3.00 ± 0.00 (1) | 3.00 ± 0.00 (1) | 4.00 ± 0.00 (1) | 4.00 ± 0.00 (1) |" in md
    assert "Policy updates per run: NAT 46900, NAT++ 93800." in md
    fake_run(tmp_path, "c", {"tag": "lam", "iters": 400, "rule": "nat", "seed": 1}, nb201_results(1.0))
    assert "the nat runs differ in iters (400, 46900)" in one_line_error("fig7", tmp_path, "--out", tmp_path / "u")


def spoil(run_dir: Path, name: str, content):
    path = run_dir / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))


GOOD = nb201_results(1.0)
MALFORMED = [  # (file, content, message)
    ("results.json", '{"rows": ', "results.json is not valid JSON (line 1"),
    ("results.json", [1, 2], "results.json holds a JSON list, not an object"),
    ("results.json", {"rows": {}}, "has no 'policy (best of k)' row"),
    (
        "results.json",
        {**GOOD, "rows": {**GOOD["rows"], "policy (1 sample)": {"reward": {"mean": "3"}}}},
        "field 'policy (1 sample).reward.mean' is '3', not a number",
    ),
    (
        "results.json",
        {**GOOD, "rows": {**GOOD["rows"], "policy (argmax)": {}}},
        "has no field 'policy (argmax).reward'",
    ),
    ("results.json", {**GOOD, "search_seconds": "ten"}, "field 'search_seconds' is 'ten', not a number"),
    ("results.json", "[" * 100000 + "]" * 100000, "nests JSON too deeply"),
    ("results.json", json.dumps(GOOD).replace("1.0", "NaN", 1), "holds NaN, not a finite number"),
    ("results.json", json.dumps(GOOD).replace("1.0", "-Infinity", 1), "holds -Infinity"),
    ("results.json", b'{"rows": "\xff\xfe"}', "results.json is not UTF-8 text"),
    ("config.json", [], "config.json holds a JSON list, not an object"),
    ("config.json", {"kind": "transformer"}, "config.json has no 'config' object"),
    ("config.json", {"config": {"tag": "m", "m": "one", "seed": 0}}, "field 'm' is 'one', not an integer"),
    ("config.json", {"config": {"tag": "m", "m": 1}}, "config.json has no field 'seed'"),
    ("config.json", {"config": {"tag": "m", "m": True, "seed": 0}}, "field 'm' is True, not an integer"),
    (
        "config.json",
        {"config": {"tag": "m", "n": 1, "seed": 0, "rule": "nat"}},
        "config.json has no 'm', which Table 5 needs",
    ),
]


@pytest.mark.parametrize("name,content,message", MALFORMED, ids=[m for _, _, m in MALFORMED])
def test_malformed_run_files_are_one_line(tmp_path, name, content, message):
    d = fake_run(tmp_path, "m1", {"tag": "m", "m": 1, "n": 1}, GOOD)
    spoil(d, name, content)
    assert message in one_line_error("table5", tmp_path, "--out", tmp_path / "t")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "derived.json does not exist"),
        ({"input": BETA}, "holds no list of derived records"),
        ([], "holds no list of derived records"),
        (["x"], "record 0 is not an object"),
        ([{"input": BETA, "input_acc": 90.0}], "record 0 has no 'policy (best of k)' entry"),
        (
            [{"input": BETA, "input_acc": "high", "policy (best of 10)": {"arch_str": BETA, "acc": 1.0}}],
            "field 'input_acc' is 'high', not a number",
        ),
        (derived("|nor_conv_3x3~０|", 91.0), "non-ASCII characters"),
        (derived("|nor_conv_3x3~²|", 91.0), "non-ASCII characters"),
        (derived("DARTS_V2", 91.0), "'DARTS_V2' is not an NB201 arch_str"),
        (derived("|foo~0|", 91.0), "unknown op 'foo'"),
    ],
)
def test_malformed_derived_json_is_one_line(tmp_path, content, message):
    d = fake_run(tmp_path, "natpp", {"tag": "policy"}, GOOD)
    if content is not None:
        spoil(d, "derived.json", content)
    assert message in one_line_error("table4", tmp_path, "--out", tmp_path / "t", "--inputs", "1")
    fig5 = cells.Fig5Config(nb201=[str(d), str(d)], out=str(tmp_path / "t"))
    with pytest.raises(NatrlError, match="derived.json"):
        cells.fig5(fig5)


def test_bad_paths_are_one_line(tmp_path):
    good = fake_run(tmp_path / "runs", "m1", {"tag": "m", "m": 1, "n": 1}, GOOD)
    (tmp_path / "empty").mkdir()
    assert "does not exist" in one_line_error("table5", tmp_path / "nope")
    assert "is a file; pass the run or sweep directory that holds it" in one_line_error("table5", good / "results.json")
    assert "empty holds no runs" in one_line_error("table5", tmp_path / "runs", tmp_path / "empty")
    assert "no runs of the m or n ablations found" in one_line_error("table5", tmp_path / "empty")
    assert "give one or more sweep or run directories" in one_line_error("table5")
    (good / "config.json").unlink()
    (good / "config.json").mkdir()
    assert "config.json is a directory, not a JSON file" in one_line_error("table5", good)
    (good / "config.json").rmdir()
    assert "has results.json but no config.json" in one_line_error("table5", good)


@pytest.mark.parametrize(
    "name,content", [("results.json", [1]), ("config.json", b"\xff"), ("results.json", "[" * 50000)]
)
def test_malformed_run_on_the_command_line(tmp_path, script, name, content):
    d = fake_run(tmp_path, "a", {"tag": "lam"}, GOOD)
    spoil(d, name, content)
    r = script("analysis/fig7_ablations.py", tmp_path, "--out", tmp_path / "t")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(d / name) in r.stderr


@pytest.mark.slow
def test_nb201_cost_decomposition_is_exact():
    import numpy as np

    from natrl.cells import nb201_cell
    from natrl.costs import genotype_cost, nb201_cost
    from natrl.ops import NB201_OPS

    rng = np.random.default_rng(0)
    for _ in range(4):
        ops = list(rng.choice(NB201_OPS, 6))
        assert nb201_cost(ops) == genotype_cost(nb201_cell(ops))


@pytest.mark.slow
def test_fig5_cells_published_and_nb201(tmp_path, script):
    r = script(
        "analysis/fig5_cells.py", "--rows", "DARTS_V2 NAT_DARTS NATv2_DARTS", "--reduce", "--out", tmp_path / "a"
    )
    assert r.returncode == 0 and "(1 rows)" in r.stdout and (tmp_path / "a" / "fig5.png").stat().st_size > 0
    runs = [fake_run(tmp_path, name, {}, nb201_results(0.0), derived(BETA, 90.0)) for name in ("nat", "natpp")]
    cfg, given = parse_config(cells.Fig5Config, ["--nb201", *map(str, runs), "--out", str(tmp_path / "b")])
    assert cells.fig5(cfg, given) == tmp_path / "b" / "fig5.png"
    r = script("analysis/fig5_cells.py", "--rows", "NoSuchNet", "--out", tmp_path / "c")
    assert r.returncode == 2 and "NoSuchNet" in r.stderr and "Traceback" not in r.stderr
    for argv, message in (
        (["--nb201", str(runs[0])], "--nb201 takes two run directories"),
        (["--rows", " "], "an empty --rows entry"),
        (["--nb201", str(tmp_path / "x"), str(runs[1])], "is not a directory"),
    ):
        with pytest.raises(NatrlError, match=message):
            cells.fig5(*parse_config(cells.Fig5Config, argv + ["--out", str(tmp_path / "d")]))


def test_a_csv_of_rows_from_old_and_new_runs_has_every_column(tmp_path):
    """Correlation rows of runs written before a column existed sit beside newer rows: the header is the union."""
    from natrl.results import Outputs

    out = Outputs(tmp_path / "t", force=False)
    out.csv("c.csv", [{"run": "old", "kendall": 0.4}, {"run": "new", "kendall": 0.5, "mean_R": 0.7}])
    out.commit()
    assert (tmp_path / "t" / "c.csv").read_text().splitlines() == ["run,kendall,mean_R", "old,0.4,", "new,0.5,0.7"]


def test_a_single_run_is_a_point_of_every_ablation_and_a_seed_counts_once(tmp_path):
    # a paper preset's main runs (train_natpp.py, no tag) are its lambda = 0.003 and 2-layer grid points
    sweep_dir, single = tmp_path / "sweep", tmp_path / "single"
    fake_run(sweep_dir, "lam-s0", {"tag": "lam", "lam": 0.3}, nb201_results(1.0))
    fake_run(sweep_dir, "gcn-s0", {"tag": "gcn_layers", "gcn_layers": 5, "lam": 0.003}, nb201_results(2.0))
    fake_run(sweep_dir, "lstm-s0", {"tag": "policy", "policy": "lstm", "lam": 0.003}, nb201_results(5.0))
    fake_run(single, "main-s0", {"lam": 0.003}, nb201_results(3.0))
    run("fig7", sweep_dir, single / "main-s0", "--out", tmp_path / "t")
    lam = (tmp_path / "t" / "fig7_lam.md").read_text()
    gcn = (tmp_path / "t" / "fig7_gcn_layers.md").read_text()
    assert "| 0.003 | - | - | 3.00 ± 0.00 (1) |" in lam and "| 0.3 | - | - | 1.00 ± 0.00 (1) |" in lam
    assert "| 2 | - | - | 3.00 ± 0.00 (1) |" in gcn and "| 5 | - | - | 2.00 ± 0.00 (1) |" in gcn
    run("learners", sweep_dir, single / "main-s0", "--out", tmp_path / "t")
    learners = (tmp_path / "t" / "nat_table3.md").read_text()
    assert "| LSTM | - | 5.00 ± 0.00 (1) |" in learners
    assert "| Sampling-GCN (1 sample) | - | 3.00 ± 0.00 (1) |" in learners
    fake_run(sweep_dir, "lam-again-s0", {"tag": "lam", "lam": 0.003}, nb201_results(3.0))  # the same point, seed 0
    message = one_line_error("fig7", sweep_dir, single / "main-s0", "--out", tmp_path / "u")
    assert "are the same grid point and seed; pass one of them" in message and "main-s0" in message
