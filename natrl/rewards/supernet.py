"""Supernet reward: validation accuracy of cells on a weight-sharing supernet (NAT Algorithm 1), for the DARTS
space (natrl.nets.supernet) and the NAS-Bench-201 space (natrl.nets.nb201_supernet).

``SupernetTrainer`` is the compute a supernet shard holds: the supernet, its SGD optimizer and cosine schedule,
the 40% split (weights; augmented) and the 60% split (reward; never augmented) as device batches.
- ``train_epoch(betas)``: one pass over the weights split in global batches of ``batch_size``; step i trains
  input betas[i] (or a fresh sample from a callable). With ``shard=(rank, world)`` every shard draws the same
  global batch (same seeded order and augmentation) and trains its slice of it, with the loss summed and
  divided by the global batch size: summed gradients (``after_backward``) and global BatchNorm statistics then
  give exactly the step one process takes on the whole batch, with as many steps per epoch.
- ``score(genotypes, batch_index)``: accuracy of each genotype on reward batch ``batch_index`` (of
  ``reward_batch`` images, default ``batch_size``) of a fixed seeded sequence, under no_grad, so that
  R(alpha | beta) = acc(alpha) - acc(beta) compares them on identical images, on whichever replica scores them.
- ``state_dict`` / ``load_state_dict``: supernet, optimizer, schedule, batch-order RNGs, batch cursor.
The Ray actors that hold one trainer per GPU (or CPU) shard build on this class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from natrl.cells import Genotype
from natrl.datasets import DeviceBatches, split_indices
from natrl.ddp import shard
from natrl.nets.nb201_supernet import NB201Supernet
from natrl.nets.supernet import Supernet


class SupernetReward:
    """The reward calls of a supernet backend: which reward batch a call scores on, and the per-epoch cache.

    ``score(genotypes)``: accuracy of each genotype; the distinct ones are scored once (``_score_distinct``,
    the subclass's compute) on one reward batch. Algorithm 1: every call takes the next batch (a counter).
    With ``cache_rewards``, every call between two supernet epochs scores on the same batch (one per epoch)
    and a cell is scored once per epoch: the weights do not change between epochs, so the cache returns
    exactly what scoring again would. ``new_weights()`` is called after each supernet epoch.
    """

    def __init__(self, space: str, cache_rewards: bool = False):
        self.space, self.cache_rewards = space, cache_rewards
        self.batch_counter = 0
        self.cache: dict[Genotype, float] = {}  # this epoch's accuracies (cache_rewards)

    def _score_distinct(self, genotypes: list[Genotype], batch_index: int) -> np.ndarray:
        raise NotImplementedError

    def score(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        if self.cache_rewards:
            new = [g for g in dict.fromkeys(genotypes) if g not in self.cache]
            if new:
                self.cache.update(zip(new, self._score_distinct(new, self.batch_counter)))
            return np.array([self.cache[g] for g in genotypes], dtype=np.float64)
        k, self.batch_counter = self.batch_counter, self.batch_counter + 1
        distinct = list(dict.fromkeys(genotypes))  # a cell twice in one call scores the same on one batch
        acc = dict(zip(distinct, self._score_distinct(distinct, k)))
        return np.array([acc[g] for g in genotypes], dtype=np.float64)

    def score_on_batches(self, genotypes: Sequence[Genotype], batches: Sequence[int]) -> np.ndarray:
        """Mean accuracy of each genotype over reward batches ``batches`` (evaluation: neither the batch counter
        nor the cache is touched, so the rewards the policy sees are the same with or without it)."""
        distinct = list(dict.fromkeys(genotypes))
        mean = np.mean([self._score_distinct(distinct, k) for k in batches], axis=0)
        acc = dict(zip(distinct, mean))
        return np.array([acc[g] for g in genotypes], dtype=np.float64)

    def new_weights(self):
        """The supernet trained: with the cache, the next epoch's rewards are scored afresh on the next batch."""
        if self.cache_rewards:
            self.cache.clear()
            self.batch_counter += 1


class LocalSupernet(SupernetReward):
    """A supernet reward backend in this process, without Ray (tests, notebooks): one SupernetTrainer."""

    def __init__(self, vocab, data: dict, cache_rewards: bool = False, **trainer_kwargs):
        self.trainer = SupernetTrainer(vocab, data, **trainer_kwargs)
        super().__init__(self.trainer.space, cache_rewards)

    def train_epoch(self, sample: Callable[[], Genotype], max_steps: int | None = None) -> dict:
        stats = self.trainer.train_epoch(sample, max_steps=max_steps)
        self.new_weights()
        return stats

    def _score_distinct(self, genotypes: list[Genotype], batch_index: int) -> np.ndarray:
        return self.trainer.score(genotypes, batch_index)

    def state_dict(self) -> dict:
        return {"shard": self.trainer.state_dict(), "batch_counter": self.batch_counter}

    def load_state_dict(self, state: dict):
        self.trainer.load_state_dict(state["shard"])
        self.batch_counter = state["batch_counter"]
        self.cache.clear()


def build_supernet(space: str, vocab, preset: str, num_intermediate: int) -> Supernet | NB201Supernet:
    """The supernet of ``space``; ``preset`` tiny / paper (on nb201: the CPU preset / NB201's C=16, N=5)."""
    if space == "nb201":
        return NB201Supernet({"tiny": "cpu", "paper": "nb201"}.get(preset, preset), vocab=vocab)
    return Supernet(vocab, preset, num_intermediate=num_intermediate)


class SupernetTrainer:
    def __init__(
        self,
        vocab,
        data: dict,
        space: str = "darts",
        preset="tiny",
        batch_size: int = 64,
        lr: float = 0.01,
        lr_min: float = 0.001,
        epochs: int = 100,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        weights_frac: float = 0.4,
        seed: int = 0,
        device="cpu",
        shard: tuple[int, int] = (0, 1),
        num_intermediate: int = 4,
        dtype: torch.dtype = torch.float32,
        reward_batch: int | None = None,
    ):
        torch.manual_seed(seed)
        self.space = space
        self.device = torch.device(device)
        self.dtype = dtype  # float64 only for exactness checks (shards vs one process)
        self.net = build_supernet(space, vocab, preset, num_intermediate).to(self.device, dtype)
        w_idx, r_idx = split_indices(len(data["train_y"]), weights_frac, seed)
        self.rank, self.world = shard  # every shard holds the whole split and trains its slice of each batch
        self.weights = DeviceBatches(
            data["train_x"][w_idx], data["train_y"][w_idx], batch_size, device, augment=True, seed=seed
        )
        self.reward = DeviceBatches(
            data["train_x"][r_idx], data["train_y"][r_idx], reward_batch or batch_size, device, seed=seed + 1
        )
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        # cosine from lr to lr_min over ``epochs`` (the released code's floor equalled its start: constant lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs, eta_min=lr_min)
        self.epoch = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.weights)

    def local_slice(self, n: int) -> slice:
        """This shard's contiguous part of a global batch of ``n`` images (parts differ by at most one)."""
        return shard(n, self.rank, self.world)

    def train_epoch(
        self,
        betas: Sequence[Genotype] | Callable[[], Genotype],
        max_steps: int | None = None,
        after_backward: Callable[[], None] | None = None,
    ) -> dict:
        """One pass; returns this shard's sums (``loss_sum``, ``correct``, ``images``) besides its means."""
        self.net.train()
        total, correct, loss_sum, steps = 0, 0, 0.0, 0
        for x_all, y_all in self.weights.batches():
            part = self.local_slice(len(y_all))
            x, y = x_all[part].to(self.dtype), y_all[part]
            logits = self.net(x, betas() if callable(betas) else betas[steps])
            summed = F.cross_entropy(logits, y, reduction="sum")
            self.optimizer.zero_grad(set_to_none=True)  # an op that did not run keeps grad None: SGD skips it
            (summed / len(y_all)).backward()  # the global batch mean, once the shards' gradients are summed
            if after_backward is not None:
                after_backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
            self.optimizer.step()
            loss_sum += summed.item()
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
            steps += 1
            if max_steps and steps >= max_steps:
                break
        self.schedule.step()
        self.epoch += 1
        return {
            "epoch": self.epoch,
            "loss": loss_sum / max(total, 1),
            "train_acc": 100 * correct / max(total, 1),
            "lr": self.optimizer.param_groups[0]["lr"],
            "loss_sum": loss_sum,
            "correct": correct,
            "images": total,
            "steps": steps,
        }

    def score(self, genotypes: Sequence[Genotype], batch_index: int) -> np.ndarray:
        self.net.eval()
        x, y = self.reward.batch(batch_index)
        x = x.to(self.dtype)
        return self.net.accuracy(genotypes, x, y).cpu().numpy().astype(np.float64)

    def state_dict(self) -> dict:
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "weights_rng": self.weights.state_dict(),
            "reward_rng": self.reward.state_dict(),
        }

    def load_state_dict(self, state: dict):
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epoch = state["epoch"]
        self.weights.load_state_dict(state["weights_rng"])
        self.reward.load_state_dict(state["reward_rng"])
