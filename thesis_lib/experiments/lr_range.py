"""Section 4.2: the learning-rate range tests that pick the one-cycle bounds (Smith 2017), per activation.

The thesis swept lr from 1e-4 to 3 (exponentially) over 5 epochs of fast adversarial training and
read lr_min ("where the loss first starts to fall") and lr_max ("where it plateaus") off the
plot. `thesis_lib.training.lr_find` does the sweep and applies a documented reading rule; the
thesis's own VGG bounds are recorded in docs/protocol.md and used for the VGG runs by default, the
measured ones are reported next to them. A sweep whose loss never falls (tiny smoke runs can do
that) is recorded with its error and no bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from .common import SMOKE, train_config
from .experiment import Experiment, stored_settings

__all__ = ["LRRangeSettings", "range_test", "lr_range_config", "VGG_ACTIVATIONS", "CPU_ORDER"]

VGG_ACTIVATIONS = ("relu", "elu", "kaf", "kaf_elu", "swish", "kaf_swish", "kaf_free")
# cpu profile: training order = the comparisons that matter most first (a long run has those earliest).
CPU_ORDER = ("relu", "kaf", "swish", "elu", "kaf_elu", "kaf_swish", "kaf_free")


@dataclass(frozen=True)
class LRRangeSettings:
    arch: str = "vgg"
    activations: tuple = VGG_ACTIVATIONS
    method: str = "fast_at"  # the training method of the final runs (FGSM-RS, eps 8/255)
    augment: bool = False  # VGG: no augmentation; ResNets: pad-4 crop + flip
    lr_start: float = 1e-4  # first learning rate of the exponential sweep
    lr_end: float = 3.0  # last learning rate
    epochs: int = 5  # sweep length (thesis: 5 epochs)
    batch_size: int = 128  # examples per step (as in the final runs)
    train_subset: int | None = None  # None = all 50,000 training images
    beta: float = 0.98  # EMA smoothing of the loss
    seed: int = 0


def lr_range_config(s: LRRangeSettings, activation: str) -> dict:
    return train_config(
        arch=s.arch,
        activation=activation,
        method=s.method,
        epochs=s.epochs,
        batch_size=s.batch_size,
        optimizer="sgd",
        schedule="one_cycle",
        augment=s.augment,
        train_subset=s.train_subset,
        test_subset=16,
        seed=s.seed,
    )


def range_test(ctx, s: LRRangeSettings, activation: str) -> dict:
    """Cached lr_find of one activation: {lr_min, lr_max, lrs, losses, raw_losses, ...} or {error}."""
    from ..training import lr_find
    from ..utils import ThesisError

    cfg = ctx.train_config(lr_range_config(s, activation))

    def run():
        try:
            r = lr_find(
                cfg,
                out_dir=None,
                lr_start=s.lr_start,
                lr_end=s.lr_end,
                epochs=s.epochs,
                data=ctx.data,
                beta=s.beta,
                verbose=False,
            )
        except ThesisError as e:
            return {"activation": activation, "error": str(e), "lr_min": None, "lr_max": None}
        r = dict(r)
        r.pop("config", None)
        return {"activation": activation, **r}

    return ctx.step(f"lr_find_{activation}", {"settings": stored_settings(s), "activation": activation}, run)


def run(ctx) -> dict:
    s: LRRangeSettings = ctx.settings
    rows = []
    for act in s.activations:
        r = range_test(ctx, s, act)
        rows.append(
            {
                "activation": act,
                "lr_min": r.get("lr_min"),
                "lr_max": r.get("lr_max"),
                "error": r.get("error"),
                "steps": len(r.get("lrs", [])),
            }
        )
    return {"bounds": rows}


def evaluations(ctx) -> dict:
    """One unit per activation: its range test (as long as a short training run, independent of the others)."""
    return {act: partial(range_test, ctx, ctx.settings, act) for act in ctx.settings.activations}


# Smoke: an 8-step sweep with lighter smoothing, for one fixed activation and one KAF (a sweep costs as much
# as a short training run; the other activations use the thesis's bounds).
SMOKE_VGG = LRRangeSettings(
    activations=("relu", "kaf"),
    epochs=SMOKE.epochs,
    batch_size=SMOKE.lr_find_batch_size,
    train_subset=SMOKE.lr_find_subset,
    beta=0.7,
)

VGG_LR_RANGE = Experiment(
    name="vgg_lr_range",
    section="4.2/5.1",
    title="Learning-rate range tests (fast AT) of the VGG x 7 activations",
    run=run,
    evaluations=evaluations,
    # cpu: one-epoch sweeps (as ResNet-20's cpu profile), lr 1e-4 to 3 on all 50,000 images
    settings={"smoke": SMOKE_VGG, "cpu": LRRangeSettings(activations=CPU_ORDER, epochs=1), "full": LRRangeSettings()},
    notebook="06_fast_adversarial_training",
    figures=("lr_range_test", "lr_range_tests_vgg", "one_cycle_schedule"),
)
