"""Operation names, their (type, kernel) attributes, and the vocabularies of each search space.

An op's *type* and *kernel* are all the transition rules need (natrl.transitions): NAT++ lets the type move
conv -> sep -> dil -> pool and the kernel shrink 5 -> 3 -> 1. Networks build ops by name (natrl.nets.ops).
"""

from __future__ import annotations

from typing import NamedTuple

from natrl.errors import NatrlError


class OpInfo(NamedTuple):
    type: str  # "conv", "sep", "dil", "pool", "skip", "null", or "other" (outside every transition rule)
    kernel: int  # spatial kernel size; 0 for skip and null


# Every op a network can build. Factorized convs and 2x2/7x7 ops appear in published genotypes (NAONet,
# AmoebaNet, NASNet) but in no transformation vocabulary: they are typed "other" so no rule moves them.
OP_INFO: dict[str, OpInfo] = {
    "max_pool_2x2": OpInfo("other", 2),
    "avg_pool_2x2": OpInfo("other", 2),
    "max_pool_3x3": OpInfo("pool", 3),
    "max_pool_5x5": OpInfo("pool", 5),
    "avg_pool_3x3": OpInfo("pool", 3),
    "avg_pool_5x5": OpInfo("pool", 5),
    "skip_connect": OpInfo("skip", 0),
    "sep_conv_3x3": OpInfo("sep", 3),
    "sep_conv_5x5": OpInfo("sep", 5),
    "sep_conv_7x7": OpInfo("other", 7),
    "dil_conv_3x3": OpInfo("dil", 3),
    "dil_conv_5x5": OpInfo("dil", 5),
    "conv_1x1": OpInfo("conv", 1),
    "conv_3x3": OpInfo("conv", 3),
    "conv_5x5": OpInfo("conv", 5),
    "conv_1x3_3x1": OpInfo("other", 3),
    "conv_1x7_7x1": OpInfo("other", 7),
    "conv_7x1_1x7": OpInfo("other", 7),
    "null": OpInfo("null", 0),
    # NAS-Bench-201 names (kept as NB201 spells them so that arch_str round-trips).
    "none": OpInfo("null", 0),
    "nor_conv_1x1": OpInfo("conv", 1),
    "nor_conv_3x3": OpInfo("conv", 3),
}

# DARTS' reference code calls the null op 'none'; in the DARTS space we spell it 'null' like the NAT authors.
DARTS_ALIASES = {"none": "null"}

# NAT++ (13 ops), in the released code's index order (docs/papers.md).
NATPP_OPS = (
    "max_pool_3x3",
    "max_pool_5x5",
    "avg_pool_3x3",
    "avg_pool_5x5",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_1x1",
    "conv_3x3",
    "conv_5x5",
    "null",
)
# NAT input cells: DARTS-like 8 ops + null; the ENAS-like variant swaps the dilated convs for conv_1x1/conv_5x5.
NAT_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_3x3",
    "null",
)
NAT_ENAS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "conv_1x1",
    "conv_3x3",
    "conv_5x5",
    "null",
)
# NAS-Bench-201, in its official order.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "natpp": NATPP_OPS,
    "nat": NAT_OPS,
    "nat_enas": NAT_ENAS_OPS,
    "nb201": NB201_OPS,
}


def vocabulary(name: str) -> tuple[str, ...]:
    """The op vocabulary called ``name`` (natpp, nat, nat_enas, nb201)."""
    try:
        return VOCABULARIES[name]
    except KeyError:
        raise NatrlError(f"unknown vocabulary '{name}'; choose one of {', '.join(VOCABULARIES)}") from None


def op_info(name: str) -> OpInfo:
    try:
        return OP_INFO[name]
    except KeyError:
        raise NatrlError(f"unknown op '{name}'; known ops: {', '.join(sorted(OP_INFO))}") from None


def null_op(vocab: tuple[str, ...]) -> str:
    """The vocabulary's spelling of the null op ('null' or NB201's 'none')."""
    return next(o for o in vocab if OP_INFO[o].type == "null")


def skip_op(vocab: tuple[str, ...]) -> str:
    return next(o for o in vocab if OP_INFO[o].type == "skip")
