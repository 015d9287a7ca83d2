"""Transform cells with a trained policy and report accuracy and cost before and after.

Run:
    python experiments/derive.py RUN_DIR '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    python experiments/derive.py RUN_DIR cell.json --mode argmax --out derived.json

RUN_DIR is a train_natpp.py / train_nat.py run directory (its policy.pt is loaded with weights_only=True).
Cells are NB201 arch_str, genotype JSON files (see natrl/cells.py) or registry names of the policy's space.
Modes: ``best`` (default: sample --samples candidates plus the argmax, keep the one the reward table scores
highest: the papers' derive), ``argmax`` (Maximum-GCN), ``sample`` (one sample).
Expected: for the cell above a trained NAT++ policy keeps or improves the table accuracy with no more MAdds.
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
        space = make_space(cfg["space"], rule=cfg["rule"], holdout_frac=cfg.get("holdout_frac", 0.2))
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


def transform(module, space, beta_ops, mode: str, samples: int, table, generator):
    """The transformed op vector of one input under ``mode``."""
    import numpy as np

    from natrl.evaluate import policy_actions
    argmax, sampled = policy_actions(module, space, beta_ops[None], max(samples, 1), generator)
    if mode == "argmax":
        return argmax[0]
    if mode == "sample":
        return sampled[0, 0]
    candidates = np.concatenate([argmax, sampled[:, 0]])  # [1 + S, E]
    return candidates[int(np.argmax(table.score_ops(candidates)))]


@cli_entry
def main(argv=None):
    import torch

    from natrl import zoo
    from natrl.cells import to_arch_str
    from natrl.costs import genotype_cost
    from natrl.rewards import NB201Table
    from natrl.rundir import quiet_ray_logs, write_json

    quiet_ray_logs()
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, help="training run directory (or its policy.pt)")
    p.add_argument("cells", nargs="+", help="NB201 arch_str, genotype .json file, or registry name")
    p.add_argument("--mode", choices=["best", "argmax", "sample"], default="best")
    p.add_argument("--samples", type=int, default=10, help="candidates sampled in --mode best (default 10)")
    p.add_argument("--table", help="NB201 table scoring the candidates (default: analog-nasbench's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.samples < 1:
        raise NatrlError(f"--samples must be >= 1, got {args.samples}")
    module, space = load_policy(args.run_dir)
    table = NB201Table.load(args.table)
    gen = torch.Generator().manual_seed(args.seed)
    records = []
    for spec in args.cells:
        name, genotype = zoo.resolve(spec)
        beta = space.encode_genotype(genotype)
        alpha = transform(module, space, beta, args.mode, args.samples, table, gen)
        g_alpha = space.genotype(alpha)
        before, after = genotype_cost(genotype), genotype_cost(g_alpha)
        acc_b, acc_a = (float(x) for x in table.score([genotype, g_alpha]))
        rec = {"input": to_arch_str(genotype.normal), "output": to_arch_str(g_alpha.normal), "mode": args.mode,
               "acc_before": acc_b, "acc_after": acc_a, "gain": acc_a - acc_b,
               "params_M": [round(before.params_m, 4), round(after.params_m, 4)],
               "madds_M": [round(before.madds_m, 2), round(after.madds_m, 2)]}
        records.append(rec)
        print(f"{name}\n  -> {rec['output']}\n  accuracy {acc_b:.2f} -> {acc_a:.2f} ({rec['gain']:+.2f}) on "
              f"{table.name}; params {before.params_m:.3f}M -> {after.params_m:.3f}M; "
              f"MAdds {before.madds_m:.1f}M -> {after.madds_m:.1f}M")
    if args.out:
        write_json(args.out, records)
        print(f"wrote {args.out}")
    return records


if __name__ == "__main__":
    main()
    sys.exit(0)
