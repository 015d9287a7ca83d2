"""The two samplers of an update (natrl.algo.sampler) give the same rows; the m x n grouping survives remote
EnvRunners; the baseline is the whole update's with several learners. Real RLlib, real NAS-Bench-201 table."""

import numpy as np
import pytest
import torch

from natrl.runs import transformer as train_natpp
from natrl.spaces import make_space

pytestmark = pytest.mark.slow


def build(**kw):
    return train_natpp.build_algo(train_natpp.TrainConfig(**{"m": 8, "n": 2, "seed": 5, **kw}))


def inputs_of(rows) -> list[tuple]:
    return sorted({tuple(o) for o in rows.obs["op"]})


def sample_rows(algo, updates: int) -> list:
    sample = algo._sample_batch if algo.sampler is not None else lambda: algo._sample_env_runners(algo.config)
    return [sample() for _ in range(updates)]


def weights(algo) -> dict:
    return {k: v.clone() for k, v in algo.get_module().state_dict().items()}


def test_batched_and_env_runner_samplers_give_the_same_rows(ray_session):
    from natrl.rewards import NB201Table
    from natrl.rewards.nb201 import index_of

    fast, env = build(), build(sampler="env_runners")
    w_fast, w_env = weights(fast), weights(env)
    assert all(torch.equal(w_fast[k], w_env[k]) for k in w_fast)  # the same policy samples both
    a, b = sample_rows(fast, 25), sample_rows(env, 25)
    fast.stop(), env.stop()
    space, acc = make_space("nb201"), NB201Table.load(None).accuracy
    for ra, rb in zip(a, b):
        assert inputs_of(ra) == inputs_of(rb) and len(inputs_of(ra)) == 8  # same m inputs, same seed
        assert ra.samples_per_input() == rb.samples_per_input() == [2] * 8  # n samples of each
        for rows in (ra, rb):  # every reward is R(alpha | beta) on the table
            for op, action, r in zip(rows.obs["op"], rows.actions, rows.rewards):
                alpha, beta = space.genotype(action), space.genotype(op)
                assert r == pytest.approx(acc[index_of(alpha.normal.ops)] - acc[index_of(beta.normal.ops)])
    # the same policy on the same inputs: reward distributions agree (means within 4 standard errors)
    ra, rb = np.concatenate([r.rewards for r in a]), np.concatenate([r.rewards for r in b])
    se = np.sqrt(ra.var() / len(ra) + rb.var() / len(rb))
    assert abs(ra.mean() - rb.mean()) < 4 * se, (ra.mean(), rb.mean(), se)
    assert abs(np.mean([r.entropy for r in a]) - np.mean([r.entropy for r in b])) < 1e-4  # same distributions


def test_two_env_runners_keep_the_m_x_n_grouping_and_disjoint_streams(ray_session):
    one, two = build(sampler="env_runners"), build(sampler="env_runners", env_runners=2)
    for _ in range(3):
        r1, r2 = one._sample_env_runners(one.config), two._sample_env_runners(two.config)
        assert r2.samples_per_input() == [2] * 8  # all n samples of an input in the same update
        assert inputs_of(r1) == inputs_of(r2)  # runner w draws slots (w-1) m/2 .. : together, one runner's
    two.train_updates(2)
    assert [s["inputs"] for s in two.update_stats] == [8, 8]
    one.stop(), two.stop()


def test_two_learners_use_the_whole_update_for_the_baseline(ray_session):
    """With 2 learners each sees half the batch; b is computed before the split, so the update (baseline,
    rewards and the averaged gradient) is the one a single learner takes."""
    stats = []
    for learners in (0, 2):
        torch.manual_seed(0)
        algo = build(learners=learners, baseline="ema")
        algo.train_updates(3)
        stats.append((algo.update_stats, weights(algo)))
        algo.stop()
    (s0, w0), (s2, w2) = stats
    for a, b in zip(s0, s2):
        assert a["baseline"] == pytest.approx(b["baseline"], abs=1e-6)
        assert a["reward_mean"] == pytest.approx(b["reward_mean"], abs=1e-6)
    assert all(torch.allclose(w0[k], w2[k], atol=1e-5) for k in w0)


@pytest.mark.parametrize("unit,scale", [("points", 1.0), ("fraction", 0.01)])
def test_reward_unit_scales_what_the_loss_sees_not_the_logs(ray_session, monkeypatch, unit, scale):
    """--reward-unit fraction (the paper presets): the loss sees R / 100, as the released code's accuracy / 100;
    progress rows keep R in points."""
    from natrl.algo.reinforce import REINFORCELearner

    seen = []
    original = REINFORCELearner._sample_and_score

    def spy(self, logits):
        actions, advantage = original(self, logits)
        seen.append(float(advantage.mean()))
        return actions, advantage

    monkeypatch.setattr(REINFORCELearner, "_sample_and_score", spy)
    algo = build(baseline="none", reward_unit=unit)
    algo.train_updates(2)
    rewards = [s["reward_mean"] for s in algo.update_stats]
    algo.stop()
    assert len(seen) == 2 and abs(rewards[0]) > 0.5  # rows in points: |mean gain| of random NB201 edits is ~10
    assert seen == pytest.approx([r * scale for r in rewards], rel=1e-5)
