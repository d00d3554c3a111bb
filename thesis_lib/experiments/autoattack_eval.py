"""Chapter 6 (future work): adaptive attacks. AutoAttack next to PGD on the same images.

Croce & Hein (2020) AutoAttack ("standard": APGD-CE, APGD-T, FAB-T, Square) against the
adversarially trained VGG and ResNet-20 models and the k-WTA light CNN (whose PGD robustness
chapter 4 suspects to be gradient masking; Tramer et al. 2020). Each model's PGD accuracy is
recomputed on exactly the same images with its experiment's PGD setting, so the two columns are
comparable; AutoAttack lower than PGD means PGD overestimated robustness.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .common import PGD_SMOKE, PGD_THESIS, PGDSettings
from .experiment import Experiment

__all__ = ["AutoAttackSettings"]


@dataclass(frozen=True)
class AutoAttackSettings:
    # experiment -> activations evaluated (None = all of that experiment's models)
    models: tuple = (("vgg", None), ("resnet20_at", None), ("light_cnn", ("kwta", "relu", "kaf")))
    version: str = "standard"  # "standard" (APGD-CE, APGD-T, FAB-T, Square) or "apgd" (APGD-CE + APGD-T)
    n: int | None = None  # test images (stratified, seeded); None = all 10,000
    n_iter: int | None = None  # APGD/FAB iterations; None = AutoAttack's 100
    n_queries: int | None = None  # Square queries; None = AutoAttack's 5000
    pgd: PGDSettings = field(default_factory=lambda: PGD_THESIS)  # PGD on the same images (eps: AT models)
    seed: int = 0


def _compare(model, images, labels, s: AutoAttackSettings, eps: float, step: float) -> dict:
    """AutoAttack and PGD on the same images; counts of examples only one of them breaks."""
    from ..attacks import autoattack_eval, robust_accuracy

    aa = autoattack_eval(
        model, images, labels, eps=eps, version=s.version, seed=s.seed, n_iter=s.n_iter, n_queries=s.n_queries
    )
    pg = robust_accuracy(model, images, labels, "pgd", eps, step, s.pgd.steps, s.pgd.restarts, seed=s.pgd.seed)
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


def run(ctx) -> dict:
    s: AutoAttackSettings = ctx.settings
    images, labels = ctx.test_images(s.n, s.seed)
    rows = []
    for exp, acts in s.models:
        other = ctx.sibling(exp)
        for run in other.trained_runs(acts):
            # each model at the radius its experiment evaluates it at (light CNNs: chapter 4's eps 0.031)
            eps, step = run.eps, run.step

            def evaluate():
                with other.model(run.key, run.config) as model:
                    return _compare(model, images, labels, s, eps, step)

            r = ctx.step(
                f"autoattack_{exp}_{run.key}", {"config": run.config, "settings": asdict(s), "eps": eps}, evaluate
            )
            rows.append(
                {
                    "model": run.model,
                    "training": run.training,
                    "activation": run.activation,
                    "eps": eps,
                    **{k: r[k] for k in ("clean_acc", "pgd_acc", "autoattack_acc", "only_autoattack", "n")},
                }
            )
    return {"models": rows, "version": s.version}


SMOKE_SETTINGS = AutoAttackSettings(
    models=(("vgg", ("relu", "kaf")), ("resnet20_at", ("relu", "kaf")), ("light_cnn", ("kwta",))),
    version="apgd",
    n=16,
    n_iter=5,
    n_queries=50,
    pgd=PGD_SMOKE,
)

# cpu: the cpu-profile light CNNs (chapter 4, standard training), standard AutoAttack on 1000 test images.
CPU_SETTINGS = AutoAttackSettings(models=(("light_cnn", ("kwta", "relu", "kaf")),), n=1000)

EXPERIMENT = Experiment(
    name="autoattack",
    section="6",
    title="AutoAttack vs PGD on the adversarially trained models and the k-WTA CNN",
    run=run,
    settings={"smoke": SMOKE_SETTINGS, "cpu": CPU_SETTINGS, "full": AutoAttackSettings()},
    notebook="10_future_work",
    requires=("light_cnn", "vgg", "resnet20_at"),
    requires_by_profile={"cpu": ("light_cnn",)},
    figures=("autoattack_vs_pgd",),
)
