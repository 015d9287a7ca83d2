"""The transformer policy: an RLlib TorchRLModule (GCN, LSTM or random encoder) + Binary-Masked Softmax."""

from natrl.policy.bmsoftmax import BinaryMaskedSoftmax, apply_mask
from natrl.policy.module import TransitionPolicy

__all__ = ["BinaryMaskedSoftmax", "apply_mask", "TransitionPolicy"]
