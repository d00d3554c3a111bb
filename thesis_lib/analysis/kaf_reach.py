"""Where a Gaussian KAF stops responding: the share of its inputs beyond the dictionary's reach.

A Gaussian KAF (Scardapane et al. 2019; thesis section 2.4) is a sum of bumps exp(-gamma (s - d_i)^2)
centred on a bounded dictionary (thesis: 20 points on [-3, 3]). Far from every d_i the output and its
derivatives vanish, so a unit whose pre-activations have grown past the dictionary outputs about 0 and
passes back no gradient: it is dead, and a layer of such units cuts the network off from its input.
This is how a KAF network can collapse to chance accuracy under a large learning rate (the batch-norm
scale before the KAF grows until most inputs fall outside), which a ReLU network cannot do the same way.

`kernel_reach(gamma, tol)` is the distance at which one bump has fallen to `tol` of its peak;
`inputs_beyond_reach(model, images)` measures, per KAF layer, the share of inputs farther than that
from every dictionary point, on real images; `reach_table` puts several models side by side and
`reach_lines` says what it shows (`thesis_lib.reporting.kaf_reach.committed_reach` does so for an
experiment's committed KAF weights).
"""

from __future__ import annotations

import math

import torch

from .capture import activation_layers, collect_activations

__all__ = ["kernel_reach", "inputs_beyond_reach", "reach_table", "reach_lines", "REACH_TOL"]

REACH_TOL = 1e-3  # a bump counts as gone below this fraction of its peak


def kernel_reach(gamma: float | torch.Tensor, tol: float = REACH_TOL):
    """Distance from its centre at which exp(-gamma r^2) falls to `tol`: sqrt(ln(1/tol) / gamma)."""
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1), got {tol}")
    if isinstance(gamma, torch.Tensor):
        return torch.sqrt(math.log(1 / tol) / gamma)
    return math.sqrt(math.log(1 / tol) / gamma)


def _window(module, tol: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel (lo, hi): dictionary span widened by the kernel reach; None if not a Gaussian KAF."""
    if getattr(module, "kernel", None) != "gaussian" or not hasattr(module, "dictionary"):
        return None
    d = module.dictionary.detach().double()
    reach = kernel_reach(module.gamma.detach().double().abs(), tol)
    return d.min(1).values - reach, d.max(1).values + reach


@torch.no_grad()
def inputs_beyond_reach(model, images: torch.Tensor, tol: float = REACH_TOL, batch_size: int = 250, device=None):
    """Per Gaussian-KAF layer of `model`, on `images` (N x 3 x H x W, uint8 or floats in [0, 1]).

    Returns a list of dicts (forward order): layer, channels, beyond (share of inputs outside every
    channel's window [min d - reach, max d + reach]), dead_channels (share of channels with more than
    99% of their inputs outside), abs_max (largest |input|) and window (the widest window of the
    layer). Empty for a model without Gaussian KAFs.
    """
    if len(images) == 0:
        raise ValueError("inputs_beyond_reach needs at least one image")
    layers = activation_layers(model)
    windows = [_window(m, tol) for _, m in layers]
    if all(w is None for w in windows):
        return []
    bounds32 = [None if w is None else (w[0].float(), w[1].float()) for w in windows]  # once, not per batch

    def reduce(i: int, t: torch.Tensor) -> torch.Tensor:
        """One record per batch: [beyond count per channel, elements per channel, max |x|]."""
        if bounds32[i] is None:
            return torch.zeros(1, 0, dtype=torch.float64)
        c = t.shape[1]
        shape = (1, c) + (1,) * (t.dim() - 2)
        lo, hi = (v.to(t.device).view(shape) for v in bounds32[i])
        x = t.float()
        out = ((x < lo) | (x > hi)).transpose(0, 1).reshape(c, -1)
        head = torch.stack([torch.tensor(float(out.shape[1]), device=x.device), x.abs().max()])
        return torch.cat([out.sum(1).float(), head]).double().view(1, -1)

    got = collect_activations(model, images, batch_size=batch_size, outputs=False, reduce=reduce, device=device)
    rows = []
    for (name, _), w, rec in zip(layers, windows, got["inputs"]):
        if w is None:
            continue
        c = rec.shape[1] - 2
        beyond, per_channel = rec[:, :c].sum(0), rec[:, c].sum()
        lo, hi = w
        rows.append(
            {
                "layer": name,
                "channels": c,
                "beyond": float(beyond.sum() / (per_channel * c)),
                "dead_channels": float((beyond / per_channel > 0.99).double().mean()),
                "abs_max": float(rec[:, c + 1].max()),
                "window": (round(float(lo.min()), 3), round(float(hi.max()), 3)),
            }
        )
    return rows


def reach_table(models, images: torch.Tensor, tol: float = REACH_TOL, batch_size: int = 250, device=None):
    """DataFrame of `inputs_beyond_reach` shares: one row per KAF layer name, one column per model.

    models: {label: model}; models without Gaussian KAFs are left out. Rows follow the forward order
    of the model with the most KAF layers (others are NaN where they have no such layer).
    """
    import pandas as pd

    cols = {}
    for label, model in models.items():
        rows = inputs_beyond_reach(model, images, tol=tol, batch_size=batch_size, device=device)
        if rows:
            cols[label] = {r["layer"]: r["beyond"] for r in rows}
    order: list[str] = []
    for layers in sorted(cols.values(), key=len, reverse=True):
        order += [name for name in layers if name not in order]
    table = pd.DataFrame(cols, index=order)
    table.index.name = "KAF layer"
    return table


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted integers: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for p in positions:
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def reach_lines(table, dead: float = 0.5) -> list[str]:
    """One sentence per model of a `reach_table`: its KAF layers (numbered from 1 in forward order) with more
    than `dead` of their inputs beyond the kernels' reach (whose units output about 0 and pass back no
    gradient), or its largest share."""
    lines = []
    for model in table.columns:
        col = table[model].dropna()
        names = list(col.index)
        gone = [i for i, v in enumerate(col, 1) if v > dead]
        if gone:
            parts = []
            for lo, hi in _runs(gone):
                seg = col.iloc[lo - 1 : hi]
                span = f"{lo}: {names[lo - 1]}" if lo == hi else f"{lo}-{hi}: {names[lo - 1]} to {names[hi - 1]}"
                low, high = f"{100 * seg.min():.1f}", f"{100 * seg.max():.1f}"
                share = f"{low}%" if low == high else f"{low}-{high}%"
                parts.append(f"{span}, {share}")
            lines.append(
                f"{model}: {len(gone)} of {len(col)} KAF layers {'has' if len(gone) == 1 else 'have'} more than "
                f"{dead:.0%} of their inputs beyond the dictionary's reach ({'; '.join(parts)}): those units "
                "output about 0 and pass back no gradient."
            )
        else:
            worst = int(col.to_numpy().argmax())
            lines.append(
                f"{model}: every KAF layer keeps at least {100 * (1 - col.max()):.2f}% of its inputs within the "
                f"dictionary's reach (largest share beyond: {100 * col.max():.2f}%, layer {worst + 1}: {names[worst]})."
            )
    return lines
