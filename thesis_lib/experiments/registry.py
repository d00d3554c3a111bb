"""The experiment registry: `_ALL` below lists every experiment, in thesis order.

Each experiment module defines one `Experiment` (its thesis section, notebook, settings per profile,
requirements and figures); `docs/protocol.md` says what each computes, and the README's status table
and `notebooks/README.md` are generated from this registry. (Section 2.1.3's figures are analytic:
notebook 01 needs no experiment.) Adding an experiment is one module defining an `Experiment` plus one
line in `_ALL`. Importing this module runs no experiment and registers nothing elsewhere: the modules
only define their settings and functions (one may reuse another's, e.g. `resnet20_at` builds on
`vgg`'s fast-AT family), and none of them imports this registry back.
"""

from __future__ import annotations

from . import (
    adversarial_examples,
    autoattack_eval,
    kaf_shapes,
    kwta_line,
    light_cnn,
    lipschitz,
    lr_range,
    resnet20_at,
    resnet20_seeds,
    resnet56_fix,
    resnet_standard,
    vgg,
)
from .experiment import PROFILES, REQUIRED_PROFILES, Experiment, TrainedRun, check_profile

__all__ = [
    "Experiment",
    "TrainedRun",
    "EXPERIMENTS",
    "PROFILES",
    "REQUIRED_PROFILES",
    "check_profile",
    "get_experiment",
    "list_experiments",
    "experiments_with_profile",
]

# Thesis order (a requirement may come later: `list_experiments` puts requirements first).
_ALL: tuple[Experiment, ...] = (
    light_cnn.EXPERIMENT,
    adversarial_examples.EXPERIMENT,
    kwta_line.EXPERIMENT,
    lr_range.VGG_LR_RANGE,
    vgg.EXPERIMENT,
    kaf_shapes.EXPERIMENT,
    resnet_standard.EXPERIMENT,
    resnet20_at.LR_RANGE,
    resnet20_at.EXPERIMENT,
    resnet20_seeds.EXPERIMENT,
    lipschitz.LIGHT_CNN,
    lipschitz.EXPERIMENT,
    autoattack_eval.LIGHT_CNN,
    autoattack_eval.EXPERIMENT,
    resnet56_fix.EXPERIMENT,
)
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in _ALL}
if len(EXPERIMENTS) != len(_ALL):
    raise ValueError("two registered experiments share a name")


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}") from None


def list_experiments() -> list[str]:
    """Experiment names in run order: thesis order, with requirements first."""
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

    for n in EXPERIMENTS:
        visit(n, ())
    return done


def experiments_with_profile(profile: str) -> list[str]:
    """Experiment names (run order) that define `profile`, requirements included."""
    check_profile(profile)
    return [n for n in list_experiments() if EXPERIMENTS[n].has_profile(profile)]
