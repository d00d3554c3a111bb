"""Section 5.1: VGG-inspired CNNs with 7 activations, fast adversarial training, PGD-50-10.

Protocol: VGG x {relu, elu, kaf, kaf_elu, swish, kaf_swish, kaf_free}; FGSM-RS fast adversarial
training (eps 8/255, step 1.25 eps), SGD, batch 128, 60 epochs, one-cycle schedule between the
thesis's range-test bounds (docs/protocol.md; `lr_source="range_test"` uses the bounds measured by the
`vgg_lr_range` experiment instead), no augmentation. Evaluation: PGD L-inf eps 8/255, step 2/255,
50 iterations, 10 restarts on the whole test set; robust accuracy vs PGD iterations (up to 150)
for relu and kaf; training curves from the runs' histories.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from ..weights import record_evaluation
from .common import (
    PGD_SMOKE,
    PGD_THESIS,
    SMOKE,
    PGDSettings,
    arch_label,
    evaluate_pgd,
    evaluate_thesis_protocol,
    train_config,
)
from .experiment import Experiment, TrainedRun, stored_settings
from .lr_range import CPU_ORDER, VGG_ACTIVATIONS

__all__ = [
    "ATSettings",
    "THESIS_LR_SUFFIX",
    "at_config",
    "at_runs",
    "run_at_experiment",
    "evaluate_at_run",
    "lr_bounds_for",
    "overfitting_watch",
]

# Run key suffix of the second row set (`ATSettings.thesis_lr_rows`): same model, the thesis's bounds.
THESIS_LR_SUFFIX = "_thesis_lr"


@dataclass(frozen=True)
class ATSettings:
    """A family of fast-adversarially-trained models (one per activation) and their evaluation."""

    arch: str = "vgg"
    activations: tuple = VGG_ACTIVATIONS  # also the training order
    epochs: int = 60  # one-cycle epochs
    batch_size: int = 128
    augment: bool = False  # pad-4 crop + flip (ResNets: True)
    eps: float = 8 / 255  # training attack radius (FGSM-RS), [0, 1] pixel units
    lr_source: str = "thesis"  # "thesis": docs/protocol.md's bounds; "range_test": bounds measured by `lr_experiment`
    lr_experiment: str = "vgg_lr_range"  # experiment holding the range tests
    train_subset: int | None = None  # None = all 50,000
    test_subset: int | None = None  # clean accuracy during training; None = all 10,000
    pgd: PGDSettings = field(default_factory=lambda: PGD_THESIS)  # the robust-accuracy evaluation
    curve_activations: tuple = ("relu", "kaf")  # robust accuracy vs PGD iterations for these
    curve_iterations: tuple = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150)
    curve_restarts: int = 1  # restarts of the iterations curve
    curve_n: int | None = None  # test images of the curve; None = all 10,000
    seed: int = 0
    watch_size: int = 0  # catastrophic-overfitting watch: PGD-10 accuracy on this many training images per epoch
    thesis_eval: bool = False  # also the thesis's own evaluation (ART 2020 PGD without labels) on the PGD images
    art_check_n: int = 0  # images of the cross-check against ART itself (one model: `art_check_activation`)
    art_check_activation: str = "relu"
    # with lr_source "range_test": every activation trained and evaluated again between the thesis's recorded
    # bounds (run keys <activation>_thesis_lr), after the range-test row set; no ART check or iterations curve
    thesis_lr_rows: bool = False

    # Added after results were committed: left out of the settings key at their defaults (keys stay valid).
    OMIT_WHEN_DEFAULT: ClassVar[dict] = {
        "watch_size": 0,
        "thesis_eval": False,
        "art_check_n": 0,
        "art_check_activation": "relu",
        "thesis_lr_rows": False,
    }


def lr_bounds_for(ctx, s: ATSettings, activation: str) -> tuple[float | None, float | None, str]:
    """(lr_min, lr_max, source) for one activation; None bounds = TrainConfig's per-model defaults.

    source says where the bounds come from: "range_test", "thesis" (a pair the thesis recorded) or
    "default" (neither: TrainConfig's fallback), with the reason a range test gave none.
    """
    from ..training.config import THESIS_LR_BOUNDS, _family

    recorded = activation in THESIS_LR_BOUNDS.get(_family(s.arch), {})
    fallback = "thesis" if recorded else "default"
    if s.lr_source == "thesis":
        return None, None, fallback
    if s.lr_source != "range_test":
        raise ValueError(f"lr_source must be 'thesis' or 'range_test', got {s.lr_source!r}")
    from .lr_range import range_test

    lr_ctx = ctx.sibling(s.lr_experiment)
    if activation not in lr_ctx.settings.activations:
        return None, None, f"{fallback} (no range test)"
    r = range_test(lr_ctx, lr_ctx.settings, activation)
    if r.get("lr_min") is None or not r["lr_min"] < r["lr_max"]:
        return None, None, f"{fallback} (range test failed)"
    return float(r["lr_min"]), float(r["lr_max"]), "range_test"


def at_config(s: ATSettings, activation: str, lr_min=None, lr_max=None) -> dict:
    return train_config(
        arch=s.arch,
        activation=activation,
        method="fast_at",
        eps=s.eps,
        epochs=s.epochs,
        batch_size=s.batch_size,
        optimizer="sgd",
        schedule="one_cycle",
        lr_min=lr_min,
        lr_max=lr_max,
        augment=s.augment,
        train_subset=s.train_subset,
        test_subset=s.test_subset,
        seed=s.seed,
        watch_size=s.watch_size or None,
    )


def overfitting_watch(history: list[dict], drop: float = 0.1, floor: float = 0.02, learnt: float = 0.2) -> dict | None:
    """Catastrophic overfitting (Wong et al. 2020) read off the per-epoch watch: None without a watch.

    `collapsed` when the last epoch's PGD accuracy on the watch images is both `drop` (absolute) below
    its best and under half of it (the abrupt fall to near zero, not epoch-to-epoch noise), or when it
    ends at or below `floor` while the network has learnt the clean task (last epoch's test accuracy
    >= `learnt`): a collapse in the first epochs leaves no high point to fall from, only a network that
    classifies clean images and no attacked one.
    """
    accs = [(h["epoch"], h["watch_pgd_acc"]) for h in history if h.get("watch_pgd_acc") is not None]
    if not accs:
        return None
    best_epoch, best = max(accs, key=lambda e: e[1])
    final = accs[-1][1]
    fell = final < best - drop and final < 0.5 * best
    clean = history[-1].get("test_acc")
    never_robust = final <= floor and clean is not None and clean >= learnt
    return {"best": best, "best_epoch": best_epoch, "final": final, "collapsed": bool(fell or never_robust)}


def _members(ctx, s: ATSettings) -> list[list[tuple[str, str, float | None, float | None, str]]]:
    """The row sets, in run order: each a list of (run key, activation, lr_min, lr_max, bounds source)."""
    sets = [[(act, act, *lr_bounds_for(ctx, s, act)) for act in s.activations]]
    if s.thesis_lr_rows and s.lr_source == "range_test":
        thesis = dataclasses.replace(s, lr_source="thesis")
        sets.append([(act + THESIS_LR_SUFFIX, act, *lr_bounds_for(ctx, thesis, act)) for act in s.activations])
    return sets


def at_runs(ctx) -> list[TrainedRun]:
    """The family's fast-AT models (bounds as `run_at_experiment` uses them), evaluated at the PGD radius."""
    s: ATSettings = ctx.settings
    return [
        TrainedRun(key, act, at_config(s, act, lo, hi), arch_label(s.arch), "fast AT", s.pgd.eps, s.pgd.step)
        for members in _members(ctx, s)
        for key, act, lo, hi, _ in members
    ]


def run_at_experiment(ctx) -> dict:
    """Per row set: train every model first, then evaluate each (a long run has its weights before any attack).

    Summary: {"models": rows of the first row set, "thesis_lr_models": rows of the second (when asked), "pgd"}.
    """
    s: ATSettings = ctx.settings
    sets = _members(ctx, s)
    out = {"models": _row_set(ctx, s, sets[0])}
    if len(sets) > 1:
        out["thesis_lr_models"] = _row_set(ctx, s, sets[1])
    out["pgd"] = stored_settings(s.pgd)
    return out


def _row_set(ctx, s: ATSettings, members) -> list[dict]:
    from ..training import TrainConfig

    rows, configs = [], {}
    for key, act, lo, hi, source in members:
        cfg = at_config(s, act, lo, hi)
        resolved = TrainConfig.from_dict(cfg).resolved()
        metrics = ctx.train(key, cfg)
        configs[key] = cfg
        row = {"activation": act} if key == act else {"activation": act, "key": key}
        row.update(
            {
                "lr_min": resolved.lr_min,
                "lr_max": resolved.lr_max,
                "lr_source": source,
                "clean_acc_train_eval": metrics["clean_acc"],
                "diverged": metrics.get("diverged"),
                "early_stopped": metrics.get("early_stopped"),
                "train_wall_time_s": metrics.get("wall_time_s"),
                "overfitting": overfitting_watch(metrics.get("history", [])),
            }
        )
        rows.append(row)
    for row in rows:
        key = row.get("key", row["activation"])
        with ctx.model(key, configs[key]) as model:
            evaluate_at_run(ctx, s, key, row["activation"], configs[key], model, row)
    return rows


def at_evaluations(ctx) -> dict:
    """One unit per model (`Experiment.evaluations`): its evaluation, as `run_at_experiment` does it."""
    return evaluation_units(ctx, [(ctx.settings, run) for run in at_runs(ctx)])


def evaluation_units(ctx, members: list[tuple[ATSettings, TrainedRun]]) -> dict:
    """{run key: fn()} evaluating each trained run with its family's settings (`evaluate_at_run`)."""
    return {run.key: partial(_evaluate_unit, ctx, s, run) for s, run in members}


def _evaluate_unit(ctx, s: ATSettings, run: TrainedRun) -> None:
    with ctx.model(run.key, run.config) as model:
        evaluate_at_run(ctx, s, run.key, run.activation, run.config, model, {"activation": run.activation})


def card_evaluation(pgd: PGDSettings, row: dict) -> dict:
    """What a fast-AT model card says the network scored (from its evaluation row)."""
    out = {
        "attack": f"{pgd.label()} L-inf, eps {pgd.eps:.6g}, step {pgd.step:.6g}",
        "images": f"{row['n_eval']} stratified test images (seed 0)",
        "clean_acc": row["clean_acc"],
        "robust_acc": row["robust_acc"],
    }
    if "thesis_robust_acc" in row:  # the thesis's own evaluation (ART, no labels, best-rate restarts)
        out["thesis_protocol_robust_acc"] = row["thesis_robust_acc"]
    return out


def evaluate_at_run(ctx, s: ATSettings, key: str, act: str, cfg: dict, model, row: dict) -> None:
    """Clean and PGD accuracy (and the thesis's evaluation) of run `key`; the main row set also gets the
    ART cross-check (one model) and the iterations curve. Step names end with the run key."""
    from ..attacks import accuracy_vs_iterations, art_crosscheck

    r = evaluate_pgd(ctx, key, model, s.pgd, cfg)
    row.update(clean_acc=r["clean_acc"], robust_acc=r["robust_acc"], n_eval=r["n"], attack_seconds=r.get("seconds"))
    if s.thesis_eval:
        t = evaluate_thesis_protocol(ctx, key, model, s.pgd, cfg)
        row.update(thesis_robust_acc=t["robust_acc"], thesis_flipped_to_correct=t["flipped_to_correct"])
    record_evaluation(ctx.out, key, card_evaluation(s.pgd, row))
    if key != act:
        return
    if s.art_check_n and act == s.art_check_activation:
        images, labels = ctx.test_images(s.art_check_n, 0)
        p = s.pgd
        ctx.step(
            f"art_crosscheck_{act}",
            {"n": s.art_check_n, "eps": p.eps, "step": p.step, "steps": p.steps, "restarts": p.restarts, "config": cfg},
            lambda: art_crosscheck(model, images, labels, p),
        )
    if act in s.curve_activations:
        images, labels = ctx.test_images(s.curve_n, 0)
        ctx.step(
            f"pgd_iterations_{act}",
            {
                "iterations": s.curve_iterations,
                "restarts": s.curve_restarts,
                "n": s.curve_n,
                "eps": s.pgd.eps,
                "step": s.pgd.step,
                "seed": s.pgd.seed,
                "config": cfg,
            },
            lambda: accuracy_vs_iterations(
                model,
                images,
                labels,
                iterations=s.curve_iterations,
                eps=s.pgd.eps,
                step=s.pgd.step,
                restarts=s.curve_restarts,
                seed=s.pgd.seed,
            ),
        )


SMOKE_VGG = ATSettings(
    epochs=SMOKE.epochs,
    train_subset=SMOKE.at_train_subset,
    batch_size=SMOKE.at_batch_size,
    test_subset=SMOKE.test_subset,
    pgd=PGD_SMOKE,
    curve_iterations=(1, 2, 5, 10),
    curve_n=SMOKE.attack_subset,
    thesis_eval=True,
    lr_source="range_test",  # relu and kaf have smoke range tests, the others fall back to the thesis's bounds
    thesis_lr_rows=True,
)

# cpu: 15 of the protocol's 60 epochs (as ResNet-20's cpu profile), one-cycle between this project's range-test
# bounds (vgg_lr_range, one-epoch sweeps) and, as a second row set, between the thesis's; evaluated as ResNet-20's.
CPU_VGG = ATSettings(
    activations=CPU_ORDER,
    epochs=15,
    lr_source="range_test",
    pgd=PGDSettings(n=1000),
    curve_n=500,
    watch_size=512,
    thesis_eval=True,
    art_check_n=200,
    thesis_lr_rows=True,
)

FULL_VGG = ATSettings(watch_size=512, thesis_eval=True, art_check_n=200)

EXPERIMENT = Experiment(
    name="vgg",
    section="5.1",
    title="VGG x 7 activations, fast adversarial training, PGD-50-10",
    run=run_at_experiment,
    settings={"smoke": SMOKE_VGG, "cpu": CPU_VGG, "full": FULL_VGG},
    notebook="07_vgg_results",
    requires=("vgg_lr_range",),
    runs=at_runs,
    evaluations=at_evaluations,
    figures=("vgg_results", "vgg_accuracy_vs_robustness", "vgg_robust_vs_iterations", "vgg_training_curves"),
)
