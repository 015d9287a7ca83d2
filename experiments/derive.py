"""Transform cells with a trained policy and report accuracy and cost before and after.

Run:
    python experiments/derive.py RUN_DIR '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    python experiments/derive.py RUN_DIR cell.json --mode argmax --out derived.json
    python experiments/derive.py DARTS_RUN_DIR DARTS_V2 PC_DARTS_cifar VGG ResBlock MobileNetV2 --out derived/

RUN_DIR is a train_natpp.py / train_nat.py run directory (its policy.pt is loaded with weights_only=True).
Cells are NB201 arch_str, genotype JSON files (see natrl/cells.py) or registry names of the policy's space.
Modes: ``best`` (default: the argmax plus --samples sampled candidates, keeping the one scored highest, the
papers' derive), ``argmax`` (Maximum-GCN), ``sample`` (one sample). Scores: the NB201 table on nb201 runs; on
darts runs the run's trained supernet (its last checkpoint), accuracy on one batch of the 60% reward split.
``--out FILE.json`` writes the records; ``--out DIR`` also writes each derived genotype as JSON, its DARTS
``Genotype(...)`` text and a picture of its cells. Costs: NB201 network, or CIFAR-10 and ImageNet networks.
Expected: a trained NAT++ policy keeps or improves the scored accuracy with no more MAdds.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from natrl.errors import ArgumentParser, NatrlError, cli_entry


def load_policy(run_dir: Path):
    """(module, space) from RUN_DIR/policy.pt, rebuilt without Ray."""
    import torch

    from natrl.policy.module import TransitionPolicy
    from natrl.spaces import make_space
    path = run_dir / "policy.pt" if run_dir.is_dir() else run_dir
    if not path.exists():
        raise NatrlError(f"{path} does not exist; give a run directory written by experiments/train_natpp.py")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        cfg = ck["model_config"]
        space = make_space(cfg["space"], rule=cfg["rule"], holdout_frac=cfg.get("holdout_frac", 0.2),
                           num_intermediate=cfg.get("num_intermediate", 4 if cfg["space"] == "darts" else 3))
        module = TransitionPolicy(observation_space=space.observation_space(), action_space=space.action_space(),
                                  model_config=cfg)
        module.load_state_dict(ck["state_dict"])
    except NatrlError:
        raise
    except Exception as e:  # a truncated file, another format, a mismatching state dict
        raise NatrlError(f"cannot load policy {path} ({e.__class__.__name__}); pass a policy.pt written by "
                         "experiments/train_natpp.py") from None
    module.eval()
    return module, space


def supernet_scorer(run_dir: Path, space):
    """Score darts genotypes with the run's trained supernet, rebuilt in this process (no Ray)."""
    import torch

    from natrl.datasets import load_cifar10
    from natrl.rewards.supernet import SupernetTrainer
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_natpp import load_checkpoint, resume_config
    cfg = resume_config(str(run_dir))
    _, ckpt = load_checkpoint(run_dir)
    trainer = SupernetTrainer(space.ops, load_cifar10(cfg.data), preset=cfg.preset, batch_size=cfg.supernet_batch,
                              epochs=cfg.epochs, seed=cfg.seed, num_intermediate=cfg.intermediate_nodes)
    trainer.load_state_dict(ckpt["supernet"]["shard"])
    torch.set_grad_enabled(False)
    return lambda genotypes: trainer.score(genotypes, batch_index=0)


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
        out[ds] = {"params_M": [round(b.params_m, 4), round(a.params_m, 4)],
                   "madds_M": [round(b.madds_m, 2), round(a.madds_m, 2)]}
    return out


@cli_entry
def main(argv=None):
    import torch

    from natrl import zoo
    from natrl.cells import to_arch_str
    from natrl.rewards import NB201Table
    from natrl.rundir import quiet_ray_logs

    quiet_ray_logs()
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, help="training run directory (or its policy.pt)")
    p.add_argument("cells", nargs="+", help="NB201 arch_str, genotype .json file, or registry name")
    p.add_argument("--mode", choices=["best", "argmax", "sample"], default="best")
    p.add_argument("--samples", type=int, default=10, help="candidates sampled in --mode best (default 10)")
    p.add_argument("--table", help="NB201 table scoring the candidates (default: analog-nasbench's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="FILE.json for the records, or a directory for records, genotypes, pictures")
    args = p.parse_args(argv)
    if args.samples < 1:
        raise NatrlError(f"--samples must be >= 1, got {args.samples}")
    module, space = load_policy(args.run_dir)
    if space.name == "nb201":
        table = NB201Table.load(args.table)
        score, scored_on, datasets = table.score, table.name, ("cifar10",)
    else:
        score, scored_on, datasets = supernet_scorer(args.run_dir, space), "supernet", ("cifar10", "imagenet")
    gen = torch.Generator().manual_seed(args.seed)
    records, derived = [], []
    for spec in args.cells:
        name, genotype = zoo.resolve(spec)
        alpha = transform(module, space, genotype, args.mode, args.samples, score, gen)
        acc_b, acc_a = (float(x) for x in score([genotype, alpha]))
        rec = {"name": name, "input": genotype.to_json(), "output": alpha.to_json(), "mode": args.mode,
               "scored_on": scored_on, "acc_before": acc_b, "acc_after": acc_a, "gain": acc_a - acc_b,
               "costs": cost_record(genotype, alpha, datasets)}
        records.append(rec)
        derived.append((name, alpha))
        shown = to_arch_str(alpha.normal) if space.name == "nb201" else alpha.darts_text()
        costs = "; ".join(f"{ds}: params {c['params_M'][0]:.3f}M -> {c['params_M'][1]:.3f}M, MAdds "
                          f"{c['madds_M'][0]:.1f}M -> {c['madds_M'][1]:.1f}M" for ds, c in rec["costs"].items())
        print(f"{name}\n  -> {shown}\n  accuracy {acc_b:.2f} -> {acc_a:.2f} ({rec['gain']:+.2f}) on {scored_on}; {costs}")
    if args.out:
        write_outputs(args.out, records, derived)
        print(f"wrote {args.out}")
    return records


def write_outputs(out: Path, records, derived):
    from natrl.cells import save_genotype
    from natrl.plotting import plot_genotype
    from natrl.rundir import write_json
    if out.suffix == ".json":
        write_json(out, records)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NatrlError(f"cannot create {out}: {e.strerror}; choose a writable --out") from None
    write_json(out / "derived.json", records)
    for name, g in derived:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] + "_derived"
        save_genotype(g, out / f"{stem}.json", name=f"{name} (derived)")
        if g.space == "darts":
            (out / f"{stem}.txt").write_text(g.darts_text() + "\n")
        plot_genotype(g, out / f"{stem}.png", title=f"{name} derived")


if __name__ == "__main__":
    main()
    sys.exit(0)
