"""Analyses behind the thesis's figures: activation capture and distributions (chapter 4), k-WTA
line scans (section 3.1), KAF shapes and where their inputs leave the dictionary (section 2.4),
Lipschitz bounds (section 2.3.3, chapter 6), and the interval estimates and tests every verdict rests
on (`stats`).

All functions compute from the models and data they are given and return plain data (numpy arrays,
lists of dicts ready for `pandas.DataFrame`) that `thesis_lib.plotting` draws; none reads stored
results (that is `thesis_lib.reporting`, which also holds the chapter-5 tables and verdicts and the
claims). Importing does no work.
"""

from .capture import ActivationCapture, activation_layers, collect_activations
from .distributions import activation_histograms, activation_shape, filter_mean_activations, layer_distances
from .kaf_reach import inputs_beyond_reach, kernel_reach, reach_lines, reach_table
from .kaf_shapes import kaf_curves
from .line_scan import count_discontinuities, find_jumps, line_scan, random_direction
from .lipschitz import (
    conv_fft_bound,
    conv_matrix,
    conv_operator_norm,
    empirical_lipschitz,
    layer_lipschitz,
    lipschitz_bound,
    network_units,
    power_iteration,
)
from .stats import (
    Estimate,
    mcnemar_exact,
    paired_difference,
    percent_ci,
    proportion_difference,
    welch_difference,
    wilson,
)

__all__ = [
    "ActivationCapture",
    "collect_activations",
    "activation_layers",
    "activation_histograms",
    "filter_mean_activations",
    "layer_distances",
    "activation_shape",
    "kaf_curves",
    "kernel_reach",
    "inputs_beyond_reach",
    "reach_table",
    "reach_lines",
    "line_scan",
    "find_jumps",
    "count_discontinuities",
    "random_direction",
    "lipschitz_bound",
    "layer_lipschitz",
    "empirical_lipschitz",
    "power_iteration",
    "conv_operator_norm",
    "conv_fft_bound",
    "conv_matrix",
    "network_units",
    "Estimate",
    "wilson",
    "percent_ci",
    "paired_difference",
    "mcnemar_exact",
    "proportion_difference",
    "welch_difference",
]
