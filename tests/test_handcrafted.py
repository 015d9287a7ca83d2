"""Hand-crafted networks of NAT++ Table 1 built from cells: costs vs the paper, forward/backward at small width,
transformed cells placed back in the same network, round trips of every cell, the vocabulary stand-ins."""

import numpy as np
import pytest
import torch

from natrl import handcrafted, zoo
from natrl.cells import genotype_from_dict, load_genotype, parse_darts_text, save_genotype
from natrl.costs import network_cost
from natrl.errors import NatrlError
from natrl.spaces import DartsSpace

CIFAR = handcrafted.names("cifar10")
IMAGENET = handcrafted.names("imagenet")
CELLS = sorted({spec.cell for spec in handcrafted.SPECS.values()})


def test_registry_gives_cell_and_network():
    assert CIFAR == ["VGG16", "ResNet20", "ResNet56", "ShuffleNet", "MobileNetV2"]
    assert IMAGENET == ["VGG16", "ResNet18", "ResNet50", "ShuffleNet", "MobileNetV2"]
    assert zoo.get("ResNet20") == zoo.get("ResBlock") and zoo.entry("ResNet20").network == "ResNet20"
    assert zoo.entry("MobileNetV2").name == "Mobilenetv2" and zoo.entry("MobileNetV2").network == "MobileNetV2"
    net = zoo.network("ResNet56")
    assert net.genotype == zoo.get("ResBlock") and net.published == (0.9, 127)
    assert sum(s.blocks for s in net.spec.stages) == 27 == len(net.build(width_mult=0.25).cells)
    with pytest.raises(NatrlError, match="no hand-crafted network 'ResNet18' for cifar10"):
        zoo.network("ResNet18", "cifar10")


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_costs_match_table1(name):
    """Within half a printed unit plus 2.5% (handcrafted.within): every CIFAR row of NAT++ Table 1."""
    net = handcrafted.network(name)
    cost = network_cost(net.build(), 32)
    params, madds = net.published
    assert handcrafted.within(cost.params_m, params, 0.1) and handcrafted.within(cost.madds_m, madds, 1.0)


@pytest.mark.slow
def test_imagenet_costs_match_or_are_listed_with_a_reason():
    for row in (r for r in handcrafted.cost_rows() if r["dataset"] == "imagenet"):
        assert row["within"] != bool(row["why_not"]), row  # a mismatch has a reason, a match none
        assert handcrafted.within(row["params_M"], row["paper_params_M"], 0.1) or row["network"] == "MobileNetV2"


def _train_step(net, x, every_param=True):
    """One backward pass: finite gradients, on every parameter (a transformed cell may cut some off)."""
    logits, aux = net(x)
    assert aux is None and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is None or torch.isfinite(g).all() for g in grads) and grads[-1] is not None
    assert not every_param or all(g is not None for g in grads)
    return logits


@pytest.mark.parametrize(
    "name,dataset,size", [(n, "cifar10", 32) for n in CIFAR] + [(n, "imagenet", 32) for n in IMAGENET]
)
def test_forward_backward_at_small_width(name, dataset, size):
    torch.manual_seed(0)
    net = handcrafted.network(name, dataset).build(width_mult=0.125)
    logits = _train_step(net, torch.randn(2, 3, size, size))
    assert logits.shape == (2, 1000 if dataset == "imagenet" else 10)


@pytest.mark.parametrize("name", [n for n in CIFAR if n != "ResNet56"])  # ResNet56: ResNet20's cell, deeper
def test_transformed_cells_go_back_into_the_same_network(name):
    """Random valid NAT++ transformations (every op type on every edge sooner or later) build and train."""
    from natrl.nets.handcrafted import block_plan

    net = handcrafted.network(name)
    space = DartsSpace("natpp")
    rng = np.random.default_rng(0)
    for _ in range(2):
        mask = space.encode(net.genotype)["action_mask"]
        action = np.array([rng.choice(np.flatnonzero(row)) for row in mask])
        alpha = space.apply(net.genotype, action)
        model = net.build(alpha, width_mult=0.125)
        assert len(model.cells) == len(block_plan(net.spec))
        _train_step(model, torch.randn(2, 3, 32, 32), every_param=False)


@pytest.mark.slow
def test_published_transformed_cells_in_their_networks():
    """The authors' NAT++ cells of ResBlock and MobileNetV2 in ResNet20 / MobileNetV2: cheaper or equal, as theirs."""
    for name, cell in (("ResNet20", "NATv2_ResBlock"), ("MobileNetV2", "NATv2_MobileNetv2")):
        net = handcrafted.network(name)
        before, after = (network_cost(net.build(g), 32) for g in (net.genotype, zoo.get(cell)))
        assert after.params <= before.params and after.madds <= before.madds


@pytest.mark.parametrize("cell", CELLS)
def test_cells_round_trip_through_every_format(cell, tmp_path):
    g = handcrafted.cell(cell)
    assert genotype_from_dict(g.to_json(cell)) == g  # our JSON (authors' triples)
    assert load_genotype(save_genotype(g, tmp_path / f"{cell}.json", name=cell)) == g  # a file
    assert parse_darts_text(g.darts_text()) == g  # DARTS Genotype(...) text
    d = g.to_darts()  # DARTS (op, input) pairs in a JSON entry
    assert genotype_from_dict({k: [list(p) for p in v] if "concat" not in k else v for k, v in d.items()}) == g
    assert zoo.resolve(cell)[1] == g


def test_nat_vocabulary_stand_in_and_back():
    """NAT's vocabulary has no conv_1x1: the policy sees conv_3x3; kept edges get conv_1x1 back, changed ones not."""
    from natrl.ops import NAT_OPS

    g = handcrafted.network("MobileNetV2").genotype
    shown = handcrafted.to_vocab(g, NAT_OPS)
    assert "conv_1x1" not in shown.normal.ops and shown.normal.ops.count("conv_3x3") == 2
    derived = shown.with_ops(
        ["skip_connect" if i == 1 else o for i, o in enumerate(shown.normal.ops)], shown.reduce.ops
    )
    back = handcrafted.restore_ops(g, shown, derived)
    assert back.normal.ops[1] == "skip_connect" and back.normal.ops[5] == "conv_1x1" and back.reduce == g.reduce
    with pytest.raises(NatrlError, match="outside the policy's vocabulary"):
        handcrafted.to_vocab(zoo.get("NAONet"), NAT_OPS)


def test_shortcut_and_null_reshape_without_parameters():
    from natrl.nets.handcrafted import Shortcut, ZeroLike

    x = torch.randn(2, 6, 8, 8)
    assert Shortcut(6, 10, 2)(x).shape == (2, 10, 4, 4) and Shortcut(6, 4, 1)(x).shape == (2, 4, 8, 8)
    assert ZeroLike(3, 4)(x).abs().sum() == 0 and ZeroLike(3, 4)(x).shape == (2, 3, 2, 2)
    assert not list(Shortcut(6, 10, 2).parameters())


def test_table1_puts_network_runs_below_their_quoted_rows(tmp_path):
    from test_analysis import fake_run, run, scratch_results

    for i, (method, acc) in enumerate((("/", 91.0), ("NAT++", 92.5))):
        res = scratch_results(acc, arch="ResNet20", model="ResNet20", method=method, params_M=0.2697, madds_M=40.55)
        fake_run(tmp_path, f"r{i}", {"seed": 0}, {**res, "epochs": 200, "layers": 9, "channels": 16})
    run("models", tmp_path, "--table", "1", "--out", tmp_path / "t")
    md = (tmp_path / "t" / "table1.md").read_text()
    lines = md.splitlines()
    ours = next(i for i, x in enumerate(lines) if "| ResNet20 | / | ours" in x)
    assert lines[ours - 1].startswith("| ResNet20 | / | quoted (NAT++ Table 1) | 0.3 | 41 | 91.37")
    assert "the ResNet20 network, 9 blocks, 200 epochs" in lines[ours] and "| 0.27 | 41 |" in lines[ours]
    assert "hand-crafted recipe, no cutout" in md


def test_node0_enters_through_a_bn_only_where_a_cell_uses_it():
    """Originals never read c_{k-2} (exact costs); NAT's skips from it go through a BN so they do not compound."""
    net = handcrafted.network("ResNet20")
    original, nat = net.build(width_mult=0.25), net.build(zoo.get("NATv2_ResBlock"), width_mult=0.25)
    assert all(isinstance(c.pre0, torch.nn.Identity) for c in original.cells)
    assert all(isinstance(c.pre0, torch.nn.BatchNorm2d) for c in nat.cells)
    with torch.no_grad():
        assert nat(torch.randn(8, 3, 32, 32))[0].std() < 10  # 79 without the BN (docs/handcrafted.md)


def test_fig5_handcrafted_bad_input_is_one_line(tmp_path):
    from natrl.config import parse_config
    from natrl.tables.cells import Fig5Config, fig5

    def error(*argv):
        with pytest.raises(NatrlError) as e:
            fig5(*parse_config(Fig5Config, [str(a) for a in argv]))
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "takes two run directories" in error("--handcrafted", tmp_path, "--out", tmp_path / "o")
    assert "is not a directory" in error("--handcrafted", tmp_path / "nope", tmp_path, "--out", tmp_path / "o")
    assert "give one of --rows" in error("--handcrafted", "a", "b", "--rows", "VGG", "--out", tmp_path / "o")
