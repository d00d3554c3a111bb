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

from .style import PALETTE, styled

__all__ = ["plot_lipschitz_bounds", "plot_fix_ablation", "plot_kaf_kernels"]

BLUE, RED = PALETTE[0], PALETTE[3]
REFERENCE = "#888888"  # chance level and other reference lines
DICTIONARY_BAND = "#f0f0f0"  # background band: the range of the KAF dictionary


def _frame(rows):
    import pandas as pd

    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))


@styled
def plot_lipschitz_bounds(models, title: str = "Lipschitz bounds vs local estimates"):
    """Per model, the product-of-layers upper bound (bar) and the largest local Jacobian norm (tick), as log10.

    `models`: rows (dicts or a DataFrame) with model, activation, training, bound, empirical_jacobian
    (the `lipschitz` experiment's `result["models"]`). Models without a finite bound (k-WTA) are left out.
    """
    import matplotlib.pyplot as plt

    lip = _frame(models)
    finite = lip[np.isfinite(lip["bound"].astype(float))].reset_index(drop=True)
    labels = [f"{m} {a} ({t})" for m, a, t in zip(finite["model"], finite["activation"], finite["training"])]
    fig, ax = plt.subplots(figsize=(7.0, 0.25 * len(finite) + 1.2))
    y = np.arange(len(finite))
    with np.errstate(divide="ignore"):  # log10(0) = -inf for a constant network
        bound = np.log10(finite["bound"].astype(float))
        local = np.log10(finite["empirical_jacobian"].astype(float))
    ax.barh(y, bound, color=BLUE, label="upper bound (product)")
    ax.scatter(local, y, color=RED, marker="|", s=80, label="local estimate", zorder=3)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("log10 L2 Lipschitz constant")
    ax.legend(loc="lower right")
    ax.set_title(title)
    return fig


@styled
def plot_fix_ablation(candidates, chance: float = 10.0, title: str = "KAF ResNet-56 candidates (red: diverged)"):
    """Clean accuracy (%) of each ResNet-56 candidate fix; red bars: the run turned non-finite.

    `candidates`: rows with candidate, clean_acc (a fraction) and diverged (falsy when the run stayed
    finite), the `resnet56_fix` experiment's `result["candidates"]`.
    """
    import matplotlib.pyplot as plt

    ab = _frame(candidates)
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    colors = [RED if d else BLUE for d in ab["diverged"]]
    ax.bar(ab["candidate"], ab["clean_acc"].astype(float) * 100, color=colors)
    ax.axhline(chance, color=REFERENCE, ls=":", lw=1.0, label=f"chance ({chance:g}%)")
    ax.set_ylabel("clean accuracy (%)")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    return fig


@styled
def plot_kaf_kernels(
    kernels: Sequence[str] = ("gaussian", "relu", "softplus"),
    s_range: tuple[float, float] = (-5.0, 5.0),
    points: int = 501,
    ylim: tuple[float, float] = (-2.0, 6.0),
    dictionary_range: tuple[float, float] = (-3.0, 3.0),
):
    """KAFs with each kernel, ridge-fitted to ELU on the thesis dictionary, against ELU (dashed).

    The shaded band is `dictionary_range`, the thesis dictionary's [-3, 3]: outside it the kernels
    extrapolate differently.
    """
    import matplotlib.pyplot as plt

    from ..activations import make_activation

    s = torch.linspace(s_range[0], s_range[1], points, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i, kernel in enumerate(kernels):
        kaf = make_activation("kaf", 1, kernel=kernel, init="elu")
        ax.plot(s, kaf.evaluate(s)[0], color=PALETTE[i % len(PALETTE)], label=f"{kernel} kernel")
    ax.plot(s, torch.nn.functional.elu(s), color="black", ls="--", lw=1.0, label="ELU (target)")
    ax.axvspan(*dictionary_range, color=DICTIONARY_BAND, zorder=0, lw=0)
    ax.set_ylim(*ylim)
    ax.set_xlabel("s")
    ax.set_ylabel("f(s)")
    ax.set_title("KAF kernels, ridge-fitted to ELU")
    ax.legend()
    return fig
