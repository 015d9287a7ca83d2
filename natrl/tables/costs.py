"""Params and MAdds of every registry architecture on CIFAR-10 and ImageNet, beside the papers' published numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from natrl.config import RunConfig, knob
from natrl.results import Outputs

DATASETS = ("cifar10", "imagenet")


@dataclass
class CostTableConfig(RunConfig):
    """The cost table of the registry."""

    out: str | None = knob(
        None, "also write cost_table.md and cost_table.csv into this directory (created if missing)", metavar="DIR"
    )
    force: bool = knob(False, "overwrite cost_table.md / .csv already in --out")


def cost_rows() -> list[dict]:
    """One row per registry name: our params / MAdds per dataset and the published ones (None: not reported)."""
    from natrl import zoo
    from natrl.costs import genotype_cost

    rows = []
    for name in zoo.names():
        e = zoo.entry(name)
        row: dict[str, Any] = {"name": name}
        for ds in DATASETS:
            c = genotype_cost(e.genotype, ds, **e.defaults.get(ds, {}))
            p, m, src = e.published.get(ds, (None, None, ""))
            row.update(
                {
                    f"{ds}_params_M": round(c.params_m, 2),
                    f"{ds}_madds_M": round(c.madds_m, 1),
                    f"{ds}_paper_params_M": p,
                    f"{ds}_paper_madds_M": m,
                    f"{ds}_paper_source": src,
                }
            )
        rows.append(row)
    return rows


def _pair(ours_p, ours_m, p, m) -> str:
    paper = "" if p is None else f" ({p} / {'-' if m is None else m})"
    return f"{ours_p:.2f} / {ours_m:.1f}{paper}"


def cost_markdown(rows: list[dict]) -> str:
    lines = [
        "| architecture | CIFAR-10 params M / MAdds M (paper) | ImageNet params M / MAdds M (paper) |",
        "|---|---|---|",
    ]
    for r in rows:
        cells = [
            _pair(r[f"{ds}_params_M"], r[f"{ds}_madds_M"], r[f"{ds}_paper_params_M"], r[f"{ds}_paper_madds_M"])
            for ds in DATASETS
        ]
        lines.append(f"| {r['name']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def cost_table(cfg: CostTableConfig, given=None) -> str:
    """The cost_table command: the Markdown on stdout; with ``cfg.out`` also cost_table.{md,csv} there (both
    checked before the minute of counting starts)."""
    out = Outputs(cfg.out, cfg.force) if cfg.out else None
    if out:
        out.check(["cost_table.md", "cost_table.csv"])
    rows = cost_rows()
    md = cost_markdown(rows)
    print(md)
    if out:
        out.text("cost_table.md", md + "\n")
        out.csv("cost_table.csv", rows)
        out.commit()
    return md
