"""Evaluation units (`Experiment.evaluations`) compute exactly the steps of the experiment's own `run`.

The Ray executor runs each unit as a task and then the experiment, which must find every step stored.
Checked on the committed results: for every finished experiment that declares units, running each unit
on a copy of its results folder computes nothing (every step it asks for is stored with the same
settings) and trains nothing.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
import torch

import thesis_lib.training
from thesis_lib.experiments import context as context_module
from thesis_lib.experiments.context import RunContext
from thesis_lib.experiments.registry import EXPERIMENTS
from thesis_lib.experiments.runner import is_complete

RESULTS = Path(__file__).resolve().parents[1] / "results"
CASES = [
    (profile, name)
    for profile in ("smoke", "cpu")
    for name, exp in EXPERIMENTS.items()
    if exp.evaluations is not None and exp.has_profile(profile) and is_complete(name, profile, RESULTS)
]


@pytest.fixture
def nothing_computed(monkeypatch):
    """Steps that would be computed and training raise; models are stand-ins, never loaded."""
    step = context_module.StepCache.step

    def stored_only(self, name, settings, fn, digits=6):
        def compute():
            raise AssertionError(f"{self.label}: step {name} is not stored with these settings")

        return step(self, name, settings, compute, digits)

    @contextlib.contextmanager
    def no_model(self, key, config):
        yield torch.nn.Linear(1, 1)  # a stand-in: only a computed step would call it

    monkeypatch.setattr(context_module.StepCache, "step", stored_only)
    monkeypatch.setattr(context_module.TrainedModels, "model", no_model)
    monkeypatch.setattr(thesis_lib.training, "train", lambda config, *a, **k: pytest.fail(f"unit trains {config}"))


@pytest.mark.skipif(not CASES, reason="no committed results with evaluation units")
@pytest.mark.parametrize(("profile", "name"), CASES, ids=[f"{p}-{n}" for p, n in CASES])
def test_units_compute_nothing_the_experiment_stored(profile, name, tmp_path, nothing_computed):
    root = tmp_path / "results"
    shutil.copytree(RESULTS / profile, root / profile)  # units write model cards: never into the repository
    exp = EXPERIMENTS[name]
    ctx = RunContext(
        experiment=exp,
        profile=profile,
        settings=exp.settings_for(profile),
        results_root=root,
        runs_root=tmp_path / "cache",
        data=None,
        device="cpu",
        log=lambda msg: None,
    )
    units = exp.evaluations(ctx)
    assert units, f"{name} declares evaluations but has no unit"
    for fn in units.values():
        fn()
