"""What the notebooks save and show: provenance tables, figures, tables with a LaTeX export.

Every thesis notebook (sections 1.1 to 7) saves its figures and tables through these helpers, each
with the profile stamp of the results it shows (`thesis_lib.reporting.stamp`). Notebook outputs are
compared by nbval, so everything printed here is rounded and stable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..analysis.stats import percent_ci  # re-exported: the notebooks' accuracy cells
from ..utils import short_commit

__all__ = ["provenance_table", "save_figure", "save_table", "percent", "percent_ci"]


def provenance_table(results: Iterable):
    """A DataFrame with, per experiment, the profile, hardware, commit and compute time that produced it."""
    import pandas as pd

    rows = []
    for r in results:
        hw = r.summary.get("hardware", {})
        rows.append(
            {
                "experiment": r.name,
                "profile": r.profile,
                "device": hw.get("gpu") or f"CPU ({hw.get('torch_threads', '?')} threads)",
                "torch": hw.get("torch", "?"),
                "commit": short_commit(r.summary.get("git_commit")),
                # compute time: every cached step and training run of the result, not only the last invocation
                "compute time (min)": round(
                    float(r.summary.get("compute_time_s", r.summary.get("wall_time_s", float("nan")))) / 60, 1
                ),
            }
        )
    return pd.DataFrame(rows).set_index("experiment")


def _stamp_text(stamp) -> str | None:
    """A stamp given as text, or as the ExperimentResults (one or several) it is built from."""
    if stamp is None or isinstance(stamp, str):
        return stamp
    from .stamp import profile_stamp

    return profile_stamp(stamp)


def save_figure(fig, name: str, figures_dir: str | os.PathLike, stamp=None) -> None:
    """figures/<name>.pdf and .png via thesis_lib.plotting.savefig (reproducible bytes); returns nothing.

    stamp: the profile stamp drawn over the figure and stored in its metadata: a string (e.g.
    `profile_stamp(res)`, or `profile_stamp()` for analytic figures) or the ExperimentResults shown.
    """
    from ..plotting import savefig

    savefig(fig, name, figures_dir, stamp=_stamp_text(stamp))


def percent(x, digits: int = 1):
    """Accuracy in [0, 1] -> percent rounded to `digits` (None / NaN stay NaN)."""
    if x is None:
        return float("nan")
    return round(100.0 * float(x), digits)


def save_table(
    df,
    name: str,
    figures_dir: str | os.PathLike,
    caption: str | None = None,
    label: str | None = None,
    float_format: str = "%.1f",
    index: bool = True,
    stamp=None,
):
    """Write `df` as figures/<name>.tex (a LaTeX tabular, booktabs style) and return `df` for display.

    stamp: the profile stamp appended to the caption in brackets (a string or the ExperimentResults
    shown, as for `save_figure`).
    """
    from ..plotting.stamp import caption_with_stamp
    from ..utils import atomic_write_text

    stamp = _stamp_text(stamp)
    if stamp:
        caption = caption_with_stamp(caption, stamp)
    latex = df.to_latex(
        float_format=float_format, index=index, caption=caption, label=label or f"tab:{name}", na_rep="--", escape=True
    )
    atomic_write_text(Path(figures_dir) / f"{name}.tex", latex)
    return df
