"""BatchNorm2d with a vectorised training-mode path for channels_last tensors on CPU, optionally
fused with the element-wise activation that follows it.

Every convolution of the thesis's networks is followed by BatchNorm and an activation (Ioffe and
Szegedy 2015; sections 5.1-5.3), so on the CPU these memory-bound passes are the largest cost
outside the convolutions. In training mode this module computes the batch statistics, the
normalisation and the backward with the vector kernels of `activations/_batchnorm_simd.c`, one pass
each (`benchmarks/bench_batchnorm.py`). It is an `nn.BatchNorm2d` with the same parameters, buffers
and state-dict keys, and it updates the running statistics as PyTorch does; eval mode, other
layouts, dtypes and devices, and a machine without a C compiler use PyTorch's own kernel. The two
agree to float32 rounding (tests).

`fuse_activations(model)` fuses each activation that directly follows one of these BatchNorms into
it, so that the normalised tensor never goes through memory:
- a fixed activation moves into the BatchNorm (`bn.activation`; its own slot becomes `nn.Identity`),
  and ReLU's backward reads its mask off the recomputed input;
- a Gaussian KAF stays in its slot, which then passes its input on (`KAF.fused_into_batchnorm`), and
  the BatchNorm hands its per-channel scale and shift to the KAF kernels, which apply them on load.
Either way the state dict is unchanged. `train` fuses its own model on CPU; models built by
`build_model` are not fused, so hooks on their activation modules see what they expect.
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn
from torch.autograd.function import once_differentiable

import thesis_lib.activations._kaf_native as _native  # the build and load helpers shared by the CPU kernels
from thesis_lib.activations.fixed import FixedActivation
from thesis_lib.activations.kaf import KAF, _as_3d

__all__ = ["BatchNorm2d", "fuse_activations", "native_available"]

_SRC = _native._SIMD_SRC.with_name("_batchnorm_simd.c")
NCHUNKS = 64  # work chunks of the reductions; fixed, so results do not depend on the number of threads
_MAX_CHANNELS = 1024  # the kernel's limit (MAXCB x 16)
_p = _native._p
# the kernels' activation codes (enum in _batchnorm_simd.c); those from ELU on keep f'(z) in the forward
ACT_CODES = {
    None: 0,
    "relu": 1,
    "leaky_relu": 2,
    "elu": 3,
    "swish": 4,
    "gelu": 5,
    "softplus": 6,
    "tanh": 7,
    "sigmoid": 8,
}
_KEEPS_D = 3
_GIVEN_D = 9  # backward only: dL/dz = gy * d, d the derivative a fused KAF with frozen parameters kept


def _act_code(act: nn.Module | None) -> tuple[int, float]:
    """(code, parameter) of a fusable activation module (leaky ReLU's slope, ELU's alpha)."""
    if act is None:
        return 0, 0.0
    name = act.name
    param = act.negative_slope if name == "leaky_relu" else act.alpha if name == "elu" else 0.0
    return ACT_CODES[name], float(param)


def _configure(lib: ctypes.CDLL) -> None:
    ptr, i64, cint, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
    lib.bn_forward.argtypes = [ptr, ptr, ptr, cint, i64, i64, ptr, ptr, f32, cint, f32, ptr, ptr, ptr, i64, cint]
    lib.bn_backward.argtypes = [ptr, ptr, ptr, ptr, cint, i64, i64, ptr, ptr, cint, f32, ptr, ptr, ptr, ptr, i64, cint]
    lib.bn_backward.argtypes += [ptr, i64]


def _load() -> ctypes.CDLL | None:
    return _native.load_library(_SRC, _configure)  # same switch (THESIS_KAF_NATIVE=0) and toolchain as the KAF


def native_available() -> bool:
    """Whether the vector BatchNorm kernels are built and loaded on this machine."""
    return _load() is not None


def _applies(bn: nn.BatchNorm2d, x: torch.Tensor) -> bool:
    return (
        bn.training
        and bn.affine
        and bn.track_running_stats
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.dtype in _native._DTYPE_CODE
        and x.shape[0] * x.shape[2] * x.shape[3] > 1
        and x.shape[1] <= _MAX_CHANNELS
        and x.is_contiguous(memory_format=torch.channels_last)
        and bn.weight.dtype == torch.float32
        and bn.weight.device.type == "cpu"
        and _load() is not None
    )


def _bn_forward(x, y, d, weight, bias, eps: float, act: int = 0, param: float = 0.0):
    """Batch statistics (mean, biased var, 1 / sqrt(var + eps)) of x; y = f(BN(x)) and d = f'(z) where given."""
    n, c, h, w = x.shape
    mean, var, invstd = (torch.empty(c, dtype=torch.float32) for _ in range(3))  # the kernels' float32
    args = (_p(x), _p(y), _p(d), _native._DTYPE_CODE[x.dtype], n * h * w, c, _p(weight.detach()), _p(bias.detach()))
    if _load().bn_forward(*args, eps, act, param, _p(mean), _p(var), _p(invstd), NCHUNKS, torch.get_num_threads()) != 0:
        raise MemoryError("the BatchNorm kernel could not allocate its work space")
    return mean, var, invstd


def _bn_backward(x, gy, d, weight, bias, act: int, param: float, mean, invstd, need_x: bool, sums=None):
    """(dL/dx or None, dL/dweight, dL/dbias) from dL/dy; `d`: the kept derivative of the activations that keep one.

    `sums`: None, or the backward's sums already taken by the kernel that produced gy ((chunks, 2, C)
    float64, `_kaf_native.backward`'s bn_sums); then the kernel's pass over x and gy for them is skipped."""
    n, c, h, w = x.shape
    gy = gy.to(x.dtype).contiguous(memory_format=torch.channels_last)
    gx = torch.empty_like(x) if need_x else None
    gw, gb = torch.empty(c, dtype=torch.float32), torch.empty(c, dtype=torch.float32)
    args = (_p(x), _p(gy), _p(d), _p(gx), _native._DTYPE_CODE[x.dtype], n * h * w, c, _p(weight.detach()))
    args += (_p(bias.detach()), act, param, _p(mean), _p(invstd), _p(gw), _p(gb))
    nparts = 0 if sums is None else sums.shape[0]
    if _load().bn_backward(*args, NCHUNKS, torch.get_num_threads(), _p(sums), nparts) != 0:
        raise RuntimeError("the BatchNorm kernel failed (out of memory, or no saved derivative)")
    return gx, gw, gb


class _TrainBatchNorm(torch.autograd.Function):
    """(f(BN(x)), batch mean, biased batch variance) of a channels_last x; gradients for x, weight and bias."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, act: int, param: float):
        y = torch.empty_like(x)  # keeps channels_last
        d = torch.empty_like(x) if act >= _KEEPS_D and any(ctx.needs_input_grad[:3]) else None  # f'(z)
        mean, var, invstd = _bn_forward(x, y, d, weight, bias, eps, act, param)
        ctx.save_for_backward(x, d, weight, bias, mean, invstd)
        ctx.act, ctx.param = act, param
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, _gmean, _gvar):
        x, d, weight, bias, mean, invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx, gw, gb = _bn_backward(x, gy, d, weight, bias, ctx.act, ctx.param, mean, invstd, needs[0])
        return gx, gw if needs[1] else None, gb if needs[2] else None, None, None, None


class _TrainBatchNormKAF(torch.autograd.Function):
    """(KAF(BN(x)), batch mean, biased batch variance): the KAF kernels read x and apply the BatchNorm's
    scale and shift on load; gradients for x, the BatchNorm's and the KAF's parameters."""

    @staticmethod
    def forward(ctx, x, weight, bias, alpha, dictionary, gamma, eps: float, free: bool):
        mean, var, invstd = _bn_forward(x, None, None, weight, bias, eps)  # statistics only
        scale = (weight.detach() * invstd).contiguous()
        affine = (scale, (bias.detach() - mean * scale).contiguous())
        x3, restore = _as_3d(x)
        params = (alpha.detach().contiguous(), dictionary.detach().contiguous(), gamma.detach().contiguous())
        ctx.frozen = not any(ctx.needs_input_grad[1:6])
        ctx.free = free
        if ctx.frozen:  # attacks, the FGSM step of fast AT: keep dy/dz, the BatchNorm backward multiplies
            y3, d3 = _native.forward(x3, *params, fast=not free, derivative=True, in_affine=affine)
            ctx.save_for_backward(x, restore(d3), weight, bias, mean, invstd)
        else:
            y3 = _native.forward(x3, *params, fast=not free, in_affine=affine)
            ctx.save_for_backward(x, weight, bias, mean, invstd, *affine, *params)
        ctx.mark_non_differentiable(mean, var)
        return restore(y3), mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, _gmean, _gvar):
        needs = ctx.needs_input_grad
        if ctx.frozen:
            x, d, weight, bias, mean, invstd = ctx.saved_tensors
            gx, _, _ = _bn_backward(x, gy, d, weight, bias, _GIVEN_D, 0.0, mean, invstd, needs[0])
            return gx, None, None, None, None, None, None, None
        x, weight, bias, mean, invstd, scale, shift, alpha, dictionary, gamma = ctx.saved_tensors
        x3, restore = _as_3d(x)
        gy3, _ = _as_3d(gy.to(x.dtype).contiguous(memory_format=torch.channels_last))
        need_free = ctx.free and (needs[4] or needs[5])
        # the KAF kernel also takes the BatchNorm backward's sums over dL/dz as it writes it (one pass fewer)
        gz3, ga, gd, gg, sums = _native.backward(
            x3,
            gy3,
            alpha,
            dictionary,
            gamma,
            True,
            need_free,
            fast=not ctx.free,
            in_affine=(scale, shift),
            bn_mean=mean,
        )
        gx, gw, gb = _bn_backward(x, restore(gz3), None, weight, bias, 0, 0.0, mean, invstd, needs[0], sums)
        grads = (gw, gb, ga, gd, gg)
        return (gx, *(g if need else None for g, need in zip(grads, needs[1:6])), None, None)


class BatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d`; in training mode on a channels_last CPU tensor, computed by the vector kernels.

    `activation`: None, or a fixed activation module applied to the output (set by `fuse_activations`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.activation: nn.Module | None = None
        # a fused KAF: not registered here (it stays a module of its own slot, with its parameters)
        object.__setattr__(self, "kaf", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kaf = self.kaf
        if not _applies(self, x):
            y = super().forward(x)
            if self.activation is not None:
                y = self.activation(y)
            return y if kaf is None else kaf.function(y)
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d
            momentum = 1.0 / float(self.num_batches_tracked)
        if kaf is not None and kaf.fuses_with(x):
            kp = (kaf.alpha, kaf.dictionary, kaf.gamma)
            y, mean, var = _TrainBatchNormKAF.apply(x, self.weight, self.bias, *kp, self.eps, kaf.free)
        else:
            y, mean, var = _TrainBatchNorm.apply(x, self.weight, self.bias, self.eps, *_act_code(self.activation))
            if kaf is not None:
                y = kaf.function(y)
        p = x.shape[0] * x.shape[2] * x.shape[3]
        with torch.no_grad():  # PyTorch's update: the running variance takes the unbiased batch variance
            self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            self.running_var.mul_(1 - momentum).add_(var, alpha=momentum * p / (p - 1))
        return y


def fuse_activations(model: nn.Module) -> int:
    """Fuse every fixed activation or Gaussian KAF that directly follows a `BatchNorm2d` into it; returns how many.

    "Directly follows": adjacent in an `nn.Sequential`, or a (BatchNorm, activation) pair a module
    lists in `bn_activation_pairs()` (the residual blocks, whose `forward` applies one to the other).
    """
    n = 0
    for parent in list(model.modules()):
        pairs = []
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            pairs = list(zip(names, names[1:]))
        elif hasattr(parent, "bn_activation_pairs"):
            pairs = parent.bn_activation_pairs()
        for bn_name, act_name in pairs:
            bn, act = parent._modules[bn_name], parent._modules[act_name]
            if type(bn) is not BatchNorm2d or bn.activation is not None or bn.kaf is not None:
                continue
            if isinstance(act, FixedActivation) and act.name in ACT_CODES:  # a function the kernels know
                bn.activation = act
                setattr(parent, act_name, nn.Identity())
                n += 1
            elif isinstance(act, KAF) and act.kernel == "gaussian" and not act.fused_into_batchnorm:
                object.__setattr__(bn, "kaf", act)
                act.fused_into_batchnorm = True
                n += 1
    return n
