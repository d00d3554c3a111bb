"""Fast-AT step of ResNet-20 per activation, for comparing two versions of the code (A/B).

One step = FGSM-RS example + SGD step, channels_last + bf16 autocast, batch 128; medians of `rounds`
interleaved rounds of 2 steps, and the ratio to ReLU measured in the same run. Run it alternately with
PYTHONPATH pointing at each checkout:

    OMP_NUM_THREADS=2 PYTHONPATH=../old python benchmarks/bench_fast_at_ab.py --acts relu,elu,kaf --rounds 6
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import thesis_lib
from thesis_lib import build_model
from thesis_lib.training.adversarial import fgsm_rs_perturb


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", default="relu,elu,gelu,swish,softplus,tanh,kaf,kaf_free")
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    acts = ["relu"] + [a for a in args.acts.split(",") if a != "relu"]
    torch.set_num_threads(2)

    def autocast():
        return torch.autocast("cpu", torch.bfloat16)

    cases = {}
    for act in acts:
        torch.manual_seed(0)
        model = build_model("resnet20", act).to(memory_format=torch.channels_last).train()
        g = torch.Generator().manual_seed(0)
        x = torch.rand(128, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (128,), generator=g)
        cases[act] = (model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9), x, y, [])

    def step(model, opt, x, y):
        xa = fgsm_rs_perturb(model, x, y, 8 / 255, 10 / 255, autocast)
        with autocast():
            loss = F.cross_entropy(model(xa).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for c in cases.values():  # warm-up: kernel builds, oneDNN primitives
        step(*c[:4])
    for _ in range(args.rounds):
        for c in cases.values():
            t = time.perf_counter()
            step(*c[:4])
            step(*c[:4])
            c[4].append((time.perf_counter() - t) / 2)
    med = {a: statistics.median(c[4]) for a, c in cases.items()}
    print(thesis_lib.__file__, " ".join(f"{a}:{med[a] * 1e3:.0f}ms/{med[a] / med['relu']:.3f}" for a in acts))


if __name__ == "__main__":
    main()
