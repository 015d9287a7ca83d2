"""Registry lookups and the arch_info command line."""

import json

import pytest

from natrl import zoo
from natrl.errors import NatrlError


def test_registry_holds_every_published_genotype():
    raw = {**json.loads(zoo.DATA.read_text()), **json.loads(zoo.HANDCRAFTED_CELLS.read_text())}
    assert zoo.names() == list(raw)  # the published genotypes, then the new hand-crafted cells
    for n in ("DARTS_V2", "ENAS", "PC_DARTS_cifar", "VGG", "ResBlock", "Mobilenetv2", "NATv2_DARTS", "NAT_R1"):
        assert n in zoo.names()


@pytest.mark.parametrize(
    "alias,name",
    [
        ("darts_v2", "DARTS_V2"),
        ("MobileNetV2", "Mobilenetv2"),
        ("NATPP_DARTS", "NATv2_DARTS"),
        ("nat++_enas", "NATv2_ENAS"),
        ("pc_darts", "PC_DARTS_cifar"),
    ],
)
def test_aliases(alias, name):
    assert zoo.entry(alias).name == name and zoo.get(alias) == zoo.get(name)


def test_unknown_name():
    with pytest.raises(NatrlError, match="unknown architecture 'FOO'"):
        zoo.get("FOO")


def test_enas_has_five_intermediate_nodes():
    assert zoo.get("ENAS").num_intermediate == 5 and zoo.get("DARTS_V2").num_intermediate == 4


def test_resolve_forms(tmp_path):
    from natrl.cells import save_genotype

    p = save_genotype(zoo.get("VGG"), tmp_path / "vgg.json")
    assert zoo.resolve(str(p)) == ("vgg", zoo.get("VGG"))
    assert zoo.resolve(zoo.get("DARTS_V2").darts_text())[1].normal.ops == zoo.get("DARTS_V2").normal.ops
    assert zoo.resolve("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")[1].space == "nb201"


@pytest.mark.slow
def test_arch_info_json(script, tmp_path):
    png = tmp_path / "cells.png"
    r = script("analysis/arch_info.py", "NAT_DARTS", "--json", "--plot", png)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["params_M"] == pytest.approx(2.68, abs=0.01) and out["madds_M"] == pytest.approx(424.2, abs=0.1)
    assert out["published"]["madds_M"] == 424
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_arch_info_transitions_json(script):
    r = script("analysis/arch_info.py", "--transitions", "natpp", "--json")
    out = json.loads(r.stdout)
    assert len(out["ops"]) == 13 and len(out["mask"]) == 13 and out["mask"][4] == [0] * 4 + [1] + [0] * 7 + [1]


@pytest.mark.parametrize(
    "args,message",
    [
        (["NOPE"], "unknown architecture 'NOPE'"),
        (["{tmp}/bad.json"], "malformed JSON"),
        (["{tmp}/cycle.json"], "points forward or to itself"),
        (["{tmp}/missing.json"], "does not exist"),
        (["{tmp}/deep.json"], "nested too deeply"),
        (["|x~0|"], "unknown op 'x'"),
        (["|nor_conv_3x3~\uff10|"], "non-ASCII characters"),
        (["--transitions", "foo"], "invalid choice"),
        (["--bogus-flag"], "unrecognized arguments"),
        (["DARTS_V2", "--plot", "/nonexistent-dir/x.png"], "folder /nonexistent-dir does not exist"),
        (["DARTS_V2", "--plot", "{tmp}/exists.png"], "exists.png exists; pass --force"),
        ([], "give an architecture"),
    ],
)
def test_arch_info_bad_input_one_line(script, tmp_path, args, message):
    (tmp_path / "bad.json").write_text('{"normal": [')
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    (tmp_path / "exists.png").write_text("")
    cyc = zoo.get("DARTS_V2").to_json()
    cyc["normal"][0] = ["sep_conv_3x3", 3, 2]
    (tmp_path / "cycle.json").write_text(json.dumps(cyc))
    r = script("analysis/arch_info.py", *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "exists.png").read_text() == ""  # never overwritten without --force


def darts_json(**change):
    d = zoo.get("DARTS_V2").to_json()
    d.update(change)
    return json.dumps(d)


@pytest.mark.parametrize(
    "spec,message",
    [
        (
            "|nor_conv_3x3~\uff10|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
            "non-ASCII",
        ),  # fullwidth zero: int() would read it as 0
        ("|nor_conv_3x3~\u00b2|", "non-ASCII"),  # superscript two: isdigit() but not int()
        ("|nor_conv_3x3~0|" * 1000, "6 edges"),
        ("Genotype(" + "[" * 5000, "cannot parse DARTS text"),
        ("", "empty architecture"),
        ("{tmp}/deep.json", "cannot read architecture"),
        ("{tmp}/latin1.json", "cannot read genotype file"),
        ("{tmp}/dir.json", "cannot read genotype file"),
        ("{tmp}/list.json", "expected a JSON object"),
        ("{tmp}/types.json", "{tmp}/types.json"),
        ("{tmp}/concat.json", "{tmp}/concat.json"),
    ],
)
def test_resolve_arch_malformed_is_one_line(tmp_path, spec, message):
    from natrl.tables.common import resolve_arch

    (tmp_path / "deep.json").write_text('{"normal": ' + "[" * 100000 + "]" * 100000 + "}")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "types.json").write_text(darts_json(normal=[["sep_conv_3x3", "zero", 2]] * 8))
    (tmp_path / "concat.json").write_text(darts_json(normal_concat=[[2], {"a": 1}]))
    with pytest.raises(NatrlError) as e:
        resolve_arch(spec.format(tmp=tmp_path))
    assert message.format(tmp=tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_arch_info_plot_force_and_text(tmp_path):
    from natrl.config import parse_config
    from natrl.tables.arch_info import ArchInfoConfig, arch_info

    nb201 = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    png = tmp_path / "c.png"
    png.write_text("old")
    with pytest.raises(NatrlError, match="pass --force"):
        arch_info(*parse_config(ArchInfoConfig, ["--arch", nb201, "--plot", str(png)]))
    text = arch_info(*parse_config(ArchInfoConfig, ["--arch", nb201, "--plot", str(png), "--force"]))
    assert png.read_bytes()[:4] == b"\x89PNG" and f"cells drawn to {png}" in text
    assert "(nb201 space) on cifar10" in text and "output = node 3" in text
    with pytest.raises(NatrlError, match="ending in .png"):
        parse_config(ArchInfoConfig, ["--arch", "VGG", "--plot", str(tmp_path / "c.gif")])
    with pytest.raises(NatrlError, match="no ImageNet setting"):
        arch_info(*parse_config(ArchInfoConfig, ["--arch", nb201, "--dataset", "imagenet"]))
    assert "DARTS_V2" in arch_info(*parse_config(ArchInfoConfig, ["--list"])).splitlines()


def test_arch_info_dataset_choices_match_the_networks():
    import typing

    from natrl.nets.eval_net import DATASETS
    from natrl.tables.arch_info import ArchInfoConfig
    from natrl.transitions import PRESETS

    hints = typing.get_type_hints(ArchInfoConfig)
    assert list(typing.get_args(hints["dataset"])) == list(DATASETS)
    assert list(typing.get_args(typing.get_args(hints["transitions"])[0])) == list(PRESETS)
