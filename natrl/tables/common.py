"""What the table modules share: the config of a table made from run directories, positional arguments for the
typed configs (which know only ``--flags``), and architecture parsing in which every bad input is one line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from natrl.config import RunConfig, build_parser, knob
from natrl.errors import NatrlError

RULES = {"nat": "NAT", "natpp": "NAT++"}


@dataclass
class RunsTableConfig(RunConfig):
    """A table made from run or sweep directories, written into ``--out``."""

    paths: list[str] = knob([], "sweep or run directories (may also come first, without --paths)", metavar="DIR")
    out: str = knob("tables", "output directory, created if missing")
    force: bool = knob(False, "overwrite files of the same name already in --out")

    def validate(self):
        if not self.paths:
            raise NatrlError("give one or more sweep or run directories, e.g. sweeps/nb201")


# ---- positional arguments --------------------------------------------------------------------------------


def _arities(cfg_cls) -> dict[str, int | str]:
    """Each flag of ``cfg_cls``'s parser -> how many words it takes (0, 1 or '+')."""
    out = {}
    for action in build_parser(cfg_cls)._actions:
        n = 1 if action.nargs is None else action.nargs
        out.update({flag: n for flag in action.option_strings})
    return out


def _arity(arities: dict, flag: str):
    if flag in arities:
        return arities[flag]
    hits = [f for f in arities if f.startswith(flag)]  # argparse accepts unique prefixes
    return arities[hits[0]] if len(hits) == 1 else 0


def with_positionals(cfg_cls, argv=None, name: str = "paths") -> list[str]:
    """``argv`` with the words that belong to no flag moved behind ``--<name>``: ``fig7_ablations.py
    sweeps/nb201 --out t`` reads as ``--paths sweeps/nb201 --out t``."""
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    arities, flags, loose, i = _arities(cfg_cls), [], [], 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            loose += argv[i:]
            break
        if not tok.startswith("-") or tok == "-":
            loose.append(tok)
            continue
        flags.append(tok)
        n = 0 if "=" in tok else _arity(arities, tok)
        if n == 1 and i < len(argv):
            flags.append(argv[i])
            i += 1
        while n == "+" and i < len(argv) and not argv[i].startswith("-"):
            flags.append(argv[i])
            i += 1
    flag = "--" + name.replace("_", "-")
    if not loose:
        return flags
    if flag in flags:
        j = flags.index(flag) + 1
        return flags[:j] + loose + flags[j:]
    return [flag, *loose, *flags]


# ---- architectures ---------------------------------------------------------------------------------------

MAX_GENOTYPE_BYTES = 1 << 20  # a genotype file is a few hundred bytes


def _check_genotype_file(spec: str, prefix: str):
    """Refuse, before anything reads it, a genotype 'file' that is a pipe or device (reading would block) or
    far too large to be a genotype (parsing it would take minutes)."""
    text = spec.strip()
    path = Path(text)
    if text.startswith(("|", "Genotype(")) or not path.exists() or path.is_dir():
        return  # zoo.resolve names a missing file or a directory in one line itself
    if not path.is_file():
        raise NatrlError(f"{prefix}{path} is not a regular file (a pipe or a device); give a genotype .json file")
    if path.stat().st_size > MAX_GENOTYPE_BYTES:
        raise NatrlError(
            f"{prefix}{path} is {path.stat().st_size / 2**20:.0f} MiB, too large for a genotype file "
            "(a few hundred bytes); give the right file"
        )


def resolve_arch(spec: str | None, where: str | None = None):
    """``natrl.zoo.resolve(spec)`` -> (name, genotype); anything malformed (non-ASCII digits in an arch_str,
    deeply nested JSON, values of the wrong type in a genotype file) is one NatrlError line."""
    from natrl import zoo

    prefix = f"{where}: " if where else ""
    if not isinstance(spec, str) or not spec.strip():
        raise NatrlError(
            f"{prefix}empty architecture; give a registry name, a genotype .json file, an NB201 "
            "arch_str or Genotype(...) text"
        )
    if spec.strip().startswith("|") and not spec.isascii():
        raise NatrlError(
            f"{prefix}arch_str {spec[:80]!r} has non-ASCII characters; write ops and input "
            "numbers in ASCII, e.g. |nor_conv_3x3~0|"
        )
    _check_genotype_file(spec, prefix)
    try:
        return zoo.resolve(spec)
    except NatrlError as e:
        raise NatrlError(prefix + str(e)) from None
    except (RecursionError, MemoryError, ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise NatrlError(
            f"{prefix}cannot read architecture {spec[:80]!r} ({e.__class__.__name__}); give a "
            "registry name, a genotype .json file, an NB201 arch_str or Genotype(...) text"
        ) from None


def select(frame, **equal):
    """The rows of ``frame`` whose columns equal the given values (a list/tuple: one of them); none if a
    column is missing."""
    import pandas as pd

    mask = pd.Series(True, index=frame.index)
    for col, value in equal.items():
        if col not in frame:
            return frame.iloc[:0]
        mask &= frame[col].isin(value) if isinstance(value, (list, tuple)) else frame[col] == value
    return frame[mask]


def write_one(cfg: RunsTableConfig, stem: str, shown, data, caption) -> str:
    """One table's .md, .tex and .csv into ``cfg.out`` (refused if they exist, unless ``cfg.force``); prints
    the Markdown and returns it."""
    from natrl.results import Outputs

    out = Outputs(cfg.out, cfg.force)
    md = out.table(stem, shown, caption, data)
    out.commit()
    print(md)
    return md


def nb201_genotype(arch_str, where: str):
    """The NB201 genotype of an arch_str read from a file (``where`` names it), or one NatrlError line."""
    if not isinstance(arch_str, str) or not arch_str.strip().startswith("|"):
        raise NatrlError(
            f"{where}: {str(arch_str)[:80]!r} is not an NB201 arch_str (|op~0|+|op~0|op~1|+...); "
            "repair or remove that run"
        )
    return resolve_arch(arch_str, where)[1]
