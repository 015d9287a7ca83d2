"""ITNAS: search a cell with annealed Gumbel softmax, inter-layer transition learning and TIEP, or its ablations.

Run:
    python experiments/search_itnas.py --data ../shared/data/cifar10_jpg.tar.gz --preset tiny      # DARTS space, CPU
    python experiments/search_itnas.py --data DATA --num-gpus 1                  # the paper: 8 cells, C=16, 50 epochs
    python experiments/search_itnas.py --space nb201 --data DATA --preset tiny   # + the found cell's NB201 accuracy
    python experiments/search_itnas.py --variant darts --data DATA               # Table 2 rows: darts, gumbel,
                                                                                 # gumbel+transition, itnas
    python experiments/search_itnas.py --ablation --seeds 3 --space nb201 --data DATA --preset tiny --out sweeps/itnas
    python experiments/search_itnas.py --resume runs/RUN_DIR                     # continue a killed search
    python experiments/search_itnas.py --resume sweeps/itnas                     # or a killed --ablation sweep

Variants (ITNAS Table 2): darts = all three off (softmax, independent alphas, top-2 pruning); gumbel = annealed
Gumbel softmax (tau 5 -> 0.5); gumbel+transition = + transition matrices P and attention beta on inner edges;
itnas = + TIEP. ``--ablation`` runs every variant x ``--seeds`` as Ray Tune trials (one CPU, or one GPU, each)
into one directory and writes ablation.{md,csv} (for nb201 with the table accuracies of the found cells).

The run directory gets config.json, progress.csv (per epoch: losses, accuracies on both halves, tau, lr, the
cell derived so far), genotype.json (the project's format: experiments/derive.py and train_eval.py take it),
genotype.png, arch.pt (Z, P, beta), checkpoint.pt (each epoch; --resume) and results.json (genotype, its
costs, and on nb201 its accuracy in the NB201 table(s)).
Expected (nb201, tiny, ~3 minutes on 2 cores): a cell whose NB201 accuracy is printed next to the table's best.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry

VARIANTS = {  # ITNAS Table 2: (gumbel, transition, tiep)
    "darts": (False, False, False),
    "gumbel": (True, False, False),
    "gumbel+transition": (True, True, False),
    "itnas": (True, True, True),
}
PRESETS = {  # (space, preset) -> search size
    ("darts", "paper"): dict(channels=16, layers=8, epochs=50, batch_size=64, steps_per_epoch=0, train_subset=0),
    ("darts", "tiny"): dict(channels=4, layers=5, epochs=2, batch_size=32, steps_per_epoch=20, train_subset=2000),
    ("nb201", "paper"): dict(channels=16, layers=5, epochs=50, batch_size=64, steps_per_epoch=0, train_subset=0),
    ("nb201", "tiny"): dict(channels=8, layers=1, epochs=8, batch_size=64, steps_per_epoch=30, train_subset=4000),
}


@dataclass
class SearchConfig:
    space: str = "darts"  # darts (normal + reduction cell, K=7 ITNAS ops) or nb201 (one cell, 5 NB201 ops)
    variant: str = "itnas"  # darts, gumbel, gumbel+transition or itnas (ITNAS Table 2)
    data: str | None = None  # CIFAR-10: cifar-10-batches-py, image folder or .tar.gz
    preset: str = "paper"  # paper (8 cells, C=16, 50 epochs) or tiny (CPU minutes); knobs below override
    channels: int | None = None  # initial channels of the supernet
    layers: int | None = None  # darts: cells (reductions at 1/3 and 2/3); nb201: cells per stage
    epochs: int | None = None  # search epochs (tau annealed over them)
    batch_size: int | None = None  # batch of each half
    steps_per_epoch: int | None = None  # cap on steps per epoch (0 = a full pass)
    train_subset: int | None = None  # search on a fixed random subset of the training set (0 = all)
    table: str | None = None  # nb201: the reward table (default analog-nasbench)
    report_table: str | None = None  # nb201: a second table to read the found cell in (official CSV)
    seed: int = 0  # seeds the supernet, the split, the data order and the Gumbel noise
    num_gpus: int = 0  # 0 = CPU, 1 = one GPU
    out: str | None = None  # run directory (default runs/itnas-<space>-<variant>-s<seed>-<time>)
    resume: str | None = None  # run directory of a killed search to continue
    ablation: bool = False  # run every variant x --seeds as a Ray Tune sweep into --out
    variants: str = "darts,gumbel,gumbel+transition,itnas"  # --ablation: comma-separated variants to run
    seeds: int = 3  # --ablation: seeds 0 .. seeds-1

    def resolved(self) -> SearchConfig:
        preset = PRESETS[(self.space, self.preset)]
        return dataclasses.replace(self, **{k: v for k, v in preset.items() if getattr(self, k) is None})

    def settings(self):
        from natrl.itnas.search import SearchSettings
        gumbel, transition, tiep = VARIANTS[self.variant]
        return SearchSettings(space=self.space, gumbel=gumbel, transition=transition, tiep=tiep,
                              channels=self.channels, layers=self.layers, epochs=self.epochs,
                              batch_size=self.batch_size, steps_per_epoch=self.steps_per_epoch,
                              train_subset=self.train_subset, seed=self.seed)


def parse_args(argv) -> SearchConfig:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(SearchConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help="(see the docstring)")
            continue
        kind = int if "int" in str(f.type) else str
        choices = {"space": ["darts", "nb201"], "variant": list(VARIANTS), "preset": ["paper", "tiny"]}.get(f.name)
        p.add_argument(flag, type=kind, default=f.default, choices=choices, help=f"(default: {f.default})")
    cfg = SearchConfig(**vars(p.parse_args(argv)))
    if cfg.resume:
        return cfg
    cfg = cfg.resolved()
    if not cfg.data:
        raise NatrlError("--data is required: CIFAR-10 (e.g. ../shared/data/cifar10_jpg.tar.gz)")
    for name in ("channels", "layers", "epochs", "batch_size", "seeds"):
        if getattr(cfg, name) < 1:
            raise NatrlError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.steps_per_epoch < 0 or cfg.train_subset < 0:
        raise NatrlError("--steps-per-epoch and --train-subset must be >= 0")
    if cfg.num_gpus not in (0, 1):
        raise NatrlError(f"--num-gpus {cfg.num_gpus}: a search uses one device (0 = CPU, 1 = GPU)")
    if cfg.num_gpus:
        import torch
        if not torch.cuda.is_available():
            raise NatrlError("--num-gpus 1 but no CUDA device is visible; use --num-gpus 0 to search on CPU")
    if any(v not in VARIANTS for v in cfg.variants.split(",")):
        raise NatrlError(f"--variants {cfg.variants!r}: choose from {', '.join(VARIANTS)}, separated by commas")
    if cfg.space == "darts" and (cfg.table or cfg.report_table):
        raise NatrlError("--table and --report-table apply to --space nb201 only")
    return cfg


def resume_config(run_dir: str) -> SearchConfig:
    from natrl.rundir import resume_config as load
    return load(run_dir, SearchConfig, "search_itnas.py")


def save_checkpoint(out: Path, state: dict):
    from natrl.rundir import save_checkpoint_file
    save_checkpoint_file(out / "checkpoint.pt", state)


def load_checkpoint(out: Path) -> dict:
    from natrl.rundir import read_checkpoint_file
    if not (out / "checkpoint.pt").exists():
        raise NatrlError(f"{out} has no checkpoint.pt to resume (it is written after each epoch)")
    return read_checkpoint_file(out / "checkpoint.pt", "the search")


def describe(g) -> str:
    from natrl.cells import to_arch_str
    return to_arch_str(g.normal) if g.space == "nb201" else g.darts_text()


def search(cfg: SearchConfig) -> Path:
    import csv

    import torch

    from natrl.datasets import load_cifar10
    from natrl.itnas.search import ITNASSearch
    from natrl.rundir import create_run_dir, seed_everything, write_json

    data = load_cifar10(cfg.data)  # fails before anything is written
    tables = {}
    if cfg.space == "nb201":
        from natrl.rewards import NB201Table
        tables["reward"] = NB201Table.load(cfg.table)
        if cfg.report_table:
            tables["report"] = NB201Table.load(cfg.report_table)
    ckpt = load_checkpoint(Path(cfg.resume)) if cfg.resume else None
    if cfg.resume:
        out = Path(cfg.resume)
    else:
        name = f"itnas-{cfg.space}-{cfg.variant}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = create_run_dir(Path(cfg.out or Path("runs") / name), cfg)
    print(f"run directory: {out}", flush=True)
    seed_everything(cfg.seed)
    started = time.time()
    srch = ITNASSearch(cfg.settings(), data, device="cuda" if cfg.num_gpus else "cpu")
    rows = []
    if ckpt is not None:
        srch.load_state_dict(ckpt["search"])
        rows = ckpt["rows"]
        started -= rows[-1]["seconds"] if rows else 0.0
        print(f"resumed after epoch {srch.epoch}", flush=True)
    print(f"{cfg.variant} on {cfg.space}: {cfg.epochs} epochs x {srch.steps_per_epoch} steps, "
          f"{sum(p.numel() for p in srch.arch.parameters())} architecture parameters", flush=True)
    while srch.epoch < cfg.epochs:
        stats = srch.train_epoch()
        g = srch.derive()
        row = {**{k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()},
               "seconds": round(time.time() - started, 1), "genotype": describe(g)}
        if "reward" in tables:
            row["nb201_acc"] = round(float(tables["reward"].score([g])[0]), 2)
        rows.append(row)
        with open(out / "progress.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        save_checkpoint(out, {"search": srch.state_dict(), "rows": rows})
        print(f"epoch {row['epoch']:3d}/{cfg.epochs}  tau {row['tau']:.2f}  train {row['train_acc']:5.1f}%  "
              f"arch-half {row['arch_acc']:5.1f}%  {row['seconds']:6.1f}s  {row['genotype']}"
              + (f"  NB201 {row['nb201_acc']:.2f}%" if "nb201_acc" in row else ""), flush=True)

    from natrl.cells import save_genotype
    from natrl.costs import genotype_cost
    from natrl.plotting import plot_genotype
    g = srch.derive()
    save_genotype(g, out / "genotype.json")
    plot_genotype(g, out / "genotype.png", title=f"ITNAS ({cfg.variant})")
    torch.save(srch.arch_state(), out / "arch.pt")
    cost = genotype_cost(g)
    results = {"kind": "itnas", "space": cfg.space, "variant": cfg.variant, "seed": cfg.seed, "run": out.name,
               "genotype": g.to_json(), "genotype_text": describe(g), "params_M": round(cost.params_m, 4),
               "madds_M": round(cost.madds_m, 2), "search_seconds": rows[-1]["seconds"] if rows else 0.0}
    for key, table in tables.items():
        acc = table.accuracy
        results[f"{key}_table"] = table.name
        results[f"{key}_acc"] = float(table.score([g])[0])
        results[f"{key}_best"] = float(acc.max())
        results[f"{key}_percentile"] = float((acc < results[f"{key}_acc"]).mean() * 100)
    if srch.s.transition:  # the same search read both ways: TIEP vs DARTS' top-2 (Table 2's last two rows)
        results["derivations"] = {}
        for name, tiep in (("top2", False), ("tiep", True)):
            gd = srch.derive(tiep=tiep)
            d = {"genotype_text": describe(gd), "params_M": round(genotype_cost(gd).params_m, 4)}
            d.update({f"{key}_acc": float(table.score([gd])[0]) for key, table in tables.items()})
            results["derivations"][name] = d
    write_json(out / "results.json", results)
    msg = f"found: {results['genotype_text']}\n  {cost.params_m:.3f}M params, {cost.madds_m:.1f}M MAdds"
    for key in tables:
        msg += (f"\n  NB201 {tables[key].name}: {results[f'{key}_acc']:.2f}% (best cell {results[f'{key}_best']:.2f}%, "
                f"beats {results[f'{key}_percentile']:.1f}% of all cells)")
    print(msg)
    print(json.dumps({"run_dir": str(out), "genotype": str(out / "genotype.json")}))
    return out


# ---- the Table 2 ablation as a Tune sweep -------------------------------------------------------------------

def ablation_trial(config: dict):
    import importlib.util

    from ray import tune
    spec = importlib.util.spec_from_file_location("search_itnas", config["script"])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["search_itnas"] = mod
    spec.loader.exec_module(mod)
    out = Path(config["sweep_dir"]) / "runs" / f"{config['variant']}-s{config['seed']}"
    if not (out / "results.json").exists():
        if (out / "checkpoint.pt").exists():
            mod.search(mod.resume_config(str(out)))
        else:
            import shutil
            shutil.rmtree(out, ignore_errors=True)
            mod.search(mod.SearchConfig(**{**config["base"], "variant": config["variant"], "seed": config["seed"],
                                           "out": str(out), "ablation": False}))
    res = json.loads((out / "results.json").read_text())
    tune.report({k: res[k] for k in ("params_M", "madds_M", "search_seconds", "reward_acc", "report_acc") if k in res})


def ablation_table(sweep_dir: Path) -> str:
    """ITNAS Table 2 from the runs under ``sweep_dir``: mean ± std over seeds per variant."""
    import pandas as pd

    from natrl.results import markdown, mean_std, pm
    rows = []
    for res_path in sorted((sweep_dir / "runs").glob("*/results.json")):
        rows.append(json.loads(res_path.read_text()))
    if not rows:
        raise NatrlError(f"no finished searches under {sweep_dir / 'runs'}")
    shared = not any(r["variant"] == "gumbel+transition" for r in rows)
    if shared:
        # gumbel+transition trains exactly as itnas (TIEP only changes the derivation): read those searches' top-2
        rows += [{**r, **r["derivations"]["top2"], "variant": "gumbel+transition"} for r in list(rows)
                 if r["variant"] == "itnas" and "derivations" in r]
    frame = pd.DataFrame(rows)
    table = []
    metrics = [m for m in ("reward_acc", "report_acc") if m in frame]
    for variant in VARIANTS:
        g = frame[frame["variant"] == variant]
        if g.empty:
            continue
        gumbel, transition, tiep = VARIANTS[variant]
        row = {"variant": variant, "Gumbel": "✓" if gumbel else "✗", "Transition": "✓" if transition else "✗",
               "TIEP": "✓" if tiep else "✗"}
        for m in metrics:
            row[m] = pm(*mean_std(g[m]))
        row["params (M)"] = pm(*mean_std(g["params_M"]), 3)
        row["seeds"] = " ".join(str(s) for s in sorted(g["seed"]))
        row["cells"] = "; ".join(g.sort_values("seed")["genotype_text"])
        table.append(row)
    shown = pd.DataFrame(table)
    shown.to_csv(sweep_dir / "ablation.csv", index=False)
    names = {"reward_acc": "NB201 accuracy (analog-nasbench) %", "report_acc": "NB201 accuracy (official valid) %"}
    cols = ["variant", "Gumbel", "Transition", "TIEP", *metrics, "params (M)", "seeds"]
    md = ("ITNAS Table 2 ablation: mean ± std over seeds of the found cells"
          + ("' true accuracies in the NAS-Bench-201 table(s)" if metrics else "' costs") + ".\n\n"
          + markdown(shown[cols].rename(columns=names)) + "\n"
          + ("\ngumbel+transition = the itnas searches read with DARTS' top-2 instead of TIEP (training is identical).\n"
             if shared and "gumbel+transition" in set(frame["variant"]) else ""))
    (sweep_dir / "ablation.md").write_text(md)
    return md


def ablation(cfg: SearchConfig, restore: Path | None = None) -> Path:
    """The Table 2 sweep; ``restore``: an interrupted sweep directory, whose unfinished or failed searches are
    run again (each continuing from its own last epoch checkpoint)."""
    import ray
    from ray import tune

    from natrl.rundir import create_run_dir, quiet_ray_logs
    quiet_ray_logs()
    from natrl.datasets import load_cifar10
    load_cifar10(cfg.data)  # a bad --data fails here, not in every trial
    if restore is None:
        sweep_dir = create_run_dir(Path(cfg.out or Path("sweeps") / f"itnas-{cfg.space}-{time.strftime('%Y%m%d-%H%M%S')}"),
                                   cfg).resolve()
    else:
        sweep_dir = restore.resolve()
    print(f"sweep directory: {sweep_dir}\n{len(cfg.variants.split(',')) * cfg.seeds} searches: {cfg.variants} x {cfg.seeds} seeds",
          flush=True)
    if not ray.is_initialized():
        ray.init(num_cpus=max(2, os.cpu_count() or 2), num_gpus=cfg.num_gpus, include_dashboard=False,
                 log_to_driver=False, object_store_memory=256 * 1024 ** 2, configure_logging=False)
    base = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("variant", "seed", "out", "resume")}
    trainable = tune.with_resources(ablation_trial, {"cpu": 1, "gpu": 1 if cfg.num_gpus else 0})
    if restore is not None:
        tuner = tune.Tuner.restore(str(sweep_dir / "tune"), trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(trainable, param_space={
            "variant": tune.grid_search(cfg.variants.split(",")), "seed": tune.grid_search(list(range(cfg.seeds))),
            "base": base, "sweep_dir": str(sweep_dir), "script": str(Path(__file__).resolve())},
            tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: f"{t.config['variant']}-s{t.config['seed']}"),
            run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=1))
    grid = tuner.fit()
    errors = sum(1 for r in grid if r.error)
    print(ablation_table(sweep_dir))
    if errors:
        print(f"{errors} search(es) failed; their error.txt is under {sweep_dir / 'tune'}", flush=True)
    print(json.dumps({"sweep_dir": str(sweep_dir)}))
    return sweep_dir


@cli_entry
def main(argv=None):
    cfg = parse_args(argv)
    if cfg.resume and (Path(cfg.resume) / "tune").is_dir():  # an --ablation sweep directory
        return ablation(resume_config(cfg.resume), restore=Path(cfg.resume))
    if cfg.resume:
        return search(resume_config(cfg.resume))
    return ablation(cfg) if cfg.ablation else search(cfg)


if __name__ == "__main__":
    main()
    sys.exit(0)
