"""Numbers quoted from the NAT++ paper (Tables 1 and 3), shown beside ours and always marked quoted.

Each entry: (model, method) -> (#Params M, #MAdds M, CIFAR-10 accuracy %, CIFAR-100 accuracy %). Methods: "/" (the
original model), NAO, ESNAC, APS (the paper's baselines), NAT, NAT++. MobileNetV2 has one "NAT/NAT++" row in the
paper (both give the same architecture). Table 3 lists the CIFAR part of the NAS-based models (cutout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from natrl.config import RunConfig, knob

METHODS = ("/", "NAO", "ESNAC", "APS", "NAT", "NAT++")
Row = tuple[float, float, float, float]  # params M, MAdds M, CIFAR-10 %, CIFAR-100 %

TABLE1: dict[str, list[Row]] = {  # NAT++ Table 1 (hand-crafted architectures)
    "VGG16": [
        (15.2, 313, 93.56, 71.83),
        (19.5, 548, 95.72, 74.67),
        (14.6, 295, 95.26, 74.43),
        (15.0, 305, 95.53, 74.79),
        (15.2, 315, 96.04, 75.02),
        (14.4, 301, 96.16, 75.23),
    ],
    "ResNet20": [
        (0.3, 41, 91.37, 68.88),
        (0.4, 61, 92.44, 71.22),
        (0.3, 40, 92.87, 71.58),
        (0.3, 42, 93.14, 71.84),
        (0.3, 42, 93.05, 71.67),
        (0.3, 39, 93.23, 71.97),
    ],
    "ResNet56": [
        (0.9, 127, 93.21, 71.54),
        (1.3, 199, 95.27, 74.25),
        (0.8, 125, 95.33, 74.30),
        (0.8, 123, 94.54, 73.58),
        (0.9, 129, 95.40, 74.33),
        (0.8, 124, 95.47, 74.41),
    ],
    "ShuffleNet": [
        (0.9, 161, 92.29, 71.14),
        (1.4, 251, 93.16, 72.04),
        (0.8, 153, 93.21, 72.14),
        (0.9, 161, 93.47, 72.40),
        (0.8, 158, 93.37, 72.34),
        (0.7, 147, 93.53, 72.61),
    ],
    "MobileNetV2": [
        (2.3, 91, 94.47, 73.66),
        (2.9, 131, 94.75, 73.79),
        (2.1, 84, 94.87, 73.94),
        (2.3, 90, 95.03, 74.14),
        (2.3, 92, 95.17, 74.22),
    ],  # last row: NAT/NAT++
}

TABLE3: dict[str, list[Row]] = {  # NAT++ Table 3, CIFAR part (NAS-based architectures, trained with cutout)
    "ENAS": [
        (4.6, 804, 97.11, 82.87),
        (4.5, 763, 97.05, 82.57),
        (4.1, 717, 97.13, 83.15),
        (4.4, 744, 97.26, 83.45),
        (4.6, 804, 97.24, 83.43),
        (3.7, 580, 97.31, 83.51),
    ],
    "DARTS": [
        (3.3, 533, 97.06, 83.03),
        (3.5, 577, 97.09, 83.12),
        (2.8, 457, 97.21, 83.36),
        (3.2, 515, 97.25, 83.44),
        (2.7, 424, 97.28, 83.49),
        (2.5, 395, 97.30, 83.56),
    ],
    "NAONet": [
        (128, 66016, 97.89, 84.33),
        (143, 73705, 97.91, 84.42),
        (107, 55187, 97.98, 84.49),
        (125, 63468, 97.96, 84.47),
        (113, 58326, 98.01, 84.53),
        (101, 51976, 98.07, 84.60),
    ],
    "PC-DARTS": [
        (3.6, 570, 97.43, 84.21),
        (4.7, 725, 97.49, 84.30),
        (3.3, 503, 97.44, 84.20),
        (3.4, 529, 97.47, 84.28),
        (3.4, 518, 97.51, 84.31),
        (3.3, 512, 97.57, 84.37),
    ],
}


QUOTED: dict[int, dict[str, list[Row]]] = {1: TABLE1, 3: TABLE3}


def quoted_rows(table: int) -> list[tuple]:
    """[(model, method, params, madds, acc_c10, acc_c100)] of NAT++ Table ``table`` (1 or 3)."""
    data = QUOTED[table]
    rows: list[tuple] = []
    for model, values in data.items():
        methods = METHODS if len(values) == len(METHODS) else METHODS[:4] + ("NAT/NAT++",)
        rows += [(model, method, *v) for method, v in zip(methods, values)]
    return rows


@dataclass
class QuotedConfig(RunConfig):
    """Print the quoted rows of one table."""

    table: Literal[1, 3] = knob(3, "NAT++ Table 1 (hand-crafted models) or Table 3 (NAS-based models)")


def quoted_frame(table: int) -> pd.DataFrame:
    """The quoted rows of NAT++ Table ``table`` as a table."""
    cols = ["model", "method", "#Params (M)", "#MAdds (M)", "CIFAR-10 (%)", "CIFAR-100 (%)"]
    return pd.DataFrame(quoted_rows(table), columns=cols)


def print_quoted(cfg: QuotedConfig, given=None) -> str:
    """The quoted command: NAT++ Table ``cfg.table`` as quoted, in Markdown on stdout."""
    from natrl.results import markdown

    md = f"NAT++ Table {cfg.table} as quoted from the paper:\n\n{markdown(quoted_frame(cfg.table))}"
    print(md)
    return md
