"""Figures of thesis section 5.3: accuracy vs robustness with 95% intervals on both axes, the per-epoch
catastrophic-overfitting watch, and robust accuracy vs PGD iterations with its 95% band. (The range-test
grid of sections 4.2 / 5.3 is `training.plot_lr_range_tests`.)

Inputs are the tables of `thesis_lib.reporting.chapter5` (accuracies as fractions, drawn in percent)
or the stored training histories. Conventions as everywhere in `thesis_lib.plotting`: fixed colour per
activation, fixed activations diamonds and solid lines, KAFs crosses and dashed lines, `TEXT_WIDTH`
wide, fonts of 8 pt and more, labels placed by `annotate.label_points`. `stamp`: the profile stamp
drawn under the figure (`stamp.stamp_figure`; e.g. `reporting.chapter5.chapter5_stamp(res)`). A figure
without data says so in a short placeholder instead of an empty panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .annotate import label_points
from .stamp import STAMP_COLOR, stamp_figure
from .style import TEXT_WIDTH, activation_color, activation_line, activation_marker, styled

__all__ = ["plot_accuracy_vs_robustness_ci", "plot_overfitting_watch", "plot_robust_vs_iterations_ci", "plot_seeds"]


def _stamp(fig, text: str | None) -> None:
    if text:
        stamp_figure(fig, text)


def _placeholder(message: str, title: str | None, stamp: str | None):
    """A short figure that says what is missing (a profile that did not measure it), with the stamp."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 1.3))
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, color=STAMP_COLOR)
    if title:
        ax.set_title(title)
    _stamp(fig, stamp)
    return fig


def _legend_markers(ax, loc="lower right"):
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="D", color="#555555", label="fixed activation"),
        Line2D([], [], ls="", marker="X", color="#555555", label="KAF"),
    ]
    ax.legend(handles=handles, loc=loc)


def _rows(table) -> list[dict]:
    if hasattr(table, "reset_index"):
        df = table.reset_index() if table.index.name else table
        return df.to_dict("records")
    return [dict(r) for r in table]


@styled
def plot_accuracy_vs_robustness_ci(
    table,
    x: str = "clean",
    y: str = "robust",
    label: str = "activation",
    xlabel: str = "clean accuracy (%)",
    ylabel: str = "robust accuracy (%)",
    title: str | None = None,
    stamp: str | None = None,
    chance: float | None = 0.1,
    use_adjusttext: bool = True,
):
    """Clean vs robust accuracy, one point per activation with 95% intervals on both axes.

    table: rows (DataFrame, index or column `label`) with `x`, `x_lo`, `x_hi`, `y`, `y_lo`, `y_hi` as
    fractions, e.g. `reporting.chapter5.robustness_table`. Labels are placed without overlaps
    (`annotate.label_points`); chance: draws the chance level (10%) as dotted lines (None: not drawn).
    """
    import matplotlib.pyplot as plt

    rows = [r for r in _rows(table) if not math.isnan(float(r[x])) and not math.isnan(float(r[y]))]
    if not rows:
        return _placeholder("no accuracies to plot", title, stamp)
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 4.0))
    xs, ys = [], []
    for r in rows:
        name = str(r[label])
        px, py = 100 * float(r[x]), 100 * float(r[y])
        err = []
        for key, p in ((x, px), (y, py)):
            lo, hi = r.get(f"{key}_lo"), r.get(f"{key}_hi")
            ok = lo is not None and hi is not None and not (math.isnan(float(lo)) or math.isnan(float(hi)))
            err.append([[max(p - 100 * float(lo), 0)], [max(100 * float(hi) - p, 0)]] if ok else None)
        ax.errorbar(
            px,
            py,
            xerr=err[0],
            yerr=err[1],
            fmt=activation_marker(name),
            color=activation_color(name),
            ms=6,
            elinewidth=0.8,
            capsize=2,
            zorder=3,
        )
        xs.append(px)
        ys.append(py)
    if chance is not None:  # only where the data come near it: a far-off line would squeeze the points
        c = 100 * chance
        if min(xs) - 10 <= c:
            ax.axvline(c, color="#999999", ls=":", lw=0.8, zorder=1)
        if min(ys) - 10 <= c:
            ax.axhline(c, color="#999999", ls=":", lw=0.8, zorder=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(0.12)
    if title:
        ax.set_title(title)
    _legend_markers(ax, loc="best")
    label_points(ax, xs, ys, [str(r[label]) for r in rows], use_adjusttext=use_adjusttext)
    _stamp(fig, stamp)
    return fig


@styled
def plot_overfitting_watch(
    histories: Mapping[str, Sequence[Mapping]],
    key: str = "watch_pgd_acc",
    ylabel: str = "PGD accuracy on the watch images (%)",
    title: str | None = None,
    stamp: str | None = None,
):
    """Per-epoch robust accuracy on fixed training images (catastrophic-overfitting watch), one line per run.

    histories: activation -> its training history (per-epoch dicts with `epoch` and `key`). A sudden fall
    to near zero is catastrophic overfitting (Wong, Rice, Kolter 2020). Runs without the watch are left out;
    with none at all the panel says so.
    """
    import matplotlib.pyplot as plt

    curves = {}
    for name, hist in histories.items():
        pts = [(h.get("epoch", i + 1), h[key]) for i, h in enumerate(hist or []) if h.get(key) is not None]
        if pts:
            curves[name] = np.array(pts, dtype=float).T
    if not curves:
        return _placeholder(f"no per-epoch watch ('{key}') in these runs", title, stamp)
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.3))
    for name, (ex, acc) in curves.items():
        ax.plot(
            ex,
            100 * acc,
            **activation_line(name),
            lw=1.2,
            label=str(name),
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        ax.set_title(title)
    _stamp(fig, stamp)
    return fig


@styled
def plot_robust_vs_iterations_ci(
    rows,
    title: str | None = None,
    stamp: str | None = None,
    mark: Sequence[float] | None = (50,),
):
    """Robust accuracy against PGD iterations per activation, with its 95% Wilson band.

    rows: tidy rows with activation, iterations, robust_acc, lo, hi (fractions), e.g.
    `reporting.chapter5.iterations_table`. A flat curve after `mark` (the evaluation's 50) says the
    attack has converged. Empty rows: the panel says that the profile measured no curve.
    """
    import matplotlib.pyplot as plt

    recs = _rows(rows)
    if not recs:
        return _placeholder("no robust-accuracy-vs-iterations curve in this profile", title, stamp)
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.3))
    for name in dict.fromkeys(str(r["activation"]) for r in recs):
        pts = sorted(
            (float(r["iterations"]), float(r["robust_acc"]), float(r.get("lo", np.nan)), float(r.get("hi", np.nan)))
            for r in recs
            if str(r["activation"]) == name
        )
        it, acc, lo, hi = np.array(pts).T
        color = activation_color(name)
        ax.plot(
            it,
            100 * acc,
            **activation_line(name),
            label=name,
        )
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            ax.fill_between(it, 100 * lo, 100 * hi, color=color, alpha=0.15, lw=0)
    for m in mark or ():  # the iterations of the tables' PGD, named in the legend
        ax.axvline(m, color="#888888", ls=":", lw=0.8, label=f"{m:g} iterations: the tables' PGD")
    its = sorted({float(r["iterations"]) for r in recs})
    if its[0] > 0:
        from matplotlib.ticker import NullLocator

        ax.set_xscale("log")
        ticks = {v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if its[0] <= v <= its[-1]} | {its[-1]}
        ax.set_xticks(sorted(ticks))
        ax.xaxis.set_major_formatter("{x:g}")
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("PGD iterations")
    ax.set_ylabel("robust accuracy (%)")
    if title:
        ax.set_title(title)
    ax.legend()
    _stamp(fig, stamp)
    return fig


@styled
def plot_seeds(by_seed: Mapping[str, Mapping[int, Mapping]], title: str | None = None, stamp: str | None = None):
    """Clean and robust accuracy of every training seed (points, labelled by seed) and their mean +- one
    standard deviation (bar), per activation with more than one seed.

    by_seed: activation -> {seed -> {"clean", "robust"} as fractions}, e.g. `reporting.chapter5.seed_outcomes`.
    """
    import matplotlib.pyplot as plt

    acts = [a for a, runs in by_seed.items() if len(runs) > 1]
    if not acts:
        return _placeholder("no repeated training seeds in this profile", title, stamp)
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.8))
    for ax, key, name in zip(axes, ("clean", "robust"), ("clean accuracy (%)", "robust accuracy (%)")):
        for i, act in enumerate(acts):
            seeds = sorted(by_seed[act])
            vals = np.array([100 * float(by_seed[act][k][key]) for k in seeds], dtype=float)
            color, marker = activation_color(act), activation_marker(act)
            offsets = np.linspace(-0.12, 0.12, len(vals))
            ax.scatter(i + offsets, vals, color=color, marker=marker, s=28, zorder=3, clip_on=False)  # 0% on the axis
            for x, v, k in zip(i + offsets, vals, seeds):
                # above its point: seeds with equal accuracies sit side by side and their labels must not merge
                ax.annotate(str(k), (x, v), xytext=(0, 5), textcoords="offset points", fontsize=8, ha="center")
            ok = vals[~np.isnan(vals)]
            if len(ok) > 1:
                mean, sd = ok.mean(), ok.std(ddof=1)
                ax.errorbar(i + 0.3, mean, yerr=sd, color=color, capsize=3, marker="_", ms=10, lw=1.2)
        ax.set_xticks(range(len(acts)), acts)
        ax.set_xlim(-0.5, len(acts) - 0.3)
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 0))  # accuracies: a mean - SD below 0 is cut at 0
        ax.set_ylabel(name)
    axes[0].set_title("points: seeds; bar: mean \u00b1 SD", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _stamp(fig, stamp)
    return fig
