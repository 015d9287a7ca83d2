"""One architecture's params, MAdds and cells (with the papers' numbers where published), a transition rule's
vocabulary and valid-transition matrix, or the registry's names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError
from natrl.results import write_file
from natrl.rundir import check_new_output
from natrl.tables.common import resolve_arch

PLOT_FORMATS = (".png", ".pdf", ".svg")


@dataclass
class ArchInfoConfig(RunConfig):
    """What arch_info shows."""

    arch: str | None = knob(
        None,
        "registry name, genotype .json file, NB201 arch_str or Genotype(...) text (may come first, without --arch)",
        metavar="ARCH",
    )
    dataset: Literal["cifar10", "cifar100", "imagenet"] = knob("cifar10", "evaluation network of the count")
    json: bool = knob(False, "print machine-readable JSON")
    plot: str | None = knob(None, "draw the cell(s) to this .png (or .pdf, .svg) file", metavar="FILE.png")
    force: bool = knob(False, "overwrite the --plot file if it exists")
    transitions: Literal["nat", "natpp", "nb201"] | None = knob(None, "print a vocabulary and its transition matrix")
    list: bool = knob(False, "list the registry's architectures")

    def validate(self):
        if not (self.arch or self.transitions or self.list):
            raise NatrlError("give an architecture, --transitions nat|natpp|nb201, or --list")
        if self.plot is not None and Path(self.plot).suffix.lower() not in PLOT_FORMATS:
            raise NatrlError(f"--plot {self.plot}: give a file name ending in {', '.join(PLOT_FORMATS)}")


def cell_lines(genotype) -> list[str]:
    lines = []
    for kind, cell in genotype.cells().items():
        lines.append(
            f"{kind} cell (output = concat of nodes {list(cell.concat)}):"
            if genotype.space == "darts"
            else f"{kind} cell (output = node {cell.concat[0]}):"
        )
        lines += [f"  {s} -> {d}  {op}" for op, s, d in cell.edges]
    return lines


def arch_report(name: str, genotype, dataset: str) -> dict:
    """Costs of ``genotype`` on ``dataset`` (with the registry's per-model network settings), its JSON and, for a
    registry entry, the published numbers."""
    from natrl import zoo
    from natrl.costs import genotype_cost

    e = zoo.entry(name) if name in zoo.names() else None
    cost = genotype_cost(genotype, dataset, **(e.defaults.get(dataset, {}) if e else {}))
    report = {
        "name": name,
        "space": genotype.space,
        "dataset": dataset,
        "params_M": round(cost.params_m, 3),
        "madds_M": round(cost.madds_m, 1),
        "params": cost.params,
        "madds": cost.madds,
        "genotype": genotype.to_json(),
    }
    if e and dataset in e.published:
        p, m, where = e.published[dataset]
        report["published"] = {"params_M": p, "madds_M": m, "source": where}
    if genotype.space == "darts":
        report["darts"] = genotype.darts_text()
    return report


def report_text(report: dict, genotype) -> str:
    head = (
        f"{report['name']} ({genotype.space} space) on {report['dataset']}: "
        f"{report['params_M']:.2f}M params, {report['madds_M']:.1f}M MAdds"
    )
    lines = [head]
    if "published" in report:
        pub = report["published"]
        madds = "-" if pub["madds_M"] is None else f"{pub['madds_M']}M"
        lines.append(f"  published: {pub['params_M']}M params, {madds} MAdds ({pub['source']})")
    lines += cell_lines(genotype)
    if genotype.space == "darts":
        lines.append(report["darts"])
    if "plot" in report:
        lines.append(f"cells drawn to {report['plot']}")
    return "\n".join(lines)


def transitions_text(preset: str, as_json: bool) -> str:
    """A rule's vocabulary and valid-transition matrix (rows = current op, columns = new op)."""
    from natrl.ops import vocabulary
    from natrl.transitions import PRESETS, transition_mask

    rule, vocab_name = PRESETS[preset]
    ops = vocabulary(vocab_name)
    mask = transition_mask(rule, ops)
    if as_json:
        return json.dumps({"rule": rule, "vocabulary": vocab_name, "ops": list(ops), "mask": mask.astype(int).tolist()})
    width = max(len(o) for o in ops)
    lines = [f"rule {rule} on the {vocab_name} vocabulary ({len(ops)} ops); rows = current op, columns = new op"]
    lines += [f"  {i:2d} {o}" for i, o in enumerate(ops)]
    lines.append(" " * (width + 2) + " ".join(f"{j:>2d}" for j in range(len(ops))))
    lines += [f"{o:>{width}}  " + " ".join(" 1" if v else " ." for v in row) for o, row in zip(ops, mask)]
    return "\n".join(lines)


def arch_info(cfg: ArchInfoConfig, given=None) -> str:
    """The arch_info command: prints (and returns) the registry names, a transition matrix or an architecture's
    report; ``cfg.plot`` also draws its cells (the file is checked before anything is counted)."""
    from natrl import zoo

    if cfg.list:
        text = "\n".join(zoo.names())
    elif cfg.transitions:
        text = transitions_text(cfg.transitions, cfg.json)
    else:
        text = architecture(cfg)
    print(text)
    return text


def architecture(cfg: ArchInfoConfig) -> str:
    name, genotype = resolve_arch(cfg.arch)
    if genotype.space == "nb201" and cfg.dataset == "imagenet":
        raise NatrlError("NAS-Bench-201 cells have no ImageNet setting here; use --dataset cifar10 or cifar100")
    if cfg.plot:
        check_new_output(Path(cfg.plot), cfg.force, "--plot")
    report = arch_report(name, genotype, cfg.dataset)
    if cfg.plot:
        from natrl.tables.cells import genotype_figure

        write_file(Path(cfg.plot), "figure", genotype_figure(genotype, title=name), "--plot")
        report["plot"] = cfg.plot
    return json.dumps(report, indent=1) if cfg.json else report_text(report, genotype)
