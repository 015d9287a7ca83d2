"""Derive: transform cells with a trained policy and report accuracy and cost before and after.

Modes: ``best`` (the argmax plus ``samples`` sampled candidates, keeping the one scored highest: the papers'
derive), ``argmax`` (Maximum-GCN), ``sample`` (one sample). The pick is chosen on one measurement and reported on
another, and every output names both (:class:`Measurements`):
- darts runs: the run's trained supernet (its last checkpoint), on the 60% reward split. ``best`` chooses on
  reward batches 0..S-1 (``--select-batches``) and accuracies are reported on the next R batches
  (``--report-batches``); all lie in the split's first seeded pass, so the two sets of images are disjoint.
- nb201 runs: chosen on the reward table (``--table``), reported on the official test accuracy when the official
  CSV is given (``--report-table`` or ``--table``; :func:`natrl.evaluate.report_measurement`). Without it the
  report is the selection table and every output says the pick is an oracle pick.
Costs: hand-crafted networks and their cells (``ResNet20``, ``ResBlock``, ``MobileNetV2`` ...) are priced in their
own networks (:func:`natrl.handcrafted.cost_pair`), other cells in the papers' evaluation network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError

MAX_CELLS = 10000  # cells per call: more is a file of inputs, not a command line
DEFAULT_REPORT_BATCHES = 8  # as many as the run's own evaluation (evaluate_supernet's score_batches)


@dataclass
class DeriveConfig(RunConfig):
    run_dir: str = knob(None, "training run directory (or its policy.pt)", positional=True, metavar="RUN_DIR")
    cells: list[str] = knob(
        [], "NB201 arch_str, genotype .json file, Genotype(...) text or registry name", positional=True, metavar="CELL"
    )
    mode: Literal["best", "argmax", "sample"] = knob(
        "best", "best of argmax + --samples candidates, argmax, or one sample"
    )
    samples: int = knob(10, "candidates sampled in --mode best", ge=1, le=10000)
    table: str | None = knob(
        None, "nb201 runs: NB201 table the candidates are chosen on; unset: analog-nasbench's", metavar="PATH"
    )
    report_table: str | None = knob(
        None, "nb201 runs: the official NB201 CSV; results are reported on its test accuracy", metavar="PATH"
    )
    select_batches: int | None = knob(
        None,
        "darts runs: supernet reward batches 0..S-1 that --mode best chooses on; unset: 1",
        ge=1,
        le=10000,
        metavar="S",
    )
    report_batches: int | None = knob(
        None,
        f"darts runs: the next R reward batches (images disjoint from the selection's) results are reported on; "
        f"unset: as many as the split holds, up to {DEFAULT_REPORT_BATCHES}",
        ge=1,
        le=10000,
        metavar="R",
    )
    seed: int = knob(0, "seeds the sampled candidates", ge=0, le=2**31 - 1)
    out: str | None = knob(
        None, "FILE.json for the records, or a directory for records, genotypes and pictures", metavar="PATH"
    )
    force: bool = knob(False, "overwrite files that --out would replace")

    def validate(self):
        if not self.cells:
            raise NatrlError("give at least one cell to transform after RUN_DIR")
        if len(self.cells) > MAX_CELLS:
            raise NatrlError(f"{len(self.cells)} cells on one command line; give at most {MAX_CELLS}")


def load_policy(run_dir: Path):
    """(module, space) from RUN_DIR/policy.pt (weights_only), rebuilt without Ray."""
    from natrl.policy.module import TransitionPolicy
    from natrl.rundir import read_checkpoint_file
    from natrl.spaces import make_space

    path = run_dir / "policy.pt" if run_dir.is_dir() else run_dir
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is a directory" if path.is_dir() else "is not a regular file"
        raise NatrlError(f"{path} {what}; give a run directory written by experiments/train_natpp.py")
    ck = read_checkpoint_file(path, "derive")
    try:
        cfg = ck["model_config"]
        space = make_space(
            cfg["space"],
            rule=cfg["rule"],
            holdout_frac=cfg.get("holdout_frac", 0.2),
            num_intermediate=cfg.get("num_intermediate", 4 if cfg["space"] == "darts" else 3),
        )
        module = TransitionPolicy(
            observation_space=space.observation_space(), action_space=space.action_space(), model_config=cfg
        )
        # policies saved before the reward baseline moved into the algorithm carry it as two buffers
        weights = {k: v for k, v in ck["state_dict"].items() if k not in ("reward_baseline", "baseline_steps")}
        module.load_state_dict(weights)
    except NatrlError as e:  # a model_config naming no space we know: say which file
        raise NatrlError(
            f"cannot load policy {path} ({e}); pass a policy.pt written by experiments/train_natpp.py"
        ) from None
    except Exception as e:  # another format, a mismatching state dict
        raise NatrlError(
            f"cannot load policy {path} ({e.__class__.__name__}); pass a policy.pt written by "
            "experiments/train_natpp.py"
        ) from None
    module.eval()
    return module, space


@dataclass(frozen=True)
class Measurement:
    """One accuracy measurement of genotypes (percent): ``score(genotypes)``, and what it is for every output."""

    label: str
    score: Callable[[Sequence[Any]], Any]


@dataclass(frozen=True)
class Measurements:
    """What ``--mode best`` chooses on (``select``) and what results are reported on (``report``); ``scored_on``
    names the backend (``supernet`` or the NB201 table's name)."""

    select: Measurement
    report: Measurement
    scored_on: str

    @property
    def oracle(self) -> bool:
        """Chosen and reported on the same measurement: the reported pick is optimistic."""
        return self.select is self.report

    def caption(self, mode: str) -> str:
        if mode != "best":
            return f"--mode {mode}: no candidate selected; reported on {self.report.label}"
        if self.oracle:
            return (
                f"selected and reported on {self.select.label}: an oracle pick (optimistic); give --report-table "
                "with the official NAS-Bench-201 CSV to report on its test accuracy"
            )
        where = " (the run's supernet; 60% reward split of the training set)" if self.scored_on == "supernet" else ""
        return f"selected on {self.select.label}, reported on {self.report.label}{where}"


def reward_batch_plan(num_images: int, batch_size: int, select: int | None, report: int | None) -> tuple[range, range]:
    """(selection batches 0..S-1, report batches S..S+R-1) of a reward split of ``num_images`` images. Batches
    0..len-1 of ``DeviceBatches.batch`` are one seeded permutation cut in pieces, so the two sets share no image;
    a batch past the first pass would repeat images, so S + R may not exceed the split's batches."""
    total = -(-num_images // batch_size)
    s = 1 if select is None else select
    r = min(DEFAULT_REPORT_BATCHES, total - s) if report is None else report
    if r < 1 or s + r > total:
        asked = (
            f"--select-batches {s} + --report-batches {r} need {s + r}"
            if report is not None
            else f"--select-batches {s} leaves no report batch"
        )
        raise NatrlError(
            f"the run's reward split has {num_images} images, {total} batch(es) of {batch_size}; {asked} (selection "
            "and report batches must be disjoint): lower --select-batches / --report-batches"
        )
    return range(s), range(s, s + r)


def batch_images(batches: range, num_images: int, batch_size: int) -> int:
    return sum(min(batch_size, num_images - i * batch_size) for i in batches)


def batch_measurement(score_batch, batches: range, num_images: int, batch_size: int) -> Measurement:
    """Accuracy over reward ``batches`` (weighted by their images) from ``score_batch(genotypes, batch_index)``."""
    import numpy as np

    sizes = [batch_images(range(i, i + 1), num_images, batch_size) for i in batches]
    label = f"reward batches {batches[0]}..{batches[-1]} ({sum(sizes)} images)"

    def score(genotypes):
        acc = sum(np.asarray(score_batch(genotypes, i), dtype=np.float64) * n for i, n in zip(batches, sizes))
        return acc / sum(sizes)

    return Measurement(label, score)


def supernet_measurements(score_batch, num_images: int, batch_size: int, select=None, report=None) -> Measurements:
    """Choose on reward batches 0..S-1, report on the next R: disjoint images of the 60% reward split."""
    sel, rep = reward_batch_plan(num_images, batch_size, select, report)
    return Measurements(
        batch_measurement(score_batch, sel, num_images, batch_size),
        batch_measurement(score_batch, rep, num_images, batch_size),
        "supernet",
    )


def nb201_measurements(table, report=None) -> Measurements:
    """Choose on the reward ``table``; report on :func:`natrl.evaluate.report_measurement` (the official test
    accuracy) when there is one, else on the table itself (an oracle pick, and the outputs say so)."""
    from natrl.evaluate import report_measurement
    from natrl.rewards.nb201 import index_of

    select = Measurement(table.label, table.score)
    acc, label = report_measurement(table, report)
    if acc is None:
        return Measurements(select, select, table.name)
    return Measurements(select, Measurement(label, lambda gs: acc[[index_of(g.normal.ops) for g in gs]]), table.name)


def load_supernet(run_dir: Path, space):
    """The run's trained supernet (``SupernetTrainer`` at its last checkpoint), rebuilt in this process (no Ray)."""
    from natrl.config import config_from_dict
    from natrl.datasets import load_cifar10
    from natrl.rewards.supernet import SupernetTrainer
    from natrl.rundir import RunDir, read_config
    from natrl.runs.transformer import KIND, TrainConfig

    if not run_dir.is_dir():
        raise NatrlError(f"darts policies are scored by their run's supernet: give the run directory, not {run_dir}")
    cfg = config_from_dict(TrainConfig, read_config(run_dir, KIND)["config"], str(run_dir / "config.json"))
    state = RunDir.reopen(run_dir, KIND).load_checkpoint()
    trainer = SupernetTrainer(
        space.ops,
        load_cifar10(cfg.data),
        space=cfg.space,
        preset=cfg.supernet_size,  # the supernet's size (--preset is now the training recipe)
        batch_size=cfg.supernet_batch,
        reward_batch=cfg.reward_images or None,
        epochs=cfg.epochs,
        seed=cfg.seed,
        num_intermediate=cfg.intermediate_nodes,
    )
    trainer.load_state_dict(state["supernet"]["shard"])
    return trainer


def _no_grad_scores(trainer):
    import torch

    def score_batch(genotypes, batch_index: int):
        with torch.no_grad():  # local: a global switch would leak into whatever runs next in this process
            return trainer.score(genotypes, batch_index=batch_index)

    return score_batch


def measurements(cfg: DeriveConfig, space) -> Measurements:
    """The selection and report measurements of ``cfg``'s run (its supernet, or the NB201 tables)."""
    if space.name == "nb201":
        from natrl.rewards import NB201Table

        report = NB201Table.load(cfg.report_table) if cfg.report_table else None
        return nb201_measurements(NB201Table.load(cfg.table), report)
    trainer = load_supernet(Path(cfg.run_dir), space)
    n, bs = len(trainer.reward.y), trainer.reward.batch_size
    return supernet_measurements(_no_grad_scores(trainer), n, bs, cfg.select_batches, cfg.report_batches)


def check_space_flags(cfg: DeriveConfig, space_name: str):
    if space_name == "nb201":
        given = [f for f in ("select_batches", "report_batches") if getattr(cfg, f) is not None]
        if given:
            flags = " and ".join("--" + f.replace("_", "-") for f in given)
            verb, it = ("apply", "them") if len(given) > 1 else ("applies", "it")
            raise NatrlError(f"{flags} {verb} to darts runs (supernet reward batches); this is an nb201 run: drop {it}")
    elif cfg.table or cfg.report_table:
        raise NatrlError("--table and --report-table apply to nb201 runs; a darts run is scored by its supernet")


def candidates(module, space, beta, samples: int, generator) -> list:
    """``--mode best``'s candidates for ``beta``: the argmax, then ``samples`` samples."""
    from natrl.evaluate import obs_batch, policy_actions

    argmax, sampled = policy_actions(module, obs_batch(space, [beta]), max(samples, 1), generator)
    return [space.apply(beta, argmax[0])] + [space.apply(beta, a[0]) for a in sampled]


def transform(module, space, beta, mode: str, samples: int, score, generator):
    """The transformed genotype of one input under ``mode`` (``best``: the candidate ``score`` ranks highest)."""
    import numpy as np

    cands = candidates(module, space, beta, samples, generator)
    if mode == "argmax":
        return cands[0]
    if mode == "sample":
        return cands[1]
    return cands[int(np.argmax(score(cands)))]


def handcrafted_networks(spec: str, genotype) -> dict:
    """dataset -> the hand-crafted network ``spec`` names (``ResNet20``, ``MobileNetV2``) or whose cell it names
    (``ResBlock``: the first network of NAT++ Table 1 built from it); {} for any other cell or a file."""
    from natrl import handcrafted, zoo

    try:
        entry = zoo.entry(spec.strip())
    except NatrlError:
        return {}
    if entry.genotype != genotype:  # a file or text that happens to share a registry name
        return {}
    nets: dict = {}
    for (net, family), sp in handcrafted.SPECS.items():
        ds = "imagenet" if family == "imagenet" else "cifar10"
        if (net == entry.network if entry.network else sp.cell == entry.name) and ds not in nets:
            nets[ds] = handcrafted.network(net, ds)
    return nets


def cost_record(g_before, g_after, datasets, spec: str | None = None) -> dict:
    """Params and MAdds before and after, per dataset: in the hand-crafted networks of ``spec`` (where it names
    one or its cell: :func:`natrl.handcrafted.cost_pair`, only the datasets it has a network for), else in the
    papers' evaluation network of the cell's space."""
    from natrl.costs import genotype_cost
    from natrl.handcrafted import cost_pair

    nets = handcrafted_networks(spec, g_before) if spec else {}
    if nets:
        return {
            ds: {"network": nets[ds].name, **cost_pair(nets[ds], g_before, g_after)} for ds in datasets if ds in nets
        }
    out = {}
    for ds in datasets:
        b, a = genotype_cost(g_before, ds), genotype_cost(g_after, ds)
        out[ds] = {
            "network": f"{g_before.space} evaluation network",
            "params_M": [round(b.params_m, 4), round(a.params_m, 4)],
            "madds_M": [round(b.madds_m, 2), round(a.madds_m, 2)],
        }
    return out


def check_in_space(space, name: str, genotype):
    try:
        space.encode(genotype)
    except NatrlError:
        raise
    except Exception:  # a cell of another space does not encode
        raise NatrlError(
            f"{name} is not a cell of the policy's space ({space.name}); give cells of that space"
        ) from None


def _stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] + "_derived"


def output_files(out: Path, names: list[str], space: str) -> list[Path]:
    """Every file ``--out`` will write (checked before any is written)."""
    if out.suffix == ".json":
        return [out]
    files = [out / "derived.json", out / "derived.md"]
    for name in names:
        files += [
            out / f"{_stem(name)}.{ext}" for ext in (("json", "png", "txt") if space == "darts" else ("json", "png"))
        ]
    return files


def check_outputs(cfg: DeriveConfig, names: list[str], space: str):
    from natrl.rundir import check_new_output

    out = Path(cfg.out)
    if out.suffix != ".json" and out.exists() and not out.is_dir():
        raise NatrlError(f"--out {out} is a file; give FILE.json or a directory")
    for f in output_files(out, names, space):
        if f.parent.exists() or out.suffix == ".json":
            check_new_output(f, cfg.force)


def write_outputs(out: Path, records, derived, caption: str):
    from natrl.cells import save_genotype
    from natrl.plotting import plot_genotype
    from natrl.rundir import write_json, write_text

    if out.suffix == ".json":
        write_json(out, records)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NatrlError(f"cannot create {out}: {e.strerror}; choose a writable --out") from None
    write_json(out / "derived.json", records)
    write_text(out / "derived.md", markdown(records, caption) + "\n")
    for name, g in derived:
        stem = _stem(name)
        save_genotype(g, out / f"{stem}.json", name=f"{name} (derived)")
        if g.space == "darts":
            write_text(out / f"{stem}.txt", g.darts_text() + "\n")
        plot_genotype(g, out / f"{stem}.png", title=f"{name} derived")


def _costs_text(rec: dict) -> str:
    return "; ".join(
        f"{ds} ({c['network']}): params {c['params_M'][0]:.3f}M -> {c['params_M'][1]:.3f}M, MAdds "
        f"{c['madds_M'][0]:.1f}M -> {c['madds_M'][1]:.1f}M"
        for ds, c in rec["costs"].items()
    )


def markdown(records: list[dict], caption: str) -> str:
    """derived.md: the caption (what chose the pick, what the accuracies are reported on) and one row per cell."""
    lines = [
        f"Accuracy (%): {caption}.",
        "",
        "| cell | mode | accuracy before | accuracy after | gain | costs (params, MAdds) |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['name']} | {r['mode']} | {r['acc_before']:.2f} | {r['acc_after']:.2f} | {r['gain']:+.2f} | "
            f"{_costs_text(r)} |"
        )
    return "\n".join(lines)


def describe(rec: dict, alpha, space_name: str) -> str:
    from natrl.cells import to_arch_str

    shown = to_arch_str(alpha.normal) if space_name == "nb201" else alpha.darts_text()
    sel = rec.get("selection")
    chosen = f" (chosen at {sel['acc_after']:.2f} on {rec['selected_on']})" if sel else ""
    return (
        f"{rec['name']}\n  -> {shown}\n  accuracy {rec['acc_before']:.2f} -> {rec['acc_after']:.2f} "
        f"({rec['gain']:+.2f}) reported on {rec['reported_on']}{chosen}; {_costs_text(rec)}"
    )


def derive_one(module, space, spec: str, name: str, genotype, cfg: DeriveConfig, meas: Measurements, gen, datasets):
    """(record, derived genotype) of one input: chosen on ``meas.select`` in ``--mode best``, reported on
    ``meas.report``, both named in the record."""
    import numpy as np

    selection = None
    if cfg.mode == "best":
        cands = candidates(module, space, genotype, cfg.samples, gen)
        sel = np.asarray(meas.select.score([genotype, *cands]), dtype=np.float64)
        pick = int(np.argmax(sel[1:]))
        alpha, selection = cands[pick], {"acc_before": float(sel[0]), "acc_after": float(sel[1 + pick])}
    else:
        alpha = transform(module, space, genotype, cfg.mode, cfg.samples, meas.select.score, gen)
    acc_b, acc_a = (float(x) for x in meas.report.score([genotype, alpha]))
    rec = {
        "name": name,
        "input": genotype.to_json(),
        "output": alpha.to_json(),
        "mode": cfg.mode,
        "scored_on": meas.scored_on,
        "selected_on": meas.select.label if cfg.mode == "best" else None,
        "reported_on": meas.report.label,
        "oracle_pick": cfg.mode == "best" and meas.oracle,
        "acc_before": acc_b,
        "acc_after": acc_a,
        "gain": acc_a - acc_b,
        **({"selection": selection} if selection else {}),
        "costs": cost_record(genotype, alpha, datasets, spec),
    }
    return rec, alpha


def derive_records(module, space, specs, inputs, cfg: DeriveConfig, meas: Measurements, datasets):
    """(records, [(name, derived genotype)]) of every input, printed as they come."""
    import torch

    gen = torch.Generator().manual_seed(cfg.seed)
    records, derived = [], []
    print(f"derive: {meas.caption(cfg.mode)}", flush=True)
    for spec, (name, genotype) in zip(specs, inputs):
        rec, alpha = derive_one(module, space, spec, name, genotype, cfg, meas, gen, datasets)
        records.append(rec)
        derived.append((name, alpha))
        print(describe(rec, alpha, space.name), flush=True)
    return records, derived


def derive(cfg: DeriveConfig, given=frozenset()) -> list[dict]:
    """Transform every cell of ``cfg.cells``; print and (with ``--out``) write the records."""
    from natrl import zoo

    module, space = load_policy(Path(cfg.run_dir))
    check_space_flags(cfg, space.name)
    inputs = [zoo.resolve(spec) for spec in cfg.cells]  # every cell is checked before anything is scored
    if cfg.out:
        check_outputs(cfg, [name for name, _ in inputs], space.name)
    for name, genotype in inputs:
        check_in_space(space, name, genotype)
    meas = measurements(cfg, space)
    datasets = ("cifar10",) if space.name == "nb201" else ("cifar10", "imagenet")
    records, derived = derive_records(module, space, cfg.cells, inputs, cfg, meas, datasets)
    if cfg.out:
        write_outputs(Path(cfg.out), records, derived, meas.caption(cfg.mode))
        print(f"wrote {cfg.out}")
    return records
