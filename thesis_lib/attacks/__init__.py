"""Attacks and robustness evaluation (thesis sections 2.2 and 5; protocol "Evaluation").

- `fgsm`, `pgd` (L-inf / L2, random restarts, early stopping per example), `run_pgd` (per-example detail);
- `robust_accuracy` over a data set; curves vs eps, iterations and restarts;
- `autoattack_eval` (AutoAttack standard, or its cheaper APGD-CE + APGD-T subset);
- `gradient_masking_report` (Carlini et al. 2019 checklist; flags k-WTA's shattered gradients);
- `thesis_protocol_pgd`: the thesis's own 2020 evaluation (ART PGD without labels, one restart kept per set).

Every attack runs the model in eval mode with frozen parameters and restores its state afterwards.
"""

from .autoattack import AUTOATTACK_VERSIONS, autoattack_eval
from .context import attack_mode
from .curves import accuracy_vs_eps, accuracy_vs_iterations, accuracy_vs_restarts
from .evaluate import ATTACKS, AttackSettings, predict, robust_accuracy, uniform_noise
from .fgsm import fgsm
from .fold import fold_batchnorm
from .pgd import PGDResult, pgd, run_pgd
from .sanity import SanityConfig, first_order_error, gradient_masking_report, zero_gradient_fraction
from .thesis_protocol import art_crosscheck, thesis_protocol_pgd

__all__ = [
    "fgsm",
    "pgd",
    "run_pgd",
    "PGDResult",
    "robust_accuracy",
    "predict",
    "uniform_noise",
    "AttackSettings",
    "ATTACKS",
    "accuracy_vs_eps",
    "accuracy_vs_iterations",
    "accuracy_vs_restarts",
    "autoattack_eval",
    "AUTOATTACK_VERSIONS",
    "gradient_masking_report",
    "SanityConfig",
    "first_order_error",
    "zero_gradient_fraction",
    "attack_mode",
    "fold_batchnorm",
    "thesis_protocol_pgd",
    "art_crosscheck",
]
