"""A registry of named architectures (timm-style ``get(name)``), with per-model defaults and published costs.

Holds every genotype of the shipped ``natrl/data/genotypes.json`` (a copy of shared/reference/genotypes.json):
the DARTS-family cells, the hand-crafted cells (VGG, ResBlock, MobileNetV2 written as cells), the random
cells R1-R5, and the authors' published NAT (``NAT_*``) and NAT++ (``NATv2_*``, alias ``NATPP_*``) results.

``resolve(spec)`` turns anything a user may type into a genotype: a registry name or alias, a JSON file, a
NAS-Bench-201 ``arch_str``, or DARTS ``Genotype(...)`` text.

Hand-crafted networks (NAT++ Table 1): ``get("ResNet20")`` is the network's cell (the ResBlock genotype) and
``network("ResNet20")`` the cell together with the macro network it lives in (``natrl.handcrafted``); their new
cells (VGG16's layer, ResBlockB, Bottleneck, ShuffleUnit) are registry entries from natrl/data/handcrafted.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from natrl.cells import Genotype, from_arch_str, genotype_from_dict, load_genotype, parse_darts_text
from natrl.errors import NatrlError

DATA = Path(__file__).parent / "data" / "genotypes.json"
HANDCRAFTED_CELLS = Path(__file__).parent / "data" / "handcrafted.json"

# Extra names people use for the same entries (lookup is case-insensitive as well).
ALIASES = {
    "MobileNetV2": "Mobilenetv2",
    "NAT_Mobilenetv2": "NAT_MobileNetv2",
    "PC_DARTS": "PC_DARTS_cifar",
    "NAO": "NAONet",
}

# Per-model evaluation defaults that differ from the papers' common setting (C=36, 20 cells on CIFAR;
# C=48, 14 cells on ImageNet), keyed by the *input* model name: a model's NAT/NAT++ results inherit them.
DEFAULTS: dict[str, dict[str, dict]] = {}

# Costs published in the papers, (params M, MAdds M), with the table they come from. ``None`` = not reported.
# NAT = NAT paper (001), NAT++ = journal paper (000). Checked against our counts in tests/test_costs.py.
PUBLISHED: dict[str, dict[str, tuple]] = {
    "DARTS_V2": {
        "cifar10": (3.3, 528, "NAT Table 2 (NAT++ Table 3 prints 533)"),
        "imagenet": (4.7, 574, "NAT Table 2 / NAT++ Table 3"),
    },
    "NAT_DARTS": {
        "cifar10": (2.7, 424, "NAT Table 2 / NAT++ Table 3"),
        "imagenet": (4.0, 441, "NAT Table 2 / NAT++ Table 3"),
    },
    "NATv2_DARTS": {"cifar10": (2.5, 395, "NAT++ Table 3"), "imagenet": (3.8, 413, "NAT++ Table 3")},
    "ENAS": {
        "cifar10": (4.6, 804, "NAT Table 2 / NAT++ Table 3"),
        "imagenet": (5.6, 607, "NAT Table 2 / NAT++ Table 3"),
    },
    "NAT_ENAS": {
        "cifar10": (4.6, 804, "NAT Table 2 / NAT++ Table 3"),
        "imagenet": (5.6, 607, "NAT Table 2 / NAT++ Table 3"),
    },
    "NATv2_ENAS": {"cifar10": (3.7, 580, "NAT++ Table 3"), "imagenet": (5.4, 582, "NAT++ Table 3")},
    "NAONet": {
        "cifar10": (128, 66016, "NAT Table 2 / NAT++ Table 3"),
        "imagenet": (11.35, 1360, "NAT Table 2 / NAT++ Table 3"),
    },
    "NAT_NAONet": {
        "cifar10": (113, 58326, "NAT Table 2 / NAT++ Table 3"),
        "imagenet": (8.36, 1025, "NAT Table 2 / NAT++ Table 3"),
    },
    "NATv2_NAONet": {"cifar10": (101, 51976, "NAT++ Table 3"), "imagenet": (8.1, 992, "NAT++ Table 3")},
    "PC_DARTS_cifar": {"cifar10": (3.6, 570, "NAT++ Table 3")},
    "PC_DARTS_image": {"imagenet": (5.3, 597, "NAT++ Table 3")},
    "AmoebaNet": {
        "cifar10": (3.2, None, "NAT Table 2 / NAT++ Table 3"),
        "imagenet": (5.1, 555, "NAT Table 2 / NAT++ Table 3"),
    },
}

PUBLISHED["DARTS"] = PUBLISHED["DARTS_V2"]  # the NAT++ repository's "DARTS" is DARTS_V2 (tests check equality)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    genotype: Genotype
    source: str
    defaults: dict = field(default_factory=dict)  # dataset -> build_network kwargs
    published: dict = field(default_factory=dict)  # dataset -> (params M, MAdds M, where)
    network: str | None = None  # the hand-crafted network this name stands for (its cell is ``genotype``)


def _base_model(name: str) -> str:
    for prefix in ("NATv2_", "NAT_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@lru_cache(maxsize=1)
def _entries() -> dict[str, ZooEntry]:
    raw = {**json.loads(DATA.read_text()), **json.loads(HANDCRAFTED_CELLS.read_text())}
    out = {}
    for name, d in raw.items():
        g = genotype_from_dict(d, where=f"registry entry {name}")
        base = ALIASES.get(_base_model(name), _base_model(name))
        out[name] = ZooEntry(name, g, d.get("source", ""), DEFAULTS.get(base, {}), PUBLISHED.get(name, {}))
    return out


def names() -> list[str]:
    """Every registry name, in file order."""
    return list(_entries())


def _canonical(name: str) -> str | None:
    entries = _entries()
    if name.upper().startswith(("NATPP_", "NAT++_")):
        name = "NATv2_" + name.split("_", 1)[1]
    name = ALIASES.get(name, name)
    if name in entries:
        return name
    lower = {k.lower(): k for k in [*entries, *ALIASES]}
    hit = lower.get(name.lower())
    return ALIASES.get(hit, hit) if hit else None


def _network_names() -> list[str]:
    from natrl import handcrafted

    return handcrafted.names()


def _network_entry(name: str) -> ZooEntry | None:
    """The entry of a hand-crafted network name (its cell, labelled with the network), or None."""
    from natrl import handcrafted

    if not handcrafted.is_network(name):
        return None
    spec = next(s for (n, _), s in handcrafted.SPECS.items() if n == name)
    cell = _entries()[spec.cell]
    return ZooEntry(name, cell.genotype, f"{spec.name} network, {spec.cell} cell", network=name)


def entry(name: str) -> ZooEntry:
    canon = _canonical(name)
    if canon is not None and name in _network_names():  # VGG16, MobileNetV2: a cell entry that names a network
        return replace(_entries()[canon], network=name)
    net = _network_entry(name)
    if net is not None:
        return net
    if canon is None:
        raise NatrlError(
            f"unknown architecture '{name[:80]}'; known: {', '.join(names())} "
            "(or give a .json file, an NB201 arch_str, or Genotype(...) text)"
        )
    return _entries()[canon]


def get(name: str) -> Genotype:
    """The genotype registered as ``name`` (case-insensitive; aliases such as MobileNetV2, NATPP_DARTS); for a
    hand-crafted network (VGG16, ResNet20, ...) the cell of its blocks."""
    return entry(name).genotype


def network(name: str, dataset: str = "cifar10"):
    """A hand-crafted network of NAT++ Table 1 (VGG16, ResNet20, ResNet56, ShuffleNet, MobileNetV2; ImageNet:
    VGG16, ResNet18, ResNet50, ShuffleNet, MobileNetV2): ``.genotype`` its cell, ``.build(genotype)`` the network
    with that cell (default the original) in every block, ``.published`` NAT++ Table 1's (params M, MAdds M)."""
    from natrl import handcrafted

    return handcrafted.network(name, dataset)


def _is_file(spec: str) -> bool:
    try:
        return Path(spec).is_file()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL byte, is no file
        return False


def resolve(spec: str) -> tuple[str, Genotype]:
    """(display name, genotype) for a registry name, a JSON file, an NB201 arch_str or DARTS text."""
    spec = spec.strip()
    if spec.startswith("|"):
        return spec, from_arch_str(spec)
    if spec.startswith("Genotype("):
        return "Genotype(...)", parse_darts_text(spec)
    if spec.endswith(".json") or "/" in spec or _is_file(spec):
        return Path(spec).stem, load_genotype(spec)
    e = entry(spec)
    return e.name, e.genotype
