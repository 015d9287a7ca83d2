"""Cell model: every conversion round trip and every validation error."""

import json
import re

import pytest

from natrl import zoo
from natrl.cells import (
    Cell,
    from_arch_str,
    from_darts,
    from_triples,
    genotype_from_dict,
    load_genotype,
    nb201_cell,
    parse_darts_text,
    save_genotype,
    to_arch_str,
    validate_cell,
)
from natrl.errors import NatrlError

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.mark.parametrize("name", zoo.names())
def test_triples_json_round_trip(name, tmp_path):
    g = zoo.get(name)
    assert genotype_from_dict(json.loads(json.dumps(g.to_json(name)))) == g
    assert load_genotype(save_genotype(g, tmp_path / "g.json", name)) == g


@pytest.mark.parametrize("name", zoo.names())
def test_darts_form_round_trip(name):
    g = zoo.get(name)
    d = g.to_darts()
    back = from_darts(d["normal"], d["normal_concat"], d["reduce"], d["reduce_concat"])
    # the DARTS form orders edges by target node; the graph is the same
    for kind in ("normal", "reduce"):
        assert sorted(back.cells()[kind].edges, key=lambda e: (e[2],)) == sorted(
            g.cells()[kind].edges, key=lambda e: (e[2],)
        )
        assert back.cells()[kind].concat == g.cells()[kind].concat
    assert parse_darts_text(g.darts_text()) == back


def test_darts_text_from_darts_repo():
    text = (
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
        "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
    )
    assert parse_darts_text(text) == zoo.get("DARTS_V2")


def test_darts_none_is_null():
    g = from_darts([("none", 0), ("skip_connect", 1)] * 4, [2], [("none", 0), ("skip_connect", 1)] * 4, [2, 3])
    assert g.normal.ops.count("null") == 4


def test_arch_str_round_trip_and_edge_order():
    g = from_arch_str(ARCH)
    assert to_arch_str(g.normal) == ARCH
    assert g.normal.edges[0] == ("nor_conv_3x3", 0, 1) and g.normal.edges[-1] == ("skip_connect", 2, 3)
    assert nb201_cell(g.normal.ops) == g
    assert genotype_from_dict(g.to_json()) == g


def test_all_nb201_cells_round_trip():
    import itertools

    from natrl.ops import NB201_OPS

    for ops in itertools.islice(itertools.product(NB201_OPS, repeat=6), 0, 15625, 97):
        g = nb201_cell(ops)
        assert from_arch_str(to_arch_str(g.normal)) == g


def test_with_ops_keeps_graph():
    g = zoo.get("DARTS_V2")
    h = g.with_ops(["null"] * 8, ["skip_connect"] * 8)
    assert [e[1:] for e in h.normal.edges] == [e[1:] for e in g.normal.edges]
    assert set(h.normal.ops) == {"null"} and h.reduce.concat == g.reduce.concat


GOOD = [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["sep_conv_3x3", 0, 3], ["conv_3x3", 2, 3]]


@pytest.mark.parametrize(
    "edges,concat,k,message",
    [
        ([["sep_conv_9x9", 0, 2]] + GOOD[1:], [2, 3], None, "unknown op 'sep_conv_9x9'"),
        ([["sep_conv_3x3", 3, 2]] + GOOD[1:], [2, 3], None, "points forward or to itself"),
        ([["sep_conv_3x3", 2, 2]] + GOOD[1:], [2, 3], None, "a cycle"),
        ([["sep_conv_3x3", -1, 2]] + GOOD[1:], [2, 3], None, "node -1 < 0"),
        ([["sep_conv_3x3", 0, 1]] + GOOD[1:], [2, 3], None, "ends at input node 1"),
        (GOOD[:3], [2, 3], None, "node 3 has 1 incoming edges"),
        (GOOD + [["conv_3x3", 0, 3]], [2, 3], None, "node 3 has 3 incoming edges"),
        (GOOD, [], None, "empty concat list"),
        (GOOD, [2, 7], None, "concat node 7 is not an intermediate node"),
        (GOOD, [2, 2], None, "repeats a node"),
        (GOOD, [2, 3], 4, "has 2 intermediate nodes but 4 are required"),
        ([["sep_conv_3x3", "a", 2]] + GOOD[1:], [2, 3], None, "non-integer nodes"),
        ([["sep_conv_3x3", 0]] + GOOD[1:], [2, 3], None, "write each edge as [op, from, to]"),
        ([], [2], None, "has no edges"),
    ],
)
def test_validation_errors(edges, concat, k, message):
    with pytest.raises(NatrlError, match=re.escape(message)) as e:
        g = from_triples(edges, concat, edges, concat)
        if k is not None:
            from natrl.cells import validate_genotype

            validate_genotype(g, num_intermediate=k)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "arch,message",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "6 edges"),
        ("|conv_9x9~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown op"),
        ("|nor_conv_3x3~x|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "op~input"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~2|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "a cycle"),
        ("nor_conv_3x3", "not a NAS-Bench-201 arch_str"),
    ],
)
def test_arch_str_errors(arch, message):
    with pytest.raises(NatrlError, match=message):
        from_arch_str(arch)


def test_nb201_validation_wants_all_six_edges():
    cell = Cell(
        (("none", 0, 1), ("none", 0, 2), ("none", 1, 2), ("none", 0, 3), ("none", 1, 3), ("none", 1, 3)), (3,), 1
    )
    with pytest.raises(NatrlError, match="6 edges"):
        validate_cell(cell, space="nb201")


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"normal": [', "malformed JSON at line 1"),
        ("[1, 2]", "expected a JSON object"),
        ('{"normal": [["sep_conv_3x3", 0, 2]]}', "missing field"),
        ('{"format": "natrl.genotype/9", "arch_str": "|x|"}', "format 'natrl.genotype/9' is not supported"),
        ('{"space": "nb201"}', "needs an 'arch_str'"),
        ('{"space": "foo"}', "unknown space 'foo'"),
        ('{"normal": 3, "normal_concat": [2], "reduce": [], "reduce_concat": [2]}', "field 'normal' must be a list"),
    ],
)
def test_json_file_errors(tmp_path, text, message):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(NatrlError, match=message):
        load_genotype(p)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(NatrlError, match="does not exist"):
        load_genotype(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(NatrlError, match="cannot read|malformed"):
        load_genotype(tmp_path / "bin.json")


def test_json_accepts_darts_pairs(tmp_path):
    g = zoo.get("DARTS_V2")
    d = g.to_darts()
    p = tmp_path / "pairs.json"
    p.write_text(json.dumps({k: [list(x) for x in v] if "concat" not in k else v for k, v in d.items()}))
    assert parse_darts_text(g.darts_text()) == load_genotype(p)


def test_save_is_atomic_and_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "g.json"
    save_genotype(zoo.get("DARTS_V2"), p)
    before = p.read_text()
    with pytest.raises(AttributeError):
        save_genotype(None, p)  # fails while serialising: the existing file must survive
    assert p.read_text() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_darts_text_errors():
    with pytest.raises(NatrlError, match="cannot parse DARTS text"):
        parse_darts_text("Genotype(normal=__import__('os'))")
    with pytest.raises(NatrlError, match="cannot parse DARTS text"):
        parse_darts_text("NotAGenotype()")
