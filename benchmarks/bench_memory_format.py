"""Benchmark: NCHW vs channels_last for an attack's input-gradient step on CPU (or CUDA).

One step = forward, cross-entropy, gradient with respect to the input (parameters frozen, eval
mode), which is what every PGD iteration costs. The two layouts are interleaved and the best of
`--repeats` timed steps is reported, as NCHW seconds / channels_last seconds (> 1: channels_last is
faster). `thesis_lib.attacks.context.prefers_channels_last` encodes the result: channels_last on CPU
only when every activation is pointwise.

    python benchmarks/bench_memory_format.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from thesis_lib import build_model
from thesis_lib.attacks.context import prefers_channels_last

MODELS = (("light_cnn", dict(width=16), 256), ("light_cnn", {}, 256), ("vgg", {}, 64), ("resnet20", {}, 64))
ACTIVATIONS = ("relu", "swish", "kwta", "kaf")


def step_time(model, x, y, fmt, repeats):
    model = model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    best = float("inf")
    for i in range(repeats + 1):  # the first step warms up
        t0 = time.perf_counter()
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y), xr)
        if x.is_cuda:
            torch.cuda.synchronize()
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"# input-gradient step, device {dev}, torch threads {torch.get_num_threads()}")
    print(f"{'model':>22} | {'activation':>10} | {'nchw_s':>8} | {'cl_s':>8} | nchw/cl | auto rule")
    for arch, kw, batch in MODELS:
        for act in ACTIVATIONS:
            torch.manual_seed(0)
            model = build_model(arch, act, **kw).to(dev).eval().requires_grad_(False)
            x = torch.rand(batch, 3, 32, 32, device=dev)
            y = torch.randint(0, 10, (batch,), device=dev)
            t = {"nchw": [], "cl": []}
            for _ in range(2):  # interleave so that machine load hits both alike
                t["nchw"].append(step_time(model, x, y, torch.contiguous_format, args.repeats))
                t["cl"].append(step_time(model, x, y, torch.channels_last, args.repeats))
            a, b = min(t["nchw"]), min(t["cl"])
            name = arch + (f" width {kw['width']}" if kw else "")
            rule = "channels_last" if prefers_channels_last(model, dev) else "nchw"
            print(f"{name:>22} | {act:>10} | {a:8.4f} | {b:8.4f} | {a / b:7.2f} | {rule}", flush=True)


if __name__ == "__main__":
    main()
