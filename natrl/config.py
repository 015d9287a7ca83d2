"""Typed run configs: one dataclass per run kind, whose field docs are the ``--help`` text.

A field is declared with :func:`knob`, which carries its help line and its numeric range::

    @dataclass
    class TrainConfig(RunConfig):
        lam: float = knob(3e-2, "entropy weight lambda of Eqn. (5)", ge=0, le=100)
        rule: Literal["natpp", "nat"] = knob("natpp", "transition rule")

:func:`parse_config` builds the argparse parser from the fields (choices from ``Literal`` types, ``bool`` as
``--flag/--no-flag``, ``list[...]`` as ``nargs='+'``), applies the config's presets (data, see
:meth:`RunConfig.preset_values`) to every knob the user did not give, then checks every value: NaN, inf, values
out of range and cross-field rules give one :class:`~natrl.errors.NatrlError` line, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

from natrl.errors import ArgumentParser, NatrlError

__all__ = ["knob", "RunConfig", "parse_config", "check_config", "config_from_dict", "Literal"]

C = TypeVar("C", bound="RunConfig")
BIG = 10**9  # "absurdly large": no knob of ours is meaningful above this


def knob(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    metavar: str | None = None,
    positional: bool = False,
) -> Any:
    """A config field with its ``--help`` text and its allowed range (``ge``/``gt`` below, ``le`` above).
    ``positional`` makes it an argument without a flag (a list: one or more)."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "metavar": metavar, "positional": positional}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    """Base of every run config. Subclasses add knobs, presets (:meth:`preset_values`) and cross-field rules
    (:meth:`validate`)."""

    # knobs that may differ between the saved config and the flags of a ``--resume`` (where the run lives)
    RESUME_FREE: ClassVar[tuple[str, ...]] = ("resume", "out", "address", "force")

    def preset_values(self) -> dict[str, Any]:
        """Values the config's preset gives to knobs the user left unset (default: none)."""
        return {}

    def validate(self) -> None:
        """Cross-field rules; raise NatrlError with the fix."""


# ---- types -----------------------------------------------------------------------------------------------


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # each class's annotations in its own module's namespace


def _strip_optional(tp) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None is allowed)."""
    args = get_args(tp)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _scalar(tp) -> tuple[type, list | None]:
    """(python type, choices) of a scalar annotation: int, float, str, or Literal[...]."""
    if get_origin(tp) is Literal:
        choices = list(get_args(tp))
        return type(choices[0]), choices
    return tp, None


def _parse_value(kind: type, flag: str):
    def parse(text: str):
        if kind is str:
            return text
        try:
            if not text.isascii():  # int('１０') and float('１０') read non-ASCII digits; a flag takes ASCII
                raise ValueError
            if kind is int:
                value = float(text) if any(c in text for c in ".eE") else int(text, 10)
                if isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError
                    value = int(value)
                return value
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None

    parse.__name__ = kind.__name__
    return parse


def _help(f: dataclasses.Field, default) -> str:
    text = f.metadata.get("help", "")
    lo = f.metadata.get("ge"), f.metadata.get("gt")
    rng = []
    if lo[0] is not None:
        rng.append(f">= {lo[0]:g}")
    if lo[1] is not None:
        rng.append(f"> {lo[1]:g}")
    if f.metadata.get("le") is not None:
        rng.append(f"<= {f.metadata['le']:g}")
    extra = f"default: {default}" + (f"; {', '.join(rng)}" if rng else "")
    return f"{text} ({extra})".replace("%", "%%")


def build_parser(cls, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser for ``cls`` that only records the flags the user gave (defaults come later)."""
    p = ArgumentParser(
        prog=prog,
        description=description,
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hints = _hints(cls)
    defaults = cls.__new__(cls)  # field defaults, without __init__'s required positionals
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            setattr(defaults, f.name, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            setattr(defaults, f.name, f.default_factory())
        else:
            setattr(defaults, f.name, None)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp, _ = _strip_optional(hints[f.name])
        default = getattr(defaults, f.name)
        kw: dict[str, Any] = {"help": _help(f, default), "dest": f.name}
        flag = "--" + f.name.replace("_", "-")
        if f.metadata.get("positional"):
            flag, kw = f.name, {"help": f.metadata["help"], "metavar": f.metadata.get("metavar")}
        if f.metadata.get("metavar"):
            kw["metavar"] = f.metadata["metavar"]
        if tp is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if get_origin(tp) is list:
            kind, choices = _scalar(get_args(tp)[0])
            p.add_argument(flag, nargs="+", type=_parse_value(kind, flag), choices=choices, **kw)
            continue
        kind, choices = _scalar(tp)
        p.add_argument(flag, type=_parse_value(kind, flag), choices=choices, **kw)
    return p


# ---- checking --------------------------------------------------------------------------------------------


def _num(x) -> str:
    """A bound or value, short where that is exact (1e+08, 0.99), else in full (2147483647, not 2.14748e+09)."""
    short = f"{x:g}"
    if float(short) != x and float(x).is_integer() and abs(x) < 1e18:
        return str(int(x))
    return short


def _check_number(flag: str, value, f: dataclasses.Field):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise NatrlError(f"{flag} {value} is not a finite number; give a finite value")
    ge, gt, le = f.metadata.get("ge"), f.metadata.get("gt"), f.metadata.get("le")
    le = BIG if le is None else le
    if ge is not None and value < ge:
        raise NatrlError(f"{flag} must be >= {_num(ge)}, got {_num(value)}")
    if gt is not None and value <= gt:
        raise NatrlError(f"{flag} must be > {_num(gt)}, got {_num(value)}")
    if value > le:
        raise NatrlError(f"{flag} must be <= {_num(le)}, got {_num(value)}")


def check_config(cfg: C) -> C:
    """Types, finiteness and ranges of every knob, then the config's own cross-field rules."""
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, flag = getattr(cfg, f.name), "--" + f.name.replace("_", "-")
        if f.metadata.get("positional"):  # named as --help shows it
            flag = f.metadata.get("metavar") or f.name.upper()
        tp, optional = _strip_optional(hints[f.name])
        if value is None:
            if not optional:
                raise NatrlError(f"{flag} needs a value")
            continue
        if get_origin(tp) is list and not isinstance(value, list):  # a saved config's "x" where ["x"] belongs
            raise NatrlError(f"{flag} {str(value)[:80]!r} is not a list")
        values = value if get_origin(tp) is list else [value]
        kind, choices = _scalar(get_args(tp)[0] if get_origin(tp) is list else tp)
        for v in values:
            if kind is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if kind is not bool and not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
                raise NatrlError(f"{flag} {v!r} is not {kind.__name__}")
            if choices is not None and v not in choices:
                raise NatrlError(f"{flag} {v!r} is not one of {', '.join(map(str, choices))}")
            _check_number(flag, v, f)
            if isinstance(v, str) and ("\x00" in v or len(v) > 4096):
                raise NatrlError(f"{flag}: a value of {len(v)} characters or with NUL bytes is not a path or name")
    cfg.validate()
    return cfg


def _coerce(cfg_cls, values: dict) -> dict:
    """Ints given where a float knob is declared become floats (JSON and Tune write 3 for 3.0)."""
    hints = _hints(cfg_cls)
    out = dict(values)
    for k, v in values.items():
        tp, _ = _strip_optional(hints[k])
        if tp is float and isinstance(v, int) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def resolve(cfg_cls: type[C], given: dict[str, Any]) -> C:
    """The config from the knobs the user gave, the preset for the rest, then the defaults; checked."""
    cfg = cfg_cls(**_coerce(cfg_cls, given))
    preset = {k: v for k, v in cfg.preset_values().items() if k not in given}
    return check_config(dataclasses.replace(cfg, **_coerce(cfg_cls, preset)))


def config_from_dict(cfg_cls: type[C], saved: dict[str, Any], where: str) -> C:
    """A config saved in a run directory's config.json, refused with one line if it is not one of ``cfg_cls``."""
    if not isinstance(saved, dict):
        raise NatrlError(f"{where} holds no config of this run kind; give a run directory of the same script")
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(saved) - names)
    if unknown:
        raise NatrlError(
            f"{where} was written by another run kind or version (unknown knobs: "
            f"{', '.join(unknown[:5])}); give a run directory of the same script"
        )
    try:
        return check_config(cfg_cls(**_coerce(cfg_cls, saved)))
    except NatrlError as e:
        raise NatrlError(f"{where}: {e}") from None


def parse_config(
    cfg_cls: type[C],
    argv=None,
    *,
    prog: str | None = None,
    description: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> tuple[C, set[str]]:
    """(checked config, names of the knobs given on the command line). ``defaults`` replaces field defaults
    (e.g. ``train_nat.py`` is ``train_natpp.py`` with ``rule='nat'``)."""
    args = vars(build_parser(cfg_cls, prog, description).parse_args(argv))
    cfg = resolve(cfg_cls, {**(defaults or {}), **args})
    check_new_output_dir(cfg)
    return cfg, set(args)


def check_new_output_dir(cfg: RunConfig) -> None:
    """A run kind with ``--out DIR`` and ``--resume DIR`` writes a new run directory: an ``--out`` that is a file
    or a non-empty directory is refused now, before the run reads its inputs or starts Ray (RunDir.start
    checks it again when it creates the directory)."""
    names = {f.name for f in dataclasses.fields(cfg)}
    if {"out", "resume"} <= names and getattr(cfg, "out", None) and not getattr(cfg, "resume", None):
        from natrl.rundir import check_new_run_dir

        check_new_run_dir(cfg.out)  # type: ignore[attr-defined]
