"""NAT++ Table 1 (hand-crafted models) and Table 3 (NAS-based models): the paper's original / NAT / NAT++ rows
and its baselines (quoted), with our train_eval.py runs right below the quoted row of the same model and method.
Table 1's rows are the hand-crafted networks themselves (natrl/handcrafted.py: VGG16, ResNet20, ...), trained
with their original or transformed cells; each caption names the recipe its rows were trained with.

Our rows: train_eval runs grouped by (model, method, epochs, layers, channels); accuracy = final-epoch test
accuracy, mean ± std over seeds per dataset; params and MAdds measured on the network we trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from natrl.config import knob
from natrl.errors import NatrlError
from natrl.results import load_runs, pm, require, summarise
from natrl.tables.common import RunsTableConfig, select, write_one
from natrl.tables.quoted import QUOTED, quoted_rows

METHOD_ORDER = ["/", "NAO", "ESNAC", "APS", "NAT", "NAT++", "NAT/NAT++"]
GROUP = ["model", "method", "epochs", "layers", "channels"]
DATASET_COLUMNS = {"cifar10": "CIFAR-10 (%)", "cifar100": "CIFAR-100 (%)"}


# The training recipe behind each table's rows (natrl/runs/train_eval.py, RECIPES; docs/train_eval.md).
RECIPE_CAPTIONS = {
    1: "the hand-crafted recipe, no cutout (the papers' rule): each network with its own depth and widths, SGD "
    "lr 0.1 cosine, momentum 0.9, wd 5e-4, batch 128, 200 epochs at --preset paper; quoted rows as the paper "
    "trained them (its recipe is not stated beyond 'the original papers' settings').",
    3: "the NAS recipe (DARTS' protocol): 20 cells, C=36, 600 epochs, batch 96, SGD lr 0.025 cosine, wd 3e-4, "
    "cutout 16, drop-path 0.2, auxiliary head 0.4 at --preset paper (the paper trains these with cutout too).",
}
TINY_NOTE = " Rows with a few epochs are the tiny preset (2,000 training images): CPU checks, not the paper's scale."


@dataclass
class ModelsConfig(RunsTableConfig):
    """NAT++ Table 1 or 3 from train_eval.py runs."""

    table: Literal[1, 3] | None = knob(None, "NAT++ Table 1 (hand-crafted models) or Table 3 (NAS-based models)")

    def validate(self):
        super().validate()
        if self.table is None:
            raise NatrlError("give --table 1 (hand-crafted models) or --table 3 (NAS-based models)")


def quoted_shown(table: int) -> list[dict]:
    return [
        {
            "model": model,
            "method": method,
            "source": f"quoted (NAT++ Table {table})",
            "#Params (M)": f"{p}",
            "#MAdds (M)": f"{m}",
            "CIFAR-10 (%)": f"{c10:.2f}",
            "CIFAR-100 (%)": f"{c100:.2f}",
        }
        for model, method, p, m, c10, c100 in quoted_rows(table)
    ]


def ours_shown(summary: pd.DataFrame, table: int = 3) -> list[dict]:
    """One row per trained network (model, method, depth, width, epochs), a column per dataset."""
    rows = []
    for (model, method, epochs, layers, channels), g in summary.groupby(GROUP):
        first = g.iloc[0]
        shape = f"the {model} network, {layers} blocks" if table == 1 else f"{layers} cells, C={channels}"
        row = {
            "model": model,
            "method": method,
            "source": f"ours, trained from scratch ({shape}, {epochs} epochs; seeds {first['seeds']})",
            "#Params (M)": f"{first['params_M_mean']:.2f}",
            "#MAdds (M)": f"{first['madds_M_mean']:.0f}",
        }
        for ds, col in DATASET_COLUMNS.items():
            r = g[g["ds"] == ds]
            row[col] = "-" if r.empty else pm(r["test_acc_mean"].iloc[0], r["test_acc_std"].iloc[0])
        rows.append(row)
    return rows


def in_table_order(shown: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """The paper's model order, then method order; our row right below the quoted one."""
    method_rank = shown["method"].map({m: i for i, m in enumerate(METHOD_ORDER)}).fillna(len(METHOD_ORDER))
    keys = pd.DataFrame(
        {
            "_m": shown["model"].map({m: i for i, m in enumerate(models)}),
            "_k": method_rank,
            "_o": shown["source"].str.startswith("ours"),
        }
    )
    return shown.loc[keys.sort_values(["_m", "_k", "_o"], kind="stable").index].reset_index(drop=True)


def table_models(frame: pd.DataFrame, table: int):
    """(shown, summary, caption) of NAT++ Table ``table`` (1 or 3)."""
    models = list(QUOTED[table])
    arch = "ResNet20" if table == 1 else "NATv2_DARTS"
    runs = require(
        select(frame, kind="scratch", model=models),
        f"train_eval.py runs of Table {table}'s models ({', '.join(models)})",
        f"python experiments/train_eval.py --arch {arch} --data DATA",
    )
    summary = summarise(
        runs, ["model", "method", "ds", "epochs", "layers", "channels"], ["test_acc", "params_M", "madds_M"]
    )
    shown = in_table_order(pd.DataFrame(quoted_shown(table) + ours_shown(summary, table)), models)
    caption = (
        f"NAT++ Table {table}: {'hand-crafted' if table == 1 else 'NAS-based'} models; rows marked quoted are "
        "the paper's numbers, rows marked ours are measured here (accuracy: test set, final epoch, mean ± std "
        f"over seeds; run ids in the CSV). Recipe: {RECIPE_CAPTIONS[table]}"
        + (TINY_NOTE if (runs["epochs"] < 10).any() else "")
    )
    return shown, summary, caption


def models_command(cfg: ModelsConfig, given=None) -> str:
    """table1 or table3 .{md,tex,csv} into ``cfg.out``; prints the Markdown."""
    table = cfg.table
    assert table is not None  # ModelsConfig.validate refused a missing --table
    return write_one(cfg, f"table{table}", *table_models(load_runs(cfg.paths), table))
