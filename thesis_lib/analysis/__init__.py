"""Analyses behind the thesis's figures: activation capture and distributions (chapter 4), k-WTA
line scans (section 3.1), KAF shapes and where their inputs leave the dictionary (section 2.4),
Lipschitz bounds (section 2.3.3, chapter 6), and the interval estimates and tests every verdict rests
on (`stats`).

All functions compute from the models and data they are given and return plain data (numpy arrays,
lists of dicts ready for `pandas.DataFrame`) that `thesis_lib.plotting` draws; none reads stored
results (that is `thesis_lib.reporting`, which also holds the chapter-5 tables and verdicts and the
claims). Importing does no work.
"""

# The package's names are its modules' public names (each module's __all__).
from . import capture as _capture
from . import distributions as _distributions
from . import kaf_reach as _kaf_reach
from . import kaf_shapes as _kaf_shapes
from . import line_scan as _line_scan
from . import lipschitz as _lipschitz
from . import stats as _stats
from .capture import *  # noqa: F403
from .distributions import *  # noqa: F403
from .kaf_reach import *  # noqa: F403
from .kaf_shapes import *  # noqa: F403
from .line_scan import *  # noqa: F403
from .lipschitz import *  # noqa: F403
from .stats import *  # noqa: F403

__all__ = [
    *_capture.__all__,
    *_distributions.__all__,
    *_kaf_reach.__all__,
    *_kaf_shapes.__all__,
    *_line_scan.__all__,
    *_lipschitz.__all__,
    *_stats.__all__,
]
