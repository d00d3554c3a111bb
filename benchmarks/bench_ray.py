"""Benchmark: `reproduce` in-process against `reproduce --executor ray` on this machine.

Both run the same selection (default: the smoke profile of `resnet20_at`, i.e. 2 range tests, 8 fast-AT
training runs and their evaluations) from an empty results folder and an empty checkpoint cache, in a
subprocess each, interleaved `--repeats` times; the wall time includes Python and (for Ray) the start of
a local Ray with `--ray-cpus` CPUs. In-process uses `--threads` torch threads; each Ray task gets one
CPU and one torch thread, so on a CPU-only machine the comparison is "one run with N threads" against
"N runs side by side with one thread each". With `--threads 1` the results of the two are checked equal
(timing fields aside, as tests/test_ray_executor.py does); with more threads the float sums of the
convolutions run in another order, so they are not bitwise equal.

    OMP_NUM_THREADS=2 python benchmarks/bench_ray.py [--profile smoke] [--only resnet20_at] [--repeats 1]
                                                    [--threads 2] [--ray-cpus 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from results_compare import assert_same_results  # noqa: E402


def _run(args, executor: str, root: Path, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), THESIS_NO_PROGRESS="1", RAY_USAGE_STATS_ENABLED="0")
    command = [sys.executable, "-m", "thesis_lib", "reproduce", "--profile", args.profile, "--only", args.only]
    command += ["--results-dir", str(root / "results"), "--cache-dir", str(root / "cache")]
    if executor == "ray":
        command = [sys.executable, "-c", _RAY_DRIVER, str(args.ray_cpus), *command[3:]]
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{executor} run failed:\n{proc.stdout[-3000:]}")
    return wall


# A local Ray with a fixed number of CPUs (ray.init(num_cpus=N)), then the reproduce CLI with the ray executor.
_RAY_DRIVER = """
import sys, ray
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, log_to_driver=False)
from thesis_lib.cli import main
sys.exit(main(sys.argv[2:] + ["--executor", "ray", "--address", ray.get_runtime_context().gcs_address]))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="smoke")
    p.add_argument("--only", default="resnet20_at")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the in-process run")
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (one per task)")
    p.add_argument("--json", default="")
    args = p.parse_args()
    times: dict[str, list[float]] = {"inprocess": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            roots = {}
            for executor in ("inprocess", "ray"):
                roots[executor] = Path(tmp) / f"{executor}-{r}"
                threads = args.threads if executor == "inprocess" else 1
                times[executor].append(_run(args, executor, roots[executor], threads))
                print(f"round {r + 1}: {executor:9s} {times[executor][-1]:7.1f} s", flush=True)
            if args.threads == 1:  # with more threads the convolutions' sums run in another order: not bitwise
                assert_same_results(roots["ray"] / "results", roots["inprocess"] / "results", "the in-process run")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.profile} --only {args.only}: in-process ({args.threads} threads) {med['inprocess']:.1f} s, "
        f"ray ({args.ray_cpus} CPUs, 1 thread per task) {med['ray']:.1f} s, "
        f"speed-up {med['inprocess'] / med['ray']:.2f}x" + (" (results equal)" if args.threads == 1 else "")
    )
    write_json(args.json, {"seconds": times, "median_s": med, "speedup": med["inprocess"] / med["ray"]}, args)


if __name__ == "__main__":
    main()
