"""Chapter 4 figures: activation distributions clean vs adversarial, and per-layer activation distances.

They draw the data of `thesis_lib.analysis.activation_histograms`, `filter_mean_activations` and
`layer_distances`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .annotate import mark_off_scale, off_scale_handles
from .style import MIN_FONT_SIZE, TEXT_WIDTH, activation_color, styled

__all__ = ["plot_activation_histograms", "plot_filter_means", "plot_layer_distances"]

CLEAN, ADV = "#4C72B0", "#DD8452"


def _as_rows(data) -> dict[str, list[dict]]:
    if isinstance(data, Mapping):
        return {str(k): list(v) for k, v in data.items()}
    data = list(data)
    if not data:
        raise ValueError("no histogram data to plot")
    return {str(data[0].get("activation", "")): data}


def _unit_text(d) -> str:
    unit = d.get("unit")
    if unit is None:
        return ""
    return f", unit {tuple(unit)}" if d.get("mode") == "neuron" else f", filter {unit[0]}"


def _layer_grid(rows: dict, max_layers: int | None, row_height: float):
    """Axes grid: one column per model, one row per layer (a thesis page is narrow, not wide)."""
    import matplotlib.pyplot as plt

    nlayers = max(len(v) for v in rows.values())
    if max_layers:
        nlayers = min(nlayers, max_layers)
    ncols = len(rows)
    fig, axes = plt.subplots(
        nlayers, ncols, figsize=(min(TEXT_WIDTH, 2.2 * ncols + 0.3), row_height * nlayers + 0.7), squeeze=False
    )
    return fig, axes, nlayers


def _layer_panels(axes, rows: dict, nlayers: int):
    """Yield (column, axes, layer record, is the column's bottom panel) for every panel that has a layer.

    Cells below a shorter network's last layer are hidden; each column gets its network's name once
    its panels are drawn.
    """
    for c, (label, layers) in enumerate(rows.items()):
        for r in range(nlayers):
            ax = axes[r, c]
            if r >= len(layers):
                ax.set_visible(False)
                continue
            yield c, ax, layers[r], r == min(nlayers, len(layers)) - 1
        _column_title(axes[0, c], label)


@styled
def plot_activation_histograms(
    data,
    title: str | None = None,
    xlabel: str = "pre-activation",
    max_layers: int | None = None,
    show_shape: bool = True,
):
    """Per-layer histograms, clean vs adversarial, with the activation's shape on a second y axis.

    data: the list returned by `activation_histograms` / `filter_mean_activations` (one model), or
    {label: list} for several models (one column each, e.g. relu / kwta / kaf; one row per layer).
    Histograms are densities (left axis, "density"); the activation f(s) is drawn in black on the
    right axis. Where the activation has no element-wise shape (k-WTA), the clean (input, output)
    pairs of the unit are scattered instead (right axis: "k-WTA output").
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    rows = _as_rows(data)
    fig, axes, nlayers = _layer_grid(rows, max_layers, 1.45)
    any_shape = any_scatter = False
    for c, ax, d, bottom in _layer_panels(axes, rows, nlayers):
        edges = np.asarray(d["edges"])
        ax.stairs(
            np.asarray(d["clean"]) / max(1, np.sum(d["clean"])) / np.diff(edges),
            edges,
            fill=True,
            alpha=0.45,
            color=CLEAN,
            label="clean",
        )
        ax.stairs(
            np.asarray(d["adversarial"]) / max(1, np.sum(d["adversarial"])) / np.diff(edges),
            edges,
            color=ADV,
            lw=1.2,
            label="adversarial",
        )
        ax.yaxis.set_major_locator(MaxNLocator(3))
        if c == 0:
            ax.set_ylabel("density")
        if show_shape and (d.get("shape_f") is not None or d.get("scatter_in") is not None):
            tw = ax.twinx()
            tw.grid(False)
            if d.get("shape_f") is not None:
                any_shape = True
                tw.plot(d["shape_s"], d["shape_f"], color="black", lw=1.0)
                right = "f(s)"
            else:
                any_scatter = True
                tw.plot(d["scatter_in"], d["scatter_out"], ".", color="black", ms=1.5, alpha=0.5)
                right = "k-WTA output"
            tw.yaxis.set_major_locator(MaxNLocator(3))
            tw.spines["right"].set_visible(True)
            tw.set_ylabel(right)
        ax.set_title(f"{d.get('name', '')}{_unit_text(d)}", fontsize=MIN_FONT_SIZE)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if bottom:
            ax.set_xlabel(xlabel)
    handles = [
        Patch(color=CLEAN, alpha=0.45, label="clean (left axis)"),
        Line2D([], [], color=ADV, label="adversarial"),
    ]
    if any_shape:
        handles.append(Line2D([], [], color="black", lw=1.0, label="activation f(s) (right axis)"))
    if any_scatter:
        handles.append(Line2D([], [], ls="", marker=".", color="black", label="k-WTA (input, output) pairs"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    if title:
        fig.suptitle(title)
    return fig


def _records(data) -> list[dict]:
    if hasattr(data, "to_dict"):
        return data.to_dict("records")
    return [dict(r) for r in data]


@styled
def plot_layer_distances(
    data,
    hue: str = "model",
    logy: bool = True,
    title: str | None = None,
    columns: Sequence[str] = ("distance", "relative_distance"),
):
    """Per-layer L2 distance between clean and adversarial activations: one thin line per sample pair, mean thick.

    data: rows of `layer_distances` (list or DataFrame). For several models add a column named by
    `hue` (default "model"), e.g. `[dict(r, model="kaf") for r in rows_kaf] + [...]`; lines are
    coloured by it (activation colours when the values are activation names). Two panels:
    absolute and relative (divided by the clean activation's norm). On the log axes, zero and
    non-finite distances are marked on the bottom / top edge (`annotate.mark_off_scale`).
    """
    import matplotlib.pyplot as plt

    rows = _records(data)
    if not rows:
        raise ValueError("no distance rows to plot")
    key = hue if hue in rows[0] else None
    groups = list(dict.fromkeys(str(r[key]) for r in rows)) if key else [""]
    fig, axes = plt.subplots(1, len(columns), figsize=(TEXT_WIDTH, 2.9), squeeze=False)
    off = False
    for ax, col in zip(axes[0], columns):
        if logy:
            ax.set_yscale("log")
        for g in groups:
            sel = [r for r in rows if key is None or str(r[key]) == g]
            color = activation_color(g)
            layers = sorted({r["layer"] for r in sel})
            names = {r["layer"]: r["name"] for r in sel}
            for s in dict.fromkeys(r["sample"] for r in sel):
                pts = np.array(sorted((r["layer"], r[col]) for r in sel if r["sample"] == s), dtype=float)
                shown = np.where(np.isfinite(pts[:, 1]) & ((pts[:, 1] > 0) | (not logy)), pts[:, 1], np.nan)
                ax.plot(pts[:, 0], shown, color=color, lw=0.6, alpha=0.35)
                marked = mark_off_scale(ax, pts[:, 0], pts[:, 1], axis="y", color=color)
                off |= marked["low"] + marked["high"] > 0
            mean = np.array([np.nanmean([r[col] for r in sel if r["layer"] == li]) for li in layers], dtype=float)
            ax.plot(
                layers,
                np.where(np.isfinite(mean) & ((mean > 0) | (not logy)), mean, np.nan),
                color=color,
                lw=2.0,
                marker="o",
                ms=3,
                label=g or None,
            )
        ax.set_xticks(layers)
        ax.set_xticklabels([str(names[li]).split(".")[-1] if names[li] == "logits" else str(li + 1) for li in layers])
        ax.set_xlabel("activation layer")
        ax.set_ylabel(
            "L2 distance" if col == "distance" else "relative L2 distance" if col == "relative_distance" else col
        )
    if groups != [""] or off:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if off:  # zeros or non-finite distances: marked on the axis edge (see mark_off_scale)
            extra = off_scale_handles(what="distance")
            handles, labels = handles + extra, labels + [h.get_label() for h in extra]
        axes[0, 0].legend(handles, labels)
    if title:
        fig.suptitle(title)
    return fig


@styled
def plot_filter_means(data, title: str | None = None, max_layers: int | None = None):
    """Every filter's mean activation, clean (dots) vs adversarial (crosses), filters sorted by the clean mean.

    data: the list returned by `filter_mean_activations` (one model) or {label: list} for several
    models (one column each; one row per layer).
    """
    from matplotlib.ticker import MaxNLocator

    rows = _as_rows(data)
    fig, axes, nlayers = _layer_grid(rows, max_layers, 1.35)
    for c, ax, d, bottom in _layer_panels(axes, rows, nlayers):
        cm, am = np.asarray(d["clean_means"]), np.asarray(d["adv_means"])
        order = np.argsort(cm, kind="stable")
        idx = np.arange(len(cm))
        ax.plot(idx, cm[order], ".", color=CLEAN, ms=3, label="clean")
        ax.plot(idx, am[order], "x", color=ADV, ms=3, mew=0.7, label="adversarial")
        ax.set_title(str(d.get("name", "")), fontsize=MIN_FONT_SIZE)
        ax.yaxis.set_major_locator(MaxNLocator(4))
        if c == 0:
            ax.set_ylabel("mean activation")
        if bottom:
            ax.set_xlabel("filter, by clean mean")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    if title:
        fig.suptitle(title)
    return fig


def _column_title(ax, label: str) -> None:
    """The network's name above a column of per-layer panels (clear of the panel's own title)."""
    ax.annotate(
        label,
        (0.5, 1.0),
        xycoords="axes fraction",
        xytext=(0, 16),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontweight="bold",
    )
