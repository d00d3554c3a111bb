"""Comparing two results folders "timing fields aside" (the kill -9 and the Ray-executor tests).

Two runs of the same experiments (one interrupted, or on another executor) must leave the same files:
JSON equal once the fields that say when, how fast or on what a file was computed are dropped, and
weights and stored adversarial examples equal bit for bit.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

# Found by diffing the results folders of two runs, one of them interrupted.
VOLATILE_KEYS = frozenset(
    {
        "wall_time_s",  # steps, training metrics, model cards, summaries
        "train_wall_time_s",  # light_cnn's summary rows
        "compute_time_s",  # summaries: sums the wall times of every invocation
        "seconds",  # per-epoch training history, attack results
        "attack_seconds",  # fast-AT summary rows
        "art_seconds",  # the cross-check against ART: both attacks' times
        "ours_seconds",
        "checksum",  # of a step's settings and result: time-dependent through the result's "seconds"
        "git_commit",
        "hardware",
    }
)


def result_files(root: Path) -> list[str]:
    """Every file of a results folder (relative paths), without the lock and temporary files."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name != ".reproduce.lock" and not p.name.endswith(".tmp")
    )


def strip_volatile(obj):
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


def assert_same_results(got: Path, want: Path, reference: str = "the reference run") -> None:
    """`got` holds the files of `want` (weights among them), equal timing fields aside."""
    files = result_files(want)
    assert result_files(got) == files
    assert any(f.endswith(".safetensors") and "/weights/" in f for f in files)
    for rel in files:
        if rel.endswith(".json"):
            same = strip_volatile(json.loads((got / rel).read_text())) == strip_volatile(
                json.loads((want / rel).read_text())
            )
            assert same, f"{rel} differs from {reference}"
        else:  # weights and the stored adversarial examples: bit for bit
            assert (got / rel).read_bytes() == (want / rel).read_bytes(), f"{rel} differs from {reference}"


def run_reproduce(command: list[str], cwd: Path, env: dict, timeout_s: float, **popen) -> subprocess.CompletedProcess:
    """One complete `reproduce` (stdout and stderr together in `.stdout`); a hung run fails the test."""
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            **popen,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"reproduce did not finish in {timeout_s} s:\n{e.stdout}")
