"""Evaluation of a trained policy on held-out NAS-Bench-201 inputs, next to exact reference points.

Rows (mean accuracy gain over the held-out inputs, in points):
- keep-all: alpha = beta (gain 0 by definition);
- random valid: exact expectation of a uniformly random valid transition per edge;
- best fixed per-op rule: one op -> op map for all inputs, *chosen on the training inputs*;
- per-input optimum: exhaustive search over every valid alpha (an oracle, possible on NB201 only);
- policy, 1 sample (Sampling-GCN), argmax (Maximum-GCN), best of k samples (chosen by the reward table, the
  way derive chooses by validation accuracy).
With a second table (``report``), every row is also scored there: select on one measurement, report on the other.
"""
from __future__ import annotations

import numpy as np
import torch

from natrl import nb201_oracle as oracle
from natrl.cells import to_arch_str
from natrl.spaces import NB201_CELLS, nb201_index


def _gains(acc, alphas, betas):
    return acc[nb201_index(alphas)] - acc[nb201_index(betas)]


@torch.no_grad()
def policy_actions(module, space, betas: np.ndarray, num_samples: int, generator: torch.Generator):
    """(argmax actions [B, E], sampled actions [S, B, E]) of the policy for input op vectors ``betas``."""
    obs = {k: torch.as_tensor(v) for k, v in space.observe_batch(betas).items()}
    dist = module.distribution(obs)
    probs = dist.probs()  # [B, E, K]
    flat = probs.reshape(-1, probs.shape[-1])
    samples = torch.multinomial(flat, num_samples, replacement=True, generator=generator)  # [B*E, S]
    samples = samples.T.reshape(num_samples, *probs.shape[:2])
    return dist.to_deterministic().loc.numpy(), samples.numpy()


def evaluate_nb201(module, space, table, seed: int, best_of: int = 10, report=None, max_inputs: int | None = None):
    """Results dict and per-input records for the policy ``module`` on ``space``'s held-out inputs."""
    rng = np.random.default_rng(seed)
    held = space.heldout_cells if max_inputs is None else rng.choice(space.heldout_cells, max_inputs, replace=False)
    betas = NB201_CELLS[np.sort(held)]
    train_betas = NB201_CELLS[space.train_cells]
    acc = table.accuracy
    gen = torch.Generator().manual_seed(seed)
    argmax, samples = policy_actions(module, space, betas, best_of, gen)
    for a in (argmax, *samples):  # the mask must hold for every action we report
        assert space.mask[betas, a].all(), "policy produced an invalid transition"
    sample_acc = np.stack([acc[nb201_index(s)] for s in samples])  # [S, B]
    best_k = samples[sample_acc.argmax(0), np.arange(len(betas))]
    opt_idx, _ = oracle.per_input_optimum(betas, acc, space.mask)
    rule, _ = oracle.best_fixed_rule(train_betas, acc, space.mask)
    alphas = {
        "keep-all": betas,
        "best fixed per-op rule": rule[betas],
        "per-input optimum": NB201_CELLS[opt_idx],
        "policy (1 sample)": samples[0],
        "policy (argmax)": argmax,
        f"policy (best of {best_of})": best_k,
    }
    tables = {"reward": acc} | ({"report": report.accuracy} if report is not None else {})
    rows = {}
    for name, a in alphas.items():
        rows[name] = {t: {"mean": float(np.mean(g)), "std": float(np.std(g))}
                      for t, tab in tables.items() for g in [_gains(tab, a, betas)]}
    rows["random valid"] = {t: {"mean": float(np.mean(oracle.random_valid_gain(betas, tab, space.mask))), "std": None}
                            for t, tab in tables.items()}
    order = ["keep-all", "random valid", "best fixed per-op rule", "per-input optimum", "policy (1 sample)",
             "policy (argmax)", f"policy (best of {best_of})"]
    results = {"num_inputs": int(len(betas)), "rows": {k: rows[k] for k in order},
               "best_fixed_rule": {space.ops[i]: space.ops[j] for i, j in enumerate(rule)},
               "optimum_fraction": {t: rows["policy (1 sample)"][t]["mean"] / rows["per-input optimum"][t]["mean"]
                                    for t in tables}}
    records = []
    for b in range(len(betas)):
        rec = {"input": to_arch_str(space.genotype(betas[b]).normal), "input_acc": float(acc[nb201_index(betas[b])])}
        for name in ("policy (1 sample)", "policy (argmax)", f"policy (best of {best_of})", "per-input optimum"):
            a = alphas[name][b:b + 1]
            rec[name] = {"arch_str": to_arch_str(space.genotype(a[0]).normal), "acc": float(acc[nb201_index(a[0])])}
        records.append(rec)
    return results, records


def markdown_table(results: dict) -> str:
    tables = list(next(iter(results["rows"].values())))
    head = "| method | " + " | ".join(f"gain on {t} table (mean ± std)" for t in tables) + " |"
    lines = [head, "|---|" + "---|" * len(tables)]
    for name, row in results["rows"].items():
        cells = [f"{row[t]['mean']:+.2f}" + ("" if row[t]["std"] is None else f" ± {row[t]['std']:.2f}") for t in tables]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
