"""Training figures: learning-rate range test and one-cycle schedule (thesis section 4.2, Smith 2017/2018;
Wong, Rice, Kolter 2020), training curves (section 5.1) and per-layer norms (section 5.2, exploding
gradients of KafResNet-56).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .annotate import mark_off_scale, off_scale_handles
from .style import PALETTE, TEXT_WIDTH, activation_color, activation_marker, styled

__all__ = [
    "plot_lr_range_test",
    "plot_lr_range_step",
    "plot_lr_range_tests",
    "plot_one_cycle",
    "plot_training_curves",
    "plot_gradient_norms",
    "ema",
    "pick_layers",
]


def ema(values: Sequence[float], beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (the usual smoothing of a range test's noisy loss)."""
    v = np.asarray(values, dtype=float)
    if not 0 <= beta < 1:
        raise ValueError(f"smoothing beta must be in [0, 1), got {beta}")
    out, avg = np.empty_like(v), 0.0
    for i, x in enumerate(v):
        avg = beta * avg + (1 - beta) * x
        out[i] = avg / (1 - beta ** (i + 1))
    return out


@styled
def plot_lr_range_test(
    lrs,
    losses,
    lr_min: float | None = None,
    lr_max: float | None = None,
    smoothing: float = 0.9,
    title: str | None = "Learning-rate range test",
    ylim_factor: float | None = 4.0,
):
    """Loss vs learning rate (log x): raw (light) and smoothed (EMA `smoothing`), with the chosen bounds.

    ylim_factor: clip the y axis at this multiple of the smoothed minimum (the diverging tail
    would otherwise flatten the interesting part); None keeps matplotlib's limits. Non-finite
    losses (a diverged sweep) are marked by red crosses on the top edge.
    """
    import matplotlib.pyplot as plt

    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs.shape != losses.shape or lrs.ndim != 1 or len(lrs) < 2:
        raise ValueError(f"lrs and losses must be 1-D of equal length >= 2, got {lrs.shape} and {losses.shape}")
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.plot(lrs, losses, color="#bbbbbb", lw=0.8, label="loss")
    finite = np.isfinite(losses)
    sm = np.full_like(losses, np.nan)
    if smoothing > 0 and finite.any():
        sm[finite] = ema(losses[finite], smoothing)
        ax.plot(lrs, sm, color=PALETTE[0], label=f"EMA ({smoothing})")
    for v, name, c in ((lr_min, "lr_min", PALETTE[2]), (lr_max, "lr_max", PALETTE[3])):
        if v is not None:
            ax.axvline(v, color=c, ls="--", lw=1.0, label=f"{name} = {v:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    if mark_off_scale(ax, lrs, losses, axis="y")["high"]:  # a diverged sweep: NaN / inf losses on the top edge
        extra = off_scale_handles(low=False, what="loss")
    else:
        extra = []
    ref = sm if np.isfinite(sm).any() else losses
    if ylim_factor and np.isfinite(ref).any():
        lo = float(np.nanmin(ref[np.isfinite(ref)]))
        hi = float(np.nanmax(losses[finite])) if finite.any() else lo
        ax.set_ylim(min(lo, float(np.nanmin(losses[finite]))) * 0.95, min(hi, lo * ylim_factor) * 1.05)
    if title:
        ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles + extra, labels + [h.get_label() for h in extra])
    return fig


@styled
def plot_lr_range_step(step: Mapping, smoothing: float = 0.9, title: str | None = "Learning-rate range test"):
    """A stored range-test step (`lr_find` result): its curve and bounds, or, for a sweep that gave no bounds,
    a panel saying why (the step's `error`)."""
    import matplotlib.pyplot as plt

    if not step.get("error"):
        return plot_lr_range_test(
            step["lrs"], step["raw_losses"], step["lr_min"], step["lr_max"], smoothing=smoothing, title=title
        )
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.text(0.5, 0.5, "no bounds:\n" + step["error"][:60], ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def plot_lr_range_tests(
    tests: Mapping[str, Mapping],
    key: str = "losses",
    title: str | None = "Range tests (smoothed loss)",
    ncols: int = 3,
):
    """Range tests of several activations, one small panel each (log learning-rate axis), with their bounds.

    tests: {activation: the `lr_find` record} (with "lrs", `key` (default the smoothed "losses"),
    "lr_min", "lr_max"; a sweep that gave no bounds has "error" instead and is drawn without them).
    A flat sweep (smoothed loss fell by less than `training.FLAT_DROP`) says so in its panel's title.
    Non-finite losses (a diverged sweep) are marked by red crosses on the panel's top edge. Slots
    left over in the last row hold the legend; otherwise it goes under the panels.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from ..training.lr_finder import FLAT_DROP, loss_drop

    if not tests:
        raise ValueError("no range tests to plot")
    n = len(tests)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = plt.figure(figsize=(TEXT_WIDTH, 2.0 * nrows + 0.6))
    axes, legend_ax = _panel_grid(fig, n, ncols)
    bad = False
    for k, (ax, (act, r)) in enumerate(zip(axes, tests.items())):
        lrs = np.asarray(r.get("lrs", []), dtype=float)
        losses = np.asarray(r.get(key, []), dtype=float)
        if len(lrs):
            ax.plot(lrs, np.where(np.isfinite(losses), losses, np.nan), color=activation_color(act), marker=".", ms=3)
            bad |= mark_off_scale(ax, lrs, losses, axis="y")["high"] > 0
        for v, c in ((r.get("lr_min"), PALETTE[2]), (r.get("lr_max"), PALETTE[3])):
            if v is not None:
                ax.axvline(v, color=c, ls="--", lw=0.9)
        ax.set_xscale("log")
        drop = (
            loss_drop(losses.tolist())
            if key == "losses" and np.isfinite(losses).sum() >= 3 and not r.get("error")
            else 1.0
        )
        if r.get("error"):
            ax.set_title(f"{act} (no bounds)")
        else:
            ax.set_title(act if drop >= FLAT_DROP else f"{act} (flat: fell {100 * drop:.1f}%)")
        if k >= n - ncols:
            ax.set_xlabel("learning rate")
        if k % ncols == 0:
            ax.set_ylabel("loss")
    handles = [
        Line2D([], [], color="#555555", marker=".", ms=3, label="smoothed loss" if key == "losses" else key),
        Line2D([], [], color=PALETTE[2], ls="--", lw=0.9, label="lr_min"),
        Line2D([], [], color=PALETTE[3], ls="--", lw=0.9, label="lr_max"),
    ]
    if bad:
        handles += off_scale_handles(low=False, what="loss")
    if legend_ax is not None:
        legend_ax.legend(handles=handles, loc="center")
    else:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    if title:
        fig.suptitle(title)
    return fig


@styled
def plot_one_cycle(schedule, steps_per_epoch: int | None = None, title: str | None = "One-cycle learning rate"):
    """Learning rate per step (a sequence of floats); x in epochs when `steps_per_epoch` is given.

    Build the schedule with `thesis_lib.training.one_cycle_lr(step, total, lr_min, lr_max, decay_steps)`.
    """
    import matplotlib.pyplot as plt

    lr = np.asarray(schedule, dtype=float)
    if lr.ndim != 1 or len(lr) == 0:
        raise ValueError("schedule must be a non-empty 1-D sequence of learning rates")
    x = np.arange(len(lr), dtype=float)
    xlabel = "step"
    if steps_per_epoch:
        x, xlabel = x / steps_per_epoch, "epoch"
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    ax.plot(x, lr, color=PALETTE[0])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    if title:
        ax.set_title(title)
    return fig


_DEFAULT_KEYS = ("train_loss", "test_loss", "train_acc", "test_acc", "train_robust_acc", "test_robust_acc")


def _panel_grid(fig, n: int, ncols: int):
    """n panel axes on a grid of `ncols` columns, and one axes spanning the unused slots of the last row (or None).

    The spanning axes holds the legend, so a grid whose panels do not fill it leaves no empty slot.
    """
    nrows = math.ceil(n / ncols)
    gs = fig.add_gridspec(nrows, ncols)
    axes = [fig.add_subplot(gs[i // ncols, i % ncols]) for i in range(n)]
    spare = n % ncols
    legend_ax = fig.add_subplot(gs[nrows - 1, spare:]) if spare else None
    if legend_ax is not None:
        legend_ax.set_axis_off()
    return axes, legend_ax


SHORT_HISTORY = 12  # histories with at most this many epochs are drawn with a marker per epoch


@styled
def plot_training_curves(
    histories: Mapping[str, Sequence[Mapping]],
    keys: Sequence[str] | None = None,
    x: str = "epoch",
    ncols: int | None = None,
):
    """Per-epoch metrics of several runs: one panel per metric, one line per run.

    histories: {label: metrics["history"]} where each history is a list of per-epoch dicts
    (as written by `thesis_lib.training.train`). keys: metrics to draw; default: those of
    train/test loss/accuracy present in any run. Runs are coloured by activation when the label
    is an activation name. A run whose history ends before the longest one (training stopped: it
    diverged) gets a cross at its last epoch. Short histories (at most SHORT_HISTORY epochs, e.g. a one-epoch smoke
    run) get a marker per epoch (diamonds: fixed activations, crosses: KAFs), so a single epoch is
    a visible point, not an invisible line; the epoch axis has integer ticks. ncols (default: 2
    for 2 or 4 panels, else up to 3); slots left over in the last row hold the legend.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not histories:
        raise ValueError("no training histories given")
    present = {k for h in histories.values() for row in h for k, v in row.items() if isinstance(v, (int, float))}
    if keys is None:
        keys = [k for k in _DEFAULT_KEYS if k in present] or sorted(present - {x, "lr", "time_s", "wall_time_s"})
    if not keys:
        raise ValueError("the histories hold no numeric per-epoch metrics to plot")
    n = len(keys)
    if ncols is None:
        ncols = 2 if n in (2, 4) else min(3, n)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = plt.figure(figsize=(TEXT_WIDTH, 2.1 * nrows + 0.5))
    axes, legend_ax = _panel_grid(fig, n, ncols)
    longest = max(len(h) for h in histories.values())
    short = longest <= SHORT_HISTORY
    all_x = set()
    stopped = False
    for ax, key in zip(axes, keys):
        for label, hist in histories.items():
            ys = np.asarray([row.get(key, np.nan) for row in hist], dtype=float)
            xs = np.asarray([row.get(x, i + 1) for i, row in enumerate(hist)], dtype=float)
            all_x.update(xs.tolist())
            ax.plot(
                xs,
                ys,
                label=str(label),
                color=activation_color(label),
                lw=1.2,
                marker=activation_marker(label) if short else None,
                ms=5,
                alpha=0.9,
            )
            if 0 < len(hist) < longest and np.isfinite(ys[-1]):  # a run that stopped early (it diverged):
                ax.plot(xs[-1], ys[-1], "X", color=activation_color(label), ms=7, mec="black", mew=0.6)  # mark its end
                stopped = True
        ax.set_title(key.replace("_", " "))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(all_x) == 1:  # one epoch: centre it, one tick
            (v,) = all_x
            ax.set_xlim(v - 1, v + 1)
            ax.set_xticks([v])
    for k, ax in enumerate(axes):
        if k >= n - ncols:  # bottom panel of its column
            ax.set_xlabel(x)
    handles, labels = axes[0].get_legend_handles_labels()
    if stopped:
        handles.append(Line2D([], [], ls="", marker="X", color="#888888", mec="black", mew=0.6, ms=7))
        labels.append("run stopped early")
    legend_cols = 2 if len(labels) > 4 else 1
    if legend_ax is not None:
        legend_ax.legend(handles, labels, loc="center", ncols=legend_cols, title="run")
    else:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    return fig


def _records(data):
    if hasattr(data, "to_dict"):
        return data.to_dict("records")
    return list(data)


def pick_layers(layers: Sequence, n: int = 3) -> list:
    """Early, middle and late layers (first, middle, last) of an ordered list of layer names."""
    layers = list(dict.fromkeys(layers))
    if len(layers) <= n:
        return layers
    idx = sorted({round(i * (len(layers) - 1) / (n - 1)) for i in range(n)})
    return [layers[i] for i in idx]


SHORT_RUN = 0.03  # finite runs spanning at most this share of the steps get markers: too short to show as a line
_MAIN_HEIGHT = 2.1  # inches: the log panels of `plot_gradient_norms`
_ROW_HEIGHT = 0.085  # inches per layer row in its strips of zeros and of NaN / inf


def _short_runs(xs: np.ndarray, ok: np.ndarray, frac: float = SHORT_RUN) -> np.ndarray:
    """The points of runs of consecutive `ok` values whose x extent is at most `frac` of the x range."""
    out = np.zeros(len(ok), dtype=bool)
    span = float(xs.max() - xs.min()) if len(xs) else 0.0
    i = 0
    while i < len(ok):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(ok) and ok[j + 1]:
            j += 1
        if xs[j] - xs[i] <= frac * span:  # a lone point has extent 0
            out[i : j + 1] = True
        i = j + 1
    return out


def _layer_label(name) -> str:
    return f"layer {name}" if isinstance(name, (int, np.integer)) else str(name)


def _mark_strip(fig, spec, ax, marks, label: str, marker: str):
    """A strip sharing `ax`'s steps: one row per layer (first on top), its marks at their steps in its colour."""
    strip = fig.add_subplot(spec, sharex=ax)
    for row, (color, xs) in enumerate(marks):
        if len(xs):
            strip.plot(xs, np.full(len(xs), row), ls="", marker=marker, color=color, ms=4.5, mew=1.1, clip_on=False)
    strip.set_ylim(len(marks) - 0.5, -0.5)
    strip.set_yticks([(len(marks) - 1) / 2], [label])
    strip.tick_params(axis="y", length=0)
    strip.grid(False, axis="y")
    return strip


@styled
def plot_gradient_norms(
    norms,
    layers: Sequence | None = None,
    step: str = "step",
    layer: str = "layer",
    quantities: Sequence[str] = ("weight_norm", "grad_norm"),
    title: str | None = None,
):
    """Per-layer weight and gradient norms over the first iterations (thesis section 5.2), log scale.

    norms: tidy rows (DataFrame or list of dicts) with columns `step`, `layer` and the
    `quantities`. layers: which layers to draw (default: early, middle and late layers in order of
    first appearance). Values a log axis cannot show get strips of their own, one row per layer in
    its colour, so that several layers' marks at one step stay apart: norms of exactly 0 (e.g. early
    layers after a KAF-ResNet-56 blow-up; negatives too) as ticks in a strip "0" under the panel, NaN / inf as
    crosses in a strip "NaN/inf" above it. Finite values too short-lived to show as a line (a lone
    point between zeros, or a run over at most SHORT_RUN of the steps) get markers, as do all points
    of histories of at most 20 steps. The legends sit outside the panels: they cover no data.
    """
    import matplotlib.pyplot as plt
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D

    rows = _records(norms)
    if not rows:
        raise ValueError("no norm rows to plot")
    missing = [c for c in (step, layer, *quantities) if c not in rows[0]]
    if missing:
        raise ValueError(f"norm rows lack column(s) {missing}; they have {sorted(rows[0])}")
    order = list(dict.fromkeys(r[layer] for r in rows))
    layers = pick_layers(order) if layers is None else list(layers)
    series = {}  # layer -> (steps, {quantity: values}), sorted by step
    for name in layers:
        sel = sorted((r for r in rows if r[layer] == name), key=lambda r: r[step])
        if sel:
            values = {q: np.array([math.nan if r[q] is None else float(r[q]) for r in sel]) for q in quantities}
            series[name] = (np.array([r[step] for r in sel], dtype=float), values)
    if not series:
        raise ValueError(f"none of the layers {layers} has norm rows")
    # explicit colours: "C0" etc. would be looked up in the rcParams at draw time, outside the thesis style
    colors = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(series)}
    low = {q: [(colors[n], xs[vs[q] <= 0]) for n, (xs, vs) in series.items()] for q in quantities}
    high = {
        q: [(colors[n], xs[np.isnan(vs[q]) | (vs[q] == np.inf)]) for n, (xs, vs) in series.items()] for q in quantities
    }
    has_low = {q: any(len(x) for _, x in low[q]) for q in quantities}
    has_high = {q: any(len(x) for _, x in high[q]) for q in quantities}

    # grid rows: [NaN/inf strip], panel, [zero strip]; a panel without marks spans its column's empty strip rows
    strip_h = max(0.2, _ROW_HEIGHT * len(series))
    heights = [strip_h] * any(has_high.values()) + [_MAIN_HEIGHT] + [strip_h] * any(has_low.values())
    main = int(any(has_high.values()))
    fig = plt.figure(figsize=(TEXT_WIDTH, sum(heights) + 0.7 + 0.3 * (len(heights) > 1) + 0.3 * bool(title)))
    gs = fig.add_gridspec(len(heights), len(quantities), height_ratios=heights)
    short = max(len(xs) for xs, _ in series.values()) <= 20  # a few steps: markers on every point
    for c, q in enumerate(quantities):
        ax = fig.add_subplot(gs[main if has_high[q] else 0 : main + 1 if has_low[q] else len(heights), c])
        ax.set_yscale("log")
        for name, (xs, vs) in series.items():
            ys = vs[q]
            ok = np.isfinite(ys) & (ys > 0)
            ax.plot(xs, np.where(ok, ys, np.nan), color=colors[name], lw=1.2, marker="o" if short else None, ms=3)
            lone = _short_runs(xs, ok) if not short else np.zeros(len(xs), dtype=bool)
            if lone.any():
                ax.plot(xs[lone], ys[lone], ls="", marker="o", ms=4, color=colors[name])
        ax.set_title(q.replace("_", " "))
        bottom = ax
        if has_high[q]:
            top = _mark_strip(fig, gs[0, c], ax, high[q], "NaN/inf", "x")
            top.tick_params(axis="x", bottom=False, labelbottom=False)
            top.spines["bottom"].set_visible(False)
            top.set_title(ax.get_title())  # the column's title goes above its top strip
            ax.set_title("")
        if has_low[q]:
            ax.tick_params(axis="x", bottom=False, labelbottom=False)
            bottom = _mark_strip(fig, gs[main + 1, c], ax, low[q], "0", "|")
        bottom.set_xlabel(step)
    handles = [
        Line2D([], [], color=colors[n], lw=1.2, marker="o" if short else None, ms=3, label=_layer_label(n))
        for n in series
    ]
    fig.legend(handles=handles, loc="outside right")
    marks, labels = [], []
    for found, marker, label in (
        (low, "|", "norm = 0 (row per layer, under the panel)"),
        (high, "x", "norm NaN or inf (row per layer, above)"),
    ):
        cs = list(dict.fromkeys(col for q in quantities for col, x in found[q] if len(x)))
        if cs:
            marks.append(tuple(Line2D([], [], ls="", marker=marker, color=col, ms=4.5, mew=1.1) for col in cs))
            labels.append(label)
    if marks:
        fig.legend(
            marks,
            labels,
            loc="outside lower center",
            ncols=len(marks),
            handler_map={tuple: HandlerTuple(ndivide=None, pad=0.2)},
            handlelength=3,
        )
    if title:
        fig.suptitle(title)
    return fig
