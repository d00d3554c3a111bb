"""Keep freed memory inside the process on CPU, so that training steps stop paying for page faults.

PyTorch's CPU tensors come from the C library's malloc. glibc hands every block above a threshold
(128 KiB, raised dynamically up to 32 MiB) to the kernel with mmap and gives it back with munmap
on free, and trims the heap top above another threshold. A training step frees and re-allocates
the same few-MiB activation tensors every step, so each one arrives as fresh pages the kernel must
zero and map: about 18,000 minor page faults per ResNet-20 fast-AT step at batch 128.

`keep_freed_memory()` raises both thresholds to 1 GiB (mallopt M_MMAP_THRESHOLD and
M_TRIM_THRESHOLD): freed blocks stay in the heap and the next step reuses them. The values computed
are the same; only where the memory comes from changes. The cost is that the process keeps its peak
heap size until it exits (the peak resident size did not grow in the ResNet-20 measurement).
Measured on the development VM (`benchmarks/bench_allocator.py`; benchmarks/README.md, "Keeping
freed memory, ..."): the page faults per ResNet-20 fast-AT step fall from about 15,000 to a few
hundred, and the step gets 1.16x faster with ReLU, 1.07x with KAF. This is the setting PyTorch's
CPU performance guide reaches with jemalloc or tcmalloc through LD_PRELOAD, without a new library.

Where the C library has no mallopt (macOS, Windows) nothing changes. `THESIS_KEEP_FREED_MEMORY=0`
turns it off (for A/B measurements).
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # bytes: blocks up to 1 GiB stay in the heap after free
_DONE: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks up to 1 GiB in the heap; True if it applies. Idempotent."""
    global _DONE
    if _DONE is not None:
        return _DONE
    _DONE = False
    if os.environ.get("THESIS_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # no glibc-style mallopt on this platform
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; setting either threshold also stops glibc's dynamic adjustment
    _DONE = bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)) and bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    return _DONE
