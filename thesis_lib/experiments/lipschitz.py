"""Chapter 6 (future work) / section 4.1: Lipschitz bounds of every trained network.

For each trained model of chapters 4-5, the L2 Lipschitz upper bound as the product of per-layer
constants (eq. 2.36; `thesis_lib.analysis.lipschitz_bound`: power iteration per convolution, and
a certified FFT bound), next to a local lower estimate (largest input-gradient / Jacobian norm on
test images, `empirical_lipschitz`). The gap between the two is the point of section 4.1: product
bounds of deep networks, and of KAF networks in particular (large per-channel slopes), are loose.
"""

from __future__ import annotations

from dataclasses import dataclass

from .common import model_steps, step_units
from .experiment import Experiment, stored_settings

__all__ = ["LipschitzSettings", "EXPERIMENT", "LIGHT_CNN"]


@dataclass(frozen=True)
class LipschitzSettings:
    # experiment -> activations (None = all of that experiment's models)
    models: tuple = (("light_cnn", None),)
    iters: int = 500  # power-iteration steps per convolution
    empirical_n: int = 500  # test images for the local (empirical) lower estimate
    seed: int = 0


def _bounds(model, images, s: LipschitzSettings) -> dict:
    from ..analysis import empirical_lipschitz, lipschitz_bound

    b = lipschitz_bound(model, iters=s.iters, seed=s.seed)
    e = empirical_lipschitz(model, images)
    return {
        "bound": b["total"],
        "certified": b["total_certified"],
        "empirical_grad": e["max_grad_norm"],
        "empirical_jacobian": e["max_jacobian_norm"],
        "non_finite": e["non_finite"],  # test images whose Jacobian is not finite (a diverged network)
        "layers": [{k: r.get(k) for k in ("name", "kind", "bound", "certified", "in_product")} for r in b["layers"]],
    }


def _steps(ctx) -> list:
    s: LipschitzSettings = ctx.settings
    return model_steps(
        ctx,
        "lipschitz",
        s.models,
        lambda run: {"settings": stored_settings(s)},
        lambda model, run: _bounds(model, ctx.test_images(s.empirical_n, s.seed)[0], s),
    )


def run(ctx) -> dict:
    keep = ("bound", "certified", "empirical_jacobian")
    rows = []
    for row, step in _steps(ctx):
        r = step()
        rows.append({**row, **{k: r[k] for k in keep}, "non_finite": r.get("non_finite", 0)})
    return {"models": rows}


def evaluations(ctx) -> dict:
    """One unit per model: its bounds."""
    return step_units(_steps(ctx))


# The chapter-4 light CNNs (standard training) are an experiment of their own: they exist at every profile
# long before the chapter-5 models do, and their full profile needs no GPU.
LIGHT_CNN_ALL = LipschitzSettings(models=(("light_cnn", None),))
LIGHT_CNN = Experiment(
    name="lipschitz_light_cnn",
    section="4.1/6",
    title="Lipschitz upper bounds vs local estimates of the chapter-4 light CNNs",
    run=run,
    evaluations=evaluations,
    settings={
        "smoke": LipschitzSettings(models=(("light_cnn", None),), iters=10, empirical_n=8),
        "cpu": LIGHT_CNN_ALL,  # 500 power iterations per convolution, Jacobian norms on 500 test images
        "full": LIGHT_CNN_ALL,
    },
    notebook="10_future_work",
    requires=("light_cnn",),
    figures=("lipschitz_bounds_light_cnn",),
)

CHAPTER5 = (("vgg", None), ("resnet20_at", None), ("resnet_standard", None))
EXPERIMENT = Experiment(
    name="lipschitz",
    section="4.1/6",
    title="Lipschitz upper bounds vs local estimates of the chapter-5 models (VGG, ResNet-20 AT, ResNet-20/56)",
    run=run,
    evaluations=evaluations,
    settings={
        # smoke: fewer models (KAF slope bounds on a fine grid cost seconds per layer on a CPU) and iterations
        "smoke": LipschitzSettings(
            models=(("vgg", ("relu", "kaf")), ("resnet_standard", ("resnet20_relu", "resnet20_kaf"))),
            iters=10,
            empirical_n=8,
        ),
        # cpu: every chapter-5 model of the cpu profile (both VGG row sets), the full iterations and images
        "cpu": LipschitzSettings(models=CHAPTER5),
        "full": LipschitzSettings(models=CHAPTER5),
    },
    notebook="10_future_work",
    requires=("vgg", "resnet20_at", "resnet_standard"),
    figures=("lipschitz_bounds",),
)
