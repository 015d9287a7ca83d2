"""Transition rules: the NAT++ matrix derived from the rule must equal the released code's table."""

import numpy as np
import pytest

from natrl.errors import NatrlError
from natrl.ops import NAT_OPS, NATPP_OPS, NB201_OPS, OP_INFO, VOCABULARIES
from natrl.transitions import transition_mask

# docs/papers.md, rows = current op, columns = new op, in NATPP_OPS order (typed from the table).
PAPER_NATPP = """
1 . 1 . 1 . . . . . . . 1
1 1 1 1 1 . . . . . . . 1
1 . 1 . 1 . . . . . . . 1
1 1 1 1 1 . . . . . . . 1
. . . . 1 . . . . . . . 1
1 . 1 . 1 1 . 1 . . . . 1
1 1 1 1 1 1 1 1 1 . . . 1
1 . 1 . 1 . . 1 . . . . 1
1 1 1 1 1 . . 1 1 . . . 1
. . . . 1 . . . . 1 . . 1
1 . 1 . 1 1 . 1 . 1 1 . 1
1 1 1 1 1 1 1 1 1 1 1 1 1
. . . . 1 . . . . . . . 1
"""


def test_natpp_matrix_equals_released_table():
    expected = np.array([[c == "1" for c in row.split()] for row in PAPER_NATPP.strip().splitlines()])
    assert NATPP_OPS[0] == "max_pool_3x3" and NATPP_OPS[-1] == "null" and len(NATPP_OPS) == 13
    np.testing.assert_array_equal(transition_mask("natpp", "natpp"), expected)


def test_nb201_rule():
    m = dict(zip(NB201_OPS, transition_mask("natpp", "nb201")))
    allowed = {a: {b for b, ok in zip(NB201_OPS, m[a]) if ok} for a in NB201_OPS}
    assert allowed["nor_conv_3x3"] == set(NB201_OPS)
    assert allowed["nor_conv_1x1"] == {"nor_conv_1x1", "skip_connect", "none"}
    assert allowed["avg_pool_3x3"] == {"avg_pool_3x3", "skip_connect", "none"}
    assert allowed["skip_connect"] == allowed["none"] == {"skip_connect", "none"}


@pytest.mark.parametrize("vocab", list(VOCABULARIES))
def test_nat_rule_is_keep_null_skip(vocab):
    ops = VOCABULARIES[vocab]
    m = transition_mask("nat", ops)
    for i, a in enumerate(ops):
        allowed = {b for b, ok in zip(ops, m[i]) if ok}
        assert allowed == {a} | {b for b in ops if OP_INFO[b].type in ("skip", "null")}


@pytest.mark.parametrize("rule", ["nat", "natpp"])
@pytest.mark.parametrize("vocab", list(VOCABULARIES))
def test_every_row_keeps_identity_and_null(rule, vocab):
    m = transition_mask(rule, vocab)
    assert m.diagonal().all()
    null = [OP_INFO[o].type for o in VOCABULARIES[vocab]].index("null")
    assert m[:, null].all()


def test_natpp_never_grows_cost():
    """The rule only moves towards cheaper ops: conv->sep->dil->pool and smaller kernels (NAT++ Fig. 4b)."""
    madds = {
        "conv_5x5": 419.4,
        "conv_3x3": 151.0,
        "sep_conv_5x5": 40.1,
        "sep_conv_3x3": 35.9,
        "dil_conv_5x5": 20.1,
        "dil_conv_3x3": 18.0,
        "conv_1x1": 16.8,
        "max_pool_5x5": 3.3,
        "avg_pool_5x5": 3.3,
        "max_pool_3x3": 1.2,
        "avg_pool_3x3": 1.2,
        "skip_connect": 0.1,
        "null": 0.0,
    }
    m = transition_mask("natpp", NATPP_OPS)
    for i, a in enumerate(NATPP_OPS):
        for j, b in enumerate(NATPP_OPS):
            if m[i, j] and not {a, b} <= {"skip_connect", "null"}:
                assert madds[b] <= madds[a], (a, b)


def test_unknown_rule_and_vocab():
    with pytest.raises(NatrlError, match="unknown transition rule"):
        transition_mask("nat3", NAT_OPS)
    with pytest.raises(NatrlError, match="unknown vocabulary"):
        transition_mask("nat", "foo")


def test_enas_like_spaces_sample_enas_ops():
    """5 intermediate nodes = ENAS-like cells: inputs drawn from ENAS's 8 ops under either rule; the NAT rule
    transforms them in the nat_enas vocabulary; 4-node DARTS-like cells keep the DARTS-like NAT vocabulary."""
    import numpy as np

    from natrl.ops import vocabulary
    from natrl.spaces import DartsSpace

    enas = set(vocabulary("nat_enas")) - {"null"}
    assert DartsSpace(rule="nat", num_intermediate=5).ops == vocabulary("nat_enas")
    assert DartsSpace(rule="nat", num_intermediate=4).ops == vocabulary("nat")
    for rule in ("nat", "natpp"):
        space, rng = DartsSpace(rule=rule, num_intermediate=5), np.random.default_rng(0)
        seen = {op for _ in range(200) for c in space.sample_input(rng).cells().values() for op in c.ops}
        assert seen == enas, (rule, seen ^ enas)
