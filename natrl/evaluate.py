"""Evaluation of a trained policy on held-out NAS-Bench-201 inputs, next to exact reference points.

Rows (mean accuracy gain over the held-out inputs, in points):
- keep-all: alpha = beta (gain 0 by definition);
- random valid: exact expectation of a uniformly random valid transition per edge;
- best fixed per-op rule: one op -> op map for all inputs, *chosen on the training inputs*;
- per-input optimum: exhaustive search over every valid alpha (an oracle, possible on NB201 only);
- policy, 1 sample (Sampling-GCN), argmax (Maximum-GCN), best of k samples (chosen by the reward table, the
  way derive chooses by validation accuracy).
Every choice (best of k, the fixed rule, the per-input optimum) is made on the reward table (``table``: the
selection measurement). The report measurement is the official *test* accuracy when the official CSV is given,
as ``report`` or as the reward table itself (its valid accuracy is then the selection); every row is scored on
both (see :func:`report_measurement`). Without it, the selection rows are optimistic: chosen and reported on one
table, and :func:`caption` says so.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch

from natrl import nb201_oracle as oracle
from natrl.cells import to_arch_str
from natrl.spaces import NB201_CELLS, nb201_genotype, nb201_index


def _gains(acc, alphas, betas):
    return acc[nb201_index(alphas)] - acc[nb201_index(betas)]


@torch.no_grad()
def policy_actions(module, obs: dict, num_samples: int, generator: torch.Generator):
    """(argmax actions [B, E], sampled actions [S, B, E]) of the policy for a batch of observations."""
    dist = module.distribution({k: torch.as_tensor(v) for k, v in obs.items()})
    probs = dist.probs()  # [B, E, K]
    flat = probs.reshape(-1, probs.shape[-1])
    samples = torch.multinomial(flat, num_samples, replacement=True, generator=generator)  # [B*E, S]
    samples = samples.T.reshape(num_samples, *probs.shape[:2])
    return dist.to_deterministic().loc.numpy(), samples.numpy()


def report_measurement(table, report=None) -> tuple[np.ndarray | None, str | None]:
    """(accuracies, label) that results are reported on, never selected on: the official test accuracy of
    ``report`` (else its only column) or, with the official CSV as the reward ``table``, that file's test
    accuracy; (None, None) when there is no second measurement (the report is then the selection table)."""
    if report is not None:
        if report.test_accuracy is not None:
            return report.test_accuracy, report.test_label
        return report.accuracy, report.label
    if getattr(table, "test_accuracy", None) is not None:
        return table.test_accuracy, table.test_label
    return None, None


def heldout_gains_now(module, space, table, report=None, seed: int = 0) -> dict:
    """One point of NAT++ Fig. 8: the mean gain of the cells the policy derives *now* for every held-out input,
    one sample and the argmax, on the reward table and on the report measurement. Nothing is chosen, so neither
    number is optimistic. Uses its own generator: training draws the same random numbers with or without it."""
    betas = NB201_CELLS[space.heldout_cells]
    argmax, samples = policy_actions(module, space.observe_batch(betas), 1, torch.Generator().manual_seed(seed))
    point = {}
    report_acc, _ = report_measurement(table, report)
    for name, acc in (("reward", table.accuracy), ("report", report_acc)):
        if acc is not None:
            point[f"sample_{name}"] = round(float(np.mean(_gains(acc, samples[0], betas))), 4)
            point[f"argmax_{name}"] = round(float(np.mean(_gains(acc, argmax, betas))), 4)
    return point


def caption(results: dict) -> str:
    """Which measurement chose the picks and which one the numbers are reported on."""
    picks = "best of k, the fixed rule chosen on the training inputs, the per-input optimum"
    sel, rep = results["selected_on"], results["reported_on"]
    if rep:
        return f"Selection: every pick ({picks}) is chosen on {sel}. Report: {rep}."
    return (
        f"Selection and report: both on {sel}, so the picked rows ({picks}) are optimistic (an oracle pick); "
        "give --report-table with the official NAS-Bench-201 CSV to report on its test accuracy."
    )


def policy_alphas(module, space, betas, train_betas, acc, best_of: int, seed: int) -> tuple[dict, np.ndarray]:
    """(row name -> transformed cells [B, 6], the best fixed rule); every choice is made on ``acc`` (the
    selection table), the fixed rule on ``train_betas``."""
    gen = torch.Generator().manual_seed(seed)
    argmax, samples = policy_actions(module, space.observe_batch(betas), best_of, gen)
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
    return alphas, rule


def evaluate_nb201(module, space, table, seed: int, best_of: int = 10, report=None, max_inputs: int | None = None):
    """Results dict and per-input records for the policy ``module`` on ``space``'s held-out inputs: chosen on
    ``table``, reported on :func:`report_measurement` as well."""
    rng = np.random.default_rng(seed)
    held = space.heldout_cells if max_inputs is None else rng.choice(space.heldout_cells, max_inputs, replace=False)
    betas = NB201_CELLS[np.sort(held)]
    acc = table.accuracy
    alphas, rule = policy_alphas(module, space, betas, NB201_CELLS[space.train_cells], acc, best_of, seed)
    report_acc, report_label = report_measurement(table, report)
    tables = {"reward": acc} | ({"report": report_acc} if report_acc is not None else {})
    rows = gain_rows(alphas, betas, tables, space.mask)
    results = {
        "num_inputs": int(len(betas)),
        "selected_on": getattr(table, "label", "the reward table"),
        "reported_on": report_label,
        "rows": rows,
        "best_fixed_rule": {space.ops[i]: space.ops[j] for i, j in enumerate(rule)},
        "optimum_fraction": {
            t: rows["policy (1 sample)"][t]["mean"] / rows["per-input optimum"][t]["mean"] for t in tables
        },
    }
    return results, nb201_records(space, betas, alphas, tables, best_of)


def gain_rows(alphas: dict, betas: np.ndarray, tables: dict, mask: np.ndarray) -> dict[str, dict[str, Any]]:
    """Mean and std of the gain of each row of ``alphas`` on each table, and the exact expected gain of a random
    valid transformation; rows in table order (keep-all, random valid, then ``alphas``' own order)."""
    rows: dict[str, dict[str, dict[str, Any]]] = {
        name: {
            t: {"mean": float(np.mean(g)), "std": float(np.std(g))}
            for t, tab in tables.items()
            for g in [_gains(tab, a, betas)]
        }
        for name, a in alphas.items()
    }
    random_gain = oracle.random_valid_gain(betas, np.stack(list(tables.values())), mask)  # [tables, B]
    random = {t: {"mean": float(np.mean(g)), "std": None} for t, g in zip(tables, random_gain)}
    first = next(iter(alphas))
    return {first: rows.pop(first), "random valid": random, **rows}


def nb201_records(space, betas, alphas: dict, tables: dict, best_of: int) -> list[dict]:
    """derived.json: each held-out input and the policy's and the optimum's cells, with their accuracy on the
    selection table (``acc``) and, where there is one, on the report measurement (``report_acc``)."""

    keys = {t: "acc" if t == "reward" else "report_acc" for t in tables}

    def accs(i: int, prefix: str = "") -> dict:
        return {f"{prefix}{keys[t]}": float(tab[i]) for t, tab in tables.items()}

    names = ("policy (1 sample)", "policy (argmax)", f"policy (best of {best_of})", "per-input optimum")
    cells = {"input": nb201_index(betas)} | {name: nb201_index(alphas[name]) for name in names}
    records = []
    for b in range(len(betas)):
        i = int(cells["input"][b])
        rec = {"input": _arch_str(i), **accs(i, "input_")}
        for name in names:
            a = int(cells[name][b])
            rec[name] = {"arch_str": _arch_str(a), **accs(a)}
        records.append(rec)
    return records


@cache
def _arch_str(index: int) -> str:
    return to_arch_str(nb201_genotype(index).normal)


def markdown_table(results: dict) -> str:
    tables = list(next(iter(results["rows"].values())))
    names = {  # results written before the selection / report labels name the tables by role only
        "reward": f"selection: {results.get('selected_on', 'reward table')}",
        "report": f"report: {results.get('reported_on') or 'report table'}",
    }
    head = "| method | " + " | ".join(f"gain, {names[t]} (mean ± std)" for t in tables) + " |"
    lines = [head, "|---|" + "---|" * len(tables)]
    for name, row in results["rows"].items():
        cells = [
            f"{row[t]['mean']:+.2f}" + ("" if row[t]["std"] is None else f" ± {row[t]['std']:.2f}") for t in tables
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def obs_batch(space, genotypes) -> dict:
    """The stacked observations of any space's genotypes."""
    obs = [space.encode(g) for g in genotypes]
    return {k: np.stack([o[k] for o in obs]) for k in obs[0]}


@torch.no_grad()
def evaluate_supernet(module, space, backend, num_inputs: int, best_of: int, seed: int, score_batches: int = 8):
    """NAT++ Table 4 on the supernet proxy: derive random inputs and compare them with their derived cells.

    Inputs come from p(beta) on a stream separate from training. For each, the candidates are the argmax and
    ``best_of`` samples; the one with the highest supernet accuracy on one reward batch is kept (the papers'
    derive). Input and derived cell are then scored on ``score_batches`` further reward batches (60% split of
    the training set; the test set is never used) and costed on the CIFAR-10 evaluation network.
    """
    from natrl.costs import genotype_cost

    rng = np.random.default_rng(seed + 1_000_003)
    gen = torch.Generator().manual_seed(seed)
    betas = [space.sample_input(rng) for _ in range(num_inputs)]
    argmax, samples = policy_actions(module, obs_batch(space, betas), best_of, gen)
    records, acc_in, acc_out = [], [], []
    for b, beta in enumerate(betas):
        candidates = [space.apply(beta, argmax[b])] + [space.apply(beta, samples[s, b]) for s in range(best_of)]
        alpha = candidates[int(np.argmax(backend.score(candidates)))]
        scores = np.array([backend.score([beta, alpha]) for _ in range(score_batches)])  # [batches, 2]
        cb, ca = genotype_cost(beta), genotype_cost(alpha)
        acc_in.append(scores[:, 0].mean())
        acc_out.append(scores[:, 1].mean())
        records.append(
            {
                "input": beta.to_json(),
                "derived": alpha.to_json(),
                "input_darts": beta.darts_text(),
                "derived_darts": alpha.darts_text(),
                "acc_input": float(acc_in[-1]),
                "acc_derived": float(acc_out[-1]),
                "params_M": [cb.params_m, ca.params_m],
                "madds_M": [cb.madds_m, ca.madds_m],
            }
        )
    col = lambda key, i: np.array([r[key][i] for r in records])  # noqa: E731
    summary = lambda v: {"mean": float(np.mean(v)), "std": float(np.std(v))}  # noqa: E731
    gain = np.array(acc_out) - np.array(acc_in)
    results = {
        "num_inputs": num_inputs,
        "best_of": best_of,
        "score_batches": score_batches,
        "accuracy_input": summary(acc_in),
        "accuracy_derived": summary(acc_out),
        "gain": summary(gain),
        "params_M_input": summary(col("params_M", 0)),
        "params_M_derived": summary(col("params_M", 1)),
        "madds_M_input": summary(col("madds_M", 0)),
        "madds_M_derived": summary(col("madds_M", 1)),
        "share_improved": float(np.mean(gain > 0)),
        "share_madds_not_increased": float(np.mean(col("madds_M", 1) <= col("madds_M", 0) + 1e-9)),
    }
    return results, records


def supernet_markdown(r: dict) -> str:
    """NAT++ Table 4 shape: mean +- std over the random inputs (supernet accuracy proxy, CIFAR-10 costs)."""

    def cell(key):
        return f"{r[key]['mean']:.2f} ± {r[key]['std']:.2f}"

    return "\n".join(
        [
            f"Mean ± std over {r['num_inputs']} random inputs; accuracy = supernet proxy on the 60% reward split "
            f"({r['score_batches']} batches), costs on the CIFAR-10 evaluation network (C=36, 20 cells).",
            "",
            "| architectures | #Params (M) | #MAdds (M) | supernet accuracy (%) |",
            "|---|---|---|---|",
            f"| random inputs | {cell('params_M_input')} | {cell('madds_M_input')} | {cell('accuracy_input')} |",
            f"| derived (best of {r['best_of']}) | {cell('params_M_derived')} | {cell('madds_M_derived')} | "
            f"{cell('accuracy_derived')} |",
            "",
            f"Gain {cell('gain')} points; improved on {r['share_improved']:.0%} of inputs; MAdds not increased on "
            f"{r['share_madds_not_increased']:.0%}.",
        ]
    )
