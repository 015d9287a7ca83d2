"""Inspect an architecture or a transition rule.

Run:
    python analysis/arch_info.py DARTS_V2                     # params/MAdds on CIFAR-10 and the two cells
    python analysis/arch_info.py NATv2_DARTS --dataset imagenet --json
    python analysis/arch_info.py my_cell.json --plot cells.png
    python analysis/arch_info.py '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    python analysis/arch_info.py --transitions natpp [--json]  # vocabulary and valid-transition matrix
    python analysis/arch_info.py --list                        # registry names

Expected: DARTS_V2 on CIFAR-10 prints 3.35M params and 528.4M MAdds (the papers: 3.3M / 528M).
Bad input (unknown name, malformed JSON, invalid cell) exits with status 2 and one line on stderr.
"""
from __future__ import annotations

import json
import sys

from natrl import zoo
from natrl.cells import Genotype
from natrl.costs import genotype_cost
from natrl.errors import ArgumentParser, NatrlError, cli_entry
from natrl.nets.eval_net import DATASETS
from natrl.ops import vocabulary
from natrl.transitions import PRESETS, transition_mask


def cell_lines(genotype: Genotype) -> list[str]:
    lines = []
    for kind, cell in genotype.cells().items():
        lines.append(f"{kind} cell (output = concat of nodes {list(cell.concat)}):" if genotype.space == "darts"
                     else f"{kind} cell (output = node {cell.concat[0]}):")
        for op, s, d in cell.edges:
            lines.append(f"  {s} -> {d}  {op}")
    return lines


def arch_report(name: str, genotype: Genotype, dataset: str) -> dict:
    e = zoo.entry(name) if name in zoo.names() else None
    net_kwargs = e.defaults.get(dataset, {}) if e else {}
    cost = genotype_cost(genotype, dataset, **net_kwargs)
    report = {"name": name, "space": genotype.space, "dataset": dataset, "params_M": round(cost.params_m, 3),
              "madds_M": round(cost.madds_m, 1), "params": cost.params, "madds": cost.madds,
              "genotype": genotype.to_json()}
    if e and dataset in e.published:
        p, m, where = e.published[dataset]
        report["published"] = {"params_M": p, "madds_M": m, "source": where}
    if genotype.space == "darts":
        report["darts"] = genotype.darts_text()
    return report


def print_transitions(preset: str, as_json: bool):
    rule, vocab_name = PRESETS[preset]
    ops = vocabulary(vocab_name)
    mask = transition_mask(rule, ops)
    if as_json:
        print(json.dumps({"rule": rule, "vocabulary": vocab_name, "ops": list(ops),
                          "mask": mask.astype(int).tolist()}))
        return
    print(f"rule {rule} on the {vocab_name} vocabulary ({len(ops)} ops); rows = current op, columns = new op")
    width = max(len(o) for o in ops)
    for i, o in enumerate(ops):
        print(f"  {i:2d} {o}")
    print(" " * (width + 2) + " ".join(f"{j:>2d}" for j in range(len(ops))))
    for o, row in zip(ops, mask):
        print(f"{o:>{width}}  " + " ".join(" 1" if v else " ." for v in row))


def parse_args(argv):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("arch", nargs="?", help="registry name, genotype .json file, NB201 arch_str or Genotype(...) text")
    p.add_argument("--dataset", default="cifar10", choices=list(DATASETS))
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the cell(s) to this PNG")
    p.add_argument("--transitions", choices=list(PRESETS), help="print a vocabulary and its transition matrix")
    p.add_argument("--list", action="store_true", help="list the registry's architectures")
    args = p.parse_args(argv)
    if not (args.arch or args.transitions or args.list):
        p.error("give an architecture, --transitions nat|natpp|nb201, or --list")
    return args


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for n in zoo.names():
            print(n)
        return
    if args.transitions:
        print_transitions(args.transitions, args.json)
        return
    name, genotype = zoo.resolve(args.arch)
    if genotype.space == "nb201" and args.dataset == "imagenet":
        raise NatrlError("NAS-Bench-201 cells have no ImageNet setting here; use --dataset cifar10 or cifar100")
    report = arch_report(name, genotype, args.dataset)
    if args.plot:
        from natrl.plotting import plot_genotype
        try:
            plot_genotype(genotype, args.plot, title=name)
        except OSError as e:
            raise NatrlError(f"cannot write {args.plot}: {e.strerror}; choose a writable path") from None
        report["plot"] = args.plot
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{name} ({genotype.space} space) on {args.dataset}: "
          f"{report['params_M']:.2f}M params, {report['madds_M']:.1f}M MAdds")
    if "published" in report:
        pub = report["published"]
        madds = "-" if pub["madds_M"] is None else f"{pub['madds_M']}M"
        print(f"  published: {pub['params_M']}M params, {madds} MAdds ({pub['source']})")
    for line in cell_lines(genotype):
        print(line)
    if genotype.space == "darts":
        print(report["darts"])
    if args.plot:
        print(f"cells drawn to {args.plot}")


if __name__ == "__main__":
    sys.exit(main())
