"""BatchNorm2d with a vectorised training-mode path for channels_last tensors on CPU.

Every convolution of the thesis's networks is followed by BatchNorm (Ioffe and Szegedy 2015;
sections 5.1-5.3), so on the CPU it is the largest cost outside the convolutions: PyTorch's kernel
for channels_last float32/bfloat16 tensors makes more passes over memory than it needs. In training
mode this module computes the batch statistics, the normalisation and the backward with the vector
kernels of `activations/_batchnorm_simd.c`: one pass each, as `benchmarks/bench_batchnorm.py`
measures. It is an `nn.BatchNorm2d` with the same parameters, buffers and state-dict keys, and it
updates the running statistics as PyTorch does; eval mode, other layouts, dtypes and devices, and a
machine without a C compiler use PyTorch's own kernel. The two agree to float32 rounding (tests).
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn
from torch.autograd.function import once_differentiable

import thesis_lib.activations._kaf_native as _native  # the build and load helpers shared by the CPU kernels

__all__ = ["BatchNorm2d", "native_available"]

_SRC = _native._SIMD_SRC.with_name("_batchnorm_simd.c")
_LIB: ctypes.CDLL | None = None
_TRIED = False
NCHUNKS = 64  # work chunks of the reductions; fixed, so results do not depend on the number of threads
_MAX_CHANNELS = 1024  # the kernel's limit (MAXCB x 16)
_p = _native._p


def _load() -> ctypes.CDLL | None:
    global _LIB, _TRIED
    if _TRIED:
        return _LIB
    _TRIED = True
    if not _native.available():  # same switch (THESIS_KAF_NATIVE=0) and toolchain as the KAF kernels
        return None
    path = _native._build(_SRC, _native._SIMD_CFLAGS)
    if path is None:
        return None
    lib = ctypes.CDLL(str(path))
    ptr, i64, cint, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
    lib.bn_forward.argtypes = [ptr, ptr, cint, i64, i64, ptr, ptr, f32, ptr, ptr, ptr, i64, cint]
    lib.bn_backward.argtypes = [ptr, ptr, ptr, cint, i64, i64, ptr, ptr, ptr, ptr, ptr, i64, cint]
    _LIB = lib
    return lib


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


class _TrainBatchNorm(torch.autograd.Function):
    """(y, batch mean, biased batch variance) of a channels_last x; gradients for x, weight and bias."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        n, c, h, w = x.shape
        y = torch.empty_like(x)  # keeps channels_last
        mean, var, invstd = (torch.empty(c) for _ in range(3))
        nt = torch.get_num_threads()
        code = _native._DTYPE_CODE[x.dtype]
        wd, bd = weight.detach(), bias.detach()
        rc = _LIB.bn_forward(
            _p(x), _p(y), code, n * h * w, c, _p(wd), _p(bd), eps, _p(mean), _p(var), _p(invstd), NCHUNKS, nt
        )
        if rc != 0:
            raise MemoryError("the BatchNorm kernel could not allocate its work space")
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, _gmean, _gvar):
        x, weight, mean, invstd = ctx.saved_tensors
        n, c, h, w = x.shape
        gy = gy.to(x.dtype).contiguous(memory_format=torch.channels_last)
        gx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        gw, gb = torch.empty(c), torch.empty(c)
        code = _native._DTYPE_CODE[x.dtype]
        nt = torch.get_num_threads()
        args = (_p(x), _p(gy), _p(gx), code, n * h * w, c, _p(weight.detach()), _p(mean), _p(invstd), _p(gw), _p(gb))
        if _LIB.bn_backward(*args, NCHUNKS, nt) != 0:
            raise MemoryError("the BatchNorm kernel could not allocate its work space")
        return gx, gw if ctx.needs_input_grad[1] else None, gb if ctx.needs_input_grad[2] else None, None


class BatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d`; in training mode on a channels_last CPU tensor, computed by the vector kernels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _applies(self, x):
            return super().forward(x)
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d
            momentum = 1.0 / float(self.num_batches_tracked)
        y, mean, var = _TrainBatchNorm.apply(x, self.weight, self.bias, self.eps)
        p = x.shape[0] * x.shape[2] * x.shape[3]
        with torch.no_grad():  # PyTorch's update: the running variance takes the unbiased batch variance
            self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            self.running_var.mul_(1 - momentum).add_(var, alpha=momentum * p / (p - 1))
        return y
