"""Analyses behind the thesis's figures: activation capture and distributions (chapter 4), k-WTA
line scans (section 3.1), KAF shapes (section 2.4) and Lipschitz bounds (section 2.3.3, chapter 6).

All functions return plain data (numpy arrays, lists of dicts ready for `pandas.DataFrame`) that
`thesis_lib.plotting` draws. Importing does no work.
"""

from .capture import ActivationCapture, activation_layers, collect_activations
from .distributions import activation_histograms, activation_shape, filter_mean_activations, layer_distances
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

__all__ = [
    "ActivationCapture",
    "collect_activations",
    "activation_layers",
    "activation_histograms",
    "filter_mean_activations",
    "layer_distances",
    "activation_shape",
    "kaf_curves",
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
]
