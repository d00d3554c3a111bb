"""The learned shapes of every KAF in a network (thesis section 2.4; figures "KAF at init vs after training").

Each KAF module holds one function per channel; `KAF.evaluate(s)` returns them on a 1-D grid.
`shape_changes` measures how far stored shapes moved in training, `slope_bound_parts` takes
`KAF.slope_bound` apart (grid maximum and the grid's error term, against the slope's true maximum),
`ridge_fits` shows what the kernel ridge regression of a ridge-initialised KAF solves, `init_gains` how
steep each KAF initialisation is where a BatchNorm'd input mostly lies (the gain that compounds with depth).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

__all__ = ["kaf_curves", "shape_changes", "slope_bound_parts", "ridge_fits", "init_gains"]


def kaf_curves(model: nn.Module, s_range=(-4.0, 4.0), points: int = 401, s=None) -> list[dict]:
    """Curves of all KAF modules of `model` (in forward order when the model has `activation_modules`).

    s: an explicit 1-D grid (else `points` points on `s_range`). Returns one dict per KAF: layer
    (position among the KAF modules), name (module path), activation (e.g. "kaf_elu"), channels,
    s (array), curves (channels x len(s) array), slope_bound (per-channel max |f'|, array),
    dictionary_range ((lo, hi) over channels). An empty list when the model has no KAF.
    """
    from ..activations import KAF

    grid = torch.as_tensor(np.asarray(s if s is not None else np.linspace(*s_range, points), dtype=np.float64))
    mods = model.activation_modules() if hasattr(model, "activation_modules") else list(model.modules())
    names = {id(m): n for n, m in model.named_modules()}
    out = []
    for m in mods:
        if not isinstance(m, KAF):
            continue
        out.append(
            dict(
                layer=len(out),
                name=names.get(id(m), ""),
                activation=getattr(m, "name", "kaf"),
                channels=m.channels,
                s=grid.numpy(),
                curves=m.evaluate(grid).double().cpu().numpy(),
                slope_bound=copy.deepcopy(m).cpu().slope_bound().numpy(),  # (its grid is built on the CPU)
                dictionary_range=(float(m.dictionary.min()), float(m.dictionary.max())),
            )
        )
    return out


def shape_changes(curves_step: dict) -> list[dict]:
    """Per stored layer and channel: how far the KAF moved in training (from a `kaf_shapes` curves step).

    curves_step: {"s": grid, "layers": [{"name", "channels", "before", "after"}, ...]} as stored by
    the `kaf_shapes` experiment. Returns rows with layer, channel, peak_before / peak_after (max |f|
    on the grid), peak_ratio (after / before), mean_abs_change (mean |f_after - f_before|) and
    relative_change (that divided by the mean |f_before|).
    """
    rows = []
    for layer in curves_step["layers"]:
        before, after = np.atleast_2d(layer["before"]), np.atleast_2d(layer["after"])
        for k, c in enumerate(layer["channels"]):
            b, a = np.asarray(before[k], dtype=float), np.asarray(after[k], dtype=float)
            peak_b, peak_a = float(np.abs(b).max()), float(np.abs(a).max())
            change = float(np.abs(a - b).mean())
            rows.append(
                dict(
                    layer=layer["name"],
                    channel=int(c),
                    peak_before=peak_b,
                    peak_after=peak_a,
                    peak_ratio=peak_a / peak_b if peak_b > 0 else float("inf"),
                    mean_abs_change=change,
                    relative_change=change / float(np.abs(b).mean()) if np.abs(b).mean() > 0 else float("inf"),
                )
            )
    return rows


def _slope(alpha, dictionary, gamma, s):
    t = s.unsqueeze(-1) - dictionary
    return (-2 * gamma * t * torch.exp(-gamma * t * t) * alpha).sum(-1)


@torch.no_grad()
def slope_bound_parts(kaf, points: int, channel: int = 0, fine_points: int = 200_001) -> dict:
    """`KAF.slope_bound(points)` of one channel of a Gaussian KAF, taken apart, next to the slope's true maximum.

    slope_bound is an upper bound on max |f'(s)| over the whole real line: the largest |f'| on a grid
    of `points` points over the dictionary +- 6 kernel widths, plus the grid's error term
    h * gamma * sum|alpha| (h: grid step; |f''| <= 2 gamma sum|alpha|), capped by the triangle bound
    sqrt(2 gamma / e) sum|alpha|. With large ridge coefficients the error term dominates a coarse
    grid. Returns bound, grid_max, error_term, triangle, grid_step, alpha_abs_sum and, on a grid of
    `fine_points` points, max_slope (the Lipschitz constant to grid accuracy) with its location
    max_slope_at, and max_slope_dictionary (the largest |f'| within the dictionary range).
    """
    if getattr(kaf, "kernel", "gaussian") != "gaussian":
        raise ValueError("slope_bound_parts takes apart the Gaussian kernel's bound")
    a = kaf.alpha[channel].double().cpu()
    d = kaf.dictionary[channel].double().cpu()
    g = float(kaf.gamma[channel])
    width = 6.0 / math.sqrt(g)
    lo, hi = float(d.min()) - width, float(d.max()) + width
    h = (hi - lo) / (points - 1)
    grid = torch.linspace(lo, hi, points, dtype=torch.float64)
    fine = torch.linspace(lo, hi, fine_points, dtype=torch.float64)
    slope_fine = _slope(a, d, g, fine).abs()
    inside = (fine >= d.min()) & (fine <= d.max())
    k = int(slope_fine.argmax())
    return dict(
        bound=float(copy.deepcopy(kaf).cpu().slope_bound(points=points)[channel]),
        grid_max=float(_slope(a, d, g, grid).abs().max()),
        error_term=h * g * float(a.abs().sum()),
        triangle=math.sqrt(2 * g / math.e) * float(a.abs().sum()),
        grid_step=h,
        alpha_abs_sum=float(a.abs().sum()),
        max_slope=float(slope_fine[k]),
        max_slope_at=float(fine[k]),
        max_slope_dictionary=float(slope_fine[inside].max()),
    )


def ridge_fits(target: str = "elu", eps_values=(1e-6, 1e-4, 1e-2), preset: str = "thesis", kernel: str = "gaussian"):
    """What the ridge initialisation alpha = (K + eps I)^-1 t solves, for several ridges `eps`, in float64.

    Per eps: cond (condition number of K + eps I), residual (max |(K + eps I) alpha - t|: how exactly
    the system was solved), max_abs_alpha, alpha_abs_sum, fit_error (max |f - target| on the
    dictionary) and fit_error_between (max |f - target| on a fine grid within the dictionary range).
    """
    from ..activations import make_activation
    from ..activations.kaf import _TARGETS, _kernel_matrix, ridge_alpha

    kaf = make_activation("kaf", 1, preset=preset, kernel=kernel)
    d = kaf.dictionary[0].double()
    g = float(kaf.gamma[0])
    fn = _TARGETS[target]
    K = _kernel_matrix(d.unsqueeze(-1), d.unsqueeze(0), g, kernel)
    s = torch.linspace(float(d.min()), float(d.max()), 2001, dtype=torch.float64)
    Ks = _kernel_matrix(s.unsqueeze(-1), d.unsqueeze(0), g, kernel)
    rows = []
    for eps in eps_values:
        alpha = ridge_alpha(target, d, g, eps, kernel)
        system = K + eps * torch.eye(len(d), dtype=torch.float64)
        rows.append(
            dict(
                ridge=eps,
                cond=float(torch.linalg.cond(system)),
                residual=float((system @ alpha - fn(d)).abs().max()),
                max_abs_alpha=float(alpha.abs().max()),
                alpha_abs_sum=float(alpha.abs().sum()),
                fit_error=float((K @ alpha - fn(d)).abs().max()),
                fit_error_between=float((Ks @ alpha - fn(s)).abs().max()),
            )
        )
    return rows


@torch.no_grad()
def init_gains(activations=("kaf", "kaf_relu", "kaf_elu"), channels: int = 64, seed: int = 0) -> list[dict]:
    """Each Gaussian-KAF initialisation at construction, fed a standard normal input (a BatchNorm'd one).

    One row per activation, averaged over `channels` channels (random initialisations differ per channel):
    the output's standard deviation and the gain sqrt(E[f'(s)^2]) by which the layer scales a gradient
    (a ReLU has 0.71, an identity 1), with s ~ N(0, 1) on the dictionary's range, and the largest |slope|
    there. A deep stack multiplies the gains of its layers, and the BatchNorm after a layer divides by
    its output's std: that is how a low or erratic gain at initialisation grows into an exploding
    gradient in a deep network.
    """
    from ..activations import KAF, make_activation

    rows = []
    for name in activations:
        torch.manual_seed(seed)
        kaf = make_activation(name, channels)
        if not isinstance(kaf, KAF) or kaf.kernel != "gaussian":
            raise ValueError(f"{name!r} is not a Gaussian KAF")
        a, d, g = (t.detach().double() for t in (kaf.alpha, kaf.dictionary, kaf.gamma))
        s = torch.linspace(float(d.min()), float(d.max()), 4001, dtype=torch.float64)
        w = torch.exp(-0.5 * s * s)
        w = w / w.sum()  # N(0, 1) weights on the grid
        f = kaf.evaluate(s).double()
        slope = torch.stack([_slope(a[c], d[c], g[c], s) for c in range(channels)])
        mean = (f * w).sum(1, keepdim=True)
        rows.append(
            {
                "activation": name,
                "output std": float(((f - mean) ** 2 * w).sum(1).sqrt().mean()),
                "gain": float((slope**2 * w).sum(1).sqrt().mean()),
                "max |slope|": float(slope.abs().amax(1).mean()),
            }
        )
    return rows
