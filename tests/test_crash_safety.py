"""Crash safety of `reproduce`: killed at any moment it resumes to the same results, and damaged result
files are named, recomputed and never silently used.

Every run is a real `python -m thesis_lib reproduce --profile smoke --only adversarial_examples` in a
subprocess (light_cnn first: three training runs, 21 cached steps and the exported weights; then the
adversarial examples), about 10 s on a 2-core CPU with one thread. One uninterrupted run is the
reference of the whole module; the other tests work on copies of it or start from nothing.
(The results-folder lock has its own test in test_experiments.py.)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from results_compare import assert_same_results, run_reproduce

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
EXPERIMENT = "adversarial_examples"  # requires light_cnn
TIMEOUT_S = 300  # one reproduce; a hung run fails the test instead of blocking CI


@dataclass(frozen=True)
class Run:
    results: Path
    cache: Path
    log: str
    wall_s: float


def _env(cache: Path) -> dict:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        THESIS_NO_PROGRESS="1",
        THESIS_RUNS_CACHE=str(cache),
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
    )
    return env


def _command(results: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "thesis_lib",
        "reproduce",
        "--profile",
        PROFILE,
        "--only",
        EXPERIMENT,
        "--results-dir",
        str(results),
        "--cache-dir",
        str(cache),
    ]


def _start(results: Path, cache: Path, log_file) -> subprocess.Popen:
    # Own session: the kill reaches the whole process group, as a lost SSH session or OOM killer would.
    return subprocess.Popen(
        _command(results, cache),
        cwd=ROOT,
        env=_env(cache),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _reproduce(results: Path, cache: Path) -> subprocess.CompletedProcess:
    """One complete `reproduce`; stdout and stderr together in `.stdout`."""
    return run_reproduce(_command(results, cache), ROOT, _env(cache), TIMEOUT_S, start_new_session=True)


def _assert_same_results(got: Path, want: Path) -> None:
    assert_same_results(got, want, "the uninterrupted run")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, offline_cifar) -> Run:
    """An uninterrupted run from an empty results folder and an empty checkpoint cache."""
    root = tmp_path_factory.mktemp("reference")
    results, cache = root / "results", root / "cache"
    t0 = time.perf_counter()
    proc = _reproduce(results, cache)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout
    return Run(results, cache, proc.stdout, wall)


def _copy(run: Run, dest: Path) -> Run:
    shutil.copytree(run.results, dest / "results")
    shutil.copytree(run.cache, dest / "cache")
    return Run(dest / "results", dest / "cache", "", 0.0)


# ------------------------------------------------------------------------------------------- kill -9
def test_killed_at_random_moments_resumes_to_the_same_results(reference, tmp_path):
    """SIGKILL at seeded random moments, restart the same command until it completes: same results."""
    results, cache = tmp_path / "results", tmp_path / "cache"
    rng = random.Random(1234)
    # Kill moments scale with this machine's speed: between a quarter and 60% of an uninterrupted run
    # (the first second or so is interpreter start-up), so that most kills land in the middle of work.
    delays = [rng.uniform(0.25, 0.6) * reference.wall_s for _ in range(4)]
    attempts = []  # (delay or None, killed, log) per start
    for delay in [*delays, None]:
        log_path = tmp_path / f"attempt-{len(attempts)}.log"
        with open(log_path, "wb") as log_file:
            proc = _start(results, cache, log_file)
            try:
                rc = proc.wait(timeout=delay if delay is not None else TIMEOUT_S)
                killed = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                killed = True
            finally:
                if proc.poll() is None:  # interrupted test: leave no orphan behind
                    _kill_group(proc)
        log = log_path.read_text(errors="replace")
        attempts.append((delay, killed, log))
        if not killed:
            assert rc == 0, log
            break
        assert delay is not None, f"the last start did not finish in {TIMEOUT_S} s:\n{log}"

    story = "\n".join(
        f"--- start {i} (kill after {'-' if d is None else f'{d:.1f} s'}, killed: {k}):\n{lg}"
        for i, (d, k, lg) in enumerate(attempts)
    )
    assert sum(k for _, k, _ in attempts) >= 2, f"fewer than two kills landed during a run:\n{story}"
    assert "Traceback" not in story
    _assert_same_results(results, reference.results)


# -------------------------------------------------------------------------------------- damaged files
def _lines_naming(log: str, path: Path) -> list[str]:
    return [line for line in log.splitlines() if path.name in line]


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # what a power cut during a non-atomic write leaves


@pytest.mark.parametrize("victim", ["light_cnn/pgd_relu.json", "light_cnn/training/kwta.json"])
def test_truncated_result_file_is_named_and_recomputed(reference, tmp_path, victim):
    run = _copy(reference, tmp_path)
    path = run.results / PROFILE / victim
    _truncate(path)
    proc = _reproduce(run.results, run.cache)
    assert proc.returncode == 0, proc.stdout
    assert "Traceback" not in proc.stdout
    assert _lines_naming(proc.stdout, path), f"no sentence names the truncated {victim}:\n{proc.stdout}"
    _assert_same_results(run.results, reference.results)  # recomputed, not left truncated


def test_hand_edited_step_file_is_named_and_recomputed(reference, tmp_path):
    run = _copy(reference, tmp_path)
    path = run.results / PROFILE / "light_cnn" / "pgd_text_relu.json"
    stored = json.loads(path.read_text())
    stored["result"]["robust_acc"] = 0.987654  # a plausible number, valid JSON, same settings
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    proc = _reproduce(run.results, run.cache)
    assert proc.returncode == 0, proc.stdout
    assert "Traceback" not in proc.stdout
    assert _lines_naming(proc.stdout, path), f"no sentence names the edited {path.name}:\n{proc.stdout}"
    _assert_same_results(run.results, reference.results)  # the edited number is gone everywhere


def test_truncated_summary_reruns_the_experiment_from_its_cached_steps(reference, tmp_path):
    run = _copy(reference, tmp_path)
    path = run.results / PROFILE / "light_cnn" / "summary.json"
    _truncate(path)
    proc = _reproduce(run.results, run.cache)
    assert proc.returncode == 0, proc.stdout
    assert "Traceback" not in proc.stdout
    assert "[light_cnn] running" in proc.stdout  # the experiment ran again ...
    recomputed = [
        line
        for line in proc.stdout.splitlines()
        if line.startswith("[light_cnn] ") and not line.startswith(("[light_cnn] running", "[light_cnn] done"))
    ]
    lines = _lines_naming(proc.stdout, path)
    assert not [line for line in recomputed if line not in lines]  # ... reusing every step and training run
    assert lines, f"no sentence names the truncated summary.json:\n{proc.stdout}"
    _assert_same_results(run.results, reference.results)


def test_hand_edited_summary_is_named_and_recomputed(reference, tmp_path):
    run = _copy(reference, tmp_path)
    path = run.results / PROFILE / "light_cnn" / "summary.json"
    stored = json.loads(path.read_text())
    assert "checksum" in stored
    stored["result"]["models"][0]["clean_acc"] = 0.987654  # plausible, valid JSON, same settings key
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    proc = _reproduce(run.results, run.cache)
    assert proc.returncode == 0, proc.stdout
    assert "Traceback" not in proc.stdout
    assert _lines_naming(proc.stdout, path), f"no sentence names the edited summary.json:\n{proc.stdout}"
    assert "0.987654" not in path.read_text()
    _assert_same_results(run.results, reference.results)
