"""Chapter 4 ("Solution approach") of the thesis: how adversarial inputs change what each layer sees.

For the light CNN with ReLU, k-WTA and KAF activations, and clean vs adversarial (PGD) images:

- `activation_histograms`: for one neuron per layer (mode="neuron"), or for one filter's spatial
  mean (mode="filter"), the histogram over examples of its pre-activation (the activation's input),
  clean vs adversarial, with the activation function's shape on the same range;
- `filter_mean_activations`: every filter's mean activation (over examples and positions), clean vs
  adversarial, as per-layer arrays and histograms over the filters;
- `layer_distances`: per layer, ||a_l(x) - a_l(x_adv)||_2 for a few (clean, adversarial) pairs,
  also divided by ||a_l(x)||_2 (layers differ in size and scale).

All functions return plain data (numpy arrays, lists of dicts) for `thesis_lib.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .capture import collect_activations

__all__ = ["activation_histograms", "filter_mean_activations", "layer_distances", "activation_shape"]


def activation_shape(module: nn.Module, s: np.ndarray | torch.Tensor, channel: int = 0) -> np.ndarray | None:
    """f(s) of an element-wise activation on the grid s, for `channel` (KAFs differ per channel).

    None for activations that are not element-wise (k-WTA: its output depends on the whole layer).
    """
    from ..activations import KWTA

    s_t = torch.as_tensor(np.asarray(s, dtype=np.float64))
    if isinstance(module, KWTA):
        return None
    if hasattr(module, "evaluate"):
        return module.evaluate(s_t).double().cpu().numpy()[channel]
    p = next(module.parameters(), None)
    with torch.no_grad():
        x = s_t.to(p.device if p is not None else "cpu").float().view(-1, 1)
        try:
            y = module(x)  # element-wise: the channel dimension (1) does not matter
        except (RuntimeError, ValueError):
            return None
    return y.view(-1).double().cpu().numpy()


def _probe_shapes(model, x, device) -> list[tuple[int, ...]]:
    """Per activation layer, the shape (without batch) of its input."""
    out = collect_activations(
        model, x[:1], outputs=False, device=device, reduce=lambda i, t: torch.tensor(t.shape[1:]).view(1, -1)
    )
    return [tuple(int(v) for v in t[0]) for t in out["inputs"]]


def _choose_units(shapes, seed, mode, units):
    rng = np.random.default_rng(seed)
    chosen = []
    for i, shp in enumerate(shapes):
        if units is not None:
            u = units[i]
            u = (int(u),) if np.ndim(u) == 0 else tuple(int(v) for v in u)
            if mode == "filter":
                u = u[:1]
        elif mode == "filter" or len(shp) == 1:
            u = (int(rng.integers(shp[0])),)
        else:
            u = tuple(int(rng.integers(n)) for n in shp)
        if len(u) == 1 and len(shp) > 1 and mode == "neuron":
            u = (u[0], *[n // 2 for n in shp[1:]])  # a channel alone: its centre neuron
        chosen.append(u)
    return chosen


def _unit_reducer(chosen, mode):
    def reduce(i, t):
        u = chosen[i]
        if mode == "filter":
            v = t[:, u[0]]
            return v.reshape(len(t), -1).mean(1) if v.dim() > 1 else v
        return t[(slice(None), *u)]

    return reduce


def _hist(clean: np.ndarray, adv: np.ndarray, bins: int):
    both = np.concatenate([clean, adv])
    both = both[np.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    return edges, np.histogram(clean, edges)[0], np.histogram(adv, edges)[0]


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein-1 distance between two empirical distributions (quantile formula)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    q = np.linspace(0, 1, max(len(a), len(b)))
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


def _summary(clean, adv):
    return dict(
        clean_mean=float(clean.mean()),
        clean_std=float(clean.std()),
        adv_mean=float(adv.mean()),
        adv_std=float(adv.std()),
        wasserstein=_wasserstein(clean, adv),
    )


def _layer_row(i: int, name: str, mod: nn.Module, mode: str, clean, adv, bins: int, **fields) -> dict:
    """One layer's result: which layer, `fields`, the clean and adversarial histograms of `clean` / `adv`
    (values of the layer's units) on common bins, and their summary statistics."""
    edges, hc, ha = _hist(clean, adv, bins)
    head = dict(layer=i, name=name, activation=getattr(mod, "name", type(mod).__name__), mode=mode)
    return dict(**head, **fields, edges=edges, clean=hc, adversarial=ha, **_summary(clean, adv))


def activation_histograms(
    model: nn.Module,
    x_clean: torch.Tensor,
    x_adv: torch.Tensor,
    mode: str = "neuron",
    bins: int = 40,
    seed: int = 0,
    units: Sequence | None = None,
    batch_size: int = 256,
    device=None,
    shape_points: int = 200,
    scatter_points: int = 512,
) -> list[dict]:
    """Per activation layer, the histogram of one unit's pre-activation over the examples, clean vs adversarial.

    mode: "neuron" (one unit (c, h, w), or c for dense layers) or "filter" (channel c averaged over
    positions). The unit is drawn at random with `seed` unless `units` gives one per layer
    (a channel, or a full index tuple). Returns one dict per layer: layer (index), name (module
    path), activation, unit, channel, edges (bins + 1), clean / adversarial (counts), summary
    statistics (means, stds, 1-D Wasserstein distance), shape_s / shape_f (the activation on the
    histogram's range; shape_f None for k-WTA) and scatter_in / scatter_out (clean (input, output)
    pairs of the unit, at most `scatter_points`: k-WTA's empirical "shape").
    """
    if mode not in ("neuron", "filter"):
        raise ValueError(f"mode must be 'neuron' or 'filter', got {mode!r}")
    shapes = _probe_shapes(model, x_clean, device)
    if units is not None and len(units) != len(shapes):
        raise ValueError(f"need one unit per activation layer ({len(shapes)}), got {len(units)}")
    chosen = _choose_units(shapes, seed, mode, units)
    reduce = _unit_reducer(chosen, mode)
    clean = collect_activations(model, x_clean, batch_size, reduce=reduce, device=device)
    adv = collect_activations(model, x_adv, batch_size, outputs=False, reduce=reduce, device=device)
    result = []
    for i, (name, mod) in enumerate(zip(clean["names"], clean["modules"])):
        c_in = clean["inputs"][i].double().numpy()
        row = _layer_row(
            i, name, mod, mode, c_in, adv["inputs"][i].double().numpy(), bins, unit=chosen[i], channel=chosen[i][0]
        )
        s = np.linspace(row["edges"][0], row["edges"][-1], shape_points)
        k = min(scatter_points, len(c_in))
        row.update(
            shape_s=s,
            shape_f=activation_shape(mod, s, chosen[i][0]),
            scatter_in=c_in[:k],
            scatter_out=clean["outputs"][i].double().numpy()[:k],
        )
        result.append(row)
    return result


def filter_mean_activations(
    model: nn.Module,
    x_clean: torch.Tensor,
    x_adv: torch.Tensor,
    which: str = "output",
    bins: int = 30,
    batch_size: int = 256,
    device=None,
) -> list[dict]:
    """Per layer, every filter's (channel's) mean activation over examples and positions, clean vs adversarial.

    which: "output" (activations) or "input" (pre-activations). Returns one dict per layer with
    clean_means / adv_means (arrays of length C), edges / clean / adversarial (histograms over the
    filters, for `plot_activation_histograms`), the summary statistics and shape_f = None.
    """
    if which not in ("input", "output"):
        raise ValueError(f"which must be 'input' or 'output', got {which!r}")

    def reduce(i, t):  # per example, per channel mean over positions: N x C (sums kept for exact means)
        return t.reshape(t.shape[0], t.shape[1], -1).double().mean(2)

    want_in = which == "input"
    clean = collect_activations(
        model, x_clean, batch_size, inputs=want_in, outputs=not want_in, reduce=reduce, device=device
    )
    adv = collect_activations(
        model, x_adv, batch_size, inputs=want_in, outputs=not want_in, reduce=reduce, device=device
    )
    key = "inputs" if want_in else "outputs"
    result = []
    for i, (name, mod) in enumerate(zip(clean["names"], clean["modules"])):
        cm = clean[key][i].mean(0).numpy()
        am = adv[key][i].mean(0).numpy()
        row = _layer_row(i, name, mod, "filter_means", cm, am, bins, which=which, clean_means=cm, adv_means=am)
        result.append({**row, "shape_s": None, "shape_f": None, "scatter_in": None, "scatter_out": None})
    return result


@torch.no_grad()
def layer_distances(
    model: nn.Module,
    x_clean: torch.Tensor,
    x_adv: torch.Tensor,
    samples: int | Sequence[int] = 5,
    which: str = "output",
    device=None,
) -> list[dict]:
    """Per layer and per (clean, adversarial) pair, ||a(x) - a(x_adv)||_2 and that over ||a(x)||_2.

    samples: how many pairs (the first ones) or which indices. which: "output" (after the
    activation) or "input" (pre-activation). A last row per pair, name "logits", compares the
    network outputs. Returns tidy rows: layer, name, activation, sample, distance, clean_norm,
    relative_distance.
    """
    if which not in ("input", "output"):
        raise ValueError(f"which must be 'input' or 'output', got {which!r}")
    if len(x_clean) != len(x_adv):
        raise ValueError(f"x_clean and x_adv must pair up, got {len(x_clean)} and {len(x_adv)} images")
    idx = list(range(min(int(samples), len(x_clean)))) if np.ndim(samples) == 0 else [int(i) for i in samples]
    want_in = which == "input"
    flat = lambda i, t: t.reshape(len(t), -1).double()  # noqa: E731
    c = collect_activations(model, x_clean[idx], inputs=want_in, outputs=not want_in, reduce=flat, device=device)
    a = collect_activations(model, x_adv[idx], inputs=want_in, outputs=not want_in, reduce=flat, device=device)
    key = "inputs" if want_in else "outputs"
    layers = [
        (n, getattr(m, "name", type(m).__name__), c[key][i], a[key][i])
        for i, (n, m) in enumerate(zip(c["names"], c["modules"]))
    ]
    layers.append(("logits", "logits", c["logits"].double(), a["logits"].double()))
    rows = []
    for li, (name, act, cv, av) in enumerate(layers):
        dist = (cv - av).norm(dim=1)
        norm = cv.norm(dim=1)
        for k, sample in enumerate(idx):
            d, n = float(dist[k]), float(norm[k])
            rows.append(
                dict(
                    layer=li,
                    name=name,
                    activation=act,
                    sample=sample,
                    distance=d,
                    clean_norm=n,
                    relative_distance=d / n if n > 0 else float("nan"),
                )
            )
    return rows
