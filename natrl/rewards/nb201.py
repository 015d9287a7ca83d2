"""Tabular NAS-Bench-201 reward: real CIFAR-10 accuracies of all 15,625 cells, read without running code.

The table is analog-nasbench's ``data.anb`` (its ``baseline_accuracy``, percent, 200 epochs): a pickle read
through a restricted unpickler that maps the two record classes to plain local classes and refuses every
other global, so no code from the data file runs. Tuple position i of its key is edge
(1,2),(1,3),(1,4),(2,3),(2,4),(3,4) (1-based nodes) and its op index is 0 skip, 1 none, 2 conv3x3, 3 conv1x1,
4 avg_pool (docs/papers.md).
"""

from __future__ import annotations

import gzip
import io
import pickle
from collections.abc import Sequence
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from natrl.cells import Genotype
from natrl.errors import NatrlError
from natrl.spaces import nb201_index, nb201_index_of

ANB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
# Our edge order (natrl.cells.nb201_cell): (0,1), (0,2), (1,2), (0,3), (1,3), (2,3) -> the .anb key position.
OUR_EDGE_TO_ANB = (0, 1, 3, 2, 4, 5)


class _Record:
    """Stand-in for analognasbench.data.Architecture / DriftMeasurement: attributes only, no methods run."""


class _RestrictedUnpickler(pickle.Unpickler):
    ALLOWED = {("analognasbench.data", "Architecture"), ("analognasbench.data", "DriftMeasurement")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return _Record
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def index_of(ops: Sequence[str]) -> int:
    """Index of the NB201 cell with these op names (our edge order), see natrl.spaces.NB201_CELLS."""
    return nb201_index_of(tuple(ops))


def default_table_path() -> Path:
    spec = find_spec("analognasbench")
    if spec is None or not spec.submodule_search_locations:
        raise NatrlError("analog-nasbench is not installed; run pip install -r requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "data.anb"


MAX_TABLE_BYTES = 200 * 1024**2  # data.anb is 5.6 MB, the official CSV under 2 MB
FIX = "give analog-nasbench's data.anb (the default) or the official nb201_cifar10_valid_avg.csv.gz"


def check_table_file(path: Path) -> Path:
    """A table path we may read: an existing regular file (a FIFO would block, a directory fails late)."""
    if not path.exists():
        raise NatrlError(f"NAS-Bench-201 table {path} does not exist; {FIX}")
    if path.is_dir():
        raise NatrlError(f"NAS-Bench-201 table {path} is a directory; {FIX}")
    if not path.is_file():
        raise NatrlError(f"NAS-Bench-201 table {path} is not a regular file; {FIX}")
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise NatrlError(f"NAS-Bench-201 table {path} has {path.stat().st_size} bytes, too many for a table; {FIX}")
    return path


def read_anb(path) -> np.ndarray:
    """Accuracy (percent) of every cell, indexed by ``index_of``; NaN where the table has no entry."""
    path = Path(path)
    try:
        raw = check_table_file(path).read_bytes()
        data = _RestrictedUnpickler(io.BytesIO(raw)).load()
    except NatrlError:
        raise
    except FileNotFoundError:
        raise NatrlError(f"NAS-Bench-201 table {path} does not exist; reinstall analog-nasbench") from None
    except OSError as e:
        raise NatrlError(f"cannot read NAS-Bench-201 table {path} ({e.strerror}); {FIX}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        RecursionError,
        MemoryError,
    ) as e:
        raise NatrlError(f"{path} is not a readable analog-nasbench table ({e}); reinstall analog-nasbench") from None
    acc = np.full(5**6, np.nan)
    try:  # a pickle of another structure (a list, a dict of other keys) is refused here, not half-read
        for key, rec in data.items():
            if not (isinstance(key, tuple) and len(key) == 6 and all(isinstance(k, int) for k in key)):
                raise ValueError(f"key {str(key)[:40]}")
            ours = [ANB_OPS[key[OUR_EDGE_TO_ANB[i]]] for i in range(6)]
            acc[index_of(ours)] = float(rec.baseline_accuracy)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as e:
        raise NatrlError(
            f"{path} is a pickle but not an analog-nasbench table ({e.__class__.__name__}); {FIX}"
        ) from None
    return acc


VALID, TEST = "valid-accuracy", "test-accuracy"  # the official CSV's two measurements of every cell


def csv_columns(path) -> list[str]:
    """The header of a CSV (plain or .gz); [] for an empty file."""
    import csv

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return next(csv.reader(f), [])


def read_official_csv(path, column: str = VALID) -> np.ndarray:
    """One accuracy column (``valid-accuracy`` or ``test-accuracy``) of the official NAS-Bench-201 CSV
    (``arch_str`` and that column), e.g. shared/data: an independent measurement of the same cells."""
    import csv

    from natrl.cells import from_arch_str

    acc = np.full(5**6, np.nan)
    check_table_file(Path(path))
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt") as f:
            for row in csv.DictReader(f):
                acc[index_of(from_arch_str(row["arch_str"]).normal.ops)] = float(row[column])
    except FileNotFoundError:
        raise NatrlError(
            f"NAS-Bench-201 CSV {path} does not exist; pass the path to nb201_cifar10_valid_avg.csv.gz"
        ) from None
    except (KeyError, OSError, ValueError, TypeError, EOFError, csv.Error) as e:  # NatrlError is a ValueError
        reason = " ".join(str(e).split())[:160]
        raise NatrlError(f"{path} is not an NAS-Bench-201 CSV with arch_str and {column} columns ({reason})") from None
    return acc


def check_complete(acc: np.ndarray, path: str) -> np.ndarray:
    """Every one of the 15,625 cells has a finite accuracy in percent: a reward of NaN for a missing or blank
    cell would train the policy on NaN (an empty CSV, a CSV with 'nan' accuracies, a pickled empty dict)."""
    bad = ~np.isfinite(acc) | (acc < 0) | (acc > 100)
    if bad.any():
        raise NatrlError(
            f"NAS-Bench-201 table {path} has no accuracy in 0..100 for {int(bad.sum())} of the "
            f"{acc.size} cells (empty, blank or NaN rows); {FIX}"
        )
    return acc


@lru_cache(maxsize=4)
def _load_cached(path: str) -> NB201Table:
    # Every sub-env of a vector env asks for the table: read it once per process, share it read-only.
    if path.endswith((".csv", ".csv.gz")):
        table = _official_table(path)
    else:
        table = NB201Table(check_complete(read_anb(path), path))
    for acc in (table.accuracy, table.test_accuracy):
        if acc is not None:
            acc.flags.writeable = False
    return table


def _official_table(path: str) -> NB201Table:
    """The official CSV: its valid accuracy is what the table scores (the reward, or a selection), its test
    accuracy (when the file has that column) is kept apart for reporting only."""
    valid = check_complete(read_official_csv(path, VALID), path)
    test = check_complete(read_official_csv(path, TEST), path) if TEST in csv_columns(path) else None
    return NB201Table(valid, name=Path(path).name, measure=VALID, test_accuracy=test)


class NB201Table:
    """RewardBackend over a table of accuracies of all NB201 cells."""

    space = "nb201"

    def __init__(
        self,
        accuracy: np.ndarray,
        name: str = "analog-nasbench",
        measure: str = "baseline_accuracy",
        test_accuracy: np.ndarray | None = None,
    ):
        self.accuracy = accuracy  # what score() returns: the reward, and every selection made on this table
        self.name, self.measure = name, measure
        self.test_accuracy = test_accuracy  # the official test accuracy: reported, never selected on

    @property
    def label(self) -> str:
        """What ``accuracy`` measures, for table captions."""
        return (
            "analog-nasbench" if self.measure == "baseline_accuracy" else f"official NB201 {self.measure} ({self.name})"
        )

    @property
    def test_label(self) -> str | None:
        return None if self.test_accuracy is None else f"official NB201 {TEST} ({self.name})"

    @classmethod
    def load(cls, path=None) -> NB201Table:
        """The table at ``path`` (analog-nasbench .anb or the official CSV); default: analog-nasbench's."""
        return _load_cached(str(path or default_table_path()))

    def score(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        return self.accuracy[[index_of(g.normal.ops) for g in genotypes]]

    def score_ops(self, ops_batch: np.ndarray) -> np.ndarray:
        """Vectorised: op-index vectors [..., 6] -> accuracies [...]."""
        return self.accuracy[nb201_index(ops_batch)]
