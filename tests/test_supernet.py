"""The DARTS space encoding and the weight-sharing supernet (CPU, tiny widths)."""

import numpy as np
import pytest
import torch

from natrl import zoo
from natrl.errors import NatrlError
from natrl.nets.supernet import Supernet, SupernetPreset
from natrl.ops import NATPP_OPS
from natrl.spaces import make_space

TINY = SupernetPreset(C=4, layers=3)


def test_darts_space_samples_and_encodes():
    space = make_space("darts", rule="natpp")
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = space.sample_input(rng)
        assert g.num_intermediate == 4 and "null" not in g.normal.ops + g.reduce.ops
        obs = space.encode(g)
        assert space.observation_space().contains(obs)
        assert (obs["src"] < obs["dst"]).all() and (obs["dst"][8:] >= 8).all()
        keep = space.apply(g, obs["op"])
        assert keep == g


def test_darts_space_transforms_registry_cells_and_rejects_foreign_ops():
    space = make_space("darts", rule="natpp")
    g = zoo.get("DARTS_V2")
    obs = space.encode(g)
    action = obs["op"].copy()
    action[0] = NATPP_OPS.index("dil_conv_3x3")  # sep_conv_3x3 -> dil_conv_3x3 is valid in NAT++
    alpha = space.apply(g, action)
    assert alpha.normal.ops[0] == "dil_conv_3x3" and alpha.normal.concat == g.normal.concat
    action[8] = NATPP_OPS.index("conv_3x3")  # max_pool_3x3 -> conv_3x3 is not
    with pytest.raises(ValueError, match="invalid transition on edge 8: max_pool_3x3 -> conv_3x3"):
        space.apply(g, action)
    with pytest.raises(NatrlError, match="outside the natpp vocabulary"):
        space.encode(g.with_ops(["sep_conv_7x7"] + list(g.normal.ops[1:]), g.reduce.ops))
    with pytest.raises(NatrlError, match="4 are required"):
        space.encode(zoo.get("ENAS"))  # 5 intermediate nodes


def test_nat_rule_on_darts_space_is_keep_null_skip():
    space = make_space("darts", rule="nat")
    obs = space.encode(zoo.get("DARTS_V2"))
    assert (obs["action_mask"].sum(1) == np.where(np.isin(obs["op"], [space.ops.index("skip_connect")]), 2, 3)).all()


@pytest.mark.parametrize("op", NATPP_OPS)
def test_supernet_runs_every_op_in_both_cell_types(op):
    torch.manual_seed(0)
    net = Supernet(NATPP_OPS, TINY)
    g = zoo.get("DARTS_V2").with_ops([op] * 8, [op] * 8)
    out = net(torch.randn(2, 3, 16, 16), g)
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_supernet_runs_exactly_the_chosen_ops():
    net = Supernet(NATPP_OPS, TINY)
    ran = set()
    for cell_i, cell in enumerate(net.cells):
        for pair, bank in cell.banks.items():
            for op, module in bank.items():
                module.register_forward_hook(lambda m, i, o, key=(cell_i, pair, op): ran.add(key))
    g = make_space("darts").sample_input(np.random.default_rng(1))
    net(torch.randn(2, 3, 16, 16), g)
    expected = {
        (i, f"{s}_{d}", op)
        for i, cell in enumerate(net.cells)
        for op, s, d in (g.reduce if cell.reduction else g.normal).edges
    }
    assert ran == expected


def test_supernet_bn_uses_batch_statistics_only():
    net = Supernet(NATPP_OPS, TINY)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.running_mean is None and m.weight is None for m in bns)
    g = zoo.get("DARTS_V2")
    x = torch.randn(4, 3, 16, 16)
    net.eval()
    a = net(x, g)
    net.train()
    torch.testing.assert_close(net(x, g), a)  # same semantics in train and eval mode


def test_supernet_scores_without_gradients_and_shares_weights():
    torch.manual_seed(0)
    net = Supernet(NATPP_OPS, TINY)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    g = zoo.get("DARTS_V2")
    acc = net.accuracy([g, g.with_ops(["null"] * 8, ["null"] * 8)], x, y)
    assert acc.shape == (2,) and not acc.requires_grad and ((acc >= 0) & (acc <= 100)).all()
    loss = torch.nn.functional.cross_entropy(net(x, g), y)
    loss.backward()
    bank = net.cells[0].banks["0_2"]
    assert bank["sep_conv_3x3"][0][1].weight.grad is not None  # chosen op on edge 0 -> 2 got a gradient
    assert bank["conv_5x5"][1].weight.grad is None  # an op nobody chose did not


def _tiny_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.integers(0, 60, (n, 32, 32, 3)) + (y * 19)[:, None, None, None]).astype(np.uint8)  # learnable
    return {"train_x": x, "train_y": y, "test_x": x[:8], "test_y": y[:8]}


def test_supernet_trainer_trains_and_scores_on_one_batch():
    from natrl.rewards.supernet import SupernetTrainer

    space = make_space("darts")
    rng = np.random.default_rng(0)
    trainer = SupernetTrainer(space.ops, _tiny_data(), preset=TINY, batch_size=16, epochs=5, seed=0)
    losses = [trainer.train_epoch(lambda: space.sample_input(rng))["loss"] for _ in range(4)]
    assert losses[-1] < losses[0]
    g = space.sample_input(rng)
    acc = trainer.score([g, g], batch_index=0)
    assert acc[0] == acc[1]  # the same batch and the same weights give the same score
    assert trainer.optimizer.param_groups[0]["lr"] < 0.01  # cosine schedule actually decays


def test_supernet_trainer_state_round_trip():
    from natrl.rewards.supernet import SupernetTrainer

    space = make_space("darts")
    data = _tiny_data()

    def run(resume_at=None):
        rng = np.random.default_rng(1)
        t = SupernetTrainer(space.ops, data, preset=TINY, batch_size=32, epochs=4, seed=3)
        for e in range(3):
            if e == resume_at:  # rebuild from a checkpoint taken at this point, as after a kill
                state = {k: v for k, v in t.state_dict().items()}
                buf = __import__("io").BytesIO()
                torch.save(state, buf)
                buf.seek(0)
                t = SupernetTrainer(space.ops, data, preset=TINY, batch_size=32, epochs=4, seed=3)
                t.load_state_dict(torch.load(buf, weights_only=True))
            t.train_epoch(lambda: space.sample_input(rng))
        return t.score([space.sample_input(np.random.default_rng(9))], batch_index=5), t.net.state_dict()

    (a, wa), (b, wb) = run(), run(resume_at=2)
    assert a == b
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k])


def test_supernet_trainer_never_reads_the_test_split():
    """The supernet uses the training set only (40/60 split): it works without any test arrays at all."""
    from natrl.rewards.supernet import SupernetTrainer

    data = _tiny_data()
    data = {"train_x": data["train_x"], "train_y": data["train_y"]}  # no test_x / test_y keys
    space = make_space("darts")
    t = SupernetTrainer(space.ops, data, preset=TINY, batch_size=16, seed=0)
    t.train_epoch(lambda: space.sample_input(np.random.default_rng(0)), max_steps=1)
    assert t.score([space.sample_input(np.random.default_rng(1))], batch_index=0).shape == (1,)
    assert len(t.weights.y) + len(t.reward.y) == len(data["train_y"])


def test_five_node_cells_for_enas():
    space = make_space("darts", num_intermediate=5)
    g = zoo.get("ENAS")
    obs = space.encode(g)
    assert obs["op"].shape == (20,) and obs["node_kind"].shape == (14,)
    assert space.apply(g, obs["op"]) == g
    net = Supernet(NATPP_OPS, TINY, num_intermediate=5)
    assert net(torch.randn(2, 3, 16, 16), g).shape == (2, 10)
    with pytest.raises(NatrlError, match="5 are required"):
        space.encode(zoo.get("DARTS_V2"))


def test_a_subset_concat_cell_is_scored_as_the_network_it_describes():
    """VGG's cell outputs node 5 only: in the supernet the other nodes' channels are zero, node 5's are the
    chain the genotype describes (null -> skip -> conv -> conv -> max_pool / skip edges), and a cell with every
    node in its concat is unchanged."""
    torch.manual_seed(0)
    vgg = zoo.get("VGG")
    net = Supernet(NATPP_OPS, SupernetPreset(C=4, layers=3)).eval()
    cell, C = net.cells[0], 4
    s0, s1 = torch.randn(2, 12, 8, 8), torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        out = cell(s0, s1, vgg.normal)
        states = [cell.preprocess0(s0), cell.preprocess1(s1), None, None, None, None]
        for op, src, dst in vgg.normal.edges:
            h = cell.banks[f"{src}_{dst}"][op](states[src])
            states[dst] = h if states[dst] is None else states[dst] + h
        assert out.shape[1] == 4 * C
        assert torch.count_nonzero(out[:, : 3 * C]) == 0  # nodes 2, 3, 4 are not outputs
        assert torch.equal(out[:, 3 * C :], states[5])
        full = vgg.normal.__class__(vgg.normal.edges, (2, 3, 4, 5), 2)
        assert torch.equal(cell(s0, s1, full), torch.cat(states[2:], dim=1))
