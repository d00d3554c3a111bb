"""Benchmark: training-mode BatchNorm on CPU, thesis_lib's vector kernels vs PyTorch's, channels_last.

For the BatchNorm shapes of ResNet-20 at batch 128 (16 channels at 32x32, 32 at 16x16, 64 at 8x8),
in float32 and bfloat16: one forward (batch statistics + normalisation) and one backward (input,
weight and bias gradients), timed for `thesis_lib.models.BatchNorm2d` and for `nn.BatchNorm2d` on the
same tensors, and the same for BatchNorm followed by ReLU (fused into the BatchNorm, as `train` does
on CPU, vs `nn.BatchNorm2d` then `nn.ReLU`), interleaved round by round. The median of the rounds is
reported with the ratio PyTorch / thesis_lib (> 1: the vector kernels are faster), and the effective
memory bandwidth of the kernels' passes (forward: x read twice, y written; backward: x and gy read
twice, gx written).

    OMP_NUM_THREADS=2 python benchmarks/bench_batchnorm.py [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _report import write_json
from torch import nn

from thesis_lib.activations.fixed import ReLU
from thesis_lib.allocator import keep_freed_memory
from thesis_lib.models.batchnorm import BatchNorm2d, native_available

SHAPES = ((128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8))


def timed(bn: nn.Module, x: torch.Tensor, gy: torch.Tensor, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        torch.autograd.grad(bn(x), [x, *bn.parameters()], gy)
    return (time.perf_counter() - t) / reps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=10, help="forward + backward passes per round")
    p.add_argument("--json", default="")
    args = p.parse_args()
    if not native_available():
        raise SystemExit("the vector BatchNorm kernels are not available (no C compiler?)")
    keep_freed_memory()  # as training does
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for shape in SHAPES:
            g = torch.Generator().manual_seed(0)
            x = torch.randn(shape, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
            x.requires_grad_(True)
            gy = torch.randn(shape, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
            fused = BatchNorm2d(shape[1])
            fused.activation = ReLU()
            mods = {
                "thesis_lib": BatchNorm2d(shape[1]),
                "pytorch": nn.BatchNorm2d(shape[1]),
                "thesis_lib_relu": fused,
                "pytorch_relu": nn.Sequential(nn.BatchNorm2d(shape[1]), nn.ReLU()),
            }
            times = {k: [] for k in mods}
            for m in mods.values():
                timed(m, x, gy, 2)  # warm-up (and the first build of the kernels)
            for _ in range(args.rounds):
                for k, m in mods.items():
                    times[k].append(timed(m, x, gy, args.reps))
            med = {k: statistics.median(v) for k, v in times.items()}
            nbytes = x.numel() * x.element_size()
            row = {
                "shape": list(shape),
                "dtype": str(dtype).replace("torch.", ""),
                "thesis_lib_ms": round(med["thesis_lib"] * 1e3, 3),
                "pytorch_ms": round(med["pytorch"] * 1e3, 3),
                "speedup": round(med["pytorch"] / med["thesis_lib"], 2),
                "thesis_lib_relu_ms": round(med["thesis_lib_relu"] * 1e3, 3),
                "pytorch_relu_ms": round(med["pytorch_relu"] * 1e3, 3),
                "relu_speedup": round(med["pytorch_relu"] / med["thesis_lib_relu"], 2),
                # 8 tensor passes in all (3 forward, 5 backward)
                "thesis_lib_gb_per_s": round(8 * nbytes / med["thesis_lib"] / 1e9, 1),
            }
            rows.append(row)
            print(row, flush=True)
    write_json(args.json, {"rows": rows}, args)


if __name__ == "__main__":
    main()
