"""Figures of the thesis: one fixed style, reproducible files, one small function per figure type.

Usage in a notebook:

    from thesis_lib import plotting
    from thesis_lib.reporting.stamp import profile_stamp
    plotting.use_style()
    fig = plotting.plot_accuracy_vs_robustness(table)
    plotting.savefig(fig, "5.1_accuracy_vs_robustness", stamp=profile_stamp(res))
    # figures/<name>.pdf and .png, with the profile stamp drawn over the figure and in the metadata

Every `plot_*` function returns its matplotlib Figure and never saves or shows it; figures are at
most `TEXT_WIDTH` (6.3 in, a thesis page) wide with fonts of at least `MIN_FONT_SIZE` (8 pt), so
they print at their drawn size. The functions draw the data they are given and read no stored
results (`thesis_lib.reporting` does, and builds the profile stamps). Importing this package does not
import pyplot (it is imported when a figure is first drawn).
"""

from .activations import (
    plot_activation_derivatives,
    plot_activation_functions,
    plot_kaf_reach,
    plot_kaf_ridge_fit,
    plot_kaf_shapes,
    plot_sigmoid,
)
from .adversarial import plot_adversarial_example, plot_adversarial_grid
from .annotate import label_points, mark_off_scale
from .chapter5 import plot_accuracy_vs_robustness_ci, plot_overfitting_watch, plot_robust_vs_iterations_ci, plot_seeds
from .distributions import plot_activation_histograms, plot_filter_means, plot_layer_distances
from .future_work import plot_fix_ablation, plot_kaf_kernels, plot_lipschitz_bounds
from .line_scan import plot_kwta_line_scan
from .robustness import plot_accuracy_vs_robustness, plot_robust_vs_iterations
from .stamp import ANALYTIC, figure_stamp, is_stamp, read_stamp, stamp_figure, tex_stamp
from .style import (
    DPI,
    MIN_FONT_SIZE,
    PALETTE,
    STYLE,
    TEXT_WIDTH,
    activation_color,
    activation_marker,
    is_kaf_name,
    savefig,
    style_context,
    use_style,
)
from .training import (
    ema,
    pick_layers,
    plot_gradient_norms,
    plot_lr_range_step,
    plot_lr_range_test,
    plot_lr_range_tests,
    plot_one_cycle,
    plot_training_curves,
)

__all__ = [
    "use_style",
    "style_context",
    "savefig",
    "STYLE",
    "PALETTE",
    "DPI",
    "TEXT_WIDTH",
    "MIN_FONT_SIZE",
    "ANALYTIC",
    "stamp_figure",
    "figure_stamp",
    "is_stamp",
    "read_stamp",
    "tex_stamp",
    "label_points",
    "mark_off_scale",
    "activation_color",
    "activation_marker",
    "is_kaf_name",
    "plot_sigmoid",
    "plot_activation_functions",
    "plot_activation_derivatives",
    "plot_kaf_ridge_fit",
    "plot_kaf_shapes",
    "plot_kaf_reach",
    "plot_adversarial_example",
    "plot_adversarial_grid",
    "plot_lr_range_test",
    "plot_lr_range_step",
    "plot_lr_range_tests",
    "plot_one_cycle",
    "plot_training_curves",
    "plot_gradient_norms",
    "ema",
    "pick_layers",
    "plot_accuracy_vs_robustness",
    "plot_robust_vs_iterations",
    "plot_accuracy_vs_robustness_ci",
    "plot_robust_vs_iterations_ci",
    "plot_seeds",
    "plot_overfitting_watch",
    "plot_activation_histograms",
    "plot_filter_means",
    "plot_layer_distances",
    "plot_kwta_line_scan",
    "plot_lipschitz_bounds",
    "plot_fix_ablation",
    "plot_kaf_kernels",
]
