"""Section 5.3, repeated over training seeds: how much of the ResNet-20 table is the seed?

The thesis trained each model once. A difference between two activations of a few points of robust
accuracy can be the spread between two trainings of the same network; here the fast-AT ResNet-20 of
the comparisons that matter most (relu, swish, kaf) is trained again with other seeds (weight
initialisation, data order and FGSM-RS noise), with exactly the settings, bounds and evaluation of
`resnet20_at` (clean accuracy, PGD-50-10 on the same stratified images, the thesis's evaluation), so
each activation has len(seeds) + 1 runs. `reporting.chapter5.seed_table` gives mean and spread.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .common import arch_label
from .experiment import Experiment, TrainedRun, stored_settings
from .vgg import ATSettings, at_config, evaluate_at_run, evaluation_units, lr_bounds_for, overfitting_watch

__all__ = ["SeedSettings", "seed_key", "EXPERIMENT"]


@dataclass(frozen=True)
class SeedSettings:
    base: str = "resnet20_at"  # the fast-AT family repeated (its settings of the same profile are used)
    activations: tuple = ("relu", "swish", "kaf")
    seeds: tuple = (1, 2)  # training seeds besides the base family's own (0)


def seed_key(activation: str, seed: int) -> str:
    return f"{activation}_seed{seed}"


def _members(ctx) -> list[tuple[str, str, int, ATSettings, float | None, float | None, str]]:
    """(run key, activation, seed, settings, lr_min, lr_max, bounds source), seed by seed."""
    s: SeedSettings = ctx.settings
    base: ATSettings = ctx.sibling(s.base).settings
    out = []
    for seed in s.seeds:
        if seed == base.seed:
            raise ValueError(f"seed {seed} is the base family's own seed; choose others")
        at = dataclasses.replace(base, seed=seed)
        for act in s.activations:
            out.append((seed_key(act, seed), act, seed, at, *lr_bounds_for(ctx, base, act)))
    return out


def seed_runs(ctx) -> list[TrainedRun]:
    return [
        TrainedRun(key, act, at_config(at, act, lo, hi), arch_label(at.arch), "fast AT", at.pgd.eps, at.pgd.step)
        for key, act, _seed, at, lo, hi, _ in _members(ctx)
    ]


def seed_evaluations(ctx) -> dict:
    """One unit per repeat: evaluated as the base family evaluates its models."""
    return evaluation_units(ctx, [(m[3], run) for m, run in zip(_members(ctx), seed_runs(ctx))])


def run(ctx) -> dict:
    """Train every repeat first, then evaluate each as the base family evaluates its models."""
    from ..training import TrainConfig

    members = _members(ctx)
    rows, configs = [], {}
    for key, act, seed, at, lo, hi, source in members:
        cfg = at_config(at, act, lo, hi)
        metrics = ctx.train(key, cfg)
        configs[key] = cfg
        resolved = TrainConfig.from_dict(cfg).resolved()
        rows.append(
            {
                "key": key,
                "activation": act,
                "seed": seed,
                "lr_min": resolved.lr_min,
                "lr_max": resolved.lr_max,
                "lr_source": source,
                "clean_acc_train_eval": metrics["clean_acc"],
                "diverged": metrics.get("diverged"),
                "train_wall_time_s": metrics.get("wall_time_s"),
                "overfitting": overfitting_watch(metrics.get("history", [])),
            }
        )
    for row, (key, act, _seed, at, *_rest) in zip(rows, members):
        with ctx.model(key, configs[key]) as model:
            evaluate_at_run(ctx, at, key, act, configs[key], model, row)
    pgd = stored_settings(members[0][3].pgd) if members else None
    return {"models": rows, "base": ctx.settings.base, "pgd": pgd}


EXPERIMENT = Experiment(
    name="resnet20_seeds",
    section="5.3",
    title="ResNet-20 fast AT repeated over training seeds (relu, swish, kaf)",
    run=run,
    # smoke: one more seed of two models (proves the pipeline); cpu and full: two more seeds of three
    settings={
        "smoke": SeedSettings(activations=("relu", "kaf"), seeds=(1,)),
        "cpu": SeedSettings(),
        "full": SeedSettings(),
    },
    notebook="09_resnet20_results",
    requires=("resnet20_at",),
    runs=seed_runs,
    evaluations=seed_evaluations,
    figures=("resnet20_seeds",),
    supplementary=True,
)
