"""keep_freed_memory: freed tensors are reused instead of coming back as fresh pages."""

import subprocess
import sys

import pytest

# glibc's default thresholds move with the allocation history (a 4 MB block may or may not be mmapped),
# so both processes first pin the static default (128 KiB), then one of them asks to keep freed memory
SCRIPT = r"""
import ctypes, resource, sys, torch
from thesis_lib.allocator import keep_freed_memory
ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: glibc's static default
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
def step():  # like a training step: ten 4 MB tensors alive at once, then all freed
    return [torch.ones(1_000_000) for _ in range(10)]
for _ in range(3):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(int(applied), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""


def _faults(mode: str) -> tuple[bool, int]:
    env = {"OMP_NUM_THREADS": "1", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "1", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_freed_tensors_are_reused_without_page_faults():
    applied, kept = _faults("keep")
    _, default = _faults("default")
    assert applied
    # 100 mmapped 4 MB tensors fault in about 100 x 1,000 pages; reused heap blocks few (the heap may grow once)
    assert default > 50_000, default
    assert kept < default / 10, (kept, default)


def test_keep_freed_memory_is_idempotent():
    from thesis_lib.allocator import keep_freed_memory

    assert keep_freed_memory() == keep_freed_memory()
