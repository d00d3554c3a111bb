"""k-Winners-Take-All (Xiao, Zhong, Zheng, ICLR 2020, "Enhancing adversarial defense by k-winners-take-all").

Thesis section 3.1: per example, keep the k largest values of the *whole layer* (C*H*W for a
convolutional layer, all units for a dense one), zero the rest, with k = ceil(ratio * layer size).
The function is discontinuous in its input (which unit wins changes abruptly), which is what makes
it look robust to gradient-based attacks: gradient masking, not robustness (Tramer et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["KWTA", "KWTAAnnealing", "kwta"]


def kwta(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Keep exactly k = ceil(ratio * size) largest entries of each example's activation, zero the rest.

    Ties are broken by `topk`'s order, so exactly k values survive even when many are equal.
    """
    n = x.shape[0]
    flat = x.reshape(n, -1)
    k = max(1, math.ceil(ratio * flat.shape[1]))
    if k >= flat.shape[1]:
        return x
    idx = flat.topk(k, dim=1, sorted=False).indices
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True)
    return (flat * mask).reshape(x.shape)


class KWTA(nn.Module):
    """k-WTA activation with the project's common constructor `(channels, ratio=0.3)`."""

    name = "kwta"

    def __init__(self, channels: int | None = None, ratio: float = 0.30):
        super().__init__()
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"k-WTA ratio must be in (0, 1], got {ratio}")
        self.channels = channels
        self.ratio = float(ratio)

    def forward(self, x):
        return kwta(x, self.ratio)

    def slope_bound(self) -> torch.Tensor:
        # Locally (fixed winners) k-WTA is a 0/1 mask, but it is discontinuous: no finite
        # Lipschitz constant exists. Report inf so that network bounds say so honestly.
        return torch.full((self.channels or 1,), math.inf)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, ratio={self.ratio}"


@dataclass
class KWTAAnnealing:
    """Ratio schedule of the k-WTA paper: start dense, lower the ratio by `step` every `every` epochs.

    Call `apply(model, epoch)` at the start of each epoch; it sets the ratio of every KWTA module.
    """

    start: float = 0.30  # initial fraction of winners
    target: float = 0.10  # final fraction of winners
    step: float = 0.01  # ratio decrease per application
    every: int = 2  # epochs between decreases

    def ratio_at(self, epoch: int) -> float:
        r = self.start - self.step * (epoch // self.every)
        return max(self.target, r) if self.start >= self.target else min(self.target, r)

    def apply(self, model: nn.Module, epoch: int) -> float:
        r = self.ratio_at(epoch)
        for m in model.modules():
            if isinstance(m, KWTA):
                m.ratio = r
        return r
