"""PyTorch networks: ops by name, evaluation networks (CIFAR, ImageNet, NAS-Bench-201 macro)."""
