"""Pieces shared by the experiment definitions: the smoke scale, PGD settings, cached evaluations.

The smoke profile must run *every* experiment (about 60 small training runs and range tests) in a
few minutes on a 2-core CPU (CI), so its scale is set once here: one epoch of two steps on a
stratified training subset (256 images in batches of 128 for standard training, 128 in batches
of 32 for the twice-as-expensive fast adversarial training), clean accuracy on 100 test images,
attacks on 32 test images with 5 PGD iterations and one restart; range tests for two activations
per family only. The full profile is the protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from ..attacks.evaluate import AttackSettings
from .experiment import stored_settings

__all__ = [
    "SMOKE",
    "SmokeScale",
    "PGDSettings",
    "PGD_THESIS",
    "PGD_SMOKE",
    "evaluate_pgd",
    "evaluate_thesis_protocol",
    "model_steps",
    "step_units",
    "train_config",
    "arch_label",
]


@dataclass(frozen=True)
class SmokeScale:
    train_subset: int = 256  # training images (stratified subset) of standard training: two batches of 128
    at_train_subset: int = 64  # ... of fast adversarial training (twice the cost per image): two batches of 32
    at_batch_size: int = 32
    epochs: int = 1  # epochs of every smoke training run
    test_subset: int = 100  # test images for clean accuracy
    attack_subset: int = 32  # test images attacked
    lr_find_subset: int = 64  # range tests: 8 steps of 8 images (the bounds rule needs a few points)
    lr_find_batch_size: int = 8


SMOKE = SmokeScale()


@dataclass(frozen=True)
class PGDSettings(AttackSettings):
    """An L-inf PGD evaluation (docs/protocol.md, "Evaluation"): the attack settings plus how many test
    images are attacked. Defaults: PGD-50x10, eps 8/255, step 2/255 ([0, 1] pixel units), seed 0."""

    n: int | None = None  # test images attacked (stratified subset); None = all 10,000

    # The attack fields every stored key was computed without: left out at these values (keys stay valid).
    OMIT_WHEN_DEFAULT: ClassVar[dict] = {"attack": "pgd", "norm": "linf", "random_start": True, "batch_size": 256}

    def __post_init__(self):
        super().__post_init__()
        if self.attack != "pgd":
            raise ValueError(f"PGDSettings describes a PGD evaluation; got attack {self.attack!r}.")
        if self.n is not None and self.n < 1:
            raise ValueError(f"n must be >= 1 test images (or None for all), got {self.n}.")


PGD_THESIS = PGDSettings()  # PGD-50-10 on the whole test set
PGD_SMOKE = PGDSettings(steps=5, restarts=1, n=SMOKE.attack_subset)


def evaluate_pgd(ctx, key: str, model, pgd: PGDSettings, config: dict, subset_seed: int = 0) -> dict:
    """Robust accuracy of `model` (trained with `config`) under `pgd`, cached as step `pgd_<key>`.

    The step file keeps the per-example outcomes (`per_example`: still correct under every restart;
    `clean_correct`, `success_restart`, `success_step`), so models attacked on the same images can be
    compared pairwise; summaries keep only the counts.
    """
    images, labels = ctx.test_images(pgd.n, subset_seed)

    def run():
        r = dict(pgd.evaluate(model, images, labels))
        r["n_robust"] = int(sum(bool(v) for v in r["per_example"]))
        return r

    return ctx.step(f"pgd_{key}", {**stored_settings(pgd), "subset_seed": subset_seed, "config": config}, run)


def evaluate_thesis_protocol(ctx, key: str, model, pgd: PGDSettings, config: dict, subset_seed: int = 0) -> dict:
    """The thesis's own evaluation of `model` on the images of `pgd` (cached as step `thesis_pgd_<key>`).

    ART 2020's PGD without labels, one restart kept for the whole set (`thesis_protocol_pgd`,
    selection "best_rate", one generate call on all images), with `pgd`'s radius, step, iterations
    and restarts; per-example outcomes stored, comparable with step `pgd_<key>` image by image.
    """
    from ..attacks import thesis_protocol_pgd
    from ..attacks.context import prefers_channels_last

    images, labels = ctx.test_images(pgd.n, subset_seed)
    settings = {**stored_settings(pgd), "subset_seed": subset_seed, "selection": "best_rate", "config": config}
    return ctx.step(
        f"thesis_pgd_{key}",
        settings,
        lambda: thesis_protocol_pgd(
            model,
            images,
            labels,
            pgd.eps,
            pgd.step,
            pgd.steps,
            pgd.restarts,
            batch_size=250,  # only chunks the gradients (each image's gradient sign does not depend on it)
            selection="best_rate",
            seed=pgd.seed,
            channels_last=prefers_channels_last(model),  # as our PGD: NHWC where it is faster
        ),
    )


def model_steps(ctx, prefix: str, models, settings, compute) -> list[tuple[dict, Callable[[], Any]]]:
    """(row, step) for every trained run that `models` names (see `RunContext.runs_of`), in order: `step()`
    is `compute(model, run)` cached as step `<prefix>_<experiment>_<run key>` with the run's config and
    `settings(run)` (a dict); the row names the model for tables (experiment, key, model, training,
    activation). The analyses of other experiments' models (Lipschitz, AutoAttack) are made of these.
    """
    out = []
    for other, run in ctx.runs_of(models):
        exp = other.experiment.name
        fn = partial(_on_model, other, run, compute)
        step = partial(ctx.step, f"{prefix}_{exp}_{run.key}", {"config": run.config, **settings(run)}, fn)
        row = {"experiment": exp, "key": run.key, "model": run.model, "training": run.training}
        out.append(({**row, "activation": run.activation}, step))
    return out


def _on_model(ctx, run, compute):
    with ctx.model(run.key, run.config) as model:
        return compute(model, run)


def step_units(steps: list[tuple[dict, Callable[[], Any]]]) -> dict[str, Callable[[], Any]]:
    """`model_steps` as evaluation units (`Experiment.evaluations`), keyed "<experiment>/<run key>"."""
    return {f"{row['experiment']}/{row['key']}": step for row, step in steps}


def arch_label(arch: str) -> str:
    """Table label of an architecture: "light CNN", "VGG", "ResNet-20", ..."""
    if arch.startswith("resnet"):
        return "ResNet-" + arch[len("resnet") :]
    return {"light_cnn": "light CNN", "vgg": "VGG"}.get(arch, arch)


def train_config(**fields) -> dict:
    """A TrainConfig dict with None-valued fields dropped (the training package fills the defaults)."""
    return {k: v for k, v in fields.items() if v is not None}
