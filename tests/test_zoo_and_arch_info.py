"""Registry lookups and the arch_info command line."""
import json

import pytest

from natrl import zoo
from natrl.errors import NatrlError


def test_registry_holds_every_published_genotype():
    raw = json.loads(zoo.DATA.read_text())
    assert zoo.names() == list(raw)
    for n in ("DARTS_V2", "ENAS", "PC_DARTS_cifar", "VGG", "ResBlock", "Mobilenetv2", "NATv2_DARTS", "NAT_R1"):
        assert n in zoo.names()


@pytest.mark.parametrize("alias,name", [("darts_v2", "DARTS_V2"), ("MobileNetV2", "Mobilenetv2"),
                                        ("NATPP_DARTS", "NATv2_DARTS"), ("nat++_enas", "NATv2_ENAS"),
                                        ("pc_darts", "PC_DARTS_cifar")])
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


@pytest.mark.parametrize("args,message", [
    (["NOPE"], "unknown architecture 'NOPE'"),
    (["{tmp}/bad.json"], "malformed JSON"),
    (["{tmp}/cycle.json"], "points forward or to itself"),
    (["{tmp}/missing.json"], "does not exist"),
    (["|x~0|"], "unknown op 'x'"),
    (["--transitions", "foo"], "invalid choice"),
    (["--bogus-flag"], "unrecognized arguments"),
    (["DARTS_V2", "--plot", "/nonexistent-dir/x.png"], "cannot write"),
])
def test_arch_info_bad_input_one_line(script, tmp_path, args, message):
    (tmp_path / "bad.json").write_text('{"normal": [')
    cyc = zoo.get("DARTS_V2").to_json()
    cyc["normal"][0] = ["sep_conv_3x3", 3, 2]
    (tmp_path / "cycle.json").write_text(json.dumps(cyc))
    r = script("analysis/arch_info.py", *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
