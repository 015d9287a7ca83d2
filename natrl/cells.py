"""Cell architectures as plain data, their validation, and conversions between the formats people use.

A :class:`Cell` is a DAG: nodes ``0 .. num_inputs-1`` are inputs, every edge is ``(op, src, dst)`` with
``src < dst``, and ``concat`` lists the nodes whose outputs form the cell's output. A :class:`Genotype` is
the architecture the policy transforms, in one of two spaces:

- ``darts``: a normal and a reduction cell, 2 input nodes (c_{k-2}, c_{k-1}), k intermediate nodes (4 for
  DARTS, 5 for ENAS-like cells) each summing exactly two incoming edges, output = concat of ``concat``;
- ``nb201``: one cell, 1 input node, 4 nodes, the 6 edges i -> j for every i < j, output = node 3.

Formats: the authors' ``(op, from, to)`` triples (our JSON), the DARTS ``Genotype`` form (``(op, input)``
pairs, two per intermediate node), and NAS-Bench-201 ``arch_str``.

JSON file format (``save_genotype`` / ``load_genotype``)::

    {"format": "natrl.genotype/1", "space": "darts", "name": "DARTS_V2",
     "normal": [["sep_conv_3x3", 0, 2], ...], "normal_concat": [2, 3, 4, 5],
     "reduce": [["max_pool_3x3", 0, 2], ...], "reduce_concat": [2, 3, 4, 5]}

    {"format": "natrl.genotype/1", "space": "nb201", "arch_str": "|nor_conv_3x3~0|+|...|"}

``load_genotype`` also accepts an entry of the authors' genotypes.json (no "format" key), and DARTS pairs
``[op, input]`` in place of triples.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path

from natrl.errors import NatrlError
from natrl.ops import DARTS_ALIASES, NB201_OPS, OP_INFO

FORMAT = "natrl.genotype/1"
SPACES = ("darts", "nb201")
NB201_NODES = 4
MAX_NODES = 64  # nodes per cell (DARTS: 6, ENAS: 7): larger indices are typos, and would make validation loop
MAX_TEXT = 100_000  # characters of Genotype(...) text or an arch_str
MAX_FILE_BYTES = 1_000_000  # a genotype JSON file is a few kB

Edge = tuple[str, int, int]  # (op, src, dst)


@dataclass(frozen=True)
class Cell:
    edges: tuple[Edge, ...]
    concat: tuple[int, ...]
    num_inputs: int = 2

    @property
    def num_nodes(self) -> int:
        return max([self.num_inputs - 1, *(dst for _, _, dst in self.edges)]) + 1

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(op for op, _, _ in self.edges)

    def with_ops(self, ops) -> Cell:
        """The same graph with the edges' ops replaced, in edge order."""
        ops = tuple(ops)
        if len(ops) != len(self.edges):
            raise NatrlError(f"got {len(ops)} ops for a cell with {len(self.edges)} edges")
        return Cell(tuple((o, s, d) for o, (_, s, d) in zip(ops, self.edges)), self.concat, self.num_inputs)

    def triples(self) -> list[list]:
        return [[op, s, d] for op, s, d in self.edges]


@dataclass(frozen=True)
class Genotype:
    normal: Cell
    reduce: Cell | None = None  # None in the nb201 space
    space: str = "darts"

    def cells(self) -> dict[str, Cell]:
        return {"normal": self.normal} if self.reduce is None else {"normal": self.normal, "reduce": self.reduce}

    @property
    def num_intermediate(self) -> int:
        return self.normal.num_nodes - self.normal.num_inputs

    def with_ops(self, normal_ops, reduce_ops=None) -> Genotype:
        reduce = None if self.reduce is None else self.reduce.with_ops(reduce_ops)
        return Genotype(self.normal.with_ops(normal_ops), reduce, self.space)

    # ---- authors' triples / our JSON -------------------------------------------------------------
    def to_json(self, name: str | None = None) -> dict:
        out: dict = {"format": FORMAT, "space": self.space}
        if name:
            out["name"] = name
        if self.space == "nb201":
            out["arch_str"] = to_arch_str(self.normal)
            return out
        for kind, cell in self.cells().items():
            out[kind] = cell.triples()
            out[f"{kind}_concat"] = list(cell.concat)
        return out

    # ---- DARTS Genotype(normal=[(op, input), ...], ...) ------------------------------------------
    def to_darts(self) -> dict:
        """The DARTS namedtuple's fields: (op, input) pairs ordered by target node, and concat lists."""
        self._require_darts("the DARTS Genotype form")
        out: dict[str, list] = {}
        for kind, cell in self.cells().items():
            out[kind] = [(op, s) for op, s, _ in sorted(cell.edges, key=lambda e: e[2])]
            out[f"{kind}_concat"] = list(cell.concat)
        return out

    def darts_text(self) -> str:
        d = self.to_darts()
        return (
            "Genotype(normal={normal!r}, normal_concat={normal_concat!r}, "
            "reduce={reduce!r}, reduce_concat={reduce_concat!r})"
        ).format(**d)

    def _require_darts(self, what: str):
        if self.space != "darts":
            raise NatrlError(f"{what} exists only for darts-space genotypes, not {self.space}")


# ---- validation --------------------------------------------------------------------------------------


def validate_cell(
    cell: Cell, *, space: str = "darts", num_intermediate: int | None = None, vocab=None, where: str = "cell"
) -> Cell:
    """Raise NatrlError (one line) unless ``cell`` is a well-formed cell of ``space``; return it."""
    known = OP_INFO if vocab is None else vocab
    if not cell.edges:
        raise NatrlError(f"{where}: has no edges; list its edges as [op, from, to]")
    for i, (op, s, d) in enumerate(cell.edges):
        if op not in known:
            raise NatrlError(
                f"{where}: unknown op '{op}' on edge {i} ({s} -> {d}); use one of: {', '.join(sorted(known))}"
            )
        if not (isinstance(s, int) and isinstance(d, int)) or isinstance(s, bool) or isinstance(d, bool):
            raise NatrlError(f"{where}: edge {i} has non-integer nodes ({s!r} -> {d!r}); nodes are integers")
        if s < 0:
            raise NatrlError(f"{where}: edge {i} comes from node {s} < 0; inputs are nodes 0..{cell.num_inputs - 1}")
        if d < cell.num_inputs:
            raise NatrlError(f"{where}: edge {i} ends at input node {d}; edges must end at nodes >= {cell.num_inputs}")
        if s >= d:
            raise NatrlError(
                f"{where}: edge {i} ({s} -> {d}) points forward or to itself (a cycle); "
                "every edge must come from an earlier node"
            )
        if d >= MAX_NODES:
            raise NatrlError(f"{where}: edge {i} ends at node {d}; a cell has at most {MAX_NODES} nodes")
    n = cell.num_nodes
    if space == "nb201":
        want = sorted((s, d) for d in range(1, NB201_NODES) for s in range(d))
        got = sorted((s, d) for _, s, d in cell.edges)
        if cell.num_inputs != 1 or got != want:
            raise NatrlError(
                f"{where}: a NAS-Bench-201 cell has 4 nodes and the 6 edges i -> j for i < j; got edges {got}"
            )
        if tuple(cell.concat) != (NB201_NODES - 1,):
            raise NatrlError(f"{where}: a NAS-Bench-201 cell outputs node 3, not {list(cell.concat)}")
        return cell
    if space != "darts":
        raise NatrlError(f"unknown space '{space}'; choose one of {', '.join(SPACES)}")
    k = n - cell.num_inputs
    if num_intermediate is not None and k != num_intermediate:
        raise NatrlError(
            f"{where}: has {k} intermediate nodes but {num_intermediate} are required "
            f"(nodes {cell.num_inputs}..{cell.num_inputs + num_intermediate - 1})"
        )
    for node in range(cell.num_inputs, n):
        fan_in = sum(1 for _, _, d in cell.edges if d == node)
        if fan_in != 2:
            raise NatrlError(
                f"{where}: node {node} has {fan_in} incoming edges; every intermediate node "
                "needs exactly 2 (use 'null' for an absent edge)"
            )
    if not cell.concat:
        raise NatrlError(f"{where}: empty concat list; name the intermediate nodes whose outputs are concatenated")
    for c in cell.concat:
        if not isinstance(c, int) or not cell.num_inputs <= c < n:
            raise NatrlError(f"{where}: concat node {c!r} is not an intermediate node ({cell.num_inputs}..{n - 1})")
    if len(set(cell.concat)) != len(cell.concat):
        raise NatrlError(f"{where}: concat list {list(cell.concat)} repeats a node")
    return cell


def validate_genotype(
    g: Genotype, *, num_intermediate: int | None = None, vocab=None, where: str = "genotype"
) -> Genotype:
    if g.space not in SPACES:
        raise NatrlError(f"{where}: unknown space '{g.space}'; choose one of {', '.join(SPACES)}")
    if g.space == "darts" and g.reduce is None:
        raise NatrlError(f"{where}: a darts-space genotype needs both a normal and a reduce cell")
    for kind, cell in g.cells().items():
        validate_cell(cell, space=g.space, num_intermediate=num_intermediate, vocab=vocab, where=f"{where} {kind}")
    if g.reduce is not None and g.normal.num_nodes != g.reduce.num_nodes and num_intermediate is not None:
        raise NatrlError(f"{where}: normal and reduce cells have different node counts")
    return g


# ---- constructors from each format ---------------------------------------------------------------------


def _canon(op, where):
    if not isinstance(op, str):
        raise NatrlError(f"{where}: op {op!r} is not a string")
    return DARTS_ALIASES.get(op, op)


def cell_from_triples(triples, concat, where="cell") -> Cell:
    edges = []
    for i, t in enumerate(triples):
        if not isinstance(t, (list, tuple)) or len(t) != 3:
            raise NatrlError(f"{where}: edge {i} is {t!r}; write each edge as [op, from, to]")
        edges.append((_canon(t[0], where), t[1], t[2]))
    return Cell(tuple(edges), tuple(concat), 2)


def cell_from_darts_pairs(pairs, concat, where="cell") -> Cell:
    """DARTS form: two (op, input) pairs per intermediate node, node 2 first."""
    if len(pairs) % 2:
        raise NatrlError(f"{where}: {len(pairs)} (op, input) pairs; the DARTS form has two per intermediate node")
    edges = []
    for i, p in enumerate(pairs):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise NatrlError(f"{where}: entry {i} is {p!r}; write each DARTS entry as (op, input)")
        edges.append((_canon(p[0], where), p[1], 2 + i // 2))
    return Cell(tuple(edges), tuple(concat), 2)


def from_triples(normal, normal_concat, reduce, reduce_concat, where="genotype") -> Genotype:
    g = Genotype(
        cell_from_triples(normal, normal_concat, f"{where} normal"),
        cell_from_triples(reduce, reduce_concat, f"{where} reduce"),
    )
    return validate_genotype(g, where=where)


def from_darts(normal, normal_concat, reduce, reduce_concat, where="genotype") -> Genotype:
    g = Genotype(
        cell_from_darts_pairs(normal, normal_concat, f"{where} normal"),
        cell_from_darts_pairs(reduce, reduce_concat, f"{where} reduce"),
    )
    return validate_genotype(g, where=where)


def _literal(node):
    """ast.literal_eval, plus ``range(a, b)`` which DARTS uses for concat lists."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        args = [ast.literal_eval(a) for a in node.args]
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise ValueError
        r = range(*args)
        if len(r) > MAX_NODES:  # range(2, 10**9) would be a list of a billion nodes: refuse, don't build it
            raise NatrlError(f"Genotype(...): {len(r)} concat nodes; a cell has at most {MAX_NODES} nodes")
        return list(r)
    return ast.literal_eval(node)


def parse_darts_text(text: str) -> Genotype:
    """Parse ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], ...)`` without eval."""
    if len(text) > MAX_TEXT:
        raise NatrlError(f"Genotype(...) text of {len(text)} characters; a genotype is a few hundred, give its text")
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Genotype"):
            raise ValueError
        names = ("normal", "normal_concat", "reduce", "reduce_concat")
        fields = {kw.arg: _literal(kw.value) for kw in node.keywords}
        fields.update({n: _literal(v) for n, v in zip(names, node.args)})
        normal, normal_concat, reduce, reduce_concat = (fields[n] for n in names)
        return from_darts(normal, normal_concat, reduce, reduce_concat, where="Genotype(...)")
    except NatrlError:
        raise
    except (SyntaxError, ValueError, KeyError, TypeError, RecursionError, MemoryError):  # nested too deep as well
        raise NatrlError(
            "cannot parse DARTS text; expected Genotype(normal=[(op, input), ...], "
            "normal_concat=[...], reduce=[...], reduce_concat=[...]) with literal values"
        ) from None


def from_arch_str(arch_str: str) -> Genotype:
    """NAS-Bench-201 ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> a nb201-space genotype."""
    where = f"arch_str '{str(arch_str)[:200]}'"
    if not isinstance(arch_str, str) or not arch_str.startswith("|") or len(arch_str) > MAX_TEXT:
        raise NatrlError(f"{where}: not a NAS-Bench-201 arch_str; expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    edges = []
    for dst, group in enumerate(arch_str.split("+"), start=1):
        items = [t for t in group.strip().strip("|").split("|") if t]
        for item in items:
            op, _, src = item.partition("~")
            if not (src.isascii() and src.isdigit()):  # str.isdigit accepts '０' and '²', int() reads them
                raise NatrlError(
                    f"{where}: entry '{item}' is not op~input with an ASCII input number, e.g. nor_conv_3x3~0"
                )
            if op not in NB201_OPS:
                raise NatrlError(f"{where}: unknown op '{op}'; NAS-Bench-201 ops are {', '.join(NB201_OPS)}")
            edges.append((op, int(src), dst))
    g = Genotype(Cell(tuple(edges), (NB201_NODES - 1,), 1), None, "nb201")
    return validate_genotype(g, where=where)


def to_arch_str(cell: Cell) -> str:
    by_dst = {d: sorted((s, op) for op, s, dd in cell.edges if dd == d) for d in range(1, NB201_NODES)}
    return "+".join("|" + "|".join(f"{op}~{s}" for s, op in by_dst[d]) + "|" for d in range(1, NB201_NODES))


def nb201_cell(ops) -> Genotype:
    """NB201 genotype from 6 ops in edge order (0,1), (0,2), (1,2), (0,3), (1,3), (2,3)."""
    pairs = [(s, d) for d in range(1, NB201_NODES) for s in range(d)]
    return Genotype(Cell(tuple((o, s, d) for o, (s, d) in zip(ops, pairs)), (NB201_NODES - 1,), 1), None, "nb201")


# ---- JSON files ------------------------------------------------------------------------------------------


def genotype_from_dict(d, where="genotype") -> Genotype:
    if not isinstance(d, dict):
        raise NatrlError(f"{where}: expected a JSON object with normal/reduce cells or an arch_str")
    fmt = d.get("format", FORMAT)
    if fmt != FORMAT:
        raise NatrlError(f"{where}: format '{fmt}' is not supported; this natrl reads '{FORMAT}'")
    space = d.get("space", "nb201" if "arch_str" in d else "darts")
    if space == "nb201":
        if "arch_str" not in d:
            raise NatrlError(f"{where}: a nb201 genotype needs an 'arch_str' field")
        return from_arch_str(d["arch_str"])
    if space != "darts":
        raise NatrlError(f"{where}: unknown space '{space}'; choose one of {', '.join(SPACES)}")
    missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in d]
    if missing:
        raise NatrlError(f"{where}: missing field(s) {', '.join(missing)}; see the format in natrl/cells.py")
    for k in ("normal", "reduce", "normal_concat", "reduce_concat"):
        if not isinstance(d[k], list):
            raise NatrlError(f"{where}: field '{k}' must be a list")
    pairs = all(isinstance(e, list) and len(e) == 2 for e in d["normal"] + d["reduce"])
    build = from_darts if pairs and d["normal"] else from_triples
    return build(d["normal"], d["normal_concat"], d["reduce"], d["reduce_concat"], where=where)


def load_genotype(path) -> Genotype:
    path = Path(path)
    try:
        if not path.exists():
            raise FileNotFoundError
        if path.is_dir():
            raise NatrlError(f"cannot read genotype file {path}: it is a directory; give a .json file")
        if not path.is_file():  # a FIFO or a device would block or never end
            raise NatrlError(f"cannot read genotype file {path}: not a regular file; give a .json file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise NatrlError(
                f"cannot read genotype file {path}: {path.stat().st_size} bytes, a genotype is a few kB; "
                "give the file derive.py or search_itnas.py wrote"
            )
        text = path.read_text()
    except NatrlError:
        raise
    except FileNotFoundError:
        raise NatrlError(
            f"genotype file {path} does not exist; give a registry name or an existing .json file"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise NatrlError(f"cannot read genotype file {path}: {e.__class__.__name__}; check the path") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise NatrlError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno} ({e.msg}); fix the file"
        ) from None
    except RecursionError:
        raise NatrlError(
            f"cannot read architecture {path}: its JSON is nested too deeply to be a genotype; "
            "give the file derive.py wrote"
        ) from None
    return genotype_from_dict(d, where=str(path))


def save_genotype(g: Genotype, path, name: str | None = None) -> Path:
    """Write atomically (temp file + rename) so that an interrupted save never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(g.to_json(name), indent=1) + "\n")
    os.replace(tmp, path)
    return path
