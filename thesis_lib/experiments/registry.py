"""The experiment registry: one line per row of the table "Experiments and the figures they produce".

| experiment | thesis | notebook |
| --- | --- | --- |
| light_cnn | 4 | 05_activation_distributions |
| adversarial_examples | 1.1 / 2.2 | 02_adversarial_examples |
| kwta_line | 3.1 | 04_kwta_discontinuities |
| vgg_lr_range | 4.2 / 5.1 | 06_fast_adversarial_training |
| vgg | 5.1 | 07_vgg_results |
| kaf_shapes | 2.4 | 03_kernel_activation_functions |
| resnet_standard | 5.2 | 08_exploding_gradients |
| resnet20_lr_range, resnet20_at, resnet20_seeds | 5.3 | 09_resnet20_results |
| lipschitz_light_cnn, lipschitz, autoattack_light_cnn, autoattack, resnet56_fix | 4.1 / 6 | 10_future_work |

(Section 2.1.3's figures are analytic: notebook 01 needs no experiment.) Adding an experiment is
one module defining an `Experiment` plus one line in `_ALL` below; importing this module registers
nothing anywhere else (the experiment modules import only `experiment.py` and `common.py`).
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
