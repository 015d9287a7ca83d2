"""NAT++ Fig. 5: pictures of cells side by side (the published original / NAT / NAT++ cells, any cells given, or
held-out NB201 inputs with the cells two runs derive from them), and the picture of one genotype's cells."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError
from natrl.results import Outputs, read_derived
from natrl.tables.common import nb201_genotype, resolve_arch

DEFAULT_ROWS = [f"{m} NAT_{m} NATv2_{m}" for m in ("VGG", "ResBlock", "DARTS", "ENAS")] + [
    "Mobilenetv2 NAT_MobileNetv2 NATv2_MobileNetv2"
]
MAX_PANELS = 200  # a figure larger than this is not readable (and takes minutes to draw)


@dataclass
class Fig5Config(RunConfig):
    """NAT++ Fig. 5."""

    rows: list[str] | None = knob(
        None,
        "one quoted, space-separated list of cells per row of the figure "
        "(default: the published cells of VGG, ResBlock, DARTS, ENAS, MobileNetV2)",
        metavar="ROW",
    )
    nb201: list[str] | None = knob(
        None, "NAT_RUN NATPP_RUN: draw held-out NB201 inputs and the cells both runs derive from them", metavar="RUN"
    )
    handcrafted: list[str] | None = knob(
        None,
        "NAT_RUN NATPP_RUN (darts-space supernet runs): derive the cell of every hand-crafted CIFAR network "
        "(VGG16, ResNet20, ResNet56, ShuffleNet, MobileNetV2) with each policy, draw original / NAT / NAT++ and "
        "write the derived genotypes (NAT_<net>.json, NATv2_<net>.json) and their costs (handcrafted.json)",
        metavar="RUN",
    )
    samples: int = knob(10, "--handcrafted: candidates sampled per cell besides the argmax (best by supernet)", ge=1)
    inputs: int = knob(3, "--nb201: number of inputs drawn", ge=1, le=50)
    reduce: bool = knob(False, "also draw the reduction cells")
    out: str = knob("tables", "output directory for fig5.png, created if missing")
    force: bool = knob(False, "overwrite fig5.png if --out already holds one")

    def validate(self):
        if sum(x is not None for x in (self.rows, self.nb201, self.handcrafted)) > 1:
            raise NatrlError("give one of --rows, --nb201, --handcrafted")
        if self.handcrafted is not None and len(self.handcrafted) != 2:
            got = len(self.handcrafted)
            raise NatrlError(f"--handcrafted takes two run directories (NAT_RUN NATPP_RUN), got {got}")
        if self.nb201 is not None and len(self.nb201) != 2:
            raise NatrlError(f"--nb201 takes two run directories (NAT_RUN NATPP_RUN), got {len(self.nb201)}")


def spec_panel(spec: str):
    """(panel title, genotype) of anything ``zoo.resolve`` reads; arch_str titles are shortened to 'cell'."""
    name, genotype = resolve_arch(spec)
    return ("cell" if name.startswith("|") else name), genotype


def spec_rows(rows: list[str]) -> list[list]:
    out = []
    for row in rows:
        if not row.split():
            raise NatrlError('an empty --rows entry; give space-separated cells, e.g. --rows "DARTS_V2 NAT_DARTS"')
        out.append([spec_panel(s) for s in row.split()])
    if sum(map(len, out)) > MAX_PANELS:
        raise NatrlError(f"--rows names more than {MAX_PANELS} cells; split them over several figures")
    return out


def _derived_by_input(run: str) -> dict:
    if not Path(run).is_dir():
        raise NatrlError(f"--nb201 {run} is not a directory; give two NB201 run directories of train_natpp.py")
    return {r["input"]: r for r in read_derived(run, "nb201")}


def nb201_panels(nat_run: str, natpp_run: str, k: int, seed: int = 0) -> list[list]:
    """Rows of (title, genotype): an input, then the NAT and NAT++ derived cells, for ``k`` held-out inputs."""
    import numpy as np

    recs = {"NAT": _derived_by_input(nat_run), "NAT++": _derived_by_input(natpp_run)}
    common = sorted(set(recs["NAT"]) & set(recs["NAT++"]))
    if not common:
        raise NatrlError("the two runs share no held-out input; use runs with the same --holdout-frac")
    picks = np.random.default_rng(seed).choice(len(common), min(k, len(common)), replace=False)
    where = {label: str(Path(run) / "derived.json") for label, run in (("NAT", nat_run), ("NAT++", natpp_run))}
    rows = []
    for beta in (common[i] for i in sorted(picks)):
        row = [(f"input ({recs['NAT'][beta]['input_acc']:.2f}%)", nb201_genotype(beta, where["NAT"]))]
        for label in ("NAT", "NAT++"):
            rec = recs[label][beta]
            row.append((f"{label} ({rec['acc']:.2f}%)", nb201_genotype(rec["arch_str"], where[label])))
        rows.append(row)
    return rows


def fig5_figure(rows: list[list], reduce: bool = False):
    """One panel per (title, genotype), a figure row per row of ``rows`` (two with ``reduce``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from natrl.plotting import draw_cell

    kinds = ["normal", "reduce"] if reduce else ["normal"]
    ncols, nrows = max(len(r) for r in rows), len(rows) * len(kinds)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.6 * nrows), squeeze=False)
    for r, row in enumerate(rows):
        for j, kind in enumerate(kinds):
            for c in range(ncols):
                ax = axes[r * len(kinds) + j][c]
                if c >= len(row):
                    ax.axis("off")
                    continue
                title, g = row[c]
                cell = g.normal if kind == "normal" or g.reduce is None else g.reduce
                draw_cell(ax, cell, f"{title}" + (f" ({kind})" if reduce else ""))
    fig.tight_layout()
    return fig


def genotype_figure(genotype, title: str = ""):
    """Each cell of ``genotype`` drawn in its own row (what ``natrl.plotting.plot_genotype`` draws)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from natrl.plotting import draw_cell

    cells = genotype.cells()
    fig, axes = plt.subplots(
        len(cells), 1, figsize=(max(7.0, 1.6 * genotype.normal.num_nodes), 3.2 * len(cells)), squeeze=False
    )
    for ax, (kind, cell) in zip(axes[:, 0], cells.items()):
        draw_cell(ax, cell, f"{title} {kind} cell".strip())
    fig.tight_layout()
    return fig


def handcrafted_panels(nat_run: str, natpp_run: str, samples: int) -> tuple[list[list], list[dict]]:
    """Rows of (title, genotype) (original, NAT, NAT++ cell of each hand-crafted CIFAR network) and the records."""
    from natrl import handcrafted
    from natrl.cells import genotype_from_dict

    names = handcrafted.names("cifar10")
    by_rule = {}
    for label, run in (("NAT", nat_run), ("NAT++", natpp_run)):
        if not Path(run).is_dir():
            raise NatrlError(f"--handcrafted {run} is not a directory; give two darts-space runs of train_natpp.py")
        by_rule[label] = handcrafted.derive_networks(run, names, samples=samples)
    rows, records = [], []
    for i, name in enumerate(names):
        row = [(f"{name} (original)", handcrafted.network(name).genotype)]
        for label, recs in by_rule.items():
            rec = {**recs[i], "method": label}
            records.append(rec)
            p, m = rec["costs"]["params_M"][1], rec["costs"]["madds_M"][1]
            row.append((f"{name} {label} ({p:.2f}M, {m:.0f}M MAdds)", genotype_from_dict(rec["output"])))
        rows.append(row)
    return rows, records


def handcrafted_files(out: Outputs, records: list[dict]) -> None:
    """NAT_<net>.json / NATv2_<net>.json (genotypes train_eval.py places back in <net>) and handcrafted.json."""
    import json

    for rec in records:
        prefix = "NATv2_" if rec["method"] == "NAT++" else "NAT_"
        out.text(f"{prefix}{rec['network']}.json", json.dumps(rec["output"], indent=1) + "\n")
    out.text("handcrafted.json", json.dumps(records, indent=1) + "\n")


def fig5(cfg: Fig5Config, given=None) -> Path:
    """The fig5 command: fig5.png into ``cfg.out``."""
    out = Outputs(cfg.out, cfg.force)
    out.check(["fig5.png"])
    if cfg.nb201:
        nat_run, natpp_run = cfg.nb201
        rows = nb201_panels(nat_run, natpp_run, cfg.inputs)
    elif cfg.handcrafted:
        nat_run, natpp_run = cfg.handcrafted
        rows, records = handcrafted_panels(nat_run, natpp_run, cfg.samples)
        handcrafted_files(out, records)
    else:
        rows = spec_rows(cfg.rows or DEFAULT_ROWS)
    out.figure("fig5.png", fig5_figure(rows, cfg.reduce))
    path = next(p for p in out.commit() if p.name == "fig5.png")
    print(f"wrote {path} ({len(rows)} rows)")
    return path
