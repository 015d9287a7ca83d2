"""``--preset nat`` / ``--preset natpp`` set what the papers state; ``--preset natrl`` (the default) is our tuned
recipe; docs/papers.md shows the same data. The expected values are literals read from the papers' text."""

import inspect
from pathlib import Path

import pytest

from natrl.config import parse_config
from natrl.errors import NatrlError
from natrl.runs.transformer import RECIPES, TrainConfig, recipe_table

ROOT = Path(__file__).resolve().parents[1]

# NAT Section 4.1: "8 basic cells", "train the transformer for 100 epochs", "m=1, n=1, and lambda=0.003",
# "40% and 60% slices" of the CIFAR-10 training set. NAT++ Section 5.1: "8 cells with the initial channel number
# of 20", "200 epochs", "m = 1, n = 1, and lambda = 0.003"; Section 6.2: "a two-layer GCN in practice".
# Algorithm 1: one policy update per validation batch: 60% of 50,000 images in batches of 64 = 469 per epoch.
# Papers silent, taken from the released code (docs/papers.md): Adam lr 3e-4, EMA baseline decay 0.99,
# GCN hidden 100, batch 64, best of 10, rewards as fractions (its accuracy is utils.accuracy(...) / 100).
PAPER = {
    "nat": {"rule": "nat", "m": 1, "n": 1, "lam": 0.003, "epochs": 100, "gcn_layers": 2, "supernet_size": "paper"},
    "natpp": {"rule": "natpp", "m": 1, "n": 1, "lam": 0.003, "epochs": 200, "gcn_layers": 2, "supernet_size": "paper"},
}
RELEASED_CODE = {
    "lr": 3e-4,
    "baseline": "ema",
    "baseline_decay": 0.99,
    "hidden": 100,
    "supernet_batch": 64,
    "reward_unit": "fraction",
}


@pytest.mark.parametrize("preset", ["nat", "natpp"])
def test_paper_presets_set_what_the_papers_state(preset):
    cfg, _ = parse_config(TrainConfig, ["--preset", preset, "--space", "darts", "--reward", "supernet", "--data", "D"])
    expected = {**PAPER[preset], **RELEASED_CODE, "iters": 469, "supernet_steps": 0, "best_of": 10}
    assert {k: getattr(cfg, k) for k in expected} == expected


@pytest.mark.parametrize("preset,updates", [("nat", 100 * 469), ("natpp", 200 * 469)])
def test_tabular_reward_makes_every_epochs_updates_in_one_run(preset, updates):
    cfg, _ = parse_config(TrainConfig, ["--preset", preset])
    assert (cfg.iters, cfg.m, cfg.n, cfg.lam) == (updates, 1, 1, 0.003)


def test_natrl_preset_is_the_field_defaults_and_the_default():
    defaults = TrainConfig()
    assert defaults.preset == "natrl"
    assert {k: getattr(defaults, k) for k in RECIPES["natrl"]} == RECIPES["natrl"]
    assert parse_config(TrainConfig, [])[0] == defaults


def test_given_knobs_win_over_the_preset():
    cfg, given = parse_config(TrainConfig, ["--preset", "natpp", "--iters", "7", "--m", "4"])
    assert (cfg.iters, cfg.m, cfg.n, cfg.lam) == (7, 4, 1, 0.003) and given == {"preset", "iters", "m"}


def test_a_paper_preset_keeps_its_papers_rule():
    cfg, _ = parse_config(TrainConfig, ["--preset", "nat"])
    assert cfg.rule == "nat"  # train_natpp.py --preset nat runs NAT
    with pytest.raises(NatrlError, match="--preset natpp is the NAT\\+\\+ recipe"):
        parse_config(TrainConfig, ["--preset", "natpp"], defaults={"rule": "nat"})  # what train_nat.py passes


def test_train_nat_with_the_natpp_preset_is_one_line(script, tmp_path):
    r = script("experiments/train_nat.py", "--preset", "natpp", "--out", tmp_path / "run")
    assert r.returncode == 2 and "use --preset nat" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # imports RLlib
def test_settings_that_are_not_knobs_are_the_released_codes():
    from natrl.algo.reinforce import REINFORCEConfig
    from natrl.nets.supernet import PRESETS
    from natrl.rewards.supernet import SupernetTrainer

    algo = REINFORCEConfig()
    assert tuple(algo.adam_betas) == (0.5, 0.999) and algo.weight_decay == 5e-4
    sgd = {k: v.default for k, v in inspect.signature(SupernetTrainer).parameters.items()}
    assert (sgd["lr"], sgd["momentum"], sgd["weight_decay"], sgd["weights_frac"]) == (0.01, 0.9, 3e-4, 0.4)
    assert (PRESETS["paper"].C, PRESETS["paper"].layers) == (20, 8)


def test_old_configs_name_the_supernet_size_preset():
    cfg = TrainConfig(**{"preset": "paper"})  # a config.json written before the rename
    assert (cfg.preset, cfg.supernet_size) == ("natrl", "paper")


def test_docs_show_the_presets_table():
    papers = (ROOT / "docs" / "papers.md").read_text()
    assert recipe_table() in papers, (
        "docs/papers.md#presets is out of date: paste the output of "
        "python -c 'from natrl.runs.transformer import recipe_table; print(recipe_table())'"
    )
