"""Section 5.2: exploding gradients. ResNet-20 and ResNet-56 with ReLU and KAF, standard training.

Protocol: SGD, lr 0.1, batch 128, 150 epochs, pad-4 crop + flip (the thesis's sanity check; it gives
no schedule, so the learning rate is constant, `schedule` exposes "step" for He et al.'s decay).
The thesis reports that the KAF ResNet-56 stays at chance accuracy, with NaN gradients in the early
layers and huge norms around layer 15. Recorded here: clean accuracy per epoch, the per-parameter
weight and gradient L2 norms at each of the first `norm_steps` iterations (then every
`norm_every`), and where a run first turned non-finite (`diverged`: step, layer, quantity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .common import SMOKE, arch_label, train_config
from .experiment import Experiment, TrainedRun

__all__ = [
    "ResNetStandardSettings",
    "resnet_standard_config",
    "sgd_config",
    "norms_table",
    "norms_frame",
    "kernel_names",
]


@dataclass(frozen=True)
class ResNetStandardSettings:
    archs: tuple = ("resnet20", "resnet56")
    activations: tuple = ("relu", "kaf")
    epochs: int = 150
    lr: float = 0.1  # SGD learning rate (momentum 0.9)
    schedule: str = "constant"  # constant (the protocol's "lr 0.1") | step (x0.1 at 50% and 75%)
    batch_size: int = 128
    train_subset: int | None = None
    test_subset: int | None = None
    norm_steps: int = 100  # per-layer norms at each of the first iterations
    norm_every: int = 500  # ... and every this many iterations afterwards
    grad_clip: float = 0.0  # 0 = off (the thesis did not clip)
    seed: int = 0


def sgd_config(s, arch: str, activation: str, schedule: str, **extra) -> dict:
    """Section 5.2's recipe: standard training, SGD at `s.lr` under `schedule`, pad-4 crop + flip.

    `s`: settings with epochs, lr, batch_size, train_subset, test_subset and seed (this experiment's, or
    the fix ablation's, which trains its candidates with the same recipe).
    """
    return train_config(
        arch=arch,
        activation=activation,
        method="standard",
        epochs=s.epochs,
        batch_size=s.batch_size,
        optimizer="sgd",
        schedule=schedule,
        lr_min=s.lr,
        lr_max=s.lr,
        augment=True,
        train_subset=s.train_subset,
        test_subset=s.test_subset,
        seed=s.seed,
        **extra,
    )


def resnet_standard_config(s: ResNetStandardSettings, arch: str, activation: str, **extra) -> dict:
    return sgd_config(
        s,
        arch,
        activation,
        s.schedule,
        log_norms_every=s.norm_every,
        log_norms_first=s.norm_steps,
        grad_clip=s.grad_clip,
        **extra,
    )


def kernel_names(config: dict) -> list[str]:
    """Names of the conv and dense kernels ("...weight" of Conv2d/Linear) of the run's model, in forward order."""
    from torch import nn

    from ..training import TrainConfig

    model = TrainConfig.from_dict(config).build_model()
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def norms_table(run_dir, max_step: int, config: dict) -> dict:
    """Conv/dense kernel norms of the first iterations from a run's norms.jsonl, column-wise (compact JSON).

    Returns {params (kernel names in forward order: index 0 = stem conv, last = dense layer),
    steps, loss, weight (per step, one L2 norm per param), grad (same; None where absent)}.
    """
    path = run_dir / "norms.jsonl"
    kernels = kernel_names(config)
    out = {"params": kernels, "steps": [], "loss": [], "weight": [], "grad": []}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        step = int(rec.get("step", -1))
        if step > max_step:
            continue
        weights, grads = rec.get("weight", {}), rec.get("grad", {})
        out["steps"].append(step)
        out["loss"].append(rec.get("loss"))
        out["weight"].append([weights.get(n) for n in kernels])
        out["grad"].append([grads.get(n) for n in kernels])
    return out


def norms_frame(table: dict):
    """The column-wise norms as a tidy DataFrame: step, layer_index, param, weight, grad."""
    import pandas as pd

    rows = []
    for k, step in enumerate(table["steps"]):
        for i, name in enumerate(table["params"]):
            rows.append(
                {
                    "step": step,
                    "layer_index": i,
                    "param": name,
                    "weight": table["weight"][k][i],
                    "grad": table["grad"][k][i],
                }
            )
    return pd.DataFrame(rows, columns=["step", "layer_index", "param", "weight", "grad"])


def run(ctx) -> dict:
    s: ResNetStandardSettings = ctx.settings
    rows = []
    for arch in s.archs:
        for act in s.activations:
            key = f"{arch}_{act}"
            cfg = resnet_standard_config(s, arch, act)
            metrics = ctx.train(key, cfg)
            folder = ctx.run_folder(key, cfg)
            ctx.step(
                f"norms_{key}",
                {"config": cfg, "max_step": s.norm_steps},
                lambda: norms_table(folder, s.norm_steps, cfg) if folder.is_dir() else _missing(ctx, key, cfg, s),
            )
            hist = metrics.get("history", [])
            rows.append(
                {
                    "arch": arch,
                    "activation": act,
                    "clean_acc": metrics["clean_acc"],
                    "best_test_acc": max((h.get("test_acc", 0) or 0 for h in hist), default=None),
                    "epochs_done": metrics.get("epochs_done"),
                    "diverged": metrics.get("diverged"),
                    "train_wall_time_s": metrics.get("wall_time_s"),
                }
            )
    return {"models": rows}


def _missing(ctx, key, cfg, s):
    with ctx.model(key, cfg):  # re-trains when only the results (not the run folder) exist
        return norms_table(ctx.run_folder(key, cfg), s.norm_steps, cfg)


def resnet_standard_runs(ctx) -> list[TrainedRun]:
    """The standard-trained ResNets, evaluated at the CIFAR radius (eps 8/255, step 2/255)."""
    s: ResNetStandardSettings = ctx.settings
    return [
        TrainedRun(f"{arch}_{a}", a, resnet_standard_config(s, arch, a), arch_label(arch), "standard", 8 / 255, 2 / 255)
        for arch in s.archs
        for a in s.activations
    ]


SMOKE_SETTINGS = ResNetStandardSettings(
    epochs=SMOKE.epochs, batch_size=16, train_subset=32, test_subset=50, norm_steps=2, norm_every=1
)

# cpu: 15 of the protocol's 150 epochs. With so few epochs a constant lr of 0.1 ends wherever the last noisy
# epoch lands, so the lr steps down x0.1 at 50% and 75% (He et al.'s schedule, compressed); norms over the
# first 200 iterations.
CPU_SETTINGS = ResNetStandardSettings(epochs=15, schedule="step", norm_steps=200)

EXPERIMENT = Experiment(
    name="resnet_standard",
    section="5.2",
    title="ResNet-20/56 x {relu, kaf}, standard training: exploding gradients",
    run=run,
    settings={"smoke": SMOKE_SETTINGS, "cpu": CPU_SETTINGS, "full": ResNetStandardSettings()},
    notebook="08_exploding_gradients",
    runs=resnet_standard_runs,
    figures=(
        "resnet_standard",
        "resnet_standard_accuracy",
        "resnet_gradient_norms_resnet20_relu",
        "resnet_gradient_norms_resnet20_kaf",
        "resnet_gradient_norms_resnet56_relu",
        "resnet_gradient_norms_resnet56_kaf",
    ),
)
