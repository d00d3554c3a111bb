"""Figures of thesis section 2.1.3 (activation functions, eqs. 2.13-2.19) and section 2.4 (KAF shapes).

The curves are computed from the project's own activation modules (`make_activation`), so the
figures show exactly the functions the networks use; derivatives come from autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .style import PALETTE, TEXT_WIDTH, activation_color, styled

__all__ = [
    "plot_sigmoid",
    "plot_activation_functions",
    "plot_activation_derivatives",
    "plot_kaf_shapes",
    "plot_kaf_ridge_fit",
    "plot_kaf_reach",
]

_LABELS = {
    "relu": "ReLU",
    "elu": "ELU",
    "swish": "Swish",
    "leaky_relu": "LeakyReLU(0.1)",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "gelu": "GELU",
    "softplus": "Softplus",
}


def _grid(s_range, points):
    return torch.linspace(float(s_range[0]), float(s_range[1]), int(points), dtype=torch.float64)


def _value_and_slope(name: str, s: torch.Tensor):
    from ..activations import make_activation

    act = make_activation(name, 1).double()
    x = s.clone().requires_grad_(True)
    y = act(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach().numpy(), g.numpy()


def _jumps(y: np.ndarray, max_step: float = 0.25) -> np.ndarray:
    """Grid indices j where y jumps between s[j] and s[j + 1] (a discontinuity, not a steep slope)."""
    return np.flatnonzero(np.abs(np.diff(y)) > max_step)


def _break_jumps(s: np.ndarray, y: np.ndarray, max_step: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """(s, y) with a NaN inserted at every jump, so a discontinuous derivative is not drawn as a steep line.

    The left piece ends at s[j] with the value there, the right piece starts at s[j] with the value
    at s[j + 1] (the right limit, to grid accuracy): on a grid through the discontinuity (0 for
    ReLU) both pieces reach it.
    """
    s, y = np.asarray(s, dtype=float), np.asarray(y, dtype=float)
    out_s, out_y, last = [], [], 0
    for j in _jumps(y, max_step):
        out_s += [s[last : j + 1], [np.nan], [s[j]]]
        out_y += [y[last : j + 1], [np.nan], [y[j + 1]]]
        last = j + 1
    out_s.append(s[last:])
    out_y.append(y[last:])
    return np.concatenate(out_s), np.concatenate(out_y)


def _lines(ax, s, curves, title, ylabel):
    drawn = []
    for name, y in curves:
        y = np.asarray(y, dtype=float)
        # a curve that lies on one drawn before it over part of the range (ELU and LeakyReLU are both the
        # identity for s > 0) is dashed, so that both stay visible where they coincide
        shared = any(np.mean(np.abs(y - other) < 1e-6) > 0.05 for other in drawn)
        ax.plot(s, y, label=_LABELS.get(name, name), color=activation_color(name), ls="--" if shared else "-")
        drawn.append(y)
    ax.axhline(0, color="#888888", lw=0.6)
    ax.axvline(0, color="#888888", lw=0.6)
    ax.set_xlabel("s")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()


@styled
def plot_sigmoid(s_range=(-6.0, 6.0), points: int = 601):
    """Sigmoid and its derivative (bounded by 1/4: the vanishing-gradient argument of section 2.1.3)."""
    import matplotlib.pyplot as plt

    s = _grid(s_range, points)
    y, g = _value_and_slope("sigmoid", s)
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    ax.plot(s, y, label=r"$\sigma(s)$", color=activation_color("relu"))
    ax.plot(s, g, label=r"$\sigma'(s)$", color=activation_color("elu"), ls="--")
    ax.axhline(0.25, color="#888888", lw=0.6, ls=":")
    ax.set_xlabel("s")
    ax.set_title("Sigmoid and its derivative")
    ax.legend()
    return fig


@styled
def plot_activation_functions(
    names: Sequence[str] = ("elu", "leaky_relu", "swish"), s_range=(-4.0, 3.0), points: int = 701
):
    """Several activations on one axis (thesis: ELU, LeakyReLU(0.1), Swish)."""
    import matplotlib.pyplot as plt

    s = _grid(s_range, points)
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    _lines(ax, s.numpy(), [(n, _value_and_slope(n, s)[0]) for n in names], "Activation functions", "f(s)")
    return fig


@styled
def plot_activation_derivatives(
    names: Sequence[str] = ("relu", "elu", "swish"), s_range=(-4.0, 3.0), points: int = 701
):
    """First derivatives (autograd) of several activations, one panel each: ReLU's jumps at 0, ELU's and Swish's do not.

    A jump is drawn as a gap between the two one-sided pieces, a filled dot at the value autograd
    returns at the discontinuity and an open circle at the other one-sided limit (joined by a dotted line).
    """
    import matplotlib.pyplot as plt

    s = _grid(s_range, points)
    fig, axes = plt.subplots(1, len(names), figsize=(TEXT_WIDTH, 2.5), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        g = _value_and_slope(name, s)[1]
        color = activation_color(name)
        xs, ys = _break_jumps(s.numpy(), g)
        ax.plot(xs, ys, color=color)
        for j in _jumps(g):
            at, other = g[j], g[j + 1]
            ax.plot([s[j], s[j]], [at, other], color=color, ls=":", lw=0.9)
            ax.plot(s[j], at, "o", color=color, ms=5, zorder=4)
            ax.plot(s[j], other, "o", mfc="white", mec=color, mew=1.3, ms=5, zorder=4)
        ax.axhline(0, color="#888888", lw=0.6)
        ax.axvline(0, color="#888888", lw=0.6)
        ax.set_title(_LABELS.get(name, name))
        ax.set_xlabel("s")
    axes[0, 0].set_ylabel("f'(s)")
    return fig


def _kaf_curves(kaf, s):
    """(s, curves (C, len)) from a KAF module, a `kaf_curves` entry or an (s, curves) pair."""
    if isinstance(kaf, dict) and "s" in kaf and "curves" in kaf:
        return np.asarray(kaf["s"], dtype=float), np.atleast_2d(np.asarray(kaf["curves"], dtype=float))
    if isinstance(kaf, (tuple, list)) and len(kaf) == 2:
        return np.asarray(kaf[0], dtype=float), np.atleast_2d(np.asarray(kaf[1], dtype=float))
    if not hasattr(kaf, "evaluate"):
        raise ValueError(f"expected a KAF module or an (s, curves) pair, got {type(kaf).__name__}")
    return s.numpy(), kaf.evaluate(s).double().cpu().numpy()


def _target_curve(target, s):
    if target is None:
        return None, None
    if isinstance(target, str):
        from ..activations import make_activation

        return target, make_activation(target, 1).double()(s).detach().numpy()
    fn: Callable = target
    return getattr(fn, "__name__", "target"), np.asarray(fn(s), dtype=float)


@styled
def plot_kaf_shapes(
    before,
    after,
    channels: int | Sequence[int] = 4,
    target=None,
    s_range=(-4.0, 4.0),
    points: int = 401,
    titles=("at initialisation", "after training"),
    suptitle: str | None = None,
):
    """KAF shapes of a few channels before vs after training (thesis section 2.4).

    before, after: KAF modules (their `evaluate` is used on the grid), entries of
    `thesis_lib.analysis.kaf_curves(model)` (dicts with "s" and "curves"), or (s, curves) pairs.
    channels: how many (the first ones) or which.
    target: the function a ridge-initialised KAF interpolates ("elu", a callable, or None),
    drawn dashed on both panels. The dictionary range is shaded.
    """
    import matplotlib.pyplot as plt

    s = _grid(s_range, points)
    shapes = [_kaf_curves(mod, s) for mod in (before, after)]
    idx = list(range(min(int(channels), len(shapes[0][1])))) if isinstance(channels, (int, np.integer)) else channels
    peaks = [max(float(np.max(np.abs(np.asarray(c[i])))) for i in idx) for _, c in shapes]
    # one y scale for both panels unless the amplitudes differ by more than 10x (a random init with
    # |alpha| ~ 0.05 would be a flat line on the scale of a trained KAF): then each panel has its own
    shared = max(peaks) <= 10 * max(min(peaks), 1e-12)
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.8), sharey=shared)
    tname, ty = _target_curve(target, s)
    for ax, mod, (ss, curves), title in zip(axes, (before, after), shapes, titles):
        for k, c in enumerate(idx):
            ax.plot(ss, curves[c], color=PALETTE[k % len(PALETTE)], lw=1.2, label=f"channel {c}")
        if ty is not None:
            ax.plot(s.numpy(), ty, color="black", ls="--", lw=1.2, label=f"target: {tname}")
        d = getattr(mod, "dictionary", None)
        rng = (
            (float(d.min()), float(d.max()))
            if d is not None
            else (mod.get("dictionary_range") if isinstance(mod, dict) else None)
        )
        if rng is not None:
            ax.axvspan(*rng, color="#f0f0f0", zorder=0, lw=0)
        ax.set_title(title if shared else f"{title} (own scale)")
        ax.set_xlabel("s")
    axes[0].set_ylabel("f(s)")
    axes[1].legend(loc="best")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


@styled
def plot_kaf_ridge_fit(
    kaf, s_range=(-4.0, 4.0), points: int = 401, title: str = "A ridge-initialised KAF interpolating ELU"
):
    """The building blocks of a ridge-initialised KAF (thesis section 2.4), channel 0: each weighted Gaussian
    kernel alpha_i exp(-gamma (s - d_i)^2) (grey), their sum (the KAF), the target ELU (dashed) and the
    dictionary points it interpolates, in float64."""
    import matplotlib.pyplot as plt

    s = torch.linspace(*s_range, points, dtype=torch.float64)
    d, a, g = kaf.dictionary[0].double(), kaf.alpha[0].detach().double(), float(kaf.gamma[0])
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for i in range(len(d)):
        ax.plot(s, a[i] * torch.exp(-g * (s - d[i]) ** 2), color="#bbbbbb", lw=0.7)
    ax.plot(s, kaf.evaluate(s)[0], color=PALETTE[0], lw=1.8, label="KAF (ridge fit)")
    ax.plot(s, torch.nn.functional.elu(s), color="black", ls="--", lw=1.0, label="ELU")
    ax.plot(d, torch.nn.functional.elu(d), "o", color=PALETTE[3], ms=3, label="dictionary points")
    ax.set_xlabel("s")
    ax.set_ylabel("f(s)")
    ax.set_title(title)
    ax.legend()
    return fig


@styled
def plot_kaf_reach(table, title: str | None = "KAF inputs beyond the dictionary's reach", dead: float = 0.5):
    """Share of each KAF layer's inputs beyond the kernels' reach (%), against the layer's depth.

    table: `thesis_lib.analysis.reach_table` (rows: KAF layers in forward order, columns: models).
    One line per model; the dotted line marks `dead` (above it, most of a layer's units are dead).
    """
    import matplotlib.pyplot as plt

    many = len(table.columns) > 3  # then the legend goes beside the axes, off the lines
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH if many else TEXT_WIDTH * 0.75, 2.8))
    for k, model in enumerate(table.columns):
        col = table[model].dropna()
        ax.plot(
            np.arange(1, len(col) + 1),
            100 * col.to_numpy(),
            color=PALETTE[k % len(PALETTE)],
            marker=".",
            ms=4,
            lw=1.2,
            label=str(model),
        )
    ax.axhline(100 * dead, color="#888888", ls=":", lw=0.9)
    ax.set_xlabel("KAF layer (forward order)")
    ax.set_ylabel("inputs beyond reach (%)")
    ax.set_ylim(-3, 103)
    if many:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(loc="best")
    if title:
        ax.set_title(title)
    return fig
