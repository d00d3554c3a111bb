"""Benchmark: may the PGD iterations run in bfloat16 on CPU? Robust accuracy and time, bf16 vs float32.

On a fast-adversarially trained ResNet-20 (FGSM-RS, eps 8/255, one-cycle, trained here for
`--epochs` epochs on `--train-subset` CIFAR-10 images (default all 50,000) and cached), PGD-50 x 10
(eps 8/255, step 2/255)
on 1,000 stratified test images, once with float32 iterations and once under bfloat16 autocast.
In both the clean and the final adversarial predictions are float32 (`robust_accuracy` re-checks
every returned image). The rule of the project: bf16 iterations become the CPU default only if
the two robust accuracies agree within 0.3 points on every model measured.

    OMP_NUM_THREADS=2 python benchmarks/bench_attack_precision.py [--acts relu,kaf] [--epochs 3] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from _report import write_json  # benchmarks/ is on sys.path when a script runs

from thesis_lib.attacks import robust_accuracy
from thesis_lib.data import load_cifar10, stratified_indices
from thesis_lib.precision import cpu_has_bf16
from thesis_lib.training import TrainConfig, load_run, train


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", default="relu,kaf")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--train-subset", type=int, default=None, help="training images (default: all 50,000)")
    p.add_argument(
        "--lr-max", type=float, default=0.05, help="one-cycle peak (0.2 overfits catastrophically in 3 epochs)"
    )
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "thesis_lib", "bench_runs"))
    p.add_argument("--json", default="")
    args = p.parse_args()
    if not cpu_has_bf16():
        raise SystemExit("this CPU has no native bfloat16: nothing to compare")
    x, y = load_cifar10("test")
    idx = stratified_indices(y, args.n, 0)
    x, y = x[idx], y[idx]
    rows = []
    for act in args.acts.split(","):
        cfg = TrainConfig(
            arch="resnet20",
            activation=act,
            method="fast_at",
            epochs=args.epochs,
            lr_min=1e-3,
            lr_max=args.lr_max,
            train_subset=args.train_subset,
        )
        run = (
            Path(args.cache) / f"resnet20_{act}_fast_at_{args.epochs}ep_lr{args.lr_max:g}_n{args.train_subset or 50000}"
        )
        m = train(cfg, out_dir=run, resume=True, verbose=False)
        model, _ = load_run(run, "cpu")
        row = {
            "activation": act,
            "epochs": args.epochs,
            "lr_max": args.lr_max,
            "train_images": m["n_train"],
            "precision_trained": m["precision"],
            "clean_acc_10k": m["clean_acc"],
            "n": args.n,
        }
        per = {}
        for name, amp in (("fp32", False), ("bf16", True)):
            r = robust_accuracy(model, x, y, eps=8 / 255, step=2 / 255, steps=50, restarts=10, amp=amp, seed=0)
            per[name] = torch.tensor(r["per_example"])
            row[f"robust_{name}"] = r["robust_acc"]
            row[f"seconds_{name}"] = round(r["seconds"], 1)
            row[f"grad_evals_{name}"] = r["gradient_evaluations"]
        row["difference_points"] = round(100 * (row["robust_bf16"] - row["robust_fp32"]), 2)
        row["examples_that_differ"] = int((per["fp32"] != per["bf16"]).sum())
        row["speedup"] = round(row["seconds_fp32"] / row["seconds_bf16"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_json(args.json, {"rows": rows}, args)


if __name__ == "__main__":
    main()
