"""Params and MAdds of every registry architecture next to the papers' published numbers.

Run:
    python analysis/cost_table.py [--out DIR]      # Markdown on stdout; with --out also cost_table.{md,csv}

Expected: DARTS_V2 3.35M / 528.4M on CIFAR-10 (paper 3.3 / 528); takes about a minute on 2 cores.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from natrl import zoo
from natrl.costs import genotype_cost
from natrl.errors import ArgumentParser, cli_entry

DATASETS = ("cifar10", "imagenet")


def rows():
    for name in zoo.names():
        e = zoo.entry(name)
        row = {"name": name}
        for ds in DATASETS:
            c = genotype_cost(e.genotype, ds, **e.defaults.get(ds, {}))
            p, m, src = e.published.get(ds, (None, None, ""))
            row.update({f"{ds}_params_M": round(c.params_m, 2), f"{ds}_madds_M": round(c.madds_m, 1),
                        f"{ds}_paper_params_M": p, f"{ds}_paper_madds_M": m, f"{ds}_paper_source": src})
        yield row


def markdown(table) -> str:
    def pair(ours_p, ours_m, p, m):
        paper = "" if p is None else f" ({p} / {'-' if m is None else m})"
        return f"{ours_p:.2f} / {ours_m:.1f}{paper}"
    lines = ["| architecture | CIFAR-10 params M / MAdds M (paper) | ImageNet params M / MAdds M (paper) |",
             "|---|---|---|"]
    for r in table:
        cells = [pair(r[f"{ds}_params_M"], r[f"{ds}_madds_M"], r[f"{ds}_paper_params_M"], r[f"{ds}_paper_madds_M"])
                 for ds in DATASETS]
        lines.append(f"| {r['name']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="directory for cost_table.md and cost_table.csv")
    args = p.parse_args(argv)
    table = list(rows())
    md = markdown(table)
    print(md)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cost_table.md").write_text(md + "\n")
        with open(args.out / "cost_table.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)


if __name__ == "__main__":
    sys.exit(main())
