"""Supernet reward: validation accuracy of DARTS-space cells on a weight-sharing supernet (NAT Algorithm 1).

``SupernetTrainer`` is the compute a supernet shard holds: the supernet, its SGD optimizer and cosine schedule,
the 40% split (weights; augmented) and the 60% split (reward; never augmented) as device batches.
- ``train_epoch(betas)``: one pass over (this shard's part of) the weights split; step i trains input betas[i]
  (or a fresh sample from a callable); ``after_backward`` lets shards average gradients before the step.
- ``score(genotypes, batch_index)``: accuracy of each genotype on reward batch ``batch_index`` of a fixed
  seeded sequence, under no_grad, so that R(alpha | beta) = acc(alpha) - acc(beta) compares them on identical
  images, on whichever replica scores them.
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
from natrl.nets.supernet import Supernet


class SupernetTrainer:
    space = "darts"

    def __init__(
        self,
        vocab,
        data: dict,
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
    ):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.net = Supernet(vocab, preset, num_intermediate=num_intermediate).to(self.device)
        w_idx, r_idx = split_indices(len(data["train_y"]), weights_frac, seed)
        rank, world = shard  # equal, disjoint parts of the weights split, so every shard takes as many steps
        w_idx = w_idx[: len(w_idx) // world * world][rank::world]
        self.weights = DeviceBatches(
            data["train_x"][w_idx], data["train_y"][w_idx], batch_size, device, augment=True, seed=seed
        )
        self.reward = DeviceBatches(
            data["train_x"][r_idx], data["train_y"][r_idx], batch_size, device, augment=False, seed=seed + 1
        )
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        # cosine from lr to lr_min over ``epochs`` (the released code's floor equalled its start: constant lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs, eta_min=lr_min)
        self.epoch = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.weights)

    def train_epoch(
        self,
        betas: Sequence[Genotype] | Callable[[], Genotype],
        max_steps: int | None = None,
        after_backward: Callable[[], None] | None = None,
    ) -> dict:
        self.net.train()
        total, correct, loss_sum, steps = 0, 0, 0.0, 0
        for x, y in self.weights.batches():
            logits = self.net(x, betas() if callable(betas) else betas[steps])
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if after_backward is not None:
                after_backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
            self.optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
            steps += 1
            if max_steps and steps >= max_steps:
                break
        self.schedule.step()
        self.epoch += 1
        return {
            "epoch": self.epoch,
            "loss": loss_sum / total,
            "train_acc": 100 * correct / total,
            "lr": self.optimizer.param_groups[0]["lr"],
        }

    def score(self, genotypes: Sequence[Genotype], batch_index: int) -> np.ndarray:
        self.net.eval()
        x, y = self.reward.batch(batch_index)
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
