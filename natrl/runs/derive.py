"""Derive: transform cells with a trained policy and report accuracy and cost before and after.

Modes: ``best`` (the argmax plus ``samples`` sampled candidates, keeping the one scored highest: the papers'
derive), ``argmax`` (Maximum-GCN), ``sample`` (one sample). Scores: the NB201 table on nb201 runs; on darts runs
the run's trained supernet (its last checkpoint), accuracy on one batch of the 60% reward split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from natrl.config import RunConfig, knob
from natrl.errors import NatrlError

MAX_CELLS = 10000  # cells per call: more is a file of inputs, not a command line


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
    table: str | None = knob(None, "NB201 table scoring the candidates (default: analog-nasbench's)", metavar="PATH")
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


def supernet_scorer(run_dir: Path, space):
    """Score darts genotypes with the run's trained supernet, rebuilt in this process (no Ray)."""
    import torch

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
        preset=cfg.supernet_size,  # the supernet's size (--preset is now the training recipe)
        batch_size=cfg.supernet_batch,
        epochs=cfg.epochs,
        seed=cfg.seed,
        num_intermediate=cfg.intermediate_nodes,
    )
    trainer.load_state_dict(state["supernet"]["shard"])

    def score(genotypes):
        with torch.no_grad():  # local: a global switch would leak into whatever runs next in this process
            return trainer.score(genotypes, batch_index=0)

    return score


def transform(module, space, beta, mode: str, samples: int, score, generator):
    """The transformed genotype of one input under ``mode``."""
    import numpy as np

    from natrl.evaluate import obs_batch, policy_actions

    argmax, sampled = policy_actions(module, obs_batch(space, [beta]), max(samples, 1), generator)
    if mode == "argmax":
        return space.apply(beta, argmax[0])
    if mode == "sample":
        return space.apply(beta, sampled[0, 0])
    candidates = [space.apply(beta, argmax[0])] + [space.apply(beta, a[0]) for a in sampled]
    return candidates[int(np.argmax(score(candidates)))]


def cost_record(g_before, g_after, datasets) -> dict:
    from natrl.costs import genotype_cost

    out = {}
    for ds in datasets:
        b, a = genotype_cost(g_before, ds), genotype_cost(g_after, ds)
        out[ds] = {
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
    files = [out / "derived.json"]
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


def write_outputs(out: Path, records, derived):
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
    for name, g in derived:
        stem = _stem(name)
        save_genotype(g, out / f"{stem}.json", name=f"{name} (derived)")
        if g.space == "darts":
            write_text(out / f"{stem}.txt", g.darts_text() + "\n")
        plot_genotype(g, out / f"{stem}.png", title=f"{name} derived")


def describe(rec: dict, alpha, space_name: str) -> str:
    from natrl.cells import to_arch_str

    shown = to_arch_str(alpha.normal) if space_name == "nb201" else alpha.darts_text()
    costs = "; ".join(
        f"{ds}: params {c['params_M'][0]:.3f}M -> {c['params_M'][1]:.3f}M, MAdds "
        f"{c['madds_M'][0]:.1f}M -> {c['madds_M'][1]:.1f}M"
        for ds, c in rec["costs"].items()
    )
    return (
        f"{rec['name']}\n  -> {shown}\n  accuracy {rec['acc_before']:.2f} -> {rec['acc_after']:.2f} "
        f"({rec['gain']:+.2f}) on {rec['scored_on']}; {costs}"
    )


def derive(cfg: DeriveConfig, given=frozenset()) -> list[dict]:
    """Transform every cell of ``cfg.cells``; print and (with ``--out``) write the records."""
    import torch

    from natrl import zoo
    from natrl.rewards import NB201Table

    module, space = load_policy(Path(cfg.run_dir))
    inputs = [zoo.resolve(spec) for spec in cfg.cells]  # every cell is checked before anything is scored
    if cfg.out:
        check_outputs(cfg, [name for name, _ in inputs], space.name)
    if space.name == "nb201":
        table = NB201Table.load(cfg.table)
        score, scored_on, datasets = table.score, table.name, ("cifar10",)
    else:
        score, scored_on, datasets = supernet_scorer(Path(cfg.run_dir), space), "supernet", ("cifar10", "imagenet")
    for name, genotype in inputs:
        check_in_space(space, name, genotype)
    gen = torch.Generator().manual_seed(cfg.seed)
    records, derived = [], []
    for name, genotype in inputs:
        alpha = transform(module, space, genotype, cfg.mode, cfg.samples, score, gen)
        acc_b, acc_a = (float(x) for x in score([genotype, alpha]))
        rec = {
            "name": name,
            "input": genotype.to_json(),
            "output": alpha.to_json(),
            "mode": cfg.mode,
            "scored_on": scored_on,
            "acc_before": acc_b,
            "acc_after": acc_a,
            "gain": acc_a - acc_b,
            "costs": cost_record(genotype, alpha, datasets),
        }
        records.append(rec)
        derived.append((name, alpha))
        print(describe(rec, alpha, space.name))
    if cfg.out:
        write_outputs(Path(cfg.out), records, derived)
        print(f"wrote {cfg.out}")
    return records
