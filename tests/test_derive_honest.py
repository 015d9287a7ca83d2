"""Derive selects on one measurement and reports on another (issue 12): on darts runs the pick is chosen on
supernet reward batches 0..S-1 and reported on the next R batches (disjoint images); on nb201 runs chosen on the
reward table and reported on the official test accuracy. Every output names both. Hand-crafted cells are priced
in their own networks. No Ray, no training: untrained policies and fake scorers."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from natrl import handcrafted, zoo
from natrl.config import build_parser, check_config
from natrl.datasets import DeviceBatches
from natrl.errors import NatrlError
from natrl.rewards.nb201 import NB201Table, index_of
from natrl.runs import derive as d
from natrl.spaces import make_space


def _policy(space_name: str):
    from natrl.policy.module import DEFAULT_MODEL_CONFIG, TransitionPolicy

    space = make_space(space_name, rule="natpp")
    torch.manual_seed(0)
    module = TransitionPolicy(
        observation_space=space.observation_space(),
        action_space=space.action_space(),
        model_config={**DEFAULT_MODEL_CONFIG, "space": space_name, "rule": "natpp"},
    )
    return module.eval(), space


def _f(g) -> float:
    """A deterministic 'accuracy' of a genotype in 0..100 (distinct for distinct cells, almost surely)."""
    return zlib.crc32(repr(g.to_json()).encode()) % 100_000 / 1000


@pytest.mark.parametrize(
    "n,bs,select,report,expect",
    [(320, 64, 2, 3, (range(2), range(2, 5))), (30, 4, None, None, (range(1), range(1, 8))), (1000, 10, 3, None, None)],
)
def test_select_and_report_batches_are_disjoint(n, bs, select, report, expect):
    """The reward split's batches 0..S-1 and S..S+R-1 hold no image in common, and the labels count them."""
    ids = np.arange(n)
    reward = DeviceBatches(np.zeros((n, 32, 32, 3), np.uint8), ids, bs, seed=7)
    sel, rep = d.reward_batch_plan(n, bs, select, report)
    if expect:
        assert (sel, rep) == expect
    assert len(rep) == min(d.DEFAULT_REPORT_BATCHES, len(reward) - len(sel)) if report is None else report
    seen = {name: [int(i) for b in r for i in reward.batch(b)[1]] for name, r in (("select", sel), ("report", rep))}
    assert not set(seen["select"]) & set(seen["report"])
    for name, r in (("select", sel), ("report", rep)):
        assert len(seen[name]) == len(set(seen[name])) == d.batch_images(r, n, bs)
    calls: list[int] = []
    meas = d.supernet_measurements(lambda gs, i: calls.append(i) or np.zeros(len(gs)), n, bs, select, report)
    meas.select.score([None])
    assert calls == list(sel) and meas.select.label == f"reward batches 0..{sel[-1]} ({len(seen['select'])} images)"
    calls.clear()
    meas.report.score([None])
    assert calls == list(rep) and meas.report.label.endswith(f"..{rep[-1]} ({len(seen['report'])} images)")


def test_a_split_too_small_for_disjoint_batches_is_refused():
    with pytest.raises(NatrlError, match="need 4 .*must be disjoint"):
        d.reward_batch_plan(24, 8, 2, 2)  # 3 batches
    with pytest.raises(NatrlError, match="leaves no report batch"):
        d.reward_batch_plan(8, 8, None, None)
    assert d.reward_batch_plan(24, 8, None, None) == (range(1), range(1, 3))  # unset: as many as fit, up to 8


def test_partial_last_batch_is_weighted_by_its_images():
    meas = d.supernet_measurements(lambda gs, i: np.full(len(gs), 100.0 if i == 2 else 0.0), 20, 8, 1, 2)
    assert meas.report.label == "reward batches 1..2 (12 images)"
    assert meas.report.score([None])[0] == pytest.approx(100 * 4 / 12)


def test_honest_pick_differs_from_the_oracle_pick_and_is_reported(capsys, tmp_path):
    """A fake supernet whose selection batches rank candidates one way and whose report batches rank them the
    opposite way: derive keeps the selection batches' pick, reports its report-batch accuracy, labels both."""
    module, space = _policy("darts")
    calls: set[tuple[str, int]] = set()

    def score_batch(genotypes, i):
        calls.add(("select" if i < 2 else "report", i))
        return np.array([_f(g) if i < 2 else 100 - _f(g) for g in genotypes])

    meas = d.supernet_measurements(score_batch, 320, 64, select=2, report=3)
    cfg = d.DeriveConfig(run_dir="unused", cells=["DARTS_V2"], samples=10, seed=3)
    beta = zoo.get("DARTS_V2")
    cands = d.candidates(module, space, beta, cfg.samples, torch.Generator().manual_seed(cfg.seed))
    honest, oracle = max(cands, key=_f), max(cands, key=lambda g: 100 - _f(g))
    assert honest != oracle
    records, derived = d.derive_records(module, space, cfg.cells, [("DARTS_V2", beta)], cfg, meas, datasets=())
    rec = records[0]
    assert rec["output"] == honest.to_json() != oracle.to_json() and derived[0][1] == honest
    assert rec["acc_after"] == pytest.approx(100 - _f(honest)) and rec["acc_before"] == pytest.approx(100 - _f(beta))
    assert rec["selection"]["acc_after"] == pytest.approx(_f(honest)) and rec["oracle_pick"] is False
    assert calls == {("select", 0), ("select", 1), ("report", 2), ("report", 3), ("report", 4)}
    label = "selected on reward batches 0..1 (128 images), reported on reward batches 2..4 (192 images)"
    assert rec["selected_on"] == "reward batches 0..1 (128 images)"
    assert rec["reported_on"] == "reward batches 2..4 (192 images)" and rec["scored_on"] == "supernet"
    assert label in capsys.readouterr().out and label in d.markdown(records, meas.caption(cfg.mode))
    d.write_outputs(tmp_path / "out", records, derived, meas.caption(cfg.mode))
    assert label in (tmp_path / "out" / "derived.md").read_text()


def _nb201_table(test: bool) -> NB201Table:
    acc = np.random.default_rng(0).uniform(10, 90, 5**6)
    return NB201Table(acc, "fake.csv", measure="valid-accuracy", test_accuracy=100 - acc if test else None)


def test_nb201_chosen_on_the_table_reported_on_test_accuracy(capsys):
    module, space = _policy("nb201")
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    name, beta = zoo.resolve(cell)
    cfg = d.DeriveConfig(run_dir="unused", cells=[cell], samples=10, seed=1)
    table = _nb201_table(test=True)
    cands = d.candidates(module, space, beta, cfg.samples, torch.Generator().manual_seed(cfg.seed))
    accs = table.score(cands)
    honest = cands[int(np.argmax(accs))]
    assert accs.max() > accs.min()  # the test accuracy (100 - valid) ranks them the other way
    rec = d.derive_records(module, space, [cell], [(name, beta)], cfg, d.nb201_measurements(table), ())[0][0]
    assert rec["output"] == honest.to_json() and rec["oracle_pick"] is False
    assert rec["acc_after"] == pytest.approx(table.test_accuracy[index_of(honest.normal.ops)])
    assert rec["selected_on"] == "official NB201 valid-accuracy (fake.csv)"
    assert rec["reported_on"] == "official NB201 test-accuracy (fake.csv)"
    assert "selected on official NB201 valid-accuracy (fake.csv), reported on official NB201 test-accuracy" in (
        capsys.readouterr().out
    )
    # without a test-accuracy column the report is the selection table, and every output says so
    meas = d.nb201_measurements(_nb201_table(test=False))
    rec = d.derive_records(module, space, [cell], [(name, beta)], cfg, meas, ())[0][0]
    assert rec["oracle_pick"] is True and "an oracle pick" in capsys.readouterr().out
    argmax_cfg = d.DeriveConfig(run_dir="unused", cells=[cell], mode="argmax")
    rec = d.derive_records(module, space, [cell], [(name, beta)], argmax_cfg, d.nb201_measurements(table), ())[0][0]
    assert rec["selected_on"] is None and "no candidate selected" in capsys.readouterr().out


@pytest.mark.slow  # builds ResNet20 twice: 1-5 s on 2 busy cores
def test_handcrafted_cells_are_priced_in_their_networks():
    before, after = zoo.get("ResBlock"), zoo.get("NATv2_ResBlock")
    costs = d.cost_record(before, after, ("cifar10", "imagenet"), "ResNet20")
    net = handcrafted.network("ResNet20", "cifar10")
    assert costs == {"cifar10": {"network": "ResNet20", **handcrafted.cost_pair(net, before, after)}}
    assert costs["cifar10"]["params_M"][0] == pytest.approx(0.27, abs=0.01)  # not the DARTS network's ~3M
    assert {ds: n.name for ds, n in d.handcrafted_networks("ResBlock", before).items()} == {"cifar10": "ResNet20"}
    mbv2 = d.handcrafted_networks("MobileNetV2", zoo.get("MobileNetV2"))
    assert {ds: n.name for ds, n in mbv2.items()} == {"cifar10": "MobileNetV2", "imagenet": "MobileNetV2"}
    assert d.handcrafted_networks("DARTS_V2", zoo.get("DARTS_V2")) == {}
    assert d.handcrafted_networks("ResNet20", zoo.get("DARTS_V2")) == {}  # a file named ResNet20 holding another cell
    assert d.handcrafted_networks("no/such.json", before) == {}


def test_flags_are_declared_checked_and_kept_to_their_space():
    help_text = build_parser(d.DeriveConfig).format_help()
    for flag in ("--select-batches", "--report-batches", "--report-table"):
        assert flag in help_text
    for bad in ({"select_batches": 0}, {"report_batches": 10**6}):
        with pytest.raises(NatrlError, match="must be"):
            check_config(d.DeriveConfig(run_dir="r", cells=["x"], **bad))
    with pytest.raises(NatrlError, match="--select-batches applies to darts runs"):
        d.check_space_flags(d.DeriveConfig(run_dir="r", cells=["x"], select_batches=2), "nb201")
    with pytest.raises(NatrlError, match="--report-table apply to nb201 runs"):
        d.check_space_flags(d.DeriveConfig(run_dir="r", cells=["x"], report_table="t.csv"), "darts")
