"""Evaluation of the fast-AT families: per-example PGD outcomes, the thesis protocol, the overfitting watch.

Fast: a tiny light CNN trained for one epoch on 32 real CIFAR-10 images; attacks of 2 iterations.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from thesis_lib.attacks import fold_batchnorm
from thesis_lib.experiments import get_experiment
from thesis_lib.experiments.common import PGDSettings
from thesis_lib.experiments.context import RunContext
from thesis_lib.experiments.vgg import ATSettings, evaluate_at_run, overfitting_watch
from thesis_lib.models import build_model
from thesis_lib.training import train

TINY = {"arch": "light_cnn", "activation": "relu", "epochs": 1, "train_subset": 32, "test_subset": 16, "batch_size": 16}


@pytest.fixture
def ctx(tmp_path, offline_cifar):
    return RunContext(
        experiment=get_experiment("vgg"),
        profile="smoke",
        settings=None,
        results_root=tmp_path / "results",
        runs_root=tmp_path / "cache",
        device="cpu",
        log=lambda m: None,
    )


def test_at_evaluation_stores_per_example_outcomes_and_the_thesis_number(ctx):
    s = ATSettings(pgd=PGDSettings(steps=2, restarts=2, n=10), thesis_eval=True, art_check_n=6, curve_activations=())
    ctx.train("relu", TINY)
    row = {}
    with ctx.model("relu", TINY) as model:
        evaluate_at_run(ctx, s, "relu", "relu", TINY, model, row)
    pgd = json.loads((ctx.out / "pgd_relu.json").read_text())["result"]
    thesis = json.loads((ctx.out / "thesis_pgd_relu.json").read_text())["result"]
    check = json.loads((ctx.out / "art_crosscheck_relu.json").read_text())["result"]
    assert len(pgd["per_example"]) == len(thesis["per_example"]) == 10
    assert row["robust_acc"] == pytest.approx(sum(pgd["per_example"]) / 10)
    assert row["thesis_robust_acc"] == pytest.approx(sum(thesis["per_example"]) / 10)
    # worst case over restarts against the true label can only be lower than the thesis's number
    assert all(t or not p for p, t in zip(pgd["per_example"], thesis["per_example"]))
    assert check["n"] == 6 and check["same_outcome"] == 1.0 and check["max_abs_pixel_diff"] == 0.0


def test_new_settings_fields_leave_the_stored_keys_alone():
    """Fields added to ATSettings after results were committed are not part of their settings keys."""
    exp = dataclasses.replace(get_experiment("vgg"), settings={"smoke": ATSettings(), "full": ATSettings()})
    assert not {"watch_size", "thesis_eval", "art_check_n", "art_check_activation"} & set(exp.settings_dict("smoke"))
    full = dataclasses.asdict(ATSettings())
    stored = exp.settings_dict("smoke")
    assert set(stored) == set(full) - set(ATSettings.OMIT_WHEN_DEFAULT)
    # the nested attack settings keep the fields every committed key was computed with
    assert stored["pgd"] == {"eps": 8 / 255, "step": 2 / 255, "steps": 50, "restarts": 10, "n": None, "seed": 0}
    assert {k: v for k, v in stored.items() if k != "pgd"} == {
        k: v for k, v in full.items() if k not in ATSettings.OMIT_WHEN_DEFAULT and k != "pgd"
    }
    cpu = get_experiment("resnet20_at").settings_dict("cpu")
    assert cpu["thesis_eval"] is True and cpu["watch_size"] == 512 and cpu["art_check_n"] == 200


def test_one_frozen_attack_settings_type():
    """PGDSettings is an AttackSettings plus the number of images; both are frozen and validated."""
    from thesis_lib.attacks import AttackSettings

    s = PGDSettings(steps=2, restarts=1, n=10)
    assert isinstance(s, AttackSettings) and s.attack_fields() == dataclasses.asdict(
        AttackSettings(steps=2, restarts=1)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.eps = 0.1
    for bad in (dict(eps=-0.1), dict(attack="fgsm"), dict(n=0), dict(norm="l3")):
        with pytest.raises(ValueError):
            PGDSettings(**bad)


def test_overfitting_watch_flags_a_collapse_not_noise():
    def hist(accs):
        return [{"epoch": i + 1, "watch_pgd_acc": a} for i, a in enumerate(accs)]

    assert overfitting_watch([{"epoch": 1}]) is None
    assert overfitting_watch(hist([0.2, 0.3, 0.35, 0.33]))["collapsed"] is False
    w = overfitting_watch(hist([0.2, 0.35, 0.4, 0.02]))
    assert w["collapsed"] is True and w["best_epoch"] == 3 and w["final"] == 0.02
    # collapsed from the start (no high point to fall from) while clean accuracy is far above chance
    early = [{**h, "test_acc": 0.7} for h in hist([0.05, 0.0, 0.03, 0.0])]
    assert overfitting_watch(early)["collapsed"] is True
    # a network at chance is not robust either, but that is not overfitting
    assert overfitting_watch([{**h, "test_acc": 0.1} for h in hist([0.05, 0.0, 0.03, 0.0])])["collapsed"] is False


def test_the_watch_does_not_change_training(offline_cifar):
    """The per-epoch watch attacks the model but must leave the training's random stream untouched."""
    cfg = {**TINY, "method": "fast_at", "epochs": 2}
    plain = train(cfg, verbose=False)
    watched = train({**cfg, "watch_size": 16}, verbose=False)
    assert [h["train_loss"] for h in plain["history"]] == [h["train_loss"] for h in watched["history"]]
    assert all(0.0 <= h["watch_pgd_acc"] <= 1.0 for h in watched["history"]) and watched["n_watch"] == 16
    assert "watch_size" not in plain["config"]  # configs written before the watch existed keep their hash


def test_folding_batchnorm_leaves_the_global_generator_alone():
    model = build_model("vgg", "relu").eval()
    state = torch.get_rng_state()
    fold_batchnorm(model)
    assert torch.equal(state, torch.get_rng_state())
