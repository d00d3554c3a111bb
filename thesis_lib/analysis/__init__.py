"""Analyses behind the thesis's figures: activation capture and distributions (chapter 4), k-WTA
line scans (section 3.1), KAF shapes and where their inputs leave the dictionary (section 2.4),
Lipschitz bounds (section 2.3.3, chapter 6), and the chapter-5 tables and verdicts (sections 5.2 and
5.3, `chapter5`), and every claim of the thesis with its verdict from the stored results (`claims`).

All functions return plain data (numpy arrays, lists of dicts ready for `pandas.DataFrame`; `chapter5`: DataFrames) that
`thesis_lib.plotting` draws. Importing does no work.
"""

from . import chapter5, claims
from .capture import ActivationCapture, activation_layers, collect_activations
from .chapter5 import (
    chapter5_stamp,
    exploding_table,
    exploding_verdicts,
    format_intervals,
    profile_note,
    robustness_table,
    robustness_verdicts,
    verdict_lines,
)
from .claims import CLAIMS, Claim, evaluate_claims
from .distributions import activation_histograms, activation_shape, filter_mean_activations, layer_distances
from .kaf_reach import committed_reach, inputs_beyond_reach, kernel_reach, reach_lines, reach_table
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
    "chapter5",
    "claims",
    "Claim",
    "CLAIMS",
    "evaluate_claims",
    "robustness_table",
    "robustness_verdicts",
    "exploding_table",
    "exploding_verdicts",
    "format_intervals",
    "chapter5_stamp",
    "profile_note",
    "verdict_lines",
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
    "committed_reach",
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
