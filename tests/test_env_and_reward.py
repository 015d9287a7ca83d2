"""The NB201 tabular reward, the one-step MDP and the Binary-Masked Softmax policy (no Ray needed)."""

import pickle

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from natrl.cells import from_arch_str
from natrl.errors import NatrlError
from natrl.ops import NATPP_OPS
from natrl.policy import BinaryMaskedSoftmax, apply_mask
from natrl.policy.module import TransitionPolicy
from natrl.rewards import NB201Table, reward
from natrl.rewards.nb201 import index_of, read_anb
from natrl.spaces import NB201_CELLS, make_space, nb201_index
from natrl.transitions import transition_mask

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def table():
    return NB201Table.load()


def test_table_values_for_known_cells(table):
    # Values of analog-nasbench's baseline_accuracy; the (0,1),(0,2),(1,2),... -> .anb key mapping is exercised.
    assert table.accuracy.shape == (15625,) and not np.isnan(table.accuracy).any()
    assert table.score([from_arch_str(CELL)])[0] == pytest.approx(93.2956)
    assert table.score([from_arch_str(ALL_NONE)])[0] == pytest.approx(10.0, abs=1.0)
    assert table.score([from_arch_str(ALL_CONV)])[0] > 93


def test_reward_sign_and_value(table):
    a, b = from_arch_str(ALL_NONE), from_arch_str(CELL)
    r = reward(table, [a, b], [b, a])
    assert r[0] == pytest.approx(table.score([a])[0] - table.score([b])[0]) and r[0] < -80
    assert r[1] == pytest.approx(-r[0])


def test_index_round_trip():
    np.testing.assert_array_equal(nb201_index(NB201_CELLS), np.arange(15625))
    space = make_space("nb201")
    for i in (0, 1, 777, 15624):
        assert index_of(space.genotype(NB201_CELLS[i]).normal.ops) == i
    assert index_of(from_arch_str(CELL).normal.ops) == nb201_index(space.encode_genotype(from_arch_str(CELL)))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    p = tmp_path / "evil.anb"
    p.write_bytes(pickle.dumps({(0,) * 6: _Evil()}))
    with pytest.raises(NatrlError, match="refusing to load builtins.print"):
        read_anb(p)
    (tmp_path / "trunc.anb").write_bytes(b"\x80\x04\x95")
    with pytest.raises(NatrlError, match="not a readable analog-nasbench table"):
        read_anb(tmp_path / "trunc.anb")
    with pytest.raises(NatrlError, match="does not exist"):
        read_anb(tmp_path / "missing.anb")


@pytest.mark.parametrize("env_id", ["natrl/NATPP-NB201-v0", "natrl/NAT-NB201-v0"])
def test_env_checker(env_id):
    env = gymnasium.make(env_id)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    _, r, terminated, truncated, info = env.step(obs["op"])  # keep-all is always valid
    assert r == 0.0 and terminated and not truncated


def test_step_reward_matches_table(table):
    env = envs.NATEnv()
    space = env.space
    env.reset(options={"beta": from_arch_str(ALL_CONV)})
    alpha = space.encode_genotype(from_arch_str(CELL))
    _, r, _, _, info = env.step(alpha)
    assert info == {"beta": ALL_CONV, "alpha": CELL}
    assert r == pytest.approx(table.score([from_arch_str(CELL)])[0] - table.score([from_arch_str(ALL_CONV)])[0])


def test_invalid_action_is_an_error():
    env = envs.NATEnv()
    env.reset(options={"beta": from_arch_str(ALL_NONE)})
    with pytest.raises(ValueError, match="invalid transition on edge 0: none -> nor_conv_3x3"):
        env.step(np.array([3, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="expected \\(6,\\)"):
        env.step(np.array([0, 0]))


def test_n_samples_per_input():
    env = envs.NATEnv(n=3)
    env.reset(seed=0)
    seen = []
    for _ in range(9):
        obs, _ = env.reset()
        seen.append(tuple(obs["op"]))
        env.step(obs["op"])
    # the first seeded reset counts as use 1 of input 1
    assert seen[0] == seen[1] and seen[1] != seen[2] and seen[2] == seen[3] == seen[4] and seen[5] != seen[4]


def test_inputs_come_from_the_right_split():
    env = envs.NATEnv(inputs="heldout")
    env.reset(seed=0)
    held = set(env.space.heldout_cells.tolist())
    for _ in range(50):
        obs, _ = env.reset()
        assert index_of([env.space.ops[i] for i in obs["op"]]) in held
    assert not held & set(env.space.train_cells.tolist())


def test_env_config_errors():
    with pytest.raises(ValueError, match="unknown env setting"):
        envs.NATEnv({"m": 3})
    with pytest.raises(NatrlError, match="unknown space"):
        envs.NATEnv(space="foo")


@pytest.mark.parametrize("rule", ["natpp", "nat"])
def test_bmsoftmax_zero_probability_on_every_natpp_op(rule):
    mask = torch.as_tensor(transition_mask(rule, NATPP_OPS), dtype=torch.float32)  # [13, 13]: one edge per op
    torch.manual_seed(0)
    logits = apply_mask(torch.randn(64, 13, 13) * 30, mask.expand(64, 13, 13))
    dist = BinaryMaskedSoftmax(logits)
    probs = dist.probs()
    assert (probs[:, mask == 0] == 0).all()  # exactly zero, not small
    assert torch.allclose(probs.sum(-1), torch.ones(64, 13))
    samples = torch.stack([dist.sample() for _ in range(200)])  # [200, 64, 13]
    assert mask[torch.arange(13).expand_as(samples), samples].all()
    assert mask[torch.arange(13), dist.to_deterministic().loc[0]].all()
    assert torch.isfinite(dist.entropy()).all() and torch.isfinite(dist.logp(samples[0])).all()


@pytest.mark.parametrize("encoder", ["gcn", "lstm", "random"])
@pytest.mark.parametrize("rule", ["natpp", "nat"])
def test_policy_respects_mask_for_every_op(encoder, rule):
    space = make_space("nb201", rule=rule)
    module = TransitionPolicy(
        observation_space=space.observation_space(),
        action_space=space.action_space(),
        model_config={"encoder": encoder, "hidden": 16, "gcn_layers": 2},
    )
    betas = NB201_CELLS[::7]  # 2233 cells: every op on every edge
    obs = {k: torch.as_tensor(v) for k, v in space.observe_batch(betas).items()}
    probs = module.distribution(obs).probs().detach()
    invalid = ~torch.as_tensor(space.mask[betas])
    assert (probs[invalid] == 0).all()
    actions = module.distribution(obs).sample().numpy()
    assert space.mask[betas, actions].all()


def test_gcn_logits_depend_on_the_edges_own_op():
    """The released code's flaw: an edge's logits ignored its own op. Changing one edge's op must change them."""
    space = make_space("nb201")
    torch.manual_seed(0)
    module = TransitionPolicy(
        observation_space=space.observation_space(),
        action_space=space.action_space(),
        model_config={"encoder": "gcn", "hidden": 16, "gcn_layers": 2},
    )
    a = space.encode_genotype(from_arch_str(ALL_CONV))
    b = a.copy()
    b[5] = 4  # edge (2,3): conv3x3 -> avg_pool
    obs = {k: torch.as_tensor(v) for k, v in space.observe_batch(np.stack([a, b])).items()}
    logits = module.edge_logits(obs).detach()
    assert not torch.allclose(logits[0, 5], logits[1, 5])


class CountingTable:
    """The NB201 table, counting score() calls."""

    space = "nb201"

    def __init__(self):
        self.table, self.calls = NB201Table.load(), []

    def score(self, genotypes):
        self.calls.append(len(genotypes))
        return self.table.score(genotypes)


def test_vector_env_scores_all_pairs_in_one_call():
    backend = CountingTable()
    venv = envs.NATVectorEnv({"backend": backend, "n": 2}, num_envs=4)
    obs, _ = venv.reset(seed=0)
    assert obs["op"].shape == (4, 6)
    single = [envs.NATEnv(backend=backend.table, n=2) for _ in range(4)]
    for i, e in enumerate(single):
        e.reset(seed=i)  # the vector env seeds sub-env i with seed + i
    actions = obs["op"]  # keep-all is valid everywhere
    actions[:, 0] = 1  # edge (0,1) -> skip_connect, always valid
    _, rewards, terminated, truncated, _ = venv.step(actions)
    assert backend.calls == [8] and terminated.all() and not truncated.any()  # 4 pairs, one call
    expected = [e.step(a)[1] for e, a in zip(single, actions)]
    np.testing.assert_allclose(rewards, expected)
    obs2, rewards2, terminated2, _, _ = venv.step(actions)  # NEXT_STEP autoreset: this step only resets
    assert not terminated2.any() and (rewards2 == 0).all() and backend.calls == [8]
    np.testing.assert_array_equal(obs2["op"], obs["op"] * 0 + np.stack([e.reset()[0]["op"] for e in single]))


def test_make_env_factory():
    assert isinstance(envs.make_env({"n": 1}), envs.NATEnv)
    v = envs.make_env({"n": 1, "num_envs": 3})
    assert isinstance(v, envs.NATVectorEnv) and v.num_envs == 3
