"""ITNAS runs: one search (annealed Gumbel softmax, inter-layer transition learning, TIEP, or an ablation of them)
and the ITNAS Table 2 ablation as a Ray Tune sweep over variants x seeds.

    cfg, given = parse_config(SearchConfig, ["--data", "CIFAR10", "--preset", "tiny"])
    run(cfg, given)            # search(cfg) -> run directory, or ablation(cfg) -> sweep directory

A search run directory (kind ``itnas``) holds config.json, log.txt, progress.csv (one row per epoch, continued by
a resume), checkpoint.pt (each epoch), genotype.json/.png, arch.pt and results.json. A sweep directory (kind
``itnas-ablation``) holds the Tune experiment under ``tune/``, one search run directory per trial under
``runs/<variant>-s<seed>`` and ablation.{md,csv}. Resuming a sweep never reads Tune's state (pickles): the grid
comes from config.json, finished searches from their results.json, and the others run in a fresh Tuner, each
continuing from its own weights-only checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError

SEARCH_KIND, ABLATION_KIND = "itnas", "itnas-ablation"
Variant = Literal["darts", "gumbel", "gumbel+transition", "itnas"]
VARIANTS = {  # ITNAS Table 2: (gumbel, transition, tiep)
    "darts": (False, False, False),
    "gumbel": (True, False, False),
    "gumbel+transition": (True, True, False),
    "itnas": (True, True, True),
}
PRESETS = {  # (space, preset) -> search size; knobs given on the command line win
    ("darts", "paper"): dict(channels=16, layers=8, epochs=50, batch_size=64, steps_per_epoch=0, train_subset=0),
    ("darts", "tiny"): dict(channels=4, layers=5, epochs=2, batch_size=32, steps_per_epoch=20, train_subset=2000),
    ("nb201", "paper"): dict(channels=16, layers=5, epochs=50, batch_size=64, steps_per_epoch=0, train_subset=0),
    ("nb201", "tiny"): dict(channels=8, layers=1, epochs=8, batch_size=64, steps_per_epoch=30, train_subset=4000),
}
SHARED_NOTE = "gumbel+transition = the itnas searches read with DARTS' top-2 instead of TIEP (training is identical)."
TABLE_NAMES = {"reward_acc": "NB201 accuracy (analog-nasbench) %", "report_acc": "NB201 accuracy (official valid) %"}


@dataclass
class SearchConfig(RunConfig):
    space: Literal["darts", "nb201"] = knob(
        "darts", "search space: darts (normal + reduction cell, K=7 ITNAS ops) or nb201 (one cell, 5 NB201 ops)"
    )
    variant: Variant = knob(
        "itnas",
        "ITNAS Table 2 row to search with (darts = softmax, independent alphas, "
        "top-2; gumbel; gumbel+transition; itnas = + TIEP)",
    )
    data: str | None = knob(
        None, "CIFAR-10: a cifar-10-batches-py folder, an image folder or its .tar.gz", metavar="CIFAR10"
    )
    preset: Literal["paper", "tiny"] = knob(
        "paper", "search size: paper (darts: 8 cells, C=16, 50 epochs) or tiny (CPU minutes); knobs you give win"
    )
    channels: int = knob(16, "initial channels of the supernet (set by --preset)", ge=1, le=1024)
    layers: int = knob(
        8, "darts: cells (reductions at 1/3 and 2/3); nb201: cells per stage (set by --preset)", ge=1, le=100
    )
    epochs: int = knob(50, "search epochs; tau is annealed 5 -> 0.5 over them (set by --preset)", ge=1, le=100000)
    batch_size: int = knob(64, "batch size of each half of the training set (set by --preset)", ge=1, le=65536)
    steps_per_epoch: int = knob(0, "cap on steps per epoch, 0 = a full pass (set by --preset)", ge=0)
    train_subset: int = knob(
        0, "search on a fixed random subset of this many training images, 0 = all (set by --preset)", ge=0
    )
    table: str | None = knob(
        None, "nb201: the NB201 table the found cell is scored in (default analog-nasbench's)", metavar="TABLE"
    )
    report_table: str | None = knob(
        None, "nb201: a second NB201 table to read the found cell in (official CSV)", metavar="CSV"
    )
    seed: int = knob(0, "seeds the supernet, the split, the data order and the Gumbel noise", ge=0, le=2**31 - 1)
    num_gpus: int = knob(0, "0 = search on CPU, 1 = on one GPU (--ablation: per trial)", ge=0, le=1)
    out: str | None = knob(
        None,
        "new run directory (default runs/itnas-SPACE-VARIANT-sSEED-TIME; --ablation: sweeps/itnas-SPACE-TIME)",
        metavar="DIR",
    )
    resume: str | None = knob(
        None, "run directory of a killed search, or sweep directory of a killed --ablation, to continue", metavar="DIR"
    )
    ablation: bool = knob(False, "run every --variants x --seeds search as a Ray Tune sweep into --out")
    variants: list[Variant] = knob(list(VARIANTS), "--ablation: the variants to run")
    seeds: int = knob(3, "--ablation: seeds 0 .. SEEDS-1 of each variant", ge=1, le=1000)
    address: str | None = knob(
        None, "--ablation: Ray cluster to join; default $RAY_ADDRESS or a local Ray", metavar="HOST:PORT"
    )

    def preset_values(self) -> dict:
        return dict(PRESETS[(self.space, self.preset)])

    def validate(self) -> None:
        if not self.resume and not self.data:
            raise NatrlError(
                "--data is required: CIFAR-10 as a cifar-10-batches-py folder, an image folder or "
                "its .tar.gz (e.g. --data CIFAR10)"
            )
        if self.space == "darts" and (self.table or self.report_table):
            raise NatrlError("--table and --report-table apply to --space nb201 only; drop them or add --space nb201")
        if len(set(self.variants)) != len(self.variants):
            raise NatrlError(f"--variants {' '.join(self.variants)} names a variant twice; give each once")

    def settings(self):
        from natrl.itnas.search import SearchSettings

        gumbel, transition, tiep = VARIANTS[self.variant]
        return SearchSettings(
            space=self.space,
            gumbel=gumbel,
            transition=transition,
            tiep=tiep,
            channels=self.channels,
            layers=self.layers,
            epochs=self.epochs,
            batch_size=self.batch_size,
            steps_per_epoch=self.steps_per_epoch,
            train_subset=self.train_subset,
            seed=self.seed,
        )


def run(cfg: SearchConfig, given=frozenset()) -> Path:
    """The command line's entry: continue what ``--resume`` names (a search or a sweep), else start one."""
    if cfg.resume:
        from natrl.rundir import resume_config

        kind = resume_kind(cfg.resume)
        cfg = resume_config(SearchConfig, cfg, set(given), kind)
        return ablation(cfg) if kind == ABLATION_KIND else search(cfg)
    return ablation(cfg) if cfg.ablation else search(cfg)


def resume_kind(path) -> str:
    """``itnas-ablation`` for a sweep directory, else ``itnas`` (whose reading gives the errors for the rest)."""
    from natrl.rundir import read_config

    try:
        read_config(Path(path), ABLATION_KIND)
        return ABLATION_KIND
    except NatrlError:
        return SEARCH_KIND


# ---- inputs, all checked before a run directory is made -------------------------------------------------------


def load_table(path: str | None, flag: str):
    """An NB201 table (``None``: analog-nasbench's), or one line saying what is wrong with ``path``."""
    from natrl.rewards import NB201Table

    if path is not None and not Path(path).is_file():
        what = "is a directory" if Path(path).is_dir() else "does not exist"
        raise NatrlError(f"{flag} {path} {what}; give an analog-nasbench .anb file or the official NB201 CSV")
    try:
        return NB201Table.load(path)
    except NatrlError:
        raise
    except Exception as e:  # a file of another kind fails in many ways inside the readers
        raise NatrlError(
            f"{flag} {path} is not an NB201 table ({e.__class__.__name__}); give an analog-nasbench "
            ".anb file or the official NB201 CSV"
        ) from None


def load_tables(cfg: SearchConfig) -> dict:
    if cfg.space != "nb201":
        return {}
    tables = {"reward": load_table(cfg.table, "--table")}
    if cfg.report_table:
        tables["report"] = load_table(cfg.report_table, "--report-table")
    return tables


def search_device(cfg: SearchConfig) -> str:
    if not cfg.num_gpus:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise NatrlError("--num-gpus 1 but no CUDA device is visible; use --num-gpus 0 to search on CPU")
    return "cuda"


def restore_search(srch, state: dict, where: Path):
    """Load a checkpoint's search state; a state of another shape is one line, not a traceback."""
    try:
        srch.load_state_dict(state["search"])
        return int(state["progress_rows"]), float(state["seconds"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise NatrlError(
            f"{where / 'checkpoint.pt'} does not hold this search's state ({e.__class__.__name__}); "
            "start a new run with a new --out"
        ) from None


# ---- one search ---------------------------------------------------------------------------------------------


def describe(g) -> str:
    from natrl.cells import to_arch_str

    return to_arch_str(g.normal) if g.space == "nb201" else g.darts_text()


def search(cfg: SearchConfig) -> Path:
    """One ITNAS search into a new run directory, or continued in ``cfg.resume``. Returns the run directory."""
    from natrl.datasets import load_cifar10
    from natrl.itnas.search import ITNASSearch
    from natrl.rundir import RunDir, seed_everything

    tables = load_tables(cfg)  # tables first: a bad table must not leave a CIFAR cache behind
    data = load_cifar10(cfg.data)
    device = search_device(cfg)
    resumed = RunDir.reopen(cfg.resume, SEARCH_KIND) if cfg.resume else None
    state = resumed.load_checkpoint() if resumed else None
    seed_everything(cfg.seed)
    srch = ITNASSearch(cfg.settings(), data, device=device)
    kept, seconds = (0, 0.0) if resumed is None or state is None else restore_search(srch, state, resumed.path)
    run_dir = resumed or RunDir.start(cfg, SEARCH_KIND, f"itnas-{cfg.space}-{cfg.variant}-s{cfg.seed}")
    with run_dir:
        run_dir.open_progress(keep_rows=kept)
        if state is not None:
            print(f"resumed after epoch {srch.epoch}", flush=True)
        train(cfg, srch, run_dir, tables, time.time() - seconds)
        results = write_results(cfg, srch, run_dir, tables)
        print(summary(results, tables))
        print(json.dumps({"run_dir": str(run_dir.path), "genotype": str(run_dir.path / "genotype.json")}))
    return run_dir.path


def train(cfg: SearchConfig, srch, run_dir, tables: dict, started: float):
    """Epochs until ``cfg.epochs``: a progress row, then a checkpoint that counts it, after each."""
    print(
        f"{cfg.variant} on {cfg.space}: {cfg.epochs} epochs x {srch.steps_per_epoch} steps, "
        f"{sum(p.numel() for p in srch.arch.parameters())} architecture parameters",
        flush=True,
    )
    while srch.epoch < cfg.epochs:
        stats = srch.train_epoch()
        g = srch.derive()
        row = {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()},
            "seconds": round(time.time() - started, 1),
            "genotype": describe(g),
        }
        if "reward" in tables:
            row["nb201_acc"] = round(float(tables["reward"].score([g])[0]), 2)
        run_dir.progress.log(row)
        run_dir.progress.flush()  # the rows a checkpoint counts are on disk before it
        run_dir.save_checkpoint(
            {"search": srch.state_dict(), "progress_rows": len(run_dir.progress.rows), "seconds": time.time() - started}
        )
        print(
            f"epoch {row['epoch']:3d}/{cfg.epochs}  tau {row['tau']:.2f}  train {row['train_acc']:5.1f}%  "
            f"arch-half {row['arch_acc']:5.1f}%  {row['seconds']:6.1f}s  {row['genotype']}"
            + (f"  NB201 {row['nb201_acc']:.2f}%" if "nb201_acc" in row else ""),
            flush=True,
        )


def write_results(cfg: SearchConfig, srch, run_dir, tables: dict) -> dict:
    """genotype.json/.png, arch.pt and results.json of the finished search, each written atomically."""
    from natrl.cells import save_genotype
    from natrl.costs import genotype_cost
    from natrl.rundir import save_checkpoint_file

    g = srch.derive()
    save_genotype(g, run_dir.path / "genotype.json")
    plot_atomically(g, run_dir.path / "genotype.png", f"ITNAS ({cfg.variant})")
    save_checkpoint_file(run_dir.path / "arch.pt", srch.arch_state())
    cost = genotype_cost(g)
    rows = run_dir.progress.rows
    results = {
        "kind": SEARCH_KIND,
        "space": cfg.space,
        "variant": cfg.variant,
        "seed": cfg.seed,
        "run": run_dir.path.name,
        "genotype": g.to_json(),
        "genotype_text": describe(g),
        "params_M": round(cost.params_m, 4),
        "madds_M": round(cost.madds_m, 2),
        "search_seconds": rows[-1]["seconds"] if rows else 0.0,
    }
    for key, table in tables.items():
        acc = table.accuracy
        results[f"{key}_table"] = table.name
        results[f"{key}_acc"] = float(table.score([g])[0])
        results[f"{key}_best"] = float(acc.max())
        results[f"{key}_percentile"] = float((acc < results[f"{key}_acc"]).mean() * 100)
    if srch.s.transition:  # the same search read both ways: TIEP vs DARTS' top-2 (Table 2's last two rows)
        results["derivations"] = derivations(srch, tables)
    run_dir.write_json("results.json", results)
    return results


def derivations(srch, tables: dict) -> dict:
    from natrl.costs import genotype_cost

    out = {}
    for name, tiep in (("top2", False), ("tiep", True)):
        g = srch.derive(tiep=tiep)
        d = {"genotype_text": describe(g), "params_M": round(genotype_cost(g).params_m, 4)}
        d.update({f"{key}_acc": float(table.score([g])[0]) for key, table in tables.items()})
        out[name] = d
    return out


def plot_atomically(g, path: Path, title: str):
    """plot_genotype through a temporary PNG and a rename: a kill mid-write leaves no half image."""
    from natrl.plotting import plot_genotype

    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    plot_genotype(g, tmp, title=title)
    os.replace(tmp, path)


def summary(results: dict, tables: dict) -> str:
    msg = f"found: {results['genotype_text']}\n  {results['params_M']:.3f}M params, {results['madds_M']:.1f}M MAdds"
    for key in tables:
        msg += (
            f"\n  NB201 {tables[key].name}: {results[f'{key}_acc']:.2f}% (best cell {results[f'{key}_best']:.2f}%, "
            f"beats {results[f'{key}_percentile']:.1f}% of all cells)"
        )
    return msg


# ---- the Table 2 ablation as a Tune sweep -------------------------------------------------------------------


def trial_config(base: dict, variant: str, seed: int, out: Path) -> SearchConfig:
    """The search config of one trial: the sweep's knobs with the trial's variant, seed and run directory."""
    return SearchConfig(
        **{
            **base,
            "variant": variant,
            "seed": seed,
            "out": str(out),
            "resume": None,
            "ablation": False,
            "address": None,
        }
    )


def trial_name(trial: dict) -> str:
    return f"{trial['variant']}-s{trial['seed']}"


def ablation_grid(cfg: SearchConfig) -> list[dict]:
    """Every search of the sweep, rebuilt from its config (a resume never reads Tune's pickled state for it)."""
    return [{"variant": v, "seed": s} for v in cfg.variants for s in range(cfg.seeds)]


def read_results(path: Path) -> dict:
    """A search's results.json as a dict, or one line saying the file is not one (a resume never guesses)."""
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        res, why = None, e.__class__.__name__
    else:
        why = "not a search's results"
    if not isinstance(res, dict) or not {"variant", "seed"} <= set(res):
        raise NatrlError(
            f"{path} is not readable search results ({why}); restore it, or delete it to run "
            "that search again with --resume"
        )
    return res


def finished_trials(sweep_dir: Path, trials: list[dict]) -> list[dict]:
    """The trials whose search wrote results.json (plain JSON, checked to be that trial's search)."""
    done = []
    for t in trials:
        path = Path(sweep_dir) / "runs" / trial_name(t) / "results.json"
        if path.is_file():
            res = read_results(path)
            if (res["variant"], res["seed"]) != (t["variant"], t["seed"]):
                raise NatrlError(
                    f"{path} holds the results of {res['variant']} seed {res['seed']}, not of "
                    f"{trial_name(t)}; restore it, or delete it to run that search again"
                )
            done.append(t)
    return done


def ablation_trial(config: dict):
    """Tune trainable: one search into ``runs/<variant>-s<seed>`` of the sweep, continued from its own plain
    checkpoint when it ran before (a resumed sweep), skipped when its results are there; reports to Tune."""
    from ray import tune

    from natrl.rundir import CHECKPOINT, resume_config

    trial = config["trial"]
    out = Path(config["sweep_dir"]) / "runs" / trial_name(trial)
    cfg = trial_config(config["base"], trial["variant"], trial["seed"], out)
    if not (out / "results.json").exists():
        if (out / CHECKPOINT).exists():  # read with weights_only by resume_config: never unpickled
            search(resume_config(SearchConfig, dataclasses.replace(cfg, resume=str(out)), set(), SEARCH_KIND))
        else:
            shutil.rmtree(out, ignore_errors=True)  # killed before its first checkpoint: nothing to continue
            search(cfg)
    res = read_results(out / "results.json")
    tune.report({k: res[k] for k in ("params_M", "madds_M", "search_seconds", "reward_acc", "report_acc") if k in res})


def trial_dirname(trial) -> str:
    return trial_name(trial.config["trial"])


def ablation(cfg: SearchConfig) -> Path:
    """The Table 2 sweep into a new sweep directory, or ``cfg.resume``'s sweep continued: its finished searches
    read from their results.json, the others run in a fresh Tuner, each continuing from its own plain epoch
    checkpoint. Tune's saved state (pickles) is never read. Returns the sweep directory."""
    from natrl.datasets import load_cifar10
    from natrl.rundir import RunDir

    load_tables(cfg)  # a bad table or --data fails here, once, not in every trial (tables before the
    load_cifar10(cfg.data)  # CIFAR cache is written)
    sweep = RunDir.reopen(cfg.resume, ABLATION_KIND) if cfg.resume else None
    if sweep is not None:
        sweep.load_checkpoint()  # weights_only: a planted or foreign checkpoint is one line
    trials = ablation_grid(cfg)
    done = finished_trials(sweep.path, trials) if sweep else []  # a bad results.json: one line, before Ray
    pending = [t for t in trials if t not in done]
    if pending:
        from natrl.cluster import check_gpus, start_ray

        start_ray(cfg.address, num_gpus=cfg.num_gpus)  # a local Ray: --num-gpus checked before it starts
        check_gpus(cfg.num_gpus)
    sweep = sweep or RunDir.start(cfg, ABLATION_KIND, f"itnas-{cfg.space}", root="sweeps")
    with sweep:
        print(f"{len(trials)} searches: {' '.join(cfg.variants)} x {cfg.seeds} seeds", flush=True)
        if done:
            print(f"{len(done)} search(es) finished before: read from their results.json", flush=True)
        errors = run_pending(cfg, sweep, pending) if pending else 0
        print(ablation_table(sweep.path))
        if errors:
            print(
                f"{errors} search(es) failed; their error.txt is under {sweep.path / 'tune'}; "
                f"--resume {sweep.path} runs them again",
                flush=True,
            )
        print(json.dumps({"sweep_dir": str(sweep.path)}))
    return sweep.path


def run_pending(cfg: SearchConfig, sweep, pending: list[dict]) -> int:
    """Fit a fresh Tuner over the unfinished searches; returns how many failed. A failure of Tune itself (not
    of a search) is one line."""
    tuner = make_tuner(cfg, sweep.path.resolve(), pending)
    sweep.save_checkpoint({"searches": len(cfg.variants) * cfg.seeds})  # from here on the sweep is resumable
    try:
        return sum(1 for r in tuner.fit() if r.error)
    except NatrlError:
        raise
    except Exception as e:  # TuneError, RayError: Tune's side, not a search's
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise NatrlError(
            f"Ray Tune failed ({e.__class__.__name__}: {first}); finished searches are kept, "
            f"continue with: python experiments/search_itnas.py --resume {sweep.path}"
        ) from None


def make_tuner(cfg: SearchConfig, sweep_dir: Path, trials: list[dict]):
    """A fresh Tuner over ``trials`` (never Tuner.restore, which unpickles tuner.pkl and the trial states)."""
    from ray import tune

    trainable = tune.with_resources(ablation_trial, {"cpu": 1, "gpu": 1 if cfg.num_gpus else 0})
    base = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("variant", "seed", "out", "resume")}
    for key in ("data", "table", "report_table"):  # trials run in their own working directory
        base[key] = str(Path(base[key]).resolve()) if base[key] else base[key]
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(trials), "base": base, "sweep_dir": str(sweep_dir)},
        tune_config=tune.TuneConfig(
            trial_dirname_creator=trial_dirname, trial_name_creator=lambda t: trial_name(t.config["trial"])
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=1),
    )


def ablation_frame(sweep_dir: Path):
    """The finished searches of a sweep, one row each; without gumbel+transition searches, the itnas searches
    read with DARTS' top-2 stand in for them (their training is identical: TIEP only changes the derivation)."""
    import pandas as pd

    rows = [read_results(p) for p in sorted((Path(sweep_dir) / "runs").glob("*/results.json"))]
    if not rows:
        raise NatrlError(f"no finished searches under {Path(sweep_dir) / 'runs'}; --resume the sweep to run them")
    shared = not any(r["variant"] == "gumbel+transition" for r in rows)
    if shared:
        rows += [
            {**r, **r["derivations"]["top2"], "variant": "gumbel+transition"}
            for r in list(rows)
            if r["variant"] == "itnas" and "derivations" in r
        ]
    return pd.DataFrame(rows), shared


def ablation_rows(frame) -> list[dict]:
    """ITNAS Table 2: one row per variant, mean ± std over seeds."""
    from natrl.results import mean_std, pm

    metrics = [m for m in ("reward_acc", "report_acc") if m in frame]
    table = []
    for variant, (gumbel, transition, tiep) in VARIANTS.items():
        g = frame[frame["variant"] == variant]
        if g.empty:
            continue
        row = {
            "variant": variant,
            "Gumbel": "✓" if gumbel else "✗",
            "Transition": "✓" if transition else "✗",
            "TIEP": "✓" if tiep else "✗",
        }
        for m in metrics:
            row[m] = pm(*mean_std(g[m]))
        row["params (M)"] = pm(*mean_std(g["params_M"]), 3)
        row["seeds"] = " ".join(str(s) for s in sorted(g["seed"]))
        row["cells"] = "; ".join(g.sort_values("seed")["genotype_text"])
        table.append(row)
    return table


def ablation_table(sweep_dir: Path) -> str:
    """ITNAS Table 2 from the searches under ``sweep_dir/runs``: writes ablation.csv and ablation.md (atomically)
    and returns the markdown."""
    import pandas as pd

    from natrl.results import markdown
    from natrl.rundir import write_csv, write_text

    sweep_dir = Path(sweep_dir)
    frame, shared = ablation_frame(sweep_dir)
    rows = ablation_rows(frame)
    write_csv(sweep_dir / "ablation.csv", rows)
    metrics = [m for m in TABLE_NAMES if m in frame]
    cols = ["variant", "Gumbel", "Transition", "TIEP", *metrics, "params (M)", "seeds"]
    md = (
        "ITNAS Table 2 ablation: mean ± std over seeds of the found cells"
        + ("' true accuracies in the NAS-Bench-201 table(s)" if metrics else "' costs")
        + ".\n\n"
        + markdown(pd.DataFrame(rows)[cols].rename(columns=TABLE_NAMES))
        + "\n"
        + (f"\n{SHARED_NOTE}\n" if shared and "gumbel+transition" in set(frame["variant"]) else "")
    )
    write_text(sweep_dir / "ablation.md", md)
    return md
