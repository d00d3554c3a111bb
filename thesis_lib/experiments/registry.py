"""The experiment registry: `_ALL` below lists every experiment, in thesis order.

Each experiment module defines one `Experiment` (its thesis section, notebook, settings per profile,
requirements and figures); `docs/protocol.md` says what each computes, and the README's status table
and `notebooks/README.md` are generated from this registry. (Section 2.1.3's figures are analytic:
notebook 01 needs no experiment.) Adding an experiment is one module defining an `Experiment`, its
import here and one line in `_ALL`. Importing this module runs no experiment and registers nothing
elsewhere: the modules only define their settings and functions (one may reuse another's, e.g.
`resnet20_at` builds on `vgg`'s fast-AT family), and none of them imports this registry back. The
experiments are imported from their modules, not through the `experiments` package (whose `__init__`
imports this registry).
"""

from __future__ import annotations

from .adversarial_examples import EXPERIMENT as ADVERSARIAL_EXAMPLES
from .autoattack_eval import EXPERIMENT as AUTOATTACK
from .autoattack_eval import LIGHT_CNN as AUTOATTACK_LIGHT_CNN
from .experiment import PROFILES, REQUIRED_PROFILES, Experiment, TrainedRun, check_profile
from .kaf_shapes import EXPERIMENT as KAF_SHAPES
from .kwta_line import EXPERIMENT as KWTA_LINE
from .light_cnn import EXPERIMENT as LIGHT_CNN
from .lipschitz import EXPERIMENT as LIPSCHITZ
from .lipschitz import LIGHT_CNN as LIPSCHITZ_LIGHT_CNN
from .lr_range import VGG_LR_RANGE
from .resnet20_at import EXPERIMENT as RESNET20_AT
from .resnet20_at import LR_RANGE as RESNET20_LR_RANGE
from .resnet20_seeds import EXPERIMENT as RESNET20_SEEDS
from .resnet56_fix import EXPERIMENT as RESNET56_FIX
from .resnet_standard import EXPERIMENT as RESNET_STANDARD
from .vgg import EXPERIMENT as VGG

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
    LIGHT_CNN,
    ADVERSARIAL_EXAMPLES,
    KWTA_LINE,
    VGG_LR_RANGE,
    VGG,
    KAF_SHAPES,
    RESNET_STANDARD,
    RESNET20_LR_RANGE,
    RESNET20_AT,
    RESNET20_SEEDS,
    LIPSCHITZ_LIGHT_CNN,
    LIPSCHITZ,
    AUTOATTACK_LIGHT_CNN,
    AUTOATTACK,
    RESNET56_FIX,
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
