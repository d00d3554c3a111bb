"""Chapter 6 (future work): a KAF ResNet-56 that trains. An ablation of candidate fixes.

Section 5.2 trains ResNet-56 with KAFs under the ResNet sanity-check recipe (SGD, lr 0.1) and it
fails. Each candidate below changes one thing and is trained with the same recipe for a short
budget (`epochs`, default 15 on the full data: an ablation, not a final run), recording clean
accuracy and whether/where the run diverged:

- baseline: kaf (alpha ~ N(0, 0.05^2)), thesis block;
- ridge_relu / ridge_elu: alpha by kernel ridge regression (the KAF starts as ReLU / ELU);
- small_alpha: alpha ~ N(0, 0.01^2);
- zero_init_residual: the post-add BN scale starts at 0 (each block starts close to its shortcut);
- he_block: He et al.'s block (BN before the add, identity/1x1 shortcuts);
- grad_clip: global gradient-norm clipping at 1;
- kernel_relu / kernel_softplus: the KAF paper's other kernels;
- relu: the ReLU ResNet-56 under the same budget (reference).
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import SMOKE, train_config
from .experiment import Experiment

__all__ = ["ResNet56FixSettings", "CANDIDATES", "candidate_config"]

CANDIDATES = (
    {"name": "baseline", "activation": "kaf"},
    {"name": "ridge_relu", "activation": "kaf_relu"},
    {"name": "ridge_elu", "activation": "kaf_elu"},
    {"name": "small_alpha", "activation": "kaf", "activation_options": {"alpha_std": 0.01}},
    {"name": "zero_init_residual", "activation": "kaf", "model_options": {"zero_init_residual": True}},
    {"name": "he_block", "activation": "kaf", "model_options": {"block": "he"}},
    {"name": "grad_clip", "activation": "kaf", "grad_clip": 1.0},
    {"name": "kernel_relu", "activation": "kaf", "activation_options": {"kernel": "relu"}},
    {"name": "kernel_softplus", "activation": "kaf", "activation_options": {"kernel": "softplus"}},
    {"name": "relu", "activation": "relu"},
)


@dataclass(frozen=True)
class ResNet56FixSettings:
    arch: str = "resnet56"
    candidates: tuple = CANDIDATES
    epochs: int = 15  # short budget per candidate
    lr: float = 0.1  # SGD, constant (the section-5.2 recipe)
    batch_size: int = 128
    train_subset: int | None = None
    test_subset: int | None = None
    seed: int = 0


def candidate_config(s: ResNet56FixSettings, c: dict) -> dict:
    return train_config(
        arch=s.arch,
        activation=c["activation"],
        method="standard",
        epochs=s.epochs,
        batch_size=s.batch_size,
        optimizer="sgd",
        schedule="constant",
        lr_min=s.lr,
        lr_max=s.lr,
        augment=True,
        train_subset=s.train_subset,
        test_subset=s.test_subset,
        seed=s.seed,
        activation_options=c.get("activation_options", {}),
        model_options=c.get("model_options", {}),
        grad_clip=c.get("grad_clip", 0.0),
    )


def run(ctx) -> dict:
    s: ResNet56FixSettings = ctx.settings
    rows = []
    for c in s.candidates:
        m = ctx.train(c["name"], candidate_config(s, c))
        hist = m.get("history", [])
        rows.append(
            {
                "candidate": c["name"],
                "activation": c["activation"],
                "change": {k: v for k, v in c.items() if k not in ("name", "activation")},
                "clean_acc": m["clean_acc"],
                "best_test_acc": max((h.get("test_acc") or 0 for h in hist), default=None),
                "train_loss": m.get("train_loss"),
                "epochs_done": m.get("epochs_done"),
                "diverged": m.get("diverged"),
                "train_wall_time_s": m.get("wall_time_s"),
            }
        )
    return {"candidates": rows}


# Smoke: two steps of 8 images (the relu/softplus kernels materialise N x C x H x W x D tensors).
SMOKE_SETTINGS = ResNet56FixSettings(epochs=SMOKE.epochs, batch_size=8, train_subset=16, test_subset=50)

EXPERIMENT = Experiment(
    name="resnet56_fix",
    section="6",
    title="KAF ResNet-56 fix ablation (ridge init, alpha scale, zero-init BN, He block, clipping, other kernels)",
    run=run,
    settings={"smoke": SMOKE_SETTINGS, "full": ResNet56FixSettings()},
    notebook="10_future_work",
    figures=("resnet56_fix_ablation", "kaf_kernels"),
)
