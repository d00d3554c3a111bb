"""Build (once, lazily) and call the fused C kernels of the Gaussian KAF on CPU.

The shared library is compiled on first use with the system C compiler into a cache folder
(`$THESIS_LIB_CACHE` or `~/.cache/thesis_lib`), named by a hash of the source and flags, and
loaded with ctypes: no torch headers, so the build takes well under a second. If no compiler
is found, `load()` returns None and the KAF falls back to its pure-PyTorch path (same function,
slower), with one warning.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

__all__ = ["load", "forward", "backward", "available", "is_evenly_spaced"]

_SRC = Path(__file__).with_name("_kaf_kernel.c")
# -ffast-math only when compiling: linking a shared library with it (gcc < 13) pulls in crtfastmath.o,
# which would switch the whole process to flush-denormals-to-zero the moment the library is loaded.
_CFLAGS = ["-O3", "-ffast-math", "-fopenmp", "-march=native", "-fPIC", "-std=c11"]
_LDFLAGS = ["-shared", "-fopenmp"]
_LIB: ctypes.CDLL | None = None
_TRIED = False
NCHUNKS = 64  # work chunks of the backward reduction; fixed, so results do not depend on threads


def _cache_dir() -> Path:
    root = os.environ.get("THESIS_LIB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "thesis_lib")
    return Path(root)


def _build() -> Path | None:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        return None
    src = _SRC.read_bytes()
    tag = hashlib.sha256(src + " ".join(_CFLAGS + _LDFLAGS).encode() + cc.encode()).hexdigest()[:16]
    out = _cache_dir() / f"kaf_kernel_{tag}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".so")
    os.close(fd)
    obj = tmp[:-3] + ".o"
    res = subprocess.run([cc, *_CFLAGS, "-c", str(_SRC), "-o", obj], capture_output=True, text=True)
    if res.returncode == 0:
        res = subprocess.run([cc, *_LDFLAGS, obj, "-o", tmp, "-lm"], capture_output=True, text=True)
    if os.path.exists(obj):
        os.unlink(obj)
    if res.returncode != 0:
        os.unlink(tmp)
        warnings.warn(f"could not compile the fused KAF kernel ({res.stderr.strip()[:200]}); using the PyTorch path")
        return None
    os.replace(tmp, out)  # atomic: concurrent builders never load half a library
    return out


def load() -> ctypes.CDLL | None:
    """The loaded kernel library, building it on first call; None if it cannot be built."""
    global _LIB, _TRIED
    if _TRIED:
        return _LIB
    _TRIED = True
    if os.environ.get("THESIS_KAF_NATIVE", "1") == "0":
        return None
    try:
        path = _build()
        if path is None:
            warnings.warn("no C compiler found: the KAF uses its slower pure-PyTorch path")
            return None
        lib = ctypes.CDLL(str(path))
    except OSError as e:  # pragma: no cover - broken toolchain
        warnings.warn(f"could not load the fused KAF kernel ({e}); using the PyTorch path")
        return None
    i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    for suf in ("f32", "f64"):
        getattr(lib, f"kaf_forward_{suf}").argtypes = [ptr] * 5 + [i64] * 4 + [cint]
        getattr(lib, f"kaf_backward_{suf}").argtypes = [ptr] * 9 + [i64] * 5 + [cint]
        getattr(lib, f"kaf_forward_fast_{suf}").argtypes = [ptr] * 5 + [i64] * 4 + [cint]
        getattr(lib, f"kaf_backward_fast_{suf}").argtypes = [ptr] * 7 + [i64] * 5 + [cint]
    _LIB = lib
    return lib


def available() -> bool:
    return load() is not None


def _p(t: torch.Tensor | None):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def _suffix(dtype: torch.dtype) -> str:
    return {torch.float32: "f32", torch.float64: "f64"}[dtype]


def is_evenly_spaced(dictionary: torch.Tensor) -> bool:
    """True if every row of the (C, D) dictionary is evenly spaced to the precision of its dtype.

    Then the fast recurrence kernels apply (every fixed-dictionary KAF); a trained `kaf_free`
    dictionary uses the direct kernels, which evaluate each of the D exponentials.
    """
    D = dictionary.shape[1]
    if D < 3:
        return True
    d = dictionary.double()
    h = (d[:, -1:] - d[:, :1]) / (D - 1)
    ideal = d[:, :1] + h * torch.arange(D, dtype=torch.float64)
    tol = (1e-12 if dictionary.dtype == torch.float64 else 2e-6) * (h.abs() + d.abs().max(1, keepdim=True).values)
    return bool(((ideal - d).abs() <= tol).all() and (h > 0).all())


def forward(x3: torch.Tensor, alpha: torch.Tensor, dictionary: torch.Tensor, gamma: torch.Tensor,
            fast: bool = False) -> torch.Tensor:
    """x3: contiguous (outer, C, inner); parameters contiguous (C, D), (C, D), (C,), same dtype."""
    lib = load()
    outer, C, inner = x3.shape
    D = alpha.shape[1]
    y = torch.empty_like(x3)
    kind = "forward_fast" if fast else "forward"
    getattr(lib, f"kaf_{kind}_{_suffix(x3.dtype)}")(
        _p(x3), _p(y), _p(alpha), _p(dictionary), _p(gamma), outer, C, inner, D, torch.get_num_threads()
    )
    return y


def backward(x3, gy3, alpha, dictionary, gamma, need_x: bool, need_free: bool, fast: bool = False):
    """Returns (grad_x3 or None, grad_alpha, grad_dict or None, grad_gamma or None)."""
    lib = load()
    outer, C, inner = x3.shape
    D = alpha.shape[1]
    rows = outer * C
    nchunks = max(1, min(NCHUNKS, rows))
    gx = torch.empty_like(x3) if need_x else None
    pa = torch.zeros(nchunks, C, D, dtype=torch.float64)
    if fast and not need_free:
        getattr(lib, f"kaf_backward_fast_{_suffix(x3.dtype)}")(
            _p(x3), _p(gy3), _p(alpha), _p(dictionary), _p(gamma), _p(gx), _p(pa),
            outer, C, inner, D, nchunks, torch.get_num_threads(),
        )
        return gx, pa.sum(0).to(x3.dtype), None, None
    pd = torch.zeros(nchunks, C, D, dtype=torch.float64) if need_free else None
    pg = torch.zeros(nchunks, C, dtype=torch.float64) if need_free else None
    getattr(lib, f"kaf_backward_{_suffix(x3.dtype)}")(
        _p(x3), _p(gy3), _p(alpha), _p(dictionary), _p(gamma), _p(gx), _p(pa), _p(pd), _p(pg),
        outer, C, inner, D, nchunks, torch.get_num_threads(),
    )
    dt = x3.dtype
    return (
        gx,
        pa.sum(0).to(dt),
        pd.sum(0).to(dt) if need_free else None,
        pg.sum(0).to(dt) if need_free else None,
    )


if __name__ == "__main__":  # pragma: no cover - `python -m thesis_lib.activations._kaf_native` builds it
    print("fused KAF kernel:", "available" if available() else "NOT available", file=sys.stderr)
