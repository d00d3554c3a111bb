"""Benchmark: training steps with and without `thesis_lib.allocator.keep_freed_memory`.

The setting is process-wide, so each measurement is a fresh process: "kept" (the default of `train`
and the attacks on CPU) and "default" (glibc's own thresholds, THESIS_KEEP_FREED_MEMORY=0),
alternated round by round so that load from elsewhere hits both alike. Each process times
`--steps` ResNet-20 fast-AT steps (batch 128, channels_last + bf16 where the CPU has it, as
bench_train.py) after 3 warm-up steps and reports the median step, the minor page faults per step
and the peak resident memory. `--epoch` adds one real fast-AT epoch through `train` per setting.

    OMP_NUM_THREADS=2 python benchmarks/bench_allocator.py [--acts relu,kaf] [--rounds 3] [--epoch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _report import write_json

CHILD = r"""
import json, resource, statistics, sys, time
sys.path.insert(0, {bench!r})
from bench_train import CONFIGS, Case
from thesis_lib.precision import cpu_has_bf16
act, steps, epoch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
out = {{}}
if epoch:
    from bench_train import measure_epochs
    out["epoch_s"] = measure_epochs([f"resnet20:{{act}}"])[0]["epoch_s"]
else:
    case = Case("resnet20", act, CONFIGS["cl_bf16" if cpu_has_bf16() else "cl"], 128, "fat")
    for _ in range(3):
        case.step()
    r0, times = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, []
    for _ in range(steps):
        t = time.perf_counter()
        case.step()
        times.append(time.perf_counter() - t)
    out["step_s"] = statistics.median(times)
    out["faults_per_step"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / steps
out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""
SETTINGS = {"kept": "1", "default": "0"}


def run(act: str, setting: str, steps: int, epoch: bool) -> dict:
    env = {**os.environ, "THESIS_KEEP_FREED_MEMORY": SETTINGS[setting], "THESIS_NO_PROGRESS": "1"}
    code = CHILD.format(bench=str(Path(__file__).parent))
    out = subprocess.run(
        [sys.executable, "-c", code, act, str(steps), "1" if epoch else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", default="relu,kaf")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--epoch", action="store_true", help="also one real fast-AT epoch per activation and setting")
    p.add_argument("--json", default="")
    args = p.parse_args()
    rows = []
    for act in args.acts.split(","):
        res = {s: [] for s in SETTINGS}
        for _ in range(args.rounds):
            for s in SETTINGS:
                res[s].append(run(act, s, args.steps, False))
        row = {"activation": act}
        for s, rs in res.items():
            row[f"{s}_step_s"] = round(statistics.median(r["step_s"] for r in rs), 5)
            row[f"{s}_faults_per_step"] = round(statistics.median(r["faults_per_step"] for r in rs), 1)
            row[f"{s}_max_rss_mb"] = round(max(r["max_rss_mb"] for r in rs), 1)
        row["speedup"] = round(row["default_step_s"] / row["kept_step_s"], 3)
        if args.epoch:
            for s in SETTINGS:
                row[f"{s}_epoch_s"] = round(run(act, s, 0, True)["epoch_s"], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_json(args.json, {"rows": rows}, args)


if __name__ == "__main__":
    main()
