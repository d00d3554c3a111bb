"""Chapter 6 (future work): adaptive attacks. AutoAttack next to PGD on the same images.

Croce & Hein (2020) AutoAttack ("standard": APGD-CE, APGD-T, FAB-T, Square) against the
adversarially trained VGG and ResNet-20 models and the k-WTA light CNN (whose PGD robustness
chapter 4 suspects to be gradient masking; Tramer et al. 2020). Each model's PGD accuracy is
recomputed on exactly the same images with its experiment's PGD setting, so the two columns are
comparable; AutoAttack lower than PGD means PGD overestimated robustness.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .common import PGD_SMOKE, PGD_THESIS, PGDSettings, model_steps, step_units
from .experiment import Experiment, stored_settings

__all__ = ["AutoAttackSettings", "MASKING_GAP", "EXPERIMENT", "LIGHT_CNN"]

MASKING_GAP = 0.02  # AutoAttack this far (absolute) below PGD on the same images: PGD was probably masked


@dataclass(frozen=True)
class AutoAttackSettings:
    # experiment -> activations evaluated (None = all of that experiment's models)
    models: tuple = (("light_cnn", ("kwta", "relu", "kaf")),)
    version: str = "standard"  # "standard" (APGD-CE, APGD-T, FAB-T, Square) or "apgd" (APGD-CE + APGD-T)
    n: int | None = None  # test images (stratified, seeded); None = all 10,000
    n_iter: int | None = None  # APGD/FAB iterations; None = AutoAttack's 100
    n_queries: int | None = None  # Square queries; None = AutoAttack's 5000
    pgd: PGDSettings = field(default_factory=lambda: PGD_THESIS)  # PGD on the same images (eps: AT models)
    seed: int = 0


def _compare(model, images, labels, s: AutoAttackSettings, eps: float, step: float) -> dict:
    """AutoAttack and PGD on the same images; counts of examples only one of them breaks."""
    from ..attacks import autoattack_eval

    aa = autoattack_eval(
        model, images, labels, eps=eps, version=s.version, seed=s.seed, n_iter=s.n_iter, n_queries=s.n_queries
    )
    pg = replace(s.pgd, eps=eps, step=step).evaluate(model, images, labels)
    pairs = list(zip(aa["per_example"], pg["per_example"]))
    return {
        "clean_acc": aa["clean_acc"],
        "autoattack_acc": aa["robust_acc"],
        "pgd_acc": pg["robust_acc"],
        "per_attack": aa.get("per_attack"),
        "n": aa["n"],
        "eps": eps,
        "both_broken": sum(1 for a, b in pairs if not a and not b),
        "only_autoattack": sum(1 for a, b in pairs if not a and b),
        "only_pgd": sum(1 for a, b in pairs if a and not b),
        "seconds": aa.get("seconds"),
    }


def _steps(ctx) -> list:
    s: AutoAttackSettings = ctx.settings
    # each model at the radius its experiment evaluates it at (light CNNs: chapter 4's eps 0.031)
    return model_steps(
        ctx,
        "autoattack",
        s.models,
        lambda run: {"settings": stored_settings(s), "eps": run.eps},
        lambda model, run: _compare(model, *ctx.test_images(s.n, s.seed), s, run.eps, run.step),
    )


def run(ctx) -> dict:
    rows = []
    for row, step in _steps(ctx):
        r = step()
        rows.append(
            {
                **row,
                "pgd_overestimates": bool(r["autoattack_acc"] < r["pgd_acc"] - MASKING_GAP),
                "eps": r["eps"],
                **{k: r[k] for k in ("clean_acc", "pgd_acc", "autoattack_acc", "only_autoattack", "n")},
            }
        )
    return {"models": rows, "version": ctx.settings.version}


def evaluations(ctx) -> dict:
    """One unit per model: its AutoAttack and PGD on the same images."""
    return step_units(_steps(ctx))


# The chapter-4 light CNNs (standard training; k-WTA is the gradient-masking suspect) are an experiment of
# their own: they exist at every profile long before the chapter-5 models do, and their full profile needs no GPU.
LIGHT_CNN = Experiment(
    name="autoattack_light_cnn",
    section="4/6",
    title="AutoAttack vs PGD on the chapter-4 light CNNs (is k-WTA's PGD robustness gradient masking?)",
    run=run,
    evaluations=evaluations,
    settings={
        "smoke": AutoAttackSettings(version="apgd", n=16, n_iter=5, n_queries=50, pgd=PGD_SMOKE),
        "cpu": AutoAttackSettings(n=1000),  # standard AutoAttack on 1,000 stratified test images
        "full": AutoAttackSettings(),  # the whole test set
    },
    notebook="10_future_work",
    requires=("light_cnn",),
    figures=("autoattack_vs_pgd_light_cnn",),
)

EXPERIMENT = Experiment(
    name="autoattack",
    section="6",
    title="AutoAttack vs PGD on the fast-adversarially trained VGGs and ResNet-20s",
    run=run,
    evaluations=evaluations,
    settings={
        "smoke": AutoAttackSettings(
            models=(("vgg", ("relu", "kaf")), ("resnet20_at", ("relu", "kaf"))),
            version="apgd",
            n=16,
            n_iter=5,
            n_queries=50,
            pgd=PGD_SMOKE,
        ),
        # cpu: the 8 ResNet-20s and the relu, kaf and swish VGGs (range-test bounds) on 500 of the 1,000 images of
        # their PGD-50-10 (a balanced stratified subset of the same seed lies in the larger one), standard version
        "cpu": AutoAttackSettings(models=(("resnet20_at", None), ("vgg", ("relu", "kaf", "swish"))), n=500),
        "full": AutoAttackSettings(models=(("vgg", None), ("resnet20_at", None))),
    },
    notebook="10_future_work",
    requires=("vgg", "resnet20_at"),
    figures=("autoattack_vs_pgd",),
)
