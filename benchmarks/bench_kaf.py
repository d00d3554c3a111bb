"""Benchmark: KAF-ResNet-20 vs ReLU-ResNet-20 training step (time and peak memory).

One SGD step (forward, cross-entropy, backward, update) at batch 128 on CIFAR-sized inputs, for
  - relu:       the baseline,
  - kaf:        thesis_lib's KAF (fused C kernels on CPU, saves only its input),
  - kaf_naive:  the KAF written the obvious way (broadcast against the D = 20 dictionary,
                exponentiate, sum: what the KAF paper's code does), as a reference line.
Time: the configurations are interleaved step by step (so that load from other processes hits
all of them alike) and the median step is reported. Memory: each configuration runs in a fresh
subprocess; CPU reports the growth of the process's peak resident memory over the step (VmHWM)
and the bytes autograd keeps for backward; CUDA reports torch.cuda.max_memory_allocated.
Ratios are against relu measured in the same run.

    python benchmarks/bench_kaf.py [--device cpu|cuda] [--steps 7] [--batch 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from thesis_lib import build_model
from thesis_lib.activations import KAF, kaf_reference
from thesis_lib.utils import hardware_info

CONFIGS = ("relu", "kaf", "kaf_naive")


def make_model(config: str, arch: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, "relu" if config == "relu" else "kaf")
    if config == "kaf_naive":
        for m in model.modules():
            if isinstance(m, KAF):  # the obvious formula, differentiated by autograd
                m.forward = (lambda mod: lambda x: kaf_reference(x, mod.alpha, mod.dictionary, mod.gamma))(m)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model.train()


def make_step(model, device):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(ARGS.batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (ARGS.batch,), generator=g).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(device) -> dict:
    configs = [c for c in CONFIGS if c != "kaf_naive" or ARGS.naive_steps > 0]
    steps = {c: make_step(make_model(c, ARGS.arch, device), device) for c in configs}
    times = {c: [] for c in configs}
    for c in configs:  # warm-up: builds the C kernel, allocator caches, cuDNN plans
        steps[c]()
    for i in range(ARGS.steps):
        for c in configs:
            if c == "kaf_naive" and i >= ARGS.naive_steps:
                continue
            sync(device)
            t0 = time.perf_counter()
            steps[c]()
            sync(device)
            times[c].append(time.perf_counter() - t0)
    return {c: statistics.median(v) for c, v in times.items()}


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


def memory_child(config: str, device: torch.device) -> dict:
    """Runs in a fresh process: peak memory of one training step of `config`."""
    model = make_model(config, ARGS.arch, device)
    step = make_step(model, device)
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_kib("VmRSS") * 1024
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _rss_kib("VmHWM") * 1024 - base
    return {"peak_bytes": peak, "saved_for_backward_bytes": saved[0]}


def measure_memory(device) -> dict:
    out = {}
    for c in CONFIGS:
        if c == "kaf_naive" and ARGS.naive_steps == 0:
            continue
        cmd = [
            sys.executable,
            __file__,
            "--memory-child",
            c,
            "--device",
            str(device),
            "--batch",
            str(ARGS.batch),
            "--arch",
            ARGS.arch,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
        out[c] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def main():
    device = torch.device(ARGS.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if ARGS.memory_child:
        print(json.dumps(memory_child(ARGS.memory_child, device)))
        return
    print(f"# {ARGS.arch} training step, batch {ARGS.batch}, device {device}, torch threads {torch.get_num_threads()}")
    t = time_steps(device)
    mem = measure_memory(device)
    rows = []
    for c in t:
        rows.append(
            {
                "config": c,
                "step_s": round(t[c], 4),
                "time_vs_relu": round(t[c] / t["relu"], 2),
                "peak_MiB": round(mem[c]["peak_bytes"] / 2**20, 1),
                "peak_vs_relu": round(mem[c]["peak_bytes"] / mem["relu"]["peak_bytes"], 2),
                "saved_MiB": round(mem[c]["saved_for_backward_bytes"] / 2**20, 1),
                "saved_vs_relu": round(mem[c]["saved_for_backward_bytes"] / mem["relu"]["saved_for_backward_bytes"], 2),
            }
        )
    header = list(rows[0])
    print(" | ".join(f"{h:>13}" for h in header))
    for r in rows:
        print(" | ".join(f"{str(r[h]):>13}" for h in header))
    result = {
        "arch": ARGS.arch,
        "batch": ARGS.batch,
        "steps": ARGS.steps,
        "rows": rows,
        "hardware": hardware_info(device),
    }
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(result, f, indent=2)
    kaf = next(r for r in rows if r["config"] == "kaf")
    print(
        f"KAF / ReLU: time {kaf['time_vs_relu']}x (target <= 2.0x, goal 1.5x), "
        f"peak memory {kaf['peak_vs_relu']}x (target <= 1.5x)"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None)
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=7, help="timed steps per configuration")
    p.add_argument("--naive-steps", type=int, default=2, help="timed steps of the (slow) naive KAF; 0 skips it")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    ARGS = p.parse_args()
    main()
