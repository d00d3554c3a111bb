"""keep_freed_memory: freed tensors are reused instead of coming back as fresh pages."""

import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, torch
from thesis_lib.allocator import keep_freed_memory
print(int(keep_freed_memory()))
def step():  # like a training step: ten 4 MB tensors alive at once, then all freed
    return [torch.ones(1_000_000) for _ in range(10)]
for _ in range(3):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""


def _faults(env_value: str) -> tuple[bool, int]:
    env = {"THESIS_KEEP_FREED_MEMORY": env_value, "OMP_NUM_THREADS": "1", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "1", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_freed_tensors_are_reused_without_page_faults():
    applied, kept = _faults("1")
    off_applied, default = _faults("0")
    assert applied and not off_applied
    # by default glibc trims the freed heap top, and the next step faults thousands of pages back in
    assert default > 1_000, default
    assert kept < default / 10, (kept, default)


def test_keep_freed_memory_is_idempotent():
    from thesis_lib.allocator import keep_freed_memory

    assert keep_freed_memory() == keep_freed_memory()
