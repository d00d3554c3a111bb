"""Figures of thesis chapter 6 (future work) and section 4.1: Lipschitz bounds, the KAF ResNet-56 fix
ablation and KAFs with other kernels (notebook 10).

Colours come from the thesis palette (`style.PALETTE`): upper bounds and healthy runs in its first
colour (blue), local estimates and diverged runs in its fourth (red); reference lines are grey as in
the other figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .annotate import mark_off_scale
from .style import PALETTE, TEXT_WIDTH, styled

__all__ = ["plot_lipschitz_bounds", "plot_fix_ablation", "plot_kaf_kernels", "kaf_kernel_fit"]

BLUE, RED = PALETTE[0], PALETTE[3]
REFERENCE = "#888888"  # chance level and other reference lines
DICTIONARY_BAND = "#f0f0f0"  # background band: the range of the KAF dictionary


def _frame(rows):
    import pandas as pd

    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))


@styled
def _model_label(row: dict) -> str:
    """'VGG relu (fast AT)'; a second run of the same activation says what differs, from its run key
    ('relu_thesis_lr' -> 'VGG relu (fast AT, thesis lr)'), so two row sets never share a label."""
    act, key = row["activation"], row.get("key") or row["activation"]
    extra = key[len(act) + 1 :].replace("_", " ") if key.startswith(act + "_") else ""
    return f"{row['model']} {act} ({row['training']}{', ' + extra if extra else ''})"


def plot_lipschitz_bounds(models, title: str = "Lipschitz bounds vs local estimates"):
    """Per model, the product-of-layers upper bound (bar) and the largest local Jacobian norm (tick), as log10.

    `models`: rows (dicts or a DataFrame) with model, activation, training, bound, empirical_jacobian
    (the `lipschitz` experiment's `result["models"]`). Values the log axis can not show are marked
    on its edge, not dropped: an infinite bound (k-WTA is discontinuous) by a cross on the right
    edge, a zero (log10 = -inf) by a triangle on the left edge (`annotate.mark_off_scale`).
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    lip = _frame(models).reset_index(drop=True)
    labels = [_model_label(r) for r in lip.to_dict("records")]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.25 * len(lip) + 1.4))
    y = np.arange(len(lip))
    with np.errstate(divide="ignore", invalid="ignore"):  # log10(0) = -inf for a constant network
        bound = np.log10(lip["bound"].astype(float).to_numpy())
        local = np.log10(lip["empirical_jacobian"].astype(float).to_numpy())
    finite_b, finite_l = np.isfinite(bound), np.isfinite(local)
    ax.barh(y[finite_b], bound[finite_b], color=BLUE)
    ax.scatter(local[finite_l], y[finite_l], color=RED, marker="|", s=80, zorder=3)
    marked_b = mark_off_scale(ax, y, bound, axis="x", color=BLUE)
    marked_l = mark_off_scale(ax, y, local, axis="x", color=RED)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("log10 L2 Lipschitz constant")
    handles = [
        Patch(color=BLUE, label="upper bound (product)"),
        Line2D([], [], ls="", marker="|", ms=9, mew=1.5, color=RED, label="local estimate"),
    ]
    if marked_b["high"] or marked_l["high"]:
        handles.append(Line2D([], [], ls="", marker="x", color="#555555", label="infinite (right edge)"))
    if marked_b["low"] or marked_l["low"]:
        handles.append(Line2D([], [], ls="", marker="<", color="#555555", label="zero (left edge)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    ax.set_title(title)
    return fig


def _diverged(d) -> bool:
    """A `diverged` cell: a record (or True) when the run turned non-finite; None, False or NaN when not."""
    return not (d is None or (isinstance(d, float) and np.isnan(d))) and bool(d)


@styled
def plot_fix_ablation(candidates, chance: float = 10.0, title: str = "KAF ResNet-56 candidates"):
    """Clean accuracy (%) of each ResNet-56 candidate fix; red bars: the run turned non-finite.

    `candidates`: rows with candidate, clean_acc (a fraction) and diverged (falsy when the run stayed
    finite), the `resnet56_fix` experiment's `result["candidates"]`. The title says "(red: diverged)"
    only when a bar is red.
    """
    import matplotlib.pyplot as plt

    ab = _frame(candidates)
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.4))
    diverged = [_diverged(d) for d in ab["diverged"]]
    ax.bar(ab["candidate"], ab["clean_acc"].astype(float) * 100, color=[RED if d else BLUE for d in diverged])
    ax.axhline(chance, color=REFERENCE, ls=":", lw=1.0, label=f"chance ({chance:g}%)")
    ax.set_ylabel("clean accuracy (%)")
    ax.set_title(f"{title} (red: diverged)" if any(diverged) else title)
    for label in ax.get_xticklabels():
        label.set(rotation=40, ha="right", rotation_mode="anchor")
    fig.legend(loc="outside lower right")  # outside: bars at chance level would hide it
    return fig


def kaf_kernel_fit(kernel: str, s, target: str = "elu", preset: str = "thesis"):
    """A KAF with `kernel` ridge-fitted to `target` on the preset's dictionary, evaluated on `s`, all in float64.

    The ReLU kernel max(0, s d) gives a Gram matrix of rank 2 (and the softplus kernel a nearly
    singular one), so the ridge coefficients are of order 1e5: rounding them to float32, as a
    network's KAF stores them, leaves cancellation noise of order 1 in their sum. In float64 the
    fit is what the formula says (for the ReLU kernel: two straight pieces through 0).
    Returns (values on s, alpha).
    """
    from ..activations import make_activation
    from ..activations.kaf import KAF_PRESETS, kaf_reference, ridge_alpha

    kaf = make_activation("kaf", 1, kernel=kernel, preset=preset)
    d = kaf.dictionary[0].double()
    gamma = float(kaf.gamma[0])
    alpha = ridge_alpha(target, d, gamma, KAF_PRESETS[preset]["ridge_eps"], kernel)
    s = torch.as_tensor(s, dtype=torch.float64)
    values = kaf_reference(
        s.view(-1, 1), alpha.view(1, -1), d.view(1, -1), torch.tensor([gamma], dtype=torch.float64), kernel
    )
    return values[:, 0], alpha


@styled
def plot_kaf_kernels(
    kernels: Sequence[str] = ("gaussian", "relu", "softplus"),
    s_range: tuple[float, float] = (-5.0, 5.0),
    points: int = 501,
    ylim: tuple[float, float] = (-2.0, 6.0),
    dictionary_range: tuple[float, float] = (-3.0, 3.0),
):
    """KAFs with each kernel, ridge-fitted to ELU on the thesis dictionary, against ELU (dashed).

    The fits are computed in float64 (`kaf_kernel_fit`: the ReLU and softplus kernels' ridge
    coefficients are huge and cancel). The shaded band is `dictionary_range`, the thesis
    dictionary's [-3, 3]: outside it the kernels extrapolate differently.
    """
    import matplotlib.pyplot as plt

    s = torch.linspace(s_range[0], s_range[1], points, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i, kernel in enumerate(kernels):
        values, _ = kaf_kernel_fit(kernel, s)
        ax.plot(s, values, color=PALETTE[i % len(PALETTE)], label=f"{kernel} kernel")
    ax.plot(s, torch.nn.functional.elu(s), color="black", ls="--", lw=1.0, label="ELU (target)")
    ax.axvspan(*dictionary_range, color=DICTIONARY_BAND, zorder=0, lw=0)
    ax.set_ylim(*ylim)
    ax.set_xlabel("s")
    ax.set_ylabel("f(s)")
    ax.set_title("KAF kernels, ridge-fitted to ELU")
    ax.legend()
    return fig
