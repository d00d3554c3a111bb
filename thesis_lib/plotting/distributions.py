"""Chapter 4 figures: activation distributions clean vs adversarial, and per-layer activation distances.

They draw the data of `thesis_lib.analysis.activation_histograms`, `filter_mean_activations` and
`layer_distances`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .style import activation_color, styled

__all__ = ["plot_activation_histograms", "plot_filter_means", "plot_layer_distances"]

CLEAN, ADV = "#4C72B0", "#DD8452"


def _as_rows(data) -> dict[str, list[dict]]:
    if isinstance(data, Mapping):
        return {str(k): list(v) for k, v in data.items()}
    data = list(data)
    if not data:
        raise ValueError("no histogram data to plot")
    return {str(data[0].get("activation", "")): data}


@styled
def plot_activation_histograms(
    data,
    title: str | None = None,
    xlabel: str = "pre-activation",
    max_layers: int | None = None,
    show_shape: bool = True,
):
    """Per-layer histograms, clean vs adversarial, with the activation's shape on a second y axis.

    data: the list returned by `activation_histograms` / `filter_mean_activations` (one row of
    panels), or {label: list} for several models (one row each, e.g. relu / kwta / kaf).
    Histograms are drawn as densities. Where the activation has no element-wise shape (k-WTA), the
    clean (input, output) pairs of the unit are scattered instead.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = _as_rows(data)
    ncols = max(len(v) for v in rows.values())
    if max_layers:
        ncols = min(ncols, max_layers)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.4 * ncols, 2.2 * len(rows)), squeeze=False)
    for r, (label, layers) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(layers):
                ax.set_visible(False)
                continue
            d = layers[c]
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
            ax.set_yticks([])
            if show_shape and (d.get("shape_f") is not None or d.get("scatter_in") is not None):
                tw = ax.twinx()
                tw.grid(False)
                if d.get("shape_f") is not None:
                    tw.plot(d["shape_s"], d["shape_f"], color="black", lw=1.0, label="activation")
                else:
                    tw.plot(
                        d["scatter_in"], d["scatter_out"], ".", color="black", ms=1.5, alpha=0.5, label="output (clean)"
                    )
                tw.tick_params(labelsize=6)
                tw.spines["right"].set_visible(True)
            unit = d.get("unit")
            ttl = f"{d.get('name', '')}" + (
                f"\nunit {tuple(unit)}"
                if unit is not None and d.get("mode") == "neuron"
                else f"\nfilter {unit[0]}"
                if unit is not None
                else ""
            )
            ax.set_title(ttl, fontsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            if r == len(rows) - 1:
                ax.set_xlabel(xlabel, fontsize=7)
            ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel(label)
    axes[0, 0].legend(fontsize=6, loc="upper left")
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
    absolute and relative (divided by the clean activation's norm).
    """
    import matplotlib.pyplot as plt

    rows = _records(data)
    if not rows:
        raise ValueError("no distance rows to plot")
    key = hue if hue in rows[0] else None
    groups = list(dict.fromkeys(str(r[key]) for r in rows)) if key else [""]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.2), squeeze=False)
    for ax, col in zip(axes[0], columns):
        for g in groups:
            sel = [r for r in rows if key is None or str(r[key]) == g]
            color = activation_color(g)
            layers = sorted({r["layer"] for r in sel})
            names = {r["layer"]: r["name"] for r in sel}
            for s in dict.fromkeys(r["sample"] for r in sel):
                pts = sorted((r["layer"], r[col]) for r in sel if r["sample"] == s)
                ax.plot(*np.array(pts, dtype=float).T, color=color, lw=0.6, alpha=0.35)
            mean = [np.nanmean([r[col] for r in sel if r["layer"] == li]) for li in layers]
            ax.plot(layers, mean, color=color, lw=2.0, marker="o", ms=3, label=g or None)
        ax.set_xticks(layers)
        ax.set_xticklabels(
            [str(names[li]).split(".")[-1] if names[li] == "logits" else str(li + 1) for li in layers], fontsize=7
        )
        ax.set_xlabel("activation layer")
        ax.set_ylabel(
            "L2 distance" if col == "distance" else "relative L2 distance" if col == "relative_distance" else col
        )
        if logy:
            ax.set_yscale("log")
    if groups != [""]:
        axes[0, 0].legend()
    if title:
        fig.suptitle(title)
    return fig


@styled
def plot_filter_means(data, title: str | None = None, max_layers: int | None = None):
    """Every filter's mean activation, clean (dots) vs adversarial (crosses), filters sorted by the clean mean.

    data: the list returned by `filter_mean_activations` (one row of panels, one per layer) or
    {label: list} for several models (one row each).
    """
    import matplotlib.pyplot as plt

    rows = _as_rows(data)
    ncols = max(len(v) for v in rows.values())
    if max_layers:
        ncols = min(ncols, max_layers)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.4 * ncols, 2.1 * len(rows)), squeeze=False)
    for r, (label, layers) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(layers):
                ax.set_visible(False)
                continue
            d = layers[c]
            cm, am = np.asarray(d["clean_means"]), np.asarray(d["adv_means"])
            order = np.argsort(cm, kind="stable")
            idx = np.arange(len(cm))
            ax.plot(idx, cm[order], ".", color=CLEAN, ms=3, label="clean")
            ax.plot(idx, am[order], "x", color=ADV, ms=3, mew=0.7, label="adversarial")
            ax.set_title(str(d.get("name", "")), fontsize=7)
            ax.tick_params(labelsize=6)
            if r == len(rows) - 1:
                ax.set_xlabel("filter (sorted by clean mean)", fontsize=7)
        axes[r, 0].set_ylabel(label)
    axes[0, 0].legend(fontsize=6)
    if title:
        fig.suptitle(title)
    return fig
