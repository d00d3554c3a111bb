"""Robustness figures of thesis sections 5.1 and 5.3: accuracy vs robustness, robust accuracy vs PGD iterations.

Convention of the thesis's figures: fixed activations are diamonds, KAFs are crosses, every point
labelled with its activation. Accuracies are fractions in [0, 1] in the data and drawn in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .annotate import label_points
from .style import TEXT_WIDTH, activation_color, activation_line, activation_marker, styled

__all__ = ["plot_accuracy_vs_robustness", "plot_robust_vs_iterations"]


def _records(data) -> list[dict]:
    if hasattr(data, "to_dict"):
        return data.to_dict("records")
    return [dict(r) for r in data]


def _need(rows, cols):
    if not rows:
        raise ValueError("no rows to plot")
    missing = [c for c in cols if c not in rows[0]]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}; they have {sorted(rows[0])}")


@styled
def plot_accuracy_vs_robustness(
    df,
    x: str = "clean_acc",
    y: str = "robust_acc",
    label: str = "activation",
    group: str | None = None,
    percent: bool = True,
    title: str | None = None,
):
    """Scatter of clean vs robust accuracy, one labelled point per row (per activation).

    df: DataFrame or list of dicts with columns `x`, `y`, `label`. group: optional column (e.g.
    "arch") drawn as separate panels. Fixed activations: diamonds; KAFs: crosses. Labels never
    overlap (`annotate.label_points`); points at the same place are drawn smaller on top of each other.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = _records(df)
    _need(rows, [x, y, label] + ([group] if group else []))
    groups = list(dict.fromkeys(r[group] for r in rows)) if group else [None]
    width = min(TEXT_WIDTH, 4.6 * len(groups))
    fig, axes = plt.subplots(1, len(groups), figsize=(width, 3.6 if len(groups) == 1 else 3.2), squeeze=False)
    scale = 100.0 if percent else 1.0
    placed = []
    for ax, g in zip(axes[0], groups):
        sel = [r for r in rows if group is None or r[group] == g]
        xs = [float(r[x]) * scale for r in sel]
        ys = [float(r[y]) * scale for r in sel]
        seen: dict = {}
        for r, px, py in zip(sel, xs, ys):
            name = str(r[label])
            # Points at the same place (equal accuracies, common at small scale): each later one is
            # drawn smaller on top, so every marker stays visible.
            k = seen.get((round(px, 6), round(py, 6)), 0)
            seen[(round(px, 6), round(py, 6))] = k + 1
            ax.scatter(
                px,
                py,
                marker=activation_marker(name),
                color=activation_color(name),
                s=70 * 0.45**k,
                edgecolors="white" if k else "none",
                linewidths=0.5,
                zorder=3 + k,
            )
        unit = " (%)" if percent else ""
        ax.set_xlabel(f"clean accuracy{unit}" if x == "clean_acc" else x + unit)
        ax.set_ylabel(f"robust accuracy{unit}" if y == "robust_acc" else y + unit)
        ax.margins(0.15)
        if g is not None:
            ax.set_title(str(g))
        placed.append((ax, xs, ys, [str(r[label]) for r in sel]))
    handles = [
        Line2D([], [], ls="", marker="D", color="#555555", label="fixed activation"),
        Line2D([], [], ls="", marker="X", color="#555555", label="KAF"),
    ]
    axes[0, -1].legend(handles=handles, loc="best")
    if title:
        fig.suptitle(title)
    for ax, xs, ys, names in placed:  # last: labels are placed once the layout is final
        label_points(ax, xs, ys, names)
    return fig


@styled
def plot_robust_vs_iterations(
    df,
    x: str = "iterations",
    y: str = "robust_acc",
    hue: str = "activation",
    percent: bool = True,
    title: str | None = "Robust accuracy vs PGD iterations",
    mark: Sequence[float] | None = (50,),
):
    """Robust accuracy against the number of PGD iterations, one line per `hue` value.

    A flat curve after ~50 iterations says the attack has converged (protocol, "Evaluation").
    mark: iteration counts to draw as dotted vertical lines (the evaluation's 50), where the curves reach them.
    """
    import matplotlib.pyplot as plt

    rows = _records(df)
    _need(rows, [x, y, hue])
    scale = 100.0 if percent else 1.0
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for name in dict.fromkeys(str(r[hue]) for r in rows):
        pts = sorted((float(r[x]), float(r[y])) for r in rows if str(r[hue]) == name)
        xs, ys = np.array(pts).T
        ax.plot(
            xs,
            ys * scale,
            **activation_line(name),
            label=name,
        )
    top = max(float(r[x]) for r in rows)
    for m in mark or ():
        if m <= top:  # a mark beyond the measured iterations would only squeeze the curves
            ax.axvline(m, color="#888888", ls=":", lw=0.8, label=f"{m:g} iterations: the tables' PGD")
    ax.set_xlabel("PGD iterations")
    ax.set_ylabel("robust accuracy" + (" (%)" if percent else ""))
    if title:
        ax.set_title(title)
    ax.legend(ncols=2)
    return fig
