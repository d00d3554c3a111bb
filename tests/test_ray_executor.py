"""The Ray executor of `reproduce`: the smoke profile of two experiments through a local Ray (two CPUs) gives
the in-process executor's results, also when a task is killed mid-run (Ray re-runs it, the re-run resumes).

The experiments: `adversarial_examples` and its requirement `light_cnn` (three training runs, which become
three training tasks, then one evaluation task per network; 21 cached steps, exported weights). The
reference is an in-process `reproduce` in a subprocess, as in test_crash_safety.py; both sides use one
torch thread, so weights compare bit for bit.
Skipped without Ray (`pip install '.[ray]'`), except the one-sentence error for a missing Ray.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from results_compare import assert_same_results, run_reproduce

from thesis_lib.cli import main as cli_main
from thesis_lib.experiments.executors import run_profile
from thesis_lib.experiments.ray_executor import KILL_ONCE_ENV, training_resources
from thesis_lib.utils import ThesisError

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
EXPERIMENT = "adversarial_examples"  # requires light_cnn
TIMEOUT_S = 300  # one reproduce; a hung run fails the test instead of blocking CI
# One torch thread on both sides (bitwise-equal weights); no usage report from Ray (tests stay offline).
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def _env(**extra) -> dict:
    env = dict(os.environ)
    env.update(ENV, THESIS_NO_PROGRESS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _reproduce(results: Path, cache: Path, *options: str, **env) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "thesis_lib", "reproduce", "--profile", PROFILE, "--only", EXPERIMENT]
    command += ["--results-dir", str(results), "--cache-dir", str(cache), *options]
    return run_reproduce(command, ROOT, _env(**env), TIMEOUT_S)


def _assert_same_results(got: Path, want: Path) -> None:
    assert_same_results(got, want, "the in-process run")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, offline_cifar) -> Path:
    """The in-process executor's results, from an empty results folder and checkpoint cache."""
    root = tmp_path_factory.mktemp("inprocess")
    proc = _reproduce(root / "results", root / "cache")
    assert proc.returncode == 0, proc.stdout
    return root / "results"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of two CPUs for the module (its workers single-threaded, like the reference); its address."""
    ray = pytest.importorskip("ray")
    before = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)  # the workers inherit the environment Ray starts with
    try:
        ray.init(num_cpus=2, include_dashboard=False)
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_ray_executor_gives_the_inprocess_results(local_ray, reference, tmp_path, capsys):
    results = tmp_path / "results"
    summaries = run_profile(PROFILE, [EXPERIMENT], executor="ray", results_dir=results, cache_dir=tmp_path / "cache")
    assert list(summaries) == [EXPERIMENT]
    assert summaries[EXPERIMENT]["status"] == "complete"
    _assert_same_results(results, reference)
    # Finished: nothing runs again, not even a task. Ray forwards the tasks' own output to the driver
    # asynchronously, so lines of the first run's tasks (prefixed "(... pid=N)") may still arrive during the
    # second run: the test reads the driver's lines only, and checks that no result file was written again.
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(results.rglob("*")) if p.is_file()}
    capsys.readouterr()
    run_profile(PROFILE, [EXPERIMENT], executor="ray", results_dir=results, cache_dir=tmp_path / "cache")
    driver = [line for line in capsys.readouterr().out.splitlines() if "pid=" not in line]
    assert not any("running" in line for line in driver)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(results.rglob("*")) if p.is_file()} == files


def test_killed_task_is_retried_and_gives_the_same_results(local_ray, reference, tmp_path):
    """`reproduce --executor ray --address ...`, one of light_cnn's evaluation tasks killed (SIGKILL) after
    its first step: Ray re-runs it, the re-run reads that step back, and the results are the in-process ones."""
    results, marker = tmp_path / "results", tmp_path / "killed"
    proc = _reproduce(
        results, tmp_path / "cache", "--executor", "ray", "--address", local_ray, **{KILL_ONCE_ENV: str(marker)}
    )
    assert proc.returncode == 0, proc.stdout
    assert marker.is_file(), f"no task was killed:\n{proc.stdout}"
    assert all(f"evaluate light_cnn/{act}" in proc.stdout for act in ("relu", "kwta", "kaf")), proc.stdout
    steps = [f for f in (results / PROFILE / "light_cnn").glob("*.json") if f.name != "summary.json"]
    killed_at = marker.stat().st_mtime_ns
    assert any(f.stat().st_mtime_ns <= killed_at for f in steps)  # stored before the kill, then reused
    assert "Traceback" not in proc.stdout
    _assert_same_results(results, reference)


def test_an_error_in_a_task_is_raised_as_in_process(local_ray, tmp_path, monkeypatch):
    """A ThesisError of a training task (here: no data) reaches the caller as itself, not retried, and
    cancels no task: the other training tasks fail at the same moment, and Ray's cancel of a finishing
    task can abort the driver (here: pytest)."""
    import ray

    cancelled = []
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: cancelled.append(ref))
    with pytest.raises(ThesisError, match="No CIFAR-10 found"):
        run_profile(PROFILE, ["light_cnn"], executor="ray", results_dir=tmp_path, data=str(tmp_path / "none.tar.gz"))
    assert cancelled == []


def test_missing_ray_is_one_sentence(tmp_path):
    # In a subprocess: hiding `ray` from a process where Ray runs (the module's local Ray) breaks Ray there.
    code = "import sys; sys.modules['ray'] = None; from thesis_lib.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["reproduce", "--only", "light_cnn", "--results-dir", str(tmp_path), "--executor", "ray"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "The ray executor needs Ray" in err and "pip install" in err, err
    assert not (tmp_path / PROFILE).exists()  # nothing ran


def test_executor_options_are_checked(tmp_path, capsys):
    argv = ["reproduce", "--only", "light_cnn", "--results-dir", str(tmp_path), "--address", "auto"]
    assert cli_main(argv) == 2
    assert "--executor ray" in capsys.readouterr().err
    with pytest.raises(ThesisError, match="Unknown executor 'dask'"):
        run_profile(PROFILE, ["light_cnn"], executor="dask", results_dir=tmp_path)


def test_gpu_shares():
    assert training_resources("full", {"arch": "resnet56"}, gpus=True)["num_gpus"] == 1
    assert training_resources("full", {"arch": "resnet20"}, gpus=True)["num_gpus"] == 0.25
    assert training_resources("smoke", {"arch": "resnet56"}, gpus=True)["num_gpus"] == 0.25
    assert training_resources("full", {"arch": "resnet56"}, gpus=False) == {"num_cpus": 1, "num_gpus": 0}
