"""Benchmark: does bfloat16 training on CPU reach float32's accuracy? Seeds give the noise to compare with.

The light CNN (ReLU and KAF), Adam 1e-3, batch 128, `--epochs` epochs on a stratified `--train`
image subset of CIFAR-10, clean accuracy (float32 evaluation) on all 10,000 test images; each seed
trained twice, in float32 NCHW and in channels_last + bf16 autocast. Reported: per-seed accuracies,
the mean bf16 - fp32 difference, and the seed-to-seed spread within each precision.

    OMP_NUM_THREADS=2 python benchmarks/bench_bf16_accuracy.py [--seeds 0,1,2] [--epochs 3] [--train 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics

from _report import write_json  # benchmarks/ is on sys.path when a script runs

from thesis_lib.training import TrainConfig, train


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", default="relu,kaf")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--json", default="")
    args = p.parse_args()
    out = []
    for act in args.acts.split(","):
        acc = {"fp32": [], "bf16": []}
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name, amp, cl in (("fp32", False, False), ("bf16", True, True)):
                cfg = TrainConfig(
                    arch="light_cnn",
                    activation=act,
                    epochs=args.epochs,
                    train_subset=args.train,
                    seed=seed,
                    amp=amp,
                    channels_last=cl,
                )
                m = train(cfg, verbose=False)
                assert m["precision"] == name, m["precision"]
                acc[name].append(m["clean_acc"])
        diffs = [b - f for b, f in zip(acc["bf16"], acc["fp32"])]
        row = {
            "activation": act,
            "acc": acc,
            "mean_diff_points": round(100 * statistics.mean(diffs), 2),
            "seed_sd_points": {k: round(100 * statistics.stdev(v), 2) for k, v in acc.items()},
        }
        out.append(row)
        print(json.dumps(row), flush=True)
    write_json(args.json, {"rows": out}, args)


if __name__ == "__main__":
    main()
