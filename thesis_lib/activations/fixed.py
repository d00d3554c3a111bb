"""Fixed (non-trainable) activation functions of thesis section 2.1.3 (eqs. 2.13-2.19).

Each class takes the same constructor as every other activation in the project,
`(channels, **options)`, so that any model can swap one for another by name; `channels` is
ignored here (a fixed function has no per-channel state).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import thesis_lib.activations._pointwise as _pointwise  # the module, not through the package

__all__ = ["ReLU", "LeakyReLU", "ELU", "GELU", "Swish", "Softplus", "Sigmoid", "Tanh", "FixedActivation"]


class FixedActivation(nn.Module):
    """Base class: an element-wise function with an analytic Lipschitz constant (`slope_bound`)."""

    name = "fixed"
    lipschitz = 1.0  # max |f'(s)| over the real line

    def __init__(self, channels: int | None = None, **options):
        super().__init__()
        if options:
            raise TypeError(f"activation {self.name!r} takes no options, got {sorted(options)}")
        self.channels = channels

    def slope_bound(self) -> torch.Tensor:
        """Per-channel upper bound on |f'(s)| (a scalar broadcast to channels)."""
        return torch.full((self.channels or 1,), float(self.lipschitz))

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class ReLU(FixedActivation):
    """max(0, s), eq. 2.16."""

    name = "relu"

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(FixedActivation):
    """s if s >= 0 else a*s, eq. 2.17; a = 0.1 as in the thesis figure."""

    name = "leaky_relu"

    def __init__(self, channels: int | None = None, negative_slope: float = 0.1):
        super().__init__(channels)
        self.negative_slope = negative_slope
        self.lipschitz = max(1.0, abs(negative_slope))

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)


class ELU(FixedActivation):
    """s if s >= 0 else a(exp(s) - 1), eq. 2.18, a = 1."""

    name = "elu"

    def __init__(self, channels: int | None = None, alpha: float = 1.0):
        super().__init__(channels)
        self.alpha = alpha
        self.lipschitz = max(1.0, alpha)

    def forward(self, x):
        y = _pointwise.apply("elu", x, self.alpha)  # vectorised CPU kernel (PyTorch's bf16 ELU is slow)
        return F.elu(x, self.alpha) if y is None else y


class GELU(FixedActivation):
    """s * Phi(s), Phi the standard normal CDF (the exact erf form, PyTorch's default)."""

    name = "gelu"
    lipschitz = 1.129  # max of Phi(s) + s*phi(s), at s = sqrt(2)

    def forward(self, x):
        y = _pointwise.apply("gelu", x)  # vectorised CPU kernel, as for ELU
        return F.gelu(x) if y is None else y


class Swish(FixedActivation):
    """s * sigmoid(s), eq. 2.19 (SiLU)."""

    name = "swish"
    lipschitz = 1.09984  # max of the derivative (1.099839...), at s ~ 2.3994

    def forward(self, x):
        y = _pointwise.apply("swish", x)  # vectorised CPU kernel, as for ELU
        return F.silu(x) if y is None else y


class Softplus(FixedActivation):
    """log(1 + exp(s)), and s above 20 (PyTorch's defaults: beta 1, threshold 20)."""

    name = "softplus"

    def forward(self, x):
        y = _pointwise.apply("softplus", x)  # vectorised CPU kernel, as for ELU
        return F.softplus(x) if y is None else y


class Sigmoid(FixedActivation):
    """1 / (1 + exp(-s)), eq. 2.13; its derivative is bounded by 1/4 (vanishing gradients)."""

    name = "sigmoid"
    lipschitz = 0.25

    def forward(self, x):
        return torch.sigmoid(x)


class Tanh(FixedActivation):
    """Hyperbolic tangent, eq. 2.15."""

    name = "tanh"

    def forward(self, x):
        y = _pointwise.apply("tanh", x)  # vectorised CPU kernel, as for ELU
        return torch.tanh(x) if y is None else y
