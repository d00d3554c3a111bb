"""What an experiment is: a named `run(ctx)` with one settings object per profile (docs/protocol.md).

Profiles, smallest to largest:

- `smoke`: proves the whole pipeline on a small CIFAR-10 subset in minutes on a CPU (CI);
- `cpu`: a stated reduced scale that fits a 2-core CPU in hours (optional per experiment);
- `full`: exactly the thesis protocol.

An experiment may train models (`runs`: the key, activation and TrainConfig of each, and the attack
radius its models are evaluated at), so "every trained model of a profile" is a loop over the
registry; may split its evaluation into independent units (`evaluations`, e.g. one per model), which
an executor may run side by side; and may require other experiments, which run first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..utils import ThesisError

__all__ = ["Experiment", "TrainedRun", "PROFILES", "REQUIRED_PROFILES", "check_profile", "stored_settings"]

PROFILES = ("smoke", "cpu", "full")  # every known profile, smallest to largest
REQUIRED_PROFILES = ("smoke", "full")  # every experiment defines these; `cpu` is optional


def check_profile(profile: str, extra: tuple[str, ...] = ()) -> str:
    """`profile` if it is known (or in `extra`, e.g. "best"), else one ThesisError sentence."""
    valid = PROFILES + tuple(extra)
    if profile not in valid:
        raise ThesisError(f"Unknown profile {profile!r}: use one of {', '.join(valid)}.")
    return profile


def stored_settings(obj: Any) -> Any:
    """A settings object as stored with results and hashed into their keys: `dataclasses.asdict`, except
    that a dataclass's `OMIT_WHEN_DEFAULT` fields (added after results were committed) are left out at
    their defaults, at every level of nesting, so adding a field keeps the stored keys valid."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        d = {f.name: stored_settings(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name, default in getattr(type(obj), "OMIT_WHEN_DEFAULT", {}).items():
            if name in d and d[name] == default:
                d.pop(name)
        return d
    if isinstance(obj, (list, tuple)):
        return type(obj)(stored_settings(v) for v in obj)
    if isinstance(obj, dict):
        return {k: stored_settings(v) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class TrainedRun:
    """One model an experiment trains, as other experiments (AutoAttack, Lipschitz, ...) see it.

    `config` is the run's identity as the experiment states it, not a TrainConfig object: only the fields
    the experiment sets (None dropped), the training package filling in the defaults. The steps that
    evaluate the model store this dict in their settings and every stored result is keyed by its hash,
    so it stays this plain form; `ctx.train_config(run.config)` gives the TrainConfig where one is needed.
    """

    key: str  # run key, unique within the experiment (its training/<key>.json and weights/<key>.*)
    activation: str
    config: dict  # the TrainConfig fields the experiment sets (None dropped): see above
    model: str  # architecture label for tables, e.g. "VGG", "ResNet-20"
    training: str  # "standard" or "fast AT"
    eps: float  # L-inf radius the experiment evaluates this model at, [0, 1] pixel units
    step: float  # PGD step size of that evaluation


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
    requires_by_profile: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per-profile `requires`
    figures: tuple[str, ...] = ()  # stable figure/table names the notebook writes to figures/
    runs: Callable[..., list[TrainedRun]] | None = None  # runs(ctx) -> the models it trains; None: none
    # evaluations(ctx) -> {unit key: fn()}: independent units of its evaluation (e.g. one per model), each
    # computing and storing its own steps once the models are trained; run(ctx) then reads them back. The
    # Ray executor runs each unit as a task of its own. None: the evaluation is run(ctx) alone.
    evaluations: Callable[..., dict[str, Callable[[], Any]]] | None = None
    # shown by its notebook where its results exist: the notebook's profile (`--profile best`) does not wait for it
    supplementary: bool = False

    def __post_init__(self):
        keys = set(self.settings)
        if not set(REQUIRED_PROFILES) <= keys <= set(PROFILES):
            optional = tuple(p for p in PROFILES if p not in REQUIRED_PROFILES)
            raise ValueError(
                f"experiment {self.name!r} must define settings for {REQUIRED_PROFILES} and may add {optional}"
            )

    def settings_for(self, profile: str):
        check_profile(profile)
        if profile not in self.settings:
            have = ", ".join(p for p in PROFILES if p in self.settings)
            raise ThesisError(f"Experiment {self.name!r} has no {profile!r} profile (it has: {have}).")
        return self.settings[profile]

    def has_profile(self, profile: str) -> bool:
        return profile in self.settings

    def requirements(self, profile: str) -> tuple[str, ...]:
        """The experiments this one uses under `profile` (a smaller profile may use fewer)."""
        return tuple(self.requires_by_profile.get(profile, self.requires))

    def settings_dict(self, profile: str) -> dict:
        """The settings as stored with the results (and hashed into their key)."""
        s = self.settings_for(profile)
        return stored_settings(s) if dataclasses.is_dataclass(s) else dict(s)
