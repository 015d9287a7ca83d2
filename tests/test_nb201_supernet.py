"""The NAS-Bench-201 weight-sharing supernet and its reward backend (issue 14), on small data the tests make."""

import numpy as np
import pytest
import torch

from natrl.cells import nb201_cell
from natrl.nets.eval_net import NetworkNB201
from natrl.nets.nb201_supernet import AvgPool3x3, NB201Supernet, NB201SupernetPreset
from natrl.spaces import make_space, nb201_genotype

SMALL = NB201SupernetPreset(C=4, N=2)


def _tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.integers(0, 60, (n, 32, 32, 3)) + (y * 19)[:, None, None, None]).astype(np.uint8)  # learnable
    return {"train_x": x, "train_y": y, "test_x": x[:8], "test_y": y[:8]}


def _record_ops(net):
    ran = set()
    for i, layer in enumerate(net.layers):
        for edge, bank in getattr(layer, "banks", {}).items():
            for op, module in bank.items():
                module.register_forward_hook(lambda m, inp, out, key=(i, edge, op): ran.add(key))
    return ran


@pytest.mark.parametrize(
    "ops",
    [
        ["nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none", "nor_conv_3x3"],
        # node 1 gets nothing: the edges leaving it (1 -> 2, 1 -> 3) run nothing either
        ["none", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"],
    ],
)
def test_runs_exactly_the_chosen_ops(ops):
    net = NB201Supernet(SMALL)
    ran = _record_ops(net)
    g = nb201_cell(ops)
    net(torch.randn(2, 3, 32, 32), g)
    node_has_input = {0}
    chosen = set()
    for op, src, dst in g.normal.edges:
        if op != "none" and src in node_has_input:
            chosen.add((f"{src}_{dst}", op))
            node_has_input.add(dst)
    cells = [i for i, layer in enumerate(net.layers) if hasattr(layer, "banks")]
    assert len(cells) == 3 * SMALL.N
    assert ran == {(i, e, op) for i in cells for e, op in chosen}


def test_a_disconnected_cell_predicts_one_class_for_every_image():
    net = NB201Supernet(SMALL)
    g = nb201_cell(["nor_conv_3x3", "none", "nor_conv_3x3", "none", "none", "none"])  # nothing reaches node 3
    logits = net(torch.randn(6, 3, 32, 32), g)
    assert torch.allclose(logits, logits[:1].expand_as(logits))


def _copy_chosen_weights(supernet: NB201Supernet, network: NetworkNB201, g):
    """The standalone network's weights from the supernet's chosen ops (BN: identity affine, as the supernet)."""
    sd = network.state_dict()
    for name, v in supernet.state_dict().items():  # stem, reduction blocks, classifier: the same modules
        name = name.replace("layers.", "cells.", 1)
        if name in sd:
            sd[name] = v
    for i, layer in enumerate(supernet.layers):
        if hasattr(layer, "banks"):
            for j, (op, src, dst) in enumerate(g.normal.edges):
                prefix = f"cells.{i}._ops.{j}."
                for k, v in layer.banks[f"{src}_{dst}"][op].state_dict().items():
                    sd[prefix + k] = v
    network.load_state_dict(sd)


@pytest.mark.parametrize("index", [0, 1234, 15624, 7777])
def test_matches_the_nb201_network_of_a_fixed_cell(index):
    """Every NB201 network (natrl.nets.eval_net.NetworkNB201, NAS-Bench-201's macro network) computes, given
    the supernet's weights of the chosen ops, exactly the supernet's output for that cell."""
    torch.manual_seed(index)
    g = nb201_genotype(index)
    supernet = NB201Supernet(SMALL)
    network = NetworkNB201(g, C=SMALL.C, N=SMALL.N)
    _copy_chosen_weights(supernet, network, g)
    network.train()  # batch statistics, as the supernet's BNs always use
    x = torch.randn(8, 3, 32, 32)
    torch.testing.assert_close(supernet(x, g), network(x)[0], rtol=1e-4, atol=1e-5)


def test_presets_are_nb201_and_a_cpu_size():
    from natrl.nets.nb201_supernet import NB201_PRESETS

    assert NB201_PRESETS["nb201"] == NB201SupernetPreset(C=16, N=5)
    net = NB201Supernet("nb201")
    assert sum(hasattr(layer, "banks") for layer in net.layers) == 15
    assert net.classifier.in_features == 64


def test_avg_pool_equals_nb201s_pool_without_padding_counted():
    x = torch.randn(3, 5, 9, 7)
    ref = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(AvgPool3x3(5)(x), ref)


def test_reward_backend_plugs_into_the_env_unchanged():
    """The nb201 env with the supernet backend: its reward is the supernet's acc(alpha) - acc(beta) on one
    reward batch, from the same env code the tabular reward uses."""
    import envs
    from natrl.rewards.supernet import LocalSupernet

    space = make_space("nb201")
    backend = LocalSupernet(space.ops, _tiny_data(), space="nb201", preset=SMALL, batch_size=16, seed=0)
    backend.train_epoch(lambda: space.sample_input(np.random.default_rng(0)), max_steps=2)
    env = envs.NATEnv({"space": "nb201", "backend": backend, "n": 1})
    obs, info = env.reset(seed=3)
    action = env.action_space.sample()
    k = backend.batch_counter
    _, r, terminated, _, info = env.step(action)
    beta = space.genotype(obs["op"])
    alpha = space.apply(beta, action)
    expected = backend.trainer.score([alpha, beta], k)
    assert terminated and r == pytest.approx(expected[0] - expected[1])
    assert backend.batch_counter == k + 1  # Algorithm 1: the next reward takes the next batch


def test_cached_rewards_are_exact_and_renewed_every_epoch():
    from natrl.rewards.supernet import LocalSupernet

    space = make_space("nb201")
    data = _tiny_data()
    kw = dict(space="nb201", preset=SMALL, batch_size=16, reward_batch=32, seed=0)
    backend = LocalSupernet(space.ops, data, cache_rewards=True, **kw)
    cells = [nb201_genotype(i) for i in (5, 900, 5)]
    first = backend.score(cells)
    assert first[0] == first[2] and backend.score(cells[1:2])[0] == first[1]  # one batch for the whole epoch
    np.testing.assert_array_equal(first, backend.trainer.score(cells, 0))  # what scoring again gives
    backend.train_epoch(lambda: space.sample_input(np.random.default_rng(0)), max_steps=1)
    assert backend.batch_counter == 1 and not backend.cache
    np.testing.assert_array_equal(backend.score(cells), backend.trainer.score(cells, 1))


def test_correlation_on_fixed_eval_batches_leaves_the_rewards_alone():
    """--corr-batches K: R averaged over K fixed evaluation batches (the same at every epoch), without moving
    the reward batch counter or filling the reward cache."""
    from natrl.rewards.supernet import LocalSupernet
    from natrl.truth import EVAL_BATCH_OFFSET, random_pairs, supernet_gains

    space = make_space("nb201")
    kw = dict(space="nb201", preset=SMALL, batch_size=16, reward_batch=8, seed=0)
    backend = LocalSupernet(space.ops, _tiny_data(), cache_rewards=True, **kw)
    alphas, betas = random_pairs(space, 6, seed=0, per_input=3)
    gains = supernet_gains(backend, alphas, betas, batches=3)
    assert backend.batch_counter == 0 and not backend.cache
    cells = [space.genotype(a) for a in alphas] + [space.genotype(b) for b in betas]
    per_batch = [backend.trainer.score(cells, EVAL_BATCH_OFFSET + k) for k in range(3)]
    mean = np.mean(per_batch, axis=0)
    np.testing.assert_allclose(gains, mean[:6] - mean[6:])
    assert not np.array_equal(per_batch[0], per_batch[1])  # three different sets of images
    np.testing.assert_array_equal(gains, supernet_gains(backend, alphas, betas, batches=3))  # same images again


def test_fair_sampling_trains_every_op_of_every_edge_equally_often():
    from natrl.spaces import fair_cells

    space = make_space("nb201")
    sample = fair_cells(space, np.random.default_rng(0))
    cells = np.stack([space.encode_genotype(sample()) for _ in range(5 * 40)])  # 40 groups of 5
    for group in cells.reshape(40, 5, 6):
        assert (np.sort(group, axis=0) == np.arange(5)[:, None]).all()  # each edge: a permutation of the 5 ops
    assert len({tuple(c) for c in cells}) > 150  # and the groups differ


def test_fair_sampling_is_for_the_nb201_supernet(script, tmp_path):
    r = script("experiments/train_natpp.py", "--supernet-sampling", "fair", "--out", tmp_path / "r")
    assert r.returncode == 2 and "--supernet-sampling fair is for the nb201 supernet" in r.stderr
    assert not (tmp_path / "r").exists()


def test_rank_correlations_and_pairs():
    from natrl.truth import random_pairs, rank_correlations

    assert rank_correlations(np.arange(10), np.arange(10) ** 2) == {"kendall": 1.0, "spearman": 1.0}
    assert rank_correlations(np.arange(10), -np.arange(10))["kendall"] == -1.0
    space = make_space("nb201")
    alphas, betas = random_pairs(space, 200, seed=0)
    assert alphas.shape == betas.shape == (200, 6)
    assert space.mask[betas, alphas].all()  # every alpha a valid transformation
    held = set(space.heldout_cells.tolist())
    from natrl.spaces import nb201_index

    assert set(nb201_index(betas).tolist()) <= held  # inputs drawn from the held-out cells
    a2, b2 = random_pairs(space, 200, seed=0)
    assert (a2 == alphas).all() and (b2 == betas).all()


class _Tripwire:
    """Stands for the table during the search: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the search read the table ({name})")


def _nb201_supernet_args(data, out, *extra):
    flags = "--space nb201 --reward supernet --epochs 2 --supernet-steps 2 --supernet-batch 8 --iters 2 --m 2 --n 2"
    flags += " --corr-pairs 20 --corr-batches 2 --supernet-sampling fair --eval-inputs 4 --best-of 2 --seed 3"
    return [*flags.split(), "--data", str(data), "--out", str(out), *extra]


def test_algorithm1_on_nb201_never_reads_the_table_during_the_search(ray_session, tmp_path, monkeypatch, capsys):
    """train_natpp.py --space nb201 --reward supernet: the search (supernet epochs and policy updates) runs with
    the table replaced by a tripwire; the correlation curve and the evaluation read it afterwards."""
    import csv
    import json

    from test_datasets import make_image_folder
    from test_training import train_main

    from natrl.runs.transformer import TransformerRun

    make_image_folder(tmp_path / "cifar", n=20)
    search, correlate = TransformerRun.search_supernet, TransformerRun.correlation_point
    phases = []

    def guarded_search(self):
        table, self.inputs.table = self.inputs.table, _Tripwire()
        try:
            search(self)
        finally:
            self.inputs.table = table

    def correlation_with_the_table(self, epoch, stats):  # evaluation between epochs: it may read the table
        phases.append(epoch)
        table, self.inputs.table = self.inputs.table, self.real_table
        try:
            correlate(self, epoch, stats)
        finally:
            self.inputs.table = table

    def build(self, _build=TransformerRun.build):
        self.real_table = self.inputs.table
        _build(self)

    monkeypatch.setattr(TransformerRun, "search_supernet", guarded_search)
    monkeypatch.setattr(TransformerRun, "correlation_point", correlation_with_the_table)
    monkeypatch.setattr(TransformerRun, "build", build)
    out = tmp_path / "run"
    train_main(_nb201_supernet_args(tmp_path / "cifar", out, "--reward-cache"))
    assert phases == [1, 2]
    printed = capsys.readouterr().out.splitlines()
    epochs = [line for line in printed if line.startswith("epoch ") and "supernet loss" in line]
    updates = [line for line in printed if line.startswith("iter ")]
    # the ETA is on the epoch lines (epochs are most of the time); the update lines carry none
    assert len(epochs) == 2 and all(" eta " in line for line in epochs) and epochs[-1].endswith("eta     0s")
    assert updates and not any("eta" in line for line in updates)
    rows = list(csv.DictReader(open(out / "correlation.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(-1 <= float(r["kendall_select"]) <= 1 for r in rows)
    results = json.loads((out / "results.json").read_text())
    assert results["num_inputs"] == 4 and "policy (best of 2, chosen by the supernet)" in results["rows"]
    assert results["all_heldout"]["num_inputs"] == 3125 and len(results["correlation"]) == 2
    assert "chosen by the supernet" in (out / "results.md").read_text()
    # analysis/nb201_supernet.py over the run: the gains table and the correlation curve
    from natrl.tables.truth import TruthConfig, truth_tables

    written = truth_tables(
        TruthConfig(
            paths=[str(out)],
            out=str(tmp_path / "tables"),
            rescore_images=[8, 4],
            rescore_batches=2,
            policy_pairs=True,
        )
    )
    # the policy's own samples, scored in the run and again on the reloaded supernet: the same pairs, same numbers
    from natrl.tables.truth import policy_pairs_rescore

    in_run = results["policy_correlation"]
    assert in_run["pairs"] == 4 * 2 and "kendall_report" not in in_run  # 4 inputs x best of 2; no report table
    random_row, policy_row = policy_pairs_rescore(out)
    assert (random_row["pairs_from"], policy_row["pairs_from"]) == ("random", "policy")
    assert policy_row["mean_R"] == in_run["mean_R"] and policy_row["kendall_select"] == in_run["kendall_select"]
    assert random_row["mean_R"] == pytest.approx(float(rows[-1]["mean_R"]))  # the curve's last point
    # so the table takes a run's own numbers where it has them (no re-scoring) and says so
    table_rows = list(csv.DictReader(open(tmp_path / "tables" / "nb201_supernet_policy_pairs.csv")))
    assert [(r["pairs_from"], r["source"]) for r in table_rows] == [("random", "in run"), ("policy", "in run")]
    assert float(table_rows[1]["mean_R"]) == in_run["mean_R"] and int(table_rows[1]["pairs"]) == in_run["pairs"]
    assert {p.name for p in written} >= {"nb201_supernet.md", "nb201_supernet_correlation.png"}
    rescored = list(csv.DictReader(open(tmp_path / "tables" / "nb201_supernet_reward_images.csv")))
    assert [r["reward_images"] for r in rescored] == ["4", "8"] and rescored[0]["pairs"] == "20"
    batches = list(csv.DictReader(open(tmp_path / "tables" / "nb201_supernet_batches.csv")))
    assert [r["batch"] for r in batches] == ["0", "1"] and batches[0]["batch_images"] == "8"
    md = (tmp_path / "tables" / "nb201_supernet.md").read_text()
    assert "policy (best of 2, chosen by the supernet)" in md and "kendall_select" in md
    (per_run,) = list(csv.DictReader(open(tmp_path / "tables" / "nb201_supernet_runs.csv")))
    assert (per_run["run"], per_run["sampling"], per_run["epochs"], per_run["eval batches"]) == (
        "run",
        "fair",
        "2",
        "2",
    )
    assert per_run["kendall tau"] == rows[-1]["kendall_select"]
    assert float(per_run["kendall tau, policy's samples"]) == in_run["kendall_select"]
    assert float(per_run["1 sample, all held-out"]) == round(results["all_heldout"]["sample_reward"], 2)


def test_nb201_supernet_run_killed_after_an_epoch_resumes_identically(ray_session, tmp_path, monkeypatch):
    """Fair sampling, cached rewards, a correlation curve: a run killed right after epoch 1's checkpoint and
    resumed ends as the uninterrupted run ends (progress, correlation curve, policy weights, true gains)."""
    import csv
    import json

    from test_datasets import make_image_folder
    from test_training import train_main

    from natrl.runs.transformer import TransformerRun

    make_image_folder(tmp_path / "cifar", n=20)
    args = lambda out: _nb201_supernet_args(tmp_path / "cifar", out, "--reward-cache", "--epochs", "3")  # noqa: E731
    full, killed = tmp_path / "full", tmp_path / "killed"
    train_main(args(full))
    original = TransformerRun.checkpoint

    def save_then_die(self):
        original(self)
        if self.done_epochs == 1:
            raise RuntimeError("killed")

    monkeypatch.setattr(TransformerRun, "checkpoint", save_then_die)
    with pytest.raises(RuntimeError):
        train_main(args(killed))
    monkeypatch.setattr(TransformerRun, "checkpoint", original)
    assert not (killed / "results.json").exists()
    train_main(["--resume", str(killed)])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    for name in ("progress.csv", "correlation.csv"):
        assert strip(csv.DictReader(open(killed / name))) == strip(csv.DictReader(open(full / name)))
    a = torch.load(full / "policy.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "policy.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, killed))
    assert ra["rows"] == rb["rows"] and ra["all_heldout"] == rb["all_heldout"]
