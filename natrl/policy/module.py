"""The transformer policy pi(alpha | beta; theta) as an RLlib TorchRLModule that reads only the observation.

Encoders (``model_config["encoder"]``):
- ``gcn`` (NAT Section 3.3, without the released code's flaws, docs/papers.md): a node's input feature is
  its kind and position embeddings plus a message from each incoming edge, ReLU(W [embedding(op),
  position(src)]) (so which op arrives from where is kept, not just the multiset of ops); ``gcn_layers``
  graph convolutions H' = A_hat H W (ReLU between layers) with A_hat = D^-1/2 (A + I) D^-1/2 over the
  undirected cell graph (self-loops, symmetric normalisation); each edge's logits come from an MLP over
  [h_src, h_dst, embedding(own op), position(src), position(dst)], so they depend on the op being transformed
  and on where the edge sits. (Positions matter: on NB201's complete graph A_hat averages all nodes, so
  node features alone cannot tell the edges apart.)
- ``lstm``: a bidirectional LSTM over the edge sequence (the papers' LSTM baseline).
- ``random``: constant logits, i.e. uniform over the valid transitions (the random-search baseline).
All three end in the Binary-Masked Softmax. (The REINFORCE reward baseline lives in the algorithm,
natrl.algo.baseline: it is computed over an update's whole batch, before the batch is split over learners.)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

from natrl.policy.bmsoftmax import BinaryMaskedSoftmax, apply_mask
from natrl.spaces import NODE_KINDS

DEFAULT_MODEL_CONFIG = {"encoder": "gcn", "hidden": 64, "gcn_layers": 2}


def normalized_adjacency(src: torch.Tensor, dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """A_hat = D^-1/2 (A + I) D^-1/2 for a batch of graphs given by edge lists [B, E]."""
    S = F.one_hot(src, num_nodes).float()  # [B, E, N]
    D = F.one_hot(dst, num_nodes).float()
    A = (D.transpose(1, 2) @ S).clamp(max=1.0)  # dst <- src
    A = torch.maximum(A, A.transpose(1, 2)) + torch.eye(num_nodes, device=src.device)
    d = A.sum(-1).rsqrt()
    return d.unsqueeze(-1) * A * d.unsqueeze(-2)


class TransitionPolicy(TorchRLModule):
    def setup(self):
        cfg = {**DEFAULT_MODEL_CONFIG, **(self.model_config or {})}
        self.encoder = cfg["encoder"]
        H = int(cfg["hidden"])
        self.num_edges = len(self.action_space.nvec)
        self.num_ops = int(self.action_space.nvec[0])
        self.num_nodes = self.observation_space["node_kind"].shape[0]
        if self.encoder == "gcn":
            self.op_emb = nn.Embedding(self.num_ops, H)
            self.node_emb = nn.Embedding(NODE_KINDS, H)
            self.pos_emb = nn.Embedding(self.num_nodes, H)
            self.message = nn.Linear(2 * H, H)
            self.gcn = nn.ModuleList(nn.Linear(H, H) for _ in range(int(cfg["gcn_layers"])))
            self.head = nn.Sequential(nn.Linear(5 * H, H), nn.ReLU(), nn.Linear(H, self.num_ops))
        elif self.encoder == "lstm":
            self.op_emb = nn.Embedding(self.num_ops, H)
            self.src_emb = nn.Embedding(self.num_nodes, H)
            self.dst_emb = nn.Embedding(self.num_nodes, H)
            self.lstm = nn.LSTM(H, H, batch_first=True, bidirectional=True)
            self.head = nn.Linear(2 * H, self.num_ops)
        elif self.encoder == "random":
            self.unused = nn.Parameter(torch.zeros(()))  # optimizers need one parameter; gradient is always 0
        else:
            raise ValueError(f"unknown encoder '{self.encoder}'; choose gcn, lstm or random")

    def get_inference_action_dist_cls(self):
        return BinaryMaskedSoftmax

    def edge_logits(self, obs: dict) -> torch.Tensor:
        """Unmasked logits [B, E, K] of every edge's new op."""
        op, src, dst = obs["op"].long(), obs["src"].long(), obs["dst"].long()
        if self.encoder == "random":
            return self.unused * 0.0 + torch.zeros(*op.shape, self.num_ops, device=op.device)
        e_op = self.op_emb(op)  # [B, E, H]
        if self.encoder == "lstm":
            out, _ = self.lstm(e_op + self.src_emb(src) + self.dst_emb(dst))
            return self.head(out)
        N = self.num_nodes
        p_src, p_dst = self.pos_emb(src), self.pos_emb(dst)
        msg = F.relu(self.message(torch.cat([e_op, p_src], dim=-1)))  # [B, E, H]
        h = (
            self.node_emb(obs["node_kind"].long())
            + self.pos_emb.weight
            + F.one_hot(dst, N).float().transpose(1, 2) @ msg
        )
        a_hat = normalized_adjacency(src, dst, N)
        for i, layer in enumerate(self.gcn):
            h = a_hat @ layer(h)
            if i < len(self.gcn) - 1:
                h = F.relu(h)
        h_src = torch.gather(h, 1, src.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        h_dst = torch.gather(h, 1, dst.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        return self.head(torch.cat([h_src, h_dst, e_op, p_src, p_dst], dim=-1))

    def _forward(self, batch, **kwargs):
        obs = batch[Columns.OBS]
        return {Columns.ACTION_DIST_INPUTS: apply_mask(self.edge_logits(obs), obs["action_mask"].float())}

    def distribution(self, obs: dict) -> BinaryMaskedSoftmax:
        """pi(. | obs) for a batch of observation tensors (used by evaluation and derive)."""
        return BinaryMaskedSoftmax(self._forward({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS])
