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

# The package's names are its modules' public names (each module's __all__).
from . import activations as _activations
from . import adversarial as _adversarial
from . import annotate as _annotate
from . import chapter5 as _chapter5
from . import distributions as _distributions
from . import future_work as _future_work
from . import line_scan as _line_scan
from . import robustness as _robustness
from . import stamp as _stamp
from . import style as _style
from . import training as _training
from .activations import *  # noqa: F403
from .adversarial import *  # noqa: F403
from .annotate import *  # noqa: F403
from .chapter5 import *  # noqa: F403
from .distributions import *  # noqa: F403
from .future_work import *  # noqa: F403
from .line_scan import *  # noqa: F403
from .robustness import *  # noqa: F403
from .stamp import *  # noqa: F403
from .style import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = [
    *_activations.__all__,
    *_adversarial.__all__,
    *_annotate.__all__,
    *_chapter5.__all__,
    *_distributions.__all__,
    *_future_work.__all__,
    *_line_scan.__all__,
    *_robustness.__all__,
    *_stamp.__all__,
    *_style.__all__,
    *_training.__all__,
]
