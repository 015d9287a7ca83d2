"""The supernet reward against ground truth on the NAS-Bench-201 space (the table is never read by the search).

Two measurements, both made *after* the fact, never fed back into the supernet or the policy:
- :func:`correlation_point`: after a supernet epoch, the supernet's reward R(alpha | beta) of fixed seeded
  (alpha, beta) pairs (beta a held-out input, alpha a uniformly random valid transformation of it) against
  the true gain on the selection table and on the report measurement: Kendall tau and Spearman rho.
- :func:`evaluate_nb201_supernet`: held-out inputs transformed by the trained policy (1 sample, argmax, best
  of k *chosen by the supernet*), their true gains, next to the table's references (random valid, the best
  fixed per-op rule and the per-input optimum, both chosen on the selection table: oracles the search never
  had).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from natrl import nb201_oracle as oracle
from natrl.evaluate import _gains, gain_rows, nb201_records, policy_actions, report_measurement
from natrl.spaces import NB201_CELLS, nb201_genotype, nb201_index


def rank_correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Kendall tau-b and Spearman rho of two score vectors (ties handled by scipy's tie corrections)."""
    from scipy.stats import kendalltau, spearmanr

    tau = kendalltau(x, y).statistic
    rho = spearmanr(x, y).statistic
    return {"kendall": round(float(tau), 4), "spearman": round(float(rho), 4)}


def random_pairs(space, num_pairs: int, seed: int, per_input: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, betas) op-index arrays [P, 6]: ceil(P / per_input) distinct held-out inputs beta, each with
    ``per_input`` uniformly random valid transformations alpha (one op per edge among the rule's allowed ones).
    Sharing inputs halves the cells the supernet scores, and ranks transformations of one input, as R does."""
    rng = np.random.default_rng(seed)
    num_inputs = min(-(-num_pairs // per_input), len(space.heldout_cells))
    inputs = NB201_CELLS[rng.choice(space.heldout_cells, num_inputs, replace=False)]
    betas = np.resize(inputs, (num_pairs, inputs.shape[1]))  # input i for pairs i, i + B, i + 2B, ...
    allowed = space.mask[betas]  # [P, 6, K]
    u = rng.random(allowed.shape) * allowed  # uniform among the allowed ops of each edge
    return u.argmax(-1), betas


# Reward batches of the 60% split that a correlation point with ``corr_batches`` averages: a seeded pass of
# their own (DeviceBatches.batch: pass i // len), which no run's rewards reach, the same images at every epoch.
EVAL_BATCH_OFFSET = 10**9


def supernet_gains(backend, alphas: np.ndarray, betas: np.ndarray, batches: int = 0) -> np.ndarray:
    """R(alpha | beta) on the supernet for op-index arrays: every distinct cell scored once, in one call, like a
    reward (``batches`` = 0), or averaged over ``batches`` fixed evaluation batches."""
    cells = np.unique(np.concatenate([nb201_index(alphas), nb201_index(betas)]))
    genotypes = [nb201_genotype(int(i)) for i in cells]
    acc = np.full(len(NB201_CELLS), np.nan)
    if batches:
        acc[cells] = backend.score_on_batches(genotypes, range(EVAL_BATCH_OFFSET, EVAL_BATCH_OFFSET + batches))
    else:
        acc[cells] = backend.score(genotypes)
    return _gains(acc, alphas, betas)


def correlation_point(
    backend, space, table, report, pairs: tuple[np.ndarray, np.ndarray], batches: int = 0
) -> dict[str, Any]:
    """Rank correlation of the supernet's R(alpha | beta) with the true gain, on each measurement; R as a
    reward scores it (``batches`` = 0) or averaged over ``batches`` fixed evaluation batches."""
    alphas, betas = pairs
    predicted = supernet_gains(backend, alphas, betas, batches)
    point: dict[str, Any] = {"pairs": len(betas), "eval_batches": batches}
    report_acc, _ = report_measurement(table, report)
    for name, acc in (("select", table.accuracy), ("report", report_acc)):
        if acc is not None:
            true = _gains(acc, alphas, betas)
            corr = rank_correlations(predicted, true)
            point.update(
                {f"{k}_{name}": v for k, v in corr.items()}, **{f"mean_gain_{name}": round(float(true.mean()), 3)}
            )
    point["mean_R"] = round(float(predicted.mean()), 3)  # against mean_gain_*: how far the supernet over-rates
    return point


@torch.no_grad()
def correlation_by_reward_images(trainer, space, table, report, pairs, sizes: list[int]) -> list[dict]:
    """How the number of images a reward is measured on changes the correlation: every cell of ``pairs`` is
    scored once on max(sizes) reward images (one seeded batch of the 60% split) by ``trainer``'s supernet, and
    R(alpha | beta) on the first s of them is correlated with the true gain, for each s in ``sizes``."""
    alphas, betas = pairs
    cells = np.unique(np.concatenate([nb201_index(alphas), nb201_index(betas)]))
    trainer.net.eval()
    trainer.reward.batch_size = max(sizes)  # batch 0 of that size: one seeded sample of the 60% split
    x, y = trainer.reward.batch(0)
    x = x.to(trainer.dtype)
    correct = {int(c): (trainer.net(x, nb201_genotype(int(c))).argmax(1) == y).float().cpu().numpy() for c in cells}
    report_acc, _ = report_measurement(table, report)
    points = []
    for size in sizes:
        acc = np.full(len(NB201_CELLS), np.nan)
        for c, hits in correct.items():
            acc[c] = 100 * hits[:size].mean()
        predicted = _gains(acc, alphas, betas)
        point: dict[str, Any] = {"reward_images": min(size, len(y)), "pairs": len(betas)}
        for name, true_acc in (("select", table.accuracy), ("report", report_acc)):
            if true_acc is not None:
                corr = rank_correlations(predicted, _gains(true_acc, alphas, betas))
                point.update({f"{k}_{name}": v for k, v in corr.items()})
        points.append(point)
    return points


@torch.no_grad()
def correlation_over_batches(trainer, space, table, pairs, num_batches: int) -> list[dict]:
    """How much a reward depends on *which* images it is measured on: every cell of ``pairs`` scored on reward
    batches 0..K-1 (``trainer``'s reward batch size, one forward each, as the run scores); per batch, the Kendall
    tau of that batch's R(alpha | beta) with the true gain on the selection ``table``, and the tau and rho of R
    averaged over batches 0..k (a reward averaging k + 1 batches)."""
    alphas, betas = pairs
    cells = np.unique(np.concatenate([nb201_index(alphas), nb201_index(betas)]))
    genotypes = [nb201_genotype(int(c)) for c in cells]
    true = _gains(table.accuracy, alphas, betas)
    total, rows = np.zeros(len(NB201_CELLS)), []
    for k in range(num_batches):
        acc = np.full(len(NB201_CELLS), np.nan)
        acc[cells] = trainer.score(genotypes, k)
        total[cells] += acc[cells]
        mean = rank_correlations(_gains(total / (k + 1), alphas, betas), true)
        rows.append(
            {
                "batch": k,
                "batch_images": len(trainer.reward.batch(k)[1]),
                "kendall_this_batch": rank_correlations(_gains(acc, alphas, betas), true)["kendall"],
                "kendall_mean_of_batches": mean["kendall"],
                "spearman_mean_of_batches": mean["spearman"],
            }
        )
    return rows


def _pick_by_supernet(backend, samples: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Per input, the sample with the highest supernet accuracy (the papers' derive; ties: the first)."""
    S, B, _ = samples.shape
    flat = samples.reshape(S * B, -1)
    cells = np.unique(nb201_index(flat))
    acc = np.full(len(NB201_CELLS), -np.inf)
    acc[cells] = backend.score([nb201_genotype(int(i)) for i in cells])
    scores = acc[nb201_index(flat)].reshape(S, B)
    return samples[scores.argmax(0), np.arange(B)]


def policy_samples(module, space, num_inputs: int, best_of: int, seed: int):
    """(betas, argmax, samples [k, B, 6]): the evaluation's ``num_inputs`` seeded held-out inputs (the inputs of
    :func:`random_pairs` with the same seed) and the policy's argmax and k samples for each."""
    rng = np.random.default_rng(seed)
    held = rng.choice(space.heldout_cells, min(num_inputs, len(space.heldout_cells)), replace=False)
    betas = NB201_CELLS[np.sort(held)]
    argmax, samples = policy_actions(module, space.observe_batch(betas), best_of, torch.Generator().manual_seed(seed))
    return betas, argmax, samples


def policy_pairs(samples: np.ndarray, betas: np.ndarray, per_input: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, betas) of the policy's first ``per_input`` samples of each input: the pairs the policy chooses
    among, where the supernet's errors decide what it learns (random pairs: :func:`random_pairs`)."""
    per = min(per_input, len(samples))
    return samples[:per].reshape(-1, samples.shape[-1]), np.tile(betas, (per, 1))


@torch.no_grad()
def evaluate_nb201_supernet(
    module, space, backend, table, report, num_inputs: int, best_of: int, seed: int, corr_batches: int | None = None
):
    """(results, records): mean true gains over ``num_inputs`` random held-out inputs; the policy's best of k
    is chosen by the supernet, every other pick on the selection table; all reported on both measurements.
    With ``corr_batches`` (see :func:`correlation_point`), also the rank correlation on the policy's own
    samples (:func:`policy_pairs`)."""
    betas, argmax, samples = policy_samples(module, space, num_inputs, best_of, seed)
    acc = table.accuracy
    opt_idx, _ = oracle.per_input_optimum(betas, acc, space.mask)
    rule, _ = oracle.best_fixed_rule(NB201_CELLS[space.train_cells], acc, space.mask)
    best_k = f"policy (best of {best_of}, chosen by the supernet)"
    alphas = {
        "keep-all": betas,
        "best fixed per-op rule": rule[betas],
        "per-input optimum": NB201_CELLS[opt_idx],
        "policy (1 sample)": samples[0],
        "policy (argmax)": argmax,
        best_k: _pick_by_supernet(backend, samples, betas),
    }
    report_acc, report_label = report_measurement(table, report)
    tables = {"reward": acc} | ({"report": report_acc} if report_acc is not None else {})
    rows = gain_rows(alphas, betas, tables, space.mask)
    results = {
        "num_inputs": int(len(betas)),
        "selected_on": table.label,
        "picks": f"the policy's best of {best_of} is chosen by the supernet; the fixed rule (on the training "
        f"inputs) and the per-input optimum are chosen on {table.label}: oracles the search never had",
        "reported_on": report_label,
        "rows": rows,
        "all_heldout": _all_heldout(module, space, tables, seed),
        "best_fixed_rule": {space.ops[i]: space.ops[j] for i, j in enumerate(rule)},
    }
    if corr_batches is not None:
        pairs = policy_pairs(samples, betas)
        results["policy_correlation"] = correlation_point(backend, space, table, report, pairs, corr_batches)
    records = nb201_records(space, betas, {**alphas, f"policy (best of {best_of})": alphas[best_k]}, tables, best_of)
    return results, records


def _all_heldout(module, space, tables: dict, seed: int) -> dict:
    """1 sample and argmax on *every* held-out input (no supernet needed): comparable with the tabular runs."""
    betas = NB201_CELLS[space.heldout_cells]
    argmax, samples = policy_actions(module, space.observe_batch(betas), 1, torch.Generator().manual_seed(seed))
    return {
        "num_inputs": int(len(betas)),
        **{
            f"{name}_{t}": float(np.mean(_gains(tab, a, betas)))
            for name, a in (("sample", samples[0]), ("argmax", argmax))
            for t, tab in tables.items()
        },
    }


def truth_markdown(results: dict) -> str:
    from natrl.evaluate import markdown_table

    held = results["all_heldout"]
    tables = [t for t in ("reward", "report") if f"sample_{t}" in held]
    line = ", ".join(f"{t}: 1 sample {held[f'sample_{t}']:+.2f}, argmax {held[f'argmax_{t}']:+.2f}" for t in tables)
    return (
        f"True accuracy gain (points) of {results['num_inputs']} random held-out inputs. Picks: "
        f"{results['picks']}. Report: {results['reported_on'] or results['selected_on']}.\n\n"
        f"{markdown_table(results)}\n\n"
        f"On all {held['num_inputs']} held-out inputs ({line}).\n" + _policy_correlation_line(results)
    )


def _policy_correlation_line(results: dict) -> str:
    point = results.get("policy_correlation")
    if not point:
        return ""
    taus = ", ".join(f"{k} {v:+.3f}" for k, v in point.items() if k.startswith(("kendall", "spearman")))
    return (
        f"\nSupernet R vs true gain on the policy's own samples ({point['pairs']} pairs: 5 samples of each "
        f"input above): {taus}.\n"
    )
