"""Kernel-based Activation Functions (KAFs).

Scardapane, Van Vaerenbergh, Totaro, Uncini, "Kafnets: kernel-based non-parametric activation
functions for neural networks", Neural Networks 110 (2019). Thesis section 2.4.

Each channel c (or dense unit) has its own non-parametric activation, a kernel expansion over a
fixed dictionary d_1..d_D:

    f_c(s) = sum_i alpha[c, i] * k(s, d_i),     k(s, d) = exp(-gamma (s - d)^2)   (Gaussian kernel)

Thesis defaults: D = 20 points evenly spaced on [-3, 3] (step Delta), gamma = 1 / (6 Delta^2),
alpha ~ N(0, 0.05^2). Alternatively alpha is set by kernel ridge regression so that f interpolates
a known function t on the dictionary: alpha = (K + eps I)^-1 t(d), K_ij = k(d_i, d_j).

Speed and memory: the obvious implementation broadcasts the input against the dictionary and
keeps N x C x H x W x D tensors for backward (about 44x a ReLU ResNet-20 step on 2 CPU cores).
Here the Gaussian KAF is a custom autograd function that saves only its input and recomputes the
D kernel values in backward: on CPU in fused C (see `_kaf_kernel.c`), elsewhere (CUDA, or no C
compiler) as a loop over the D dictionary points with O(N*C*H*W) temporaries.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import thesis_lib.activations._kaf_native as _kaf_native  # the module, not through the package

__all__ = ["KAF", "KAF_PRESETS", "kaf_reference", "ridge_alpha", "KERNELS"]

# Defaults of the thesis and of the KAF paper's own code (docs/protocol.md, "Activation functions").
KAF_PRESETS: dict[str, dict] = {
    "thesis": dict(D=20, boundary=3.0, gamma_div=6.0, alpha_std=0.05, ridge_eps=1e-6),
    "paper": dict(D=20, boundary=4.0, gamma_div=8.0, alpha_std=0.8, ridge_eps=1e-4),
}
KERNELS = ("gaussian", "relu", "softplus")

_TARGETS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "elu": F.elu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "leaky_relu": lambda t: F.leaky_relu(t, 0.1),
    "identity": lambda t: t,
}


def _kernel_matrix(s: torch.Tensor, d: torch.Tensor, gamma: torch.Tensor | float, kernel: str) -> torch.Tensor:
    """k(s, d) broadcast: s (..., 1), d (..., D)."""
    if kernel == "gaussian":
        return torch.exp(-gamma * (s - d) ** 2)
    if kernel == "relu":  # KAF paper's ReLU kernel: max(0, s * d)
        return F.relu(s * d)
    if kernel == "softplus":  # KAF paper's softplus kernel: log(1 + exp(s * d))
        return F.softplus(s * d)
    raise ValueError(f"unknown KAF kernel {kernel!r}; valid: {', '.join(KERNELS)}")


def kaf_reference(x, alpha, dictionary, gamma, kernel: str = "gaussian"):
    """The formula, written the obvious way (materialises ... x D). Used by tests and benchmarks.

    x: (N, C, *spatial); alpha, dictionary: (C, D); gamma: (C,).
    """
    extra = x.dim() - 2
    shape = (1, alpha.shape[0]) + (1,) * extra + (alpha.shape[1],)
    K = _kernel_matrix(x.unsqueeze(-1), dictionary.view(shape), gamma.view(shape[:-1] + (1,)), kernel)
    return (K * alpha.view(shape)).sum(-1)


def ridge_alpha(
    target: Callable | str, dictionary: torch.Tensor, gamma: float, eps: float = 1e-6, kernel: str = "gaussian"
) -> torch.Tensor:
    """Kernel ridge regression: alpha = (K + eps I)^-1 t(d), so the KAF interpolates `target` on d."""
    fn = _TARGETS.get(target) if isinstance(target, str) else target
    if fn is None:
        raise ValueError(f"unknown ridge target {target!r}; valid: {', '.join(sorted(_TARGETS))} or a callable")
    d = dictionary.double()
    K = _kernel_matrix(d.unsqueeze(-1), d.unsqueeze(0), gamma, kernel)
    t = fn(d)
    return torch.linalg.solve(K + eps * torch.eye(len(d), dtype=d.dtype), t)


class _GaussianKAF(torch.autograd.Function):
    """f = sum_i alpha_i exp(-gamma (x - d_i)^2) per channel, saving only x for backward (or, with the
    parameters frozen, only dy/dx)."""

    @staticmethod
    def forward(ctx, x, alpha, dictionary, gamma, free: bool):
        ctx.free = free
        ctx.derivative = False
        if _use_native(x, alpha):
            # float32/bf16: the vector kernel checks the spacing itself while building its tables
            ctx.fast = not free and (x.dtype != torch.float64 or _kaf_native.is_evenly_spaced(dictionary))
            x3, restore = _as_3d(x)
            params = alpha.contiguous(), dictionary.contiguous(), gamma.contiguous()
            if x.dtype != torch.float64 and ctx.needs_input_grad[0] and not any(ctx.needs_input_grad[1:4]):
                # parameters frozen (attacks, the FGSM step of fast AT): dy/dx comes from the same pass and
                # is kept instead of x, so backward is gy * dy/dx instead of a second evaluation
                y3, d3 = _kaf_native.forward(x3, *params, fast=ctx.fast, derivative=True)
                ctx.save_for_backward(restore(d3))
                ctx.derivative = True
                return restore(y3)
            ctx.save_for_backward(x, alpha, dictionary, gamma)
            return restore(_kaf_native.forward(x3, *params, fast=ctx.fast))
        ctx.save_for_backward(x, alpha, dictionary, gamma)
        shape = _param_shape(x)
        y = torch.zeros_like(x)
        for i in range(alpha.shape[1]):  # O(N*C*H*W) temporaries, never (..., D)
            t = x - dictionary[:, i].view(shape)
            y.addcmul_(alpha[:, i].view(shape), torch.exp(-gamma.view(shape) * t * t))
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.derivative:
            (d,) = ctx.saved_tensors
            return _kaf_native.times_derivative(gy, d), None, None, None, None
        x, alpha, dictionary, gamma = ctx.saved_tensors
        free = ctx.free
        need_x = ctx.needs_input_grad[0]
        if _use_native(x, alpha):
            x3, restore = _as_3d(x)
            gy3, _ = _as_3d(gy.to(x.dtype).contiguous(memory_format=_memory_format(x)))
            need_free = free and (ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
            gx3, ga, gd, gg, _ = _kaf_native.backward(
                x3,
                gy3,
                alpha.contiguous(),
                dictionary.contiguous(),
                gamma.contiguous(),
                need_x,
                need_free,
                fast=ctx.fast,
            )
            gx = restore(gx3) if need_x else None
            return gx, ga if ctx.needs_input_grad[1] else None, gd, gg, None
        shape = _param_shape(x)
        dims = [0] + list(range(2, x.dim()))
        gx = torch.zeros_like(x) if need_x else None
        ga = torch.empty_like(alpha)
        gd = torch.empty_like(dictionary) if free else None
        gg = torch.zeros_like(gamma) if free else None
        g = gamma.view(shape)
        for i in range(alpha.shape[1]):
            t = x - dictionary[:, i].view(shape)
            e = torch.exp(-g * t * t)
            ga[:, i] = (gy * e).sum(dims)
            ate = alpha[:, i].view(shape) * e * t  # alpha_i k_i (x - d_i)
            if need_x:
                gx.addcmul_(gy, ate, value=-2.0)  # later scaled by gamma
            if free:
                gd[:, i] = 2.0 * gamma * (gy * ate).sum(dims)
                gg -= (gy * ate * t).sum(dims)
        if need_x:
            gx.mul_(g)
        return gx, ga, gd, gg, None


def _memory_format(x):
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _param_dtype(x_dtype: torch.dtype) -> torch.dtype:
    """Parameters enter the kernels in float64 for float64 inputs, else in float32 (bfloat16 included)."""
    return torch.float64 if x_dtype == torch.float64 else torch.float32


def _use_native(x, alpha) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype in _kaf_native.DTYPES
        and alpha.dtype == _param_dtype(x.dtype)
        and alpha.shape[1] <= 64
        and _kaf_native.available()
    )


def _as_3d(x):
    """View x as contiguous (outer, C, inner) and return a function that restores x's shape/layout."""
    if x.dim() == 4 and _memory_format(x) == torch.channels_last:
        n, c, h, w = x.shape
        x3 = x.permute(0, 2, 3, 1).reshape(n * h * w, c, 1)
        return x3, lambda y3: y3.view(n, h, w, c).permute(0, 3, 1, 2)
    xc = x.contiguous()
    shape = x.shape
    x3 = xc.view(shape[0], shape[1], -1)
    return x3, lambda y3: y3.view(shape)


def _param_shape(x):
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


class KAF(nn.Module):
    """Per-channel kernel activation function, with the project's constructor `(channels, **options)`.

    Args:
        channels: number of channels (conv inputs N x C x H x W) or units (dense inputs N x C).
        preset: "thesis" (default) or "paper": the defaults of KAF_PRESETS; explicit options win.
        D: dictionary size; boundary: dictionary spans [-boundary, boundary].
        gamma: bandwidth; default 1 / (gamma_div * Delta^2) with Delta the dictionary step.
        init: None for alpha ~ N(0, alpha_std^2); or a function (name like "elu", or a callable)
            that the KAF is ridge-initialised to interpolate on the dictionary.
        trainable_dictionary: the `kaf_free` variant: dictionary and bandwidth trainable per channel.
        kernel: "gaussian" (the thesis's), or the KAF paper's "relu" / "softplus" kernels.
    """

    name = "kaf"

    def __init__(
        self,
        channels: int,
        preset: str = "thesis",
        D: int | None = None,
        boundary: float | None = None,
        gamma: float | None = None,
        gamma_div: float | None = None,
        alpha_std: float | None = None,
        init: str | Callable | None = None,
        ridge_eps: float | None = None,
        trainable_dictionary: bool = False,
        kernel: str = "gaussian",
    ):
        super().__init__()
        if preset not in KAF_PRESETS:
            raise ValueError(f"unknown KAF preset {preset!r}; valid: {', '.join(KAF_PRESETS)}")
        if kernel not in KERNELS:
            raise ValueError(f"unknown KAF kernel {kernel!r}; valid: {', '.join(KERNELS)}")
        if channels is None or int(channels) < 1:
            raise ValueError(f"a KAF needs a positive number of channels, got {channels!r}")
        p = dict(KAF_PRESETS[preset])
        for k, v in dict(D=D, boundary=boundary, gamma_div=gamma_div, alpha_std=alpha_std, ridge_eps=ridge_eps).items():
            if v is not None:
                p[k] = v
        self.channels, self.D, self.kernel, self.preset = int(channels), int(p["D"]), kernel, preset
        self.free = bool(trainable_dictionary)
        self.init_name = init if isinstance(init, str) or init is None else getattr(init, "__name__", "callable")

        d = torch.linspace(-p["boundary"], p["boundary"], self.D)
        step = float(d[1] - d[0])
        g = float(gamma) if gamma is not None else 1.0 / (p["gamma_div"] * step**2)
        if init is None:
            alpha = torch.randn(self.channels, self.D) * p["alpha_std"]
        else:
            alpha = ridge_alpha(init, d, g, p["ridge_eps"], kernel).float().expand(self.channels, -1).clone()
        dict_c = d.expand(self.channels, -1).clone()
        gamma_c = torch.full((self.channels,), g)
        self.alpha = nn.Parameter(alpha)
        if self.free:
            self.dictionary = nn.Parameter(dict_c)
            self.gamma = nn.Parameter(gamma_c)
        else:
            self.register_buffer("dictionary", dict_c)
            self.register_buffer("gamma", gamma_c)

    # Set by `models.batchnorm.fuse_activations`: the BatchNorm before this KAF computes it (its own
    # kernel, or `function` after the BatchNorm), and the KAF's slot passes its input on. The parameters
    # stay here, so state dict and optimizer see them unchanged.
    fused_into_batchnorm = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.fused_into_batchnorm else self.function(x)

    def fuses_with(self, x: torch.Tensor) -> bool:
        """Whether the vector kernels can apply a fused BatchNorm's affine map to x on the way in."""
        # _use_native: CPU, float32 parameters for a float32/bf16 x, the kernels built
        return (
            self.kernel == "gaussian"
            and x.dtype != torch.float64
            and x.shape[1] == self.channels
            and _use_native(x, self.alpha)
        )

    def function(self, x: torch.Tensor) -> torch.Tensor:
        """The KAF of x (what `forward` computes when the KAF is not fused into a BatchNorm)."""
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(f"KAF with {self.channels} channels got input of shape {tuple(x.shape)}")
        dev = x.device.type
        if _autocast_on(dev):
            # Under autocast the kernels read and write the input's dtype (bfloat16 after a bf16
            # convolution) but compute in float32 with float32 parameters: exp of a squared distance
            # is precision-sensitive, and no float32 copy of the activation is ever materialised.
            with torch.autocast(device_type=dev, enabled=False):
                return self._compute(x)
        return self._compute(x)

    def _compute(self, x):
        a, d, g = self.alpha, self.dictionary, self.gamma
        pdt = _param_dtype(x.dtype)
        if a.dtype != pdt:
            a, d, g = a.to(pdt), d.to(pdt), g.to(pdt)
        if self.kernel == "gaussian" and _use_native(x, a):
            return _GaussianKAF.apply(x, a, d, g, self.free)
        # PyTorch path (CUDA, other kernels, no compiler): in the parameters' precision, cast back.
        xp = x.to(pdt)
        if self.kernel == "gaussian":
            y = _GaussianKAF.apply(xp, a, d, g, self.free)
        else:
            y = kaf_reference(xp, a, d, g, self.kernel)
        return y.to(x.dtype)

    @torch.no_grad()
    def evaluate(self, s: torch.Tensor) -> torch.Tensor:
        """f_c(s) for a 1-D grid s: returns (C, len(s)), for plots and bounds."""
        x = s.to(self.alpha).view(-1, 1).expand(-1, self.channels)
        return kaf_reference(x, self.alpha, self.dictionary, self.gamma, self.kernel).T

    @torch.no_grad()
    def slope_bound(self, points: int = 20001) -> torch.Tensor:
        """Per-channel upper bound on max_s |f_c'(s)| (the KAF's Lipschitz constant), float64.

        Gaussian kernel: the max of |f'| on a grid covering the dictionary +- 6 kernel widths,
        plus h/2 * max|f''| (so the grid can not miss a peak), where |f''| <= 2 gamma sum|alpha|;
        beyond the grid every kernel's slope is below 1e-6 of its peak. The result is also capped
        by the triangle bound sqrt(2 gamma / e) * sum_i |alpha_i|. ReLU / softplus kernels:
        sum_i |alpha_i d_i| (exact for the ReLU kernel's slopes, an upper bound otherwise).
        """
        a = self.alpha.double()
        d = self.dictionary.double()
        g = self.gamma.double()
        if self.kernel != "gaussian":
            return (a * d).abs().sum(1)
        width = 6.0 / g.sqrt()  # exp(-gamma t^2) is negligible beyond ~6/sqrt(gamma)
        lo = (d.min(1).values - width).view(-1, 1)
        hi = (d.max(1).values + width).view(-1, 1)
        u = torch.linspace(0, 1, points, dtype=torch.float64, device=a.device).view(1, -1)
        peak = torch.empty_like(g)
        for c0 in range(0, self.channels, 8):  # chunks of channels keep the (8, P, D) grid small
            c = slice(c0, c0 + 8)
            s = lo[c] + (hi[c] - lo[c]) * u  # (c, P)
            t = s.unsqueeze(-1) - d[c].unsqueeze(1)  # (c, P, D)
            fp = (-2 * g[c].view(-1, 1, 1) * t * torch.exp(-g[c].view(-1, 1, 1) * t * t) * a[c].unsqueeze(1)).sum(-1)
            peak[c] = fp.abs().max(1).values
        h = (hi - lo).squeeze(1) / (points - 1)
        grid_bound = peak + 0.5 * h * 2 * g * a.abs().sum(1)
        triangle = math.sqrt(2 / math.e) * g.sqrt() * a.abs().sum(1)
        return torch.minimum(grid_bound, triangle)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, D={self.D}, kernel={self.kernel}, preset={self.preset}, "
            f"init={self.init_name}, free={self.free}"
        )


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # older torch: no device argument
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()
