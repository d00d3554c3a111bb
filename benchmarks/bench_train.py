"""Benchmark: training throughput of every model x activation in three numeric configurations.

For each architecture and activation, one training step at batch 128 on CIFAR-sized inputs in
  - fp32:     float32, NCHW (contiguous) tensors,
  - cl:       float32, channels_last (NHWC),
  - cl_bf16:  channels_last + bfloat16 autocast (what `train` uses on a CPU with native bf16),
as img/s, with ratios against ReLU (same architecture and configuration) and against fp32 NCHW
(same model), all measured in this run. Configurations are interleaved round by round, so load
from elsewhere hits all of them alike; the median of the rounds is reported.

"std" is a standard SGD step (forward, cross-entropy, backward, update); "fat" is a fast
adversarial-training step (FGSM-RS example with frozen parameters, then the SGD step) in the
configuration `train` picks; "epoch_s" = fat step x 391 steps (50,000 images at batch 128),
data loading excluded (on-device uint8 batches: under 1% of a step, bench_data_pipeline.py).
`--measure-epoch ARCH:ACT[,...]` times real one-epoch fast-AT runs through `train` on CIFAR-10.

How close to the machine's peak: forward multiply-accumulates of every convolution and linear
layer are counted with hooks (x2 FLOPs, x3 for forward + backward; a fast-AT step adds one
forward and one input-only backward, x5 in all), and compared with the measured throughput of a
large matrix multiply (4096^2, float32 and bfloat16) in the same run: the practical peak of
this CPU's math units as PyTorch reaches them.

    OMP_NUM_THREADS=2 python benchmarks/bench_train.py [--archs resnet20,...] [--acts relu,kaf,...]
        [--rounds 5] [--steps 2] [--json out.json] [--measure-epoch resnet20:relu,resnet20:kaf]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from _report import write_json  # benchmarks/ is on sys.path when a script runs

from thesis_lib import build_model
from thesis_lib.activations import ACTIVATIONS
from thesis_lib.allocator import keep_freed_memory
from thesis_lib.models.batchnorm import fuse_activations
from thesis_lib.precision import Precision, cpu_has_bf16
from thesis_lib.training.adversarial import fgsm_rs_perturb

CONFIGS = {
    "fp32": Precision("fp32", False, "cpu"),
    "cl": Precision("fp32", True, "cpu"),
    "cl_bf16": Precision("bf16", True, "cpu"),
}
STEPS_PER_EPOCH = 391


def count_macs(model: torch.nn.Module) -> int:
    """Forward multiply-accumulates of one image through every Conv2d and Linear."""
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            macs.append(out[0].numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1])
        else:
            macs.append(out[0].numel() * mod.in_features)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.rand(1, 3, 32, 32))
    for h in hs:
        h.remove()
    return sum(macs)


def gemm_peak(dtype: torch.dtype, n: int = 4096, reps: int = 3) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


class Case:
    def __init__(self, arch, act, prec: Precision, batch: int, kind: str):
        keep_freed_memory()  # as `train` does on CPU (THESIS_KEEP_FREED_MEMORY=0 measures without)
        torch.manual_seed(0)
        self.model = build_model(arch, act)
        fuse_activations(self.model)  # as `train` does on CPU
        self.prec, self.kind = prec, kind
        if prec.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(batch, 3, 32, 32, generator=g)
        if prec.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (batch,), generator=g)
        self.autocast = prec.autocast()
        self.times: list[float] = []

    def step(self):
        x = self.x
        if self.kind == "fat":
            x = fgsm_rs_perturb(self.model, x, self.y, 8 / 255, 10 / 255, self.autocast)
        with self.autocast():
            loss = F.cross_entropy(self.model(x).float(), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def timed(self, steps: int):
        t = time.perf_counter()
        for _ in range(steps):
            self.step()
        self.times.append((time.perf_counter() - t) / steps)


def bench_arch(arch: str, acts: list[str], args) -> list[dict]:
    configs = [c for c in args.configs if c != "cl_bf16" or cpu_has_bf16()]
    best = "cl_bf16" if "cl_bf16" in configs else "cl"
    cases = {(a, c, "std"): Case(arch, a, CONFIGS[c], args.batch, "std") for a in acts for c in configs}
    cases.update({(a, best, "fat"): Case(arch, a, CONFIGS[best], args.batch, "fat") for a in acts})
    for case in cases.values():  # warm-up: oneDNN primitive creation, kernel builds
        case.step()
    for r in range(args.rounds):
        for case in cases.values():
            case.timed(args.steps)
        print(f"  {arch}: round {r + 1}/{args.rounds}", flush=True)
    med = {k: statistics.median(c.times) for k, c in cases.items()}
    macs = count_macs(build_model(arch, "relu"))
    rows = []
    for a in acts:
        for c in configs:
            s = med[(a, c, "std")]
            rows.append(
                {
                    "arch": arch,
                    "activation": a,
                    "config": c,
                    "step_s": round(s, 5),
                    "img_per_s": round(args.batch / s, 1),
                    "vs_relu": round(s / med[("relu", c, "std")], 3) if "relu" in acts else None,
                    "speedup_vs_fp32": round(med[(a, "fp32", "std")] / s, 3) if "fp32" in configs else None,
                    "tflops": round(6 * macs * args.batch / s / 1e12, 4),
                }
            )
        f = med[(a, best, "fat")]
        rows.append(
            {
                "arch": arch,
                "activation": a,
                "config": best + "_fast_at",
                "step_s": round(f, 5),
                "img_per_s": round(args.batch / f, 1),
                "epoch_s": round(f * STEPS_PER_EPOCH, 1),
                "vs_relu": round(f / med[("relu", best, "fat")], 3) if "relu" in acts else None,
                "tflops": round(10 * macs * args.batch / f / 1e12, 4),
            }
        )
    return rows, macs


def measure_epochs(pairs: list[str]) -> list[dict]:
    from thesis_lib.training import TrainConfig, train

    out = []
    for pair in pairs:
        arch, act = pair.split(":")
        cfg = TrainConfig(arch=arch, activation=act, method="fast_at", epochs=1, lr_min=0.01, lr_max=0.2)
        m = train(cfg, verbose=False)
        out.append(
            {
                "arch": arch,
                "activation": act,
                "epoch_s": m["history"][0]["seconds"],
                "precision": m["precision"],
                "memory_format": m["memory_format"],
                "n_train": m["n_train"],
            }
        )
        print(f"  measured fast-AT epoch {arch}/{act}: {out[-1]['epoch_s']:.1f} s", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="light_cnn,vgg,resnet20,resnet56")
    p.add_argument("--acts", default=",".join(ACTIVATIONS))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per round and case")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--measure-epoch", default="", help="ARCH:ACT,... real one-epoch fast-AT runs on CIFAR-10")
    p.add_argument("--json", default="")
    args = p.parse_args()
    args.configs = args.configs.split(",")
    acts = args.acts.split(",")
    if "relu" in acts:  # the baseline first
        acts = ["relu"] + [a for a in acts if a != "relu"]
    peaks = {"fp32_gemm_tflops": round(gemm_peak(torch.float32) / 1e12, 3)}
    if cpu_has_bf16():
        peaks["bf16_gemm_tflops"] = round(gemm_peak(torch.bfloat16) / 1e12, 3)
    print("practical peak (4096^2 matmul):", peaks, flush=True)
    rows, macs = [], {}
    for arch in args.archs.split(","):
        r, macs[arch] = bench_arch(arch, acts, args)
        rows += r
    print(
        f"\n{'arch':10s} {'activation':11s} {'config':17s} {'img/s':>8s} {'vs relu':>8s} {'vs fp32':>8s} "
        f"{'epoch s':>8s} {'TFLOP/s':>8s}"
    )
    for r in rows:
        print(
            f"{r['arch']:10s} {r['activation']:11s} {r['config']:17s} {r['img_per_s']:8.1f} "
            f"{r['vs_relu'] if r['vs_relu'] is not None else '':>8} {r.get('speedup_vs_fp32') or '':>8} "
            f"{r.get('epoch_s', ''):>8} {r['tflops']:8.3f}"
        )
    epochs = measure_epochs([s for s in args.measure_epoch.split(",") if s])
    write_json(args.json, {"rows": rows, "macs_per_image": macs, "peaks": peaks, "measured_epochs": epochs}, args)


if __name__ == "__main__":
    main()
