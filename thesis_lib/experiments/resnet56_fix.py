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

With `final` set (the cpu profile), the best candidate (highest test accuracy among the fixes that did
not diverge) is then trained with the recipe of that experiment (`resnet_standard`: its epochs, schedule
and per-layer norm log), so it can be set against the ReLU ResNet-56 of the same budget, and its norms
over the first iterations against those of the unfixed KAF ResNet-56.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from .common import SMOKE, arch_label
from .experiment import Experiment, TrainedRun

__all__ = ["ResNet56FixSettings", "CANDIDATES", "CPU_CANDIDATES", "candidate_config", "final_key"]

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
# cpu: without the relu / softplus kernels, whose KAF evaluates every dictionary point as its own N x C x H x W
# tensor (no fused CPU kernel): a ResNet-56 epoch with them would cost several of the others'.
CPU_CANDIDATES = tuple(c for c in CANDIDATES if c["name"] not in ("kernel_relu", "kernel_softplus"))


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
    final: str = ""  # experiment whose recipe retrains the best fix (e.g. "resnet_standard"); "" = no final run

    OMIT_WHEN_DEFAULT: ClassVar[dict] = {"final": ""}  # added later: the stored keys stay valid


def candidate_config(s: ResNet56FixSettings, c: dict) -> dict:
    from .resnet_standard import sgd_config

    return sgd_config(
        s,
        s.arch,
        c["activation"],
        "constant",
        activation_options=c.get("activation_options", {}),
        model_options=c.get("model_options", {}),
        grad_clip=c.get("grad_clip", 0.0),
    )


def final_key(candidate: str) -> str:
    return f"final_{candidate}"


def best_candidate(rows: list[dict]) -> dict | None:
    """The fix with the highest test accuracy that did not diverge (not the unfixed baseline, not ReLU)."""
    fixes = [r for r in rows if r["candidate"] not in ("baseline", "relu") and not r.get("diverged")]
    return max(fixes, key=lambda r: (r.get("best_test_acc") or 0.0, r.get("clean_acc") or 0.0), default=None)


def final_config(ctx, s: ResNet56FixSettings, c: dict) -> tuple[dict, object]:
    """The best fix under the `final` experiment's recipe: (TrainConfig dict, that experiment's settings)."""
    from .resnet_standard import resnet_standard_config

    std = ctx.sibling(s.final).settings
    std = dataclasses.replace(std, grad_clip=c.get("grad_clip", std.grad_clip))
    extra = {k: c[k] for k in ("activation_options", "model_options") if c.get(k)}
    return resnet_standard_config(std, s.arch, c["activation"], **extra), std


def candidate_runs(ctx) -> list[TrainedRun]:
    """The candidates (independent training runs; the final run depends on their results and is not declared)."""
    s: ResNet56FixSettings = ctx.settings
    label = arch_label(s.arch)
    return [
        TrainedRun(c["name"], c["activation"], candidate_config(s, c), label, "standard", 8 / 255, 2 / 255)
        for c in s.candidates
    ]


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
    out = {"candidates": rows}
    best = best_candidate(rows) if s.final else None
    if best is not None:
        from .resnet_standard import norms_table

        c = next(c for c in s.candidates if c["name"] == best["candidate"])
        key = final_key(c["name"])
        cfg, std = final_config(ctx, s, c)
        m = ctx.train(key, cfg)
        folder = ctx.run_folder(key, cfg)

        def norms():
            if not folder.is_dir():
                with ctx.model(key, cfg):  # re-trains when only the results (not the run folder) exist
                    pass
            return norms_table(folder, std.norm_steps, cfg)

        ctx.step(f"norms_{key}", {"config": cfg, "max_step": std.norm_steps}, norms)
        hist = m.get("history", [])
        out["final"] = {
            "candidate": c["name"],
            "key": key,
            "recipe": s.final,
            "epochs": std.epochs,
            "clean_acc": m["clean_acc"],
            "best_test_acc": max((h.get("test_acc") or 0 for h in hist), default=None),
            "n_test": m.get("n_test"),
            "diverged": m.get("diverged"),
            "train_wall_time_s": m.get("wall_time_s"),
        }
    return out


# Smoke: two steps of 8 images (the relu/softplus kernels materialise N x C x H x W x D tensors).
SMOKE_SETTINGS = ResNet56FixSettings(
    epochs=SMOKE.epochs, batch_size=8, train_subset=16, test_subset=50, final="resnet_standard"
)

# cpu: 5 epochs of the section-5.2 recipe per candidate on all 50,000 images (the relu / softplus kernels left
# out, see CPU_CANDIDATES), then the best fix for resnet_standard's cpu budget (15 epochs, step schedule).
CPU_SETTINGS = ResNet56FixSettings(candidates=CPU_CANDIDATES, epochs=5, final="resnet_standard")

EXPERIMENT = Experiment(
    name="resnet56_fix",
    section="6",
    title="KAF ResNet-56 fix ablation (ridge init, alpha scale, zero-init BN, He block, clipping, other kernels)",
    run=run,
    settings={"smoke": SMOKE_SETTINGS, "cpu": CPU_SETTINGS, "full": ResNet56FixSettings()},
    requires_by_profile={"smoke": ("resnet_standard",), "cpu": ("resnet_standard",)},
    runs=candidate_runs,
    notebook="10_future_work",
    figures=("resnet56_fix_ablation", "kaf_kernels"),
)
