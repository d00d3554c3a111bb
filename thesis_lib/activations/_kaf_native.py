"""Build (once, lazily) and call the fused C kernels of the Gaussian KAF on CPU.

Two libraries: `_kaf_simd.c` (float32 and bfloat16, NCHW and channels_last / dense, written with
vector extensions) serves training and attacks; `_kaf_kernel.c` (float64, plain loops with libm's
exp) serves double-precision uses such as `gradcheck`. Each shared library is compiled on first use
with the system C compiler into a cache folder (`$THESIS_LIB_CACHE` or `~/.cache/thesis_lib`), named
by a hash of the source and flags, and loaded with ctypes: no torch headers, so the build takes well
under a second. If no compiler is found, `load()` returns None and the KAF falls back to its
pure-PyTorch path (same function, slower), with one warning.
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

__all__ = [
    "load",
    "forward",
    "backward",
    "times_derivative",
    "available",
    "load_library",
    "is_evenly_spaced",
    "uses_recurrence",
    "DTYPES",
]

_SRC = Path(__file__).with_name("_kaf_kernel.c")
_SIMD_SRC = Path(__file__).with_name("_kaf_simd.c")
# -ffast-math only when compiling: linking a shared library with it (gcc < 13) pulls in crtfastmath.o,
# which would switch the whole process to flush-denormals-to-zero the moment the library is loaded.
_CFLAGS = ["-O3", "-ffast-math", "-fopenmp", "-march=native", "-fPIC", "-std=c11"]
# The vector kernels need IEEE comparisons (NaN checks, the rounding trick of their exp): no -ffast-math.
# 512-bit vectors where the CPU has them (gcc otherwise prefers 256-bit on AVX-512 machines).
_SIMD_CFLAGS = [
    "-O3",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffp-contract=fast",
    "-fopenmp",
    "-march=native",
    "-mprefer-vector-width=512",
    "-fPIC",
    "-std=gnu11",
]
_LDFLAGS = ["-shared", "-fopenmp"]
_LIB: ctypes.CDLL | None = None
_SIMD: ctypes.CDLL | None = None
_TRIED = False
NCHUNKS = 64  # work chunks of the backward reduction; fixed, so results do not depend on threads


def _cache_dir() -> Path:
    root = os.environ.get("THESIS_LIB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "thesis_lib")
    return Path(root)


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")


def _build(source: Path = _SRC, cflags: list[str] = _CFLAGS) -> Path | None:
    cc = _compiler()
    if cc is None:
        return None
    src = source.read_bytes() + b"".join(h.read_bytes() for h in sorted(source.parent.glob("*.h")))
    tag = hashlib.sha256(src + " ".join(cflags + _LDFLAGS).encode() + cc.encode()).hexdigest()[:16]
    out = _cache_dir() / f"{source.stem.lstrip('_')}_{tag}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".so")
    os.close(fd)
    obj = tmp[:-3] + ".o"
    res = subprocess.run([cc, *cflags, "-c", str(source), "-o", obj], capture_output=True, text=True)
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
    global _LIB, _SIMD, _TRIED
    if _TRIED:
        return _LIB
    _TRIED = True
    if os.environ.get("THESIS_KAF_NATIVE", "1") == "0":
        return None
    try:
        path = _build()
        simd = _build(_SIMD_SRC, _SIMD_CFLAGS)
        if path is None or simd is None:
            if _compiler() is None:  # a failed compile has already warned with its error
                warnings.warn("no C compiler found: the KAF uses its slower pure-PyTorch path")
            return None
        lib, slib = ctypes.CDLL(str(path)), ctypes.CDLL(str(simd))
    except OSError as e:  # pragma: no cover - broken toolchain
        warnings.warn(f"could not load the fused KAF kernel ({e}); using the PyTorch path")
        return None
    i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    lib.kaf_forward_f64.argtypes = [ptr] * 5 + [i64] * 4 + [cint]
    lib.kaf_backward_f64.argtypes = [ptr] * 9 + [i64] * 5 + [cint]
    lib.kaf_forward_fast_f64.argtypes = [ptr] * 5 + [i64] * 4 + [cint]
    lib.kaf_backward_fast_f64.argtypes = [ptr] * 7 + [i64] * 5 + [cint]
    configure_simd(slib)
    _LIB, _SIMD = lib, slib
    return lib


def configure_simd(slib: ctypes.CDLL) -> None:
    """Argument types of the vector library's entry points (`_kaf_simd.c`)."""
    i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    slib.kafs_forward.argtypes = [ptr, ptr, ptr, cint] + [ptr] * 3 + [i64] * 4 + [cint, cint, ptr, ptr]
    slib.kafs_backward.argtypes = [ptr, ptr, ptr, cint] + [ptr] * 6 + [i64] * 4 + [cint, cint, i64, cint] + [ptr] * 4
    slib.kafs_uses_recurrence.argtypes = [ptr] * 3 + [i64] * 2


def available() -> bool:
    return load() is not None


_LIBRARIES: dict[Path, ctypes.CDLL | None] = {}


def load_library(source: Path, configure) -> ctypes.CDLL | None:
    """Another vector-kernel library built like `_kaf_simd.c` (same switch, toolchain and flags), or None.

    Built, loaded and passed to `configure(lib)` (which sets the argument types) once per process;
    a failure is remembered too."""
    if source not in _LIBRARIES:
        lib = None
        if available():
            path = _build(source, _SIMD_CFLAGS)
            if path is not None:
                lib = ctypes.CDLL(str(path))
                configure(lib)
        _LIBRARIES[source] = lib
    return _LIBRARIES[source]


def _p(t: torch.Tensor | None):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


_DTYPE_CODE = {torch.float32: 0, torch.bfloat16: 1}
DTYPES = (torch.float32, torch.bfloat16, torch.float64)


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


def forward(
    x3: torch.Tensor,
    alpha: torch.Tensor,
    dictionary: torch.Tensor,
    gamma: torch.Tensor,
    fast: bool = False,
    derivative: bool = False,
    in_affine: tuple[torch.Tensor, torch.Tensor] | None = None,
):
    """x3: contiguous (outer, C, inner) float32, bfloat16 or float64; parameters contiguous (C, D),
    (C, D), (C,) in float32 (float64 for a float64 x3). `fast`: the dictionary is evenly spaced.

    With `derivative` (float32/bfloat16 only) returns (y, dy/dx), both from one pass. `in_affine`
    (float32/bfloat16 only): (scale, shift), contiguous float32 (C,); the KAF is applied to
    x * scale + shift (a BatchNorm fused into it), and dy/dx is for that input."""
    load()
    outer, C, inner = x3.shape
    D = alpha.shape[1]
    y = torch.empty_like(x3)
    nt = torch.get_num_threads()
    if x3.dtype == torch.float64:
        if derivative:
            raise ValueError("the float64 KAF kernel has no value-and-derivative pass")
        kind = "forward_fast" if fast else "forward"
        getattr(_LIB, f"kaf_{kind}_f64")(_p(x3), _p(y), _p(alpha), _p(dictionary), _p(gamma), outer, C, inner, D, nt)
        return y
    dy = torch.empty_like(x3) if derivative else None
    isc, ish = in_affine if in_affine is not None else (None, None)
    rc = _SIMD.kafs_forward(
        _p(x3),
        _p(y),
        _p(dy),
        _DTYPE_CODE[x3.dtype],
        _p(alpha),
        _p(dictionary),
        _p(gamma),
        outer,
        C,
        inner,
        D,
        int(fast),
        nt,
        _p(isc),
        _p(ish),
    )
    if rc != 0:
        raise MemoryError(f"the KAF kernel could not allocate its coefficient tables (C={C}, D={D})")
    return (y, dy) if derivative else y


def times_derivative(gy: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """dL/dx = gy * dy/dx for an activation that kept its derivative d, in d's (= x's) memory format."""
    gx = torch.empty_like(d)
    return torch.mul(gy.to(d.dtype), d, out=gx)


def backward(
    x3, gy3, alpha, dictionary, gamma, need_x: bool, need_free: bool, fast: bool = False, in_affine=None, bn_mean=None
):
    """Returns (grad_x3 or None, grad_alpha, grad_dict or None, grad_gamma or None, bn_sums or None).

    Parameter gradients are in the parameters' dtype (float32 for float32/bfloat16 inputs). With the
    parameters frozen (attacks) the forward keeps dy/dx instead and this pass is not needed.
    `in_affine`: as in `forward` (float32/bfloat16); grad_x3 is then for x * scale + shift.
    `bn_mean` (channels-innermost x3, with `in_affine` and need_x): the fused BatchNorm's batch mean; then
    bn_sums are its backward's sums, (chunks, 2, C) float64, for `_batchnorm_simd.c`'s bn_backward."""
    load()
    outer, C, inner = x3.shape
    D = alpha.shape[1]
    units = outer if (inner == 1 and x3.dtype != torch.float64) else outer * C
    nchunks = max(1, min(NCHUNKS, units))
    gx = torch.empty_like(x3) if need_x else None
    pa = torch.zeros(nchunks, C, D, dtype=torch.float64)
    pd = torch.zeros(nchunks, C, D, dtype=torch.float64) if need_free else None
    pg = torch.zeros(nchunks, C, dtype=torch.float64) if need_free else None
    pz = torch.zeros(nchunks, 2, C, dtype=torch.float64) if bn_mean is not None else None
    nt = torch.get_num_threads()
    if x3.dtype == torch.float64:
        if fast and not need_free:
            _LIB.kaf_backward_fast_f64(
                _p(x3), _p(gy3), _p(alpha), _p(dictionary), _p(gamma), _p(gx), _p(pa), outer, C, inner, D, nchunks, nt
            )
        else:
            _LIB.kaf_backward_f64(
                _p(x3),
                _p(gy3),
                _p(alpha),
                _p(dictionary),
                _p(gamma),
                _p(gx),
                _p(pa),
                _p(pd),
                _p(pg),
                outer,
                C,
                inner,
                D,
                nchunks,
                nt,
            )
    else:
        rc = _SIMD.kafs_backward(
            _p(x3),
            _p(gy3),
            _p(gx),
            _DTYPE_CODE[x3.dtype],
            _p(alpha),
            _p(dictionary),
            _p(gamma),
            _p(pa),
            _p(pd),
            _p(pg),
            outer,
            C,
            inner,
            D,
            int(fast),
            int(need_free),
            nchunks,
            nt,
            _p(in_affine[0] if in_affine is not None else None),
            _p(in_affine[1] if in_affine is not None else None),
            _p(bn_mean),
            _p(pz),
        )
        if rc != 0:
            raise MemoryError(f"the KAF kernel could not allocate its work buffers (C={C}, D={D})")
    dt = alpha.dtype
    return (
        gx,
        pa.sum(0).to(dt),
        pd.sum(0).to(dt) if need_free else None,
        pg.sum(0).to(dt) if need_free else None,
        pz,
    )


def uses_recurrence(alpha: torch.Tensor, dictionary: torch.Tensor, gamma: torch.Tensor) -> bool:
    """Whether the float32/bfloat16 kernels evaluate these (float32) parameters by the 3-exp recurrence."""
    load()
    a, d, g = (t.detach().float().contiguous() for t in (alpha, dictionary, gamma))
    return bool(_SIMD.kafs_uses_recurrence(_p(a), _p(d), _p(g), a.shape[0], a.shape[1]))


if __name__ == "__main__":  # pragma: no cover - `python -m thesis_lib.activations._kaf_native` builds it
    print("fused KAF kernel:", "available" if available() else "NOT available", file=sys.stderr)
