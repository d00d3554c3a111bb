"""The experiment registry: one entry per row of the protocol's table "Experiments and the figures they produce".

An experiment is a named function `run(ctx)` with per-profile settings (a dataclass per experiment,
one instance per profile): `smoke` proves the whole pipeline on a small CIFAR-10 subset in minutes
on a CPU, `full` is exactly the thesis protocol (GPU hours); a few experiments also define `cpu`, a
larger run that fits a CPU in tens of minutes (so that some notebooks show trained networks where no
GPU run exists). Experiments may require others (e.g. the
adversarial-example figure attacks the light CNN trained by the chapter-4 experiment); requirements
run first and are skipped when already finished.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Experiment",
    "EXPERIMENTS",
    "PROFILES",
    "REQUIRED_PROFILES",
    "register",
    "get_experiment",
    "list_experiments",
    "experiments_with_profile",
]

PROFILES = ("smoke", "cpu", "full")  # every known profile, smallest to largest
REQUIRED_PROFILES = ("smoke", "full")  # every experiment defines these; `cpu` is optional


@dataclass(frozen=True)
class Experiment:
    """One experiment: what it reproduces, how to run it and with which settings per profile."""

    name: str  # stable id, also the folder name under results/<profile>/
    section: str  # thesis section (draft numbering), e.g. "5.1"
    title: str  # one line for tables of contents and logs
    run: Callable[..., dict]  # run(ctx) -> summary payload (JSON-able)
    settings: dict[str, Any]  # profile name -> settings dataclass instance
    notebook: str  # notebook that shows the results, e.g. "07_vgg_results"
    requires: tuple[str, ...] = ()  # experiments whose results or checkpoints this one uses
    requires_by_profile: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per-profile override of `requires`
    figures: tuple[str, ...] = field(default=())  # stable figure/table names the notebook writes

    def settings_for(self, profile: str):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        if profile not in self.settings:
            have = ", ".join(p for p in PROFILES if p in self.settings)
            raise ValueError(f"experiment {self.name!r} has no {profile!r} profile (it has: {have})")
        return self.settings[profile]

    def has_profile(self, profile: str) -> bool:
        return profile in self.settings

    def requirements(self, profile: str) -> tuple[str, ...]:
        """The experiments this one uses under `profile` (a smaller profile may use fewer)."""
        return tuple(self.requires_by_profile.get(profile, self.requires))

    def settings_dict(self, profile: str) -> dict:
        s = self.settings_for(profile)
        if not dataclasses.is_dataclass(s):
            return dict(s)
        d = dataclasses.asdict(s)
        for name, default in getattr(type(s), "OMIT_WHEN_DEFAULT", {}).items():
            if d.get(name) == default:
                d.pop(name)  # a field added later, at its default: the stored settings keys stay valid
        return d


# Insertion order is thesis order (and a valid dependency order).
EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    keys = set(experiment.settings)
    if not set(REQUIRED_PROFILES) <= keys <= set(PROFILES):
        raise ValueError(
            f"experiment {experiment.name!r} must define settings for {REQUIRED_PROFILES} "
            f"and may add {tuple(p for p in PROFILES if p not in REQUIRED_PROFILES)}"
        )
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def _ensure_loaded() -> None:
    # Importing the definitions registers them; done lazily so that importing thesis_lib stays cheap.
    from . import definitions  # noqa: F401


def _order() -> list[str]:
    """Registered names with every requirement before its dependants (stable: registration order otherwise)."""
    _ensure_loaded()
    done: list[str] = []

    def visit(name: str, path: tuple) -> None:
        if name in done:
            return
        if name in path:
            raise ValueError(f"experiment requirements form a cycle: {' -> '.join(path + (name,))}")
        if name not in EXPERIMENTS:
            raise ValueError(f"experiment {path[-1]!r} requires unregistered {name!r}")
        for r in EXPERIMENTS[name].requires:
            visit(r, path + (name,))
        done.append(name)

    for n in list(EXPERIMENTS):
        visit(n, ())
    return done


def get_experiment(name: str) -> Experiment:
    _ensure_loaded()
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}") from None


def list_experiments() -> list[str]:
    """Experiment names in run order: thesis order, with requirements first."""
    return _order()


def experiments_with_profile(profile: str) -> list[str]:
    """Experiment names (run order) that define `profile`, requirements included."""
    return [n for n in list_experiments() if EXPERIMENTS[n].has_profile(profile)]
