"""Small helpers the notebooks share: provenance lines, figure saving, tables with a LaTeX export.

Notebook outputs are compared by nbval, so everything printed here is rounded and stable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..utils import short_commit

__all__ = ["provenance_table", "save_figure", "save_table", "percent"]


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


def save_figure(fig, name: str, figures_dir: str | os.PathLike) -> None:
    """figures/<name>.pdf and .png via thesis_lib.plotting.savefig (reproducible bytes); returns nothing."""
    from ..plotting import savefig

    savefig(fig, name, figures_dir)


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
):
    """Write `df` as figures/<name>.tex (a LaTeX tabular, booktabs style) and return `df` for display."""
    from ..utils import atomic_write_text

    latex = df.to_latex(
        float_format=float_format, index=index, caption=caption, label=label or f"tab:{name}", na_rep="--", escape=True
    )
    atomic_write_text(Path(figures_dir) / f"{name}.tex", latex)
    return df
