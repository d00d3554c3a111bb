"""Shared model plumbing: activation factories, listing activation modules, weight-decay groups."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..activations import make_activation

__all__ = ["ThesisModel", "ActivationFactory", "he_uniform_"]


class ActivationFactory:
    """Builds the model's activation for a given channel count: `act(channels)`."""

    def __init__(self, name: str, options: dict | None = None):
        self.name = name
        self.options = dict(options or {})
        make_activation(name, 1, **self.options) if name != "kwta" else None  # fail fast on bad names

    def __call__(self, channels: int) -> nn.Module:
        return make_activation(self.name, channels, **self.options)


def he_uniform_(module: nn.Module) -> None:
    """Keras' he_uniform: U(-sqrt(6 / fan_in), sqrt(6 / fan_in)), zero bias (the thesis's init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            bound = math.sqrt(6.0 / fan_in)
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ThesisModel(nn.Module):
    """Base class of the thesis's models.

    - `activation_modules()`: the activation modules in forward order (the analysis chapters hook them);
    - `param_groups()`: optimizer parameter groups with the protocol's L2 penalties. The thesis's
      Keras code adds `l2 * ||W||^2` to the loss, whose gradient is `2 * l2 * W`, so the PyTorch
      weight_decay (which adds `wd * W`) is `2 * l2`.
    """

    arch: str = "model"
    l2_conv: float = 0.0  # Keras L2 coefficient on conv kernels
    l2_dense: float = 0.0  # Keras L2 coefficient on dense kernels

    def activation_modules(self) -> list[nn.Module]:
        from ..activations import ACTIVATIONS  # noqa: F401  (registry defines the classes)

        return [m for m in self.modules() if getattr(m, "name", None) is not None and hasattr(m, "slope_bound")]

    def param_groups(self) -> list[dict]:
        decay_conv, decay_dense, rest = [], [], []
        for mod in self.modules():
            for pname, p in mod.named_parameters(recurse=False):
                if pname == "weight" and isinstance(mod, nn.Conv2d):
                    decay_conv.append(p)
                elif pname == "weight" and isinstance(mod, nn.Linear):
                    decay_dense.append(p)
                else:
                    rest.append(p)  # biases, BatchNorm, KAF alphas: not decayed
        groups = [
            {"params": decay_conv, "weight_decay": 2 * self.l2_conv},
            {"params": decay_dense, "weight_decay": 2 * self.l2_dense},
            {"params": rest, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def check_input(x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape N x 3 x H x W in [0, 1], got {tuple(x.shape)}")
