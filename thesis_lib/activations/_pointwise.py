"""ELU, Swish, GELU, softplus and tanh on CPU through the vector kernels of `_pointwise_simd.c`
(float32 and bfloat16).

Built and cached like the KAF kernels (`_kaf_native`). When a gradient is wanted, the forward kernel
also writes the derivative f'(x) and autograd keeps it instead of x (the same memory): backward is then
one multiplication, as cheap as ReLU's, instead of a second evaluation of the exponentials.
`apply(name, x, alpha)` returns None when the fast path does not apply (another device or dtype, a
non-dense tensor, no C compiler): callers then use PyTorch's own function, which computes the same
values.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

import thesis_lib.activations._kaf_native as _kaf_native  # the module, not through the package

__all__ = ["apply", "NAMES"]

NAMES = ("elu", "swish", "gelu", "softplus", "tanh")
_SRC = Path(__file__).with_name("_pointwise_simd.c")
_CODES = _kaf_native._DTYPE_CODE  # float32 / bfloat16 codes of the shared loads and stores (_simd.h)
_p = _kaf_native._p


def _configure(lib: ctypes.CDLL) -> None:
    ptr, i64, cint, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
    for name in NAMES:
        getattr(lib, f"{name}_forward").argtypes = [ptr, ptr, cint, i64, f32, cint]
        getattr(lib, f"{name}_forward_d").argtypes = [ptr, ptr, ptr, cint, i64, f32, cint]


def _load() -> ctypes.CDLL | None:
    return _kaf_native.load_library(_SRC, _configure)  # same switch (THESIS_KAF_NATIVE=0) and toolchain as the KAF


def _dense(x: torch.Tensor) -> bool:
    return x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))


class _Pointwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, name: str, alpha: float):
        y = torch.empty_like(x)  # keeps x's memory format
        code, n, nt = _CODES[x.dtype], x.numel(), torch.get_num_threads()
        if ctx.needs_input_grad[0]:
            d = torch.empty_like(x)
            getattr(_load(), f"{name}_forward_d")(_p(x), _p(y), _p(d), code, n, alpha, nt)
            ctx.save_for_backward(d)
        else:
            getattr(_load(), f"{name}_forward")(_p(x), _p(y), code, n, alpha, nt)
        return y

    @staticmethod
    def backward(ctx, gy):
        (d,) = ctx.saved_tensors
        return _kaf_native.times_derivative(gy, d), None, None


def apply(name: str, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor | None:
    """`name` (one of `NAMES`) of x by the vector kernel, or None where it does not apply."""
    if x.device.type != "cpu" or x.dtype not in _CODES or not _dense(x) or x.numel() == 0 or _load() is None:
        return None
    return _Pointwise.apply(x, name, float(alpha))
