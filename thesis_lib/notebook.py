"""The first code cell of every thesis notebook (`notebooks/NN_topic.py`, thesis order), as one call.

    from thesis_lib.notebook import setup

    plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()

`setup()` does what each notebook's first code cell used to spell out: inline figures in Jupyter,
the thesis figure style (`thesis_lib.plotting.use_style`), stored outputs without library warnings
or tqdm's ipywidgets notice, pandas showing three decimals. It returns the modules and helpers the
notebooks use, in the order above (a `Prelude`, so `setup().ensure` works too).

The notebook's parameters (`profile`, `results_dir`, `figures_dir`, `data`, `device`) stay in its
`parameters` cell: the runner (`python -m thesis_lib.reporting.notebooks`) resolves `--profile
best` per notebook and injects only what differs from those defaults, paths relative to the notebook.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Prelude", "setup"]


class Prelude(NamedTuple):
    """What a notebook uses after `setup()`: matplotlib's pyplot, numpy, pandas and the result helpers."""

    plt: Any
    np: Any
    pd: Any
    ensure: Callable  # thesis_lib.experiments.ensure(name, profile, results_dir, ...)
    percent: Callable  # thesis_lib.reporting.outputs.percent
    provenance_table: Callable
    save_figure: Callable  # figures/<name>.pdf and .png, reproducible bytes
    save_table: Callable  # figures/<name>.tex, returns the DataFrame for display


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: no inline backend to select
        return None
    return get_ipython()


def setup(inline: bool = True) -> Prelude:
    """Prepare a notebook kernel (style, warnings, display options) and return what the notebooks use.

    `inline`: select matplotlib's inline backend when running under IPython (what `%matplotlib
    inline` does), so figures are stored as cell outputs; outside IPython nothing is selected.
    Idempotent: running the cell again changes nothing.
    """
    # Filters first: importing the package imports tqdm.auto, which warns once per kernel when
    # ipywidgets is missing, and a warning printed by this cell would be a stored stderr output.
    warnings.filterwarnings("ignore", category=UserWarning)  # keep stored outputs free of library chatter
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
    shell = _ipython() if inline else None
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from .experiments import ensure
    from .plotting import use_style
    from .reporting.outputs import percent, provenance_table, save_figure, save_table

    use_style()
    pd.set_option("display.precision", 3)
    return Prelude(plt, np, pd, ensure, percent, provenance_table, save_figure, save_table)
