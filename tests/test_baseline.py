"""The REINFORCE reward baseline (natrl.algo.baseline): EMA from before the batch, leave-one-out, none."""

import numpy as np
import pytest

from natrl.algo.baseline import RewardBaseline, leave_one_out


def test_ema_returns_the_value_from_before_this_batch():
    b = RewardBaseline("ema", decay=0.5)
    first = b(np.array([2.0, 4.0]), np.array([0, 1]))
    assert first.tolist() == [3.0, 3.0]  # started at the first batch's mean
    second = b(np.array([10.0, 10.0]), np.array([0, 1]))
    assert second.tolist() == [3.0, 3.0]  # b_{t-1}: this batch's rewards never enter its own baseline
    third = b(np.array([0.0]), np.array([0]))
    assert third.tolist() == [0.5 * 3.0 + 0.5 * 10.0]


def test_leave_one_out_uses_only_the_other_samples_of_the_same_input():
    rewards = np.array([1.0, 3.0, 5.0, 10.0, 7.0])
    groups = np.array([0, 0, 0, 1, 2])
    loo = leave_one_out(rewards, groups, fallback=-1.0)
    assert loo.tolist() == [4.0, 3.0, 2.0, -1.0, -1.0]  # rows alone in their group get the fallback
    b = RewardBaseline("input", decay=0.9)
    out = b(rewards, groups)
    assert out[:3].tolist() == [4.0, 3.0, 2.0] and out[3] == out[4] == pytest.approx(rewards.mean())


def test_none_and_state_round_trip():
    b = RewardBaseline("none")
    assert b(np.array([5.0, 6.0]), np.array([0, 0])).tolist() == [0.0, 0.0]
    c = RewardBaseline("ema", 0.9)
    c.load_state_dict(b.state_dict())
    assert c.state_dict() == b.state_dict() == {"ema": 5.5, "steps": 1}
    with pytest.raises(ValueError, match="unknown baseline"):
        RewardBaseline("mean")
