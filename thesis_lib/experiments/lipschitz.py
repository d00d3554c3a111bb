"""Chapter 6 (future work) / section 4.1: Lipschitz bounds of every trained network.

For each trained model of chapters 4-5, the L2 Lipschitz upper bound as the product of per-layer
constants (eq. 2.36; `thesis_lib.analysis.lipschitz_bound`: power iteration per convolution, and
a certified FFT bound), next to a local lower estimate (largest input-gradient / Jacobian norm on
test images, `empirical_lipschitz`). The gap between the two is the point of section 4.1: product
bounds of deep networks, and of KAF networks in particular (large per-channel slopes), are loose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .experiment import Experiment

__all__ = ["LipschitzSettings"]


@dataclass(frozen=True)
class LipschitzSettings:
    # experiment -> activations (None = all of that experiment's models)
    models: tuple = (("light_cnn", None), ("vgg", None), ("resnet20_at", None), ("resnet_standard", None))
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
        "layers": [{k: r.get(k) for k in ("name", "kind", "bound", "certified", "in_product")} for r in b["layers"]],
    }


def run(ctx) -> dict:
    s: LipschitzSettings = ctx.settings
    images, _ = ctx.test_images(s.empirical_n, s.seed)
    rows = []
    for exp, acts in s.models:
        other = ctx.sibling(exp)
        for run in other.trained_runs(acts):

            def compute():
                with other.model(run.key, run.config) as model:
                    return _bounds(model, images, s)

            r = ctx.step(f"lipschitz_{exp}_{run.key}", {"config": run.config, "settings": asdict(s)}, compute)
            rows.append(
                {
                    "experiment": exp,
                    "model": run.model,
                    "training": run.training,
                    "activation": run.activation,
                    "bound": r["bound"],
                    "certified": r["certified"],
                    "empirical_jacobian": r["empirical_jacobian"],
                }
            )
    return {"models": rows}


# Smoke: fewer models (KAF slope bounds on a fine grid cost seconds per layer on a CPU) and iterations.
SMOKE_SETTINGS = LipschitzSettings(
    models=(("light_cnn", None), ("vgg", ("relu", "kaf")), ("resnet_standard", ("resnet20_relu", "resnet20_kaf"))),
    iters=10,
    empirical_n=8,
)

# cpu: the chapter-4 light CNNs of the cpu profile with the full profile's iterations and images.
CPU_SETTINGS = LipschitzSettings(models=(("light_cnn", None),))

EXPERIMENT = Experiment(
    name="lipschitz",
    section="4.1/6",
    title="Lipschitz upper bounds vs local estimates of every trained model",
    run=run,
    settings={"smoke": SMOKE_SETTINGS, "cpu": CPU_SETTINGS, "full": LipschitzSettings()},
    notebook="10_future_work",
    requires=("light_cnn", "vgg", "resnet_standard", "resnet20_at"),
    requires_by_profile={"cpu": ("light_cnn",)},
    figures=("lipschitz_bounds",),
)
