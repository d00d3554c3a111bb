"""A network's outputs along a 1-D line in input space, and the discontinuities they show (thesis section 3.1).

k-WTA (Xiao et al. 2020) makes the network discontinuous in its input: as x moves, the set of
winners changes and the outputs jump. Tramer, Carlini, Brendel, Madry (2020, "On adaptive attacks
to adversarial example defenses", section on k-WTA) show this by plotting the logits along
x + t * direction. KAF networks are smooth, ReLU networks continuous (kinks, no jumps).

Detection. On a grid of step h a continuous function changes by O(h) per step, a kink changes the
step by O(h) too, but a jump of size J contributes J regardless of h. `find_jumps` flags the steps
whose deviation from the median of their neighbouring steps (a robust second difference) exceeds
`factor` times the typical step; `line_scan` then confirms each candidate by zooming in (the change
must stay concentrated in an interval `refine**levels` times shorter), which a steep but
continuous function fails.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

__all__ = ["line_scan", "find_jumps", "count_discontinuities", "random_direction"]


def random_direction(shape, seed: int = 0, norm: float = 1.0) -> torch.Tensor:
    """A Gaussian direction of L2 norm `norm` (seeded, independent of the global RNG)."""
    g = torch.Generator().manual_seed(int(seed))
    d = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    return (d * (norm / d.norm())).float()


def _steps(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v.reshape(len(v), -1)
    return np.diff(v, axis=0)  # (T - 1, K)


def find_jumps(values, factor: float = 10.0, window: int = 3, threshold: float | None = None) -> dict:
    """Candidate discontinuities of a function sampled on a uniform grid.

    values: (T,) or (T, K) samples (K outputs, e.g. logits). For each interval i, the residual
    r_i = max_k |d_ik - median(d_{i-window..i+window}, k)| with d the first differences; interval
    i is a jump when r_i > threshold, by default `factor` times the median over intervals of
    max_k |d_ik| (the typical step, proportional to the grid step for a continuous function).
    Returns intervals (indices i of [t_i, t_i+1]), residuals (per interval), threshold, typical_step.
    """
    d = _steps(values)
    if len(d) < 3:
        raise ValueError("need at least 4 samples to look for jumps")
    T1 = len(d)
    pad = np.pad(d, ((window, window), (0, 0)), mode="edge")
    neigh = np.stack([pad[i : i + T1] for i in range(2 * window + 1)])  # (2w+1, T-1, K)
    resid = np.abs(d - np.median(neigh, axis=0)).max(1)
    typical = float(np.median(np.abs(d).max(1)))
    thr = float(threshold) if threshold is not None else factor * typical
    if thr <= 0:  # a constant function: anything that moves at all is a jump
        thr = np.finfo(np.float64).eps * max(1.0, float(np.abs(np.asarray(values)).max()))
    return dict(intervals=np.flatnonzero(resid > thr), residuals=resid, threshold=thr, typical_step=typical)


def count_discontinuities(values, factor: float = 10.0, window: int = 3, threshold: float | None = None) -> int:
    """Number of candidate jumps of sampled values (see `find_jumps`; no model needed, no confirmation)."""
    return int(len(find_jumps(values, factor, window, threshold)["intervals"]))


@torch.no_grad()
def _outputs(model, xs, batch_size):
    return torch.cat([model(xs[i : i + batch_size]).double().cpu() for i in range(0, len(xs), batch_size)])


@torch.no_grad()
def line_scan(
    model: nn.Module,
    x: torch.Tensor,
    direction: torch.Tensor | None = None,
    t_max: float = 1.0,
    points: int = 2001,
    seed: int = 0,
    factor: float = 10.0,
    window: int = 3,
    refine: int = 4,
    levels: int = 3,
    concentration: float = 0.5,
    batch_size: int = 512,
    device=None,
    dtype: torch.dtype = torch.float64,
) -> dict:
    """Logits of `model` along x + t * direction, t in [-t_max, t_max] on `points` points, and their jumps.

    x: one image (3 x H x W, [0, 1]); direction: same shape (default: a seeded Gaussian direction
    of L2 norm 1). The path is not clipped to [0, 1] (clipping would add kinks of its own).
    Candidates from `find_jumps` are confirmed by `levels` rounds of zooming: the interval is split
    into `refine` sub-steps and the largest sub-step must carry at least `concentration` of the
    interval's change (and of its residual); the zoom then follows that sub-step. The scan runs in `dtype` (float64 by
    default, on a copy of the model: zooming to h / refine**levels would hit float32's resolution of
    the pixel values).

    Cost: `points` forward passes plus (refine - 1) * levels per candidate interval, batched; use
    a GPU (device="cuda") for full-size networks. An interval holding several jumps counts once, so
    when jump_fraction (confirmed intervals / intervals) is large, raise `points`.

    Returns t (T,), logits (T x K), jumps (confirmed interval indices), jump_t (their midpoints),
    jump_sizes (max over logits of the change across the jump), jump_fraction, candidates, n_jumps,
    step (h), threshold, typical_step, direction_norm. The model's train/eval state is restored.
    """
    from ..utils import get_device

    if x.dim() != 3:
        raise ValueError(f"x must be one image of shape C x H x W, got {tuple(x.shape)}")
    p0 = next(model.parameters())
    dev = get_device(device) if device is not None else p0.device
    x = (x.double() / 255 if x.dtype == torch.uint8 else x.double()).to(dev, dtype)
    direction = random_direction(x.shape, seed) if direction is None else direction
    if direction.shape != x.shape:
        raise ValueError(f"direction shape {tuple(direction.shape)} differs from x's {tuple(x.shape)}")
    direction = direction.to(dev, dtype)
    was_training = model.training
    if p0.dtype != dtype or p0.device != dev:  # never convert or move the caller's model
        model = copy.deepcopy(model).to(dev, dtype)
    model.eval()
    try:
        t = torch.linspace(-float(t_max), float(t_max), int(points), dtype=torch.float64)
        along = lambda ts: x.unsqueeze(0) + ts.to(dev, dtype).view(-1, 1, 1, 1) * direction  # noqa: E731
        logits = _outputs(model, along(t), batch_size)
        cand = find_jumps(logits.numpy(), factor, window)
        # Zoom into all candidates at once (one batched forward pass per level); the end points of
        # each zoom interval are known already, so only the refine - 1 interior points are evaluated.
        cands = cand["intervals"]
        lo, hi = t[cands].clone(), t[cands + 1].clone()
        f_lo, f_hi = logits[cands].numpy(), logits[cands + 1].numpy()
        # A jump keeps (most of) the change in ever shorter sub-intervals; a continuous function
        # spreads it, so a sub-step must carry `concentration` of the whole step (and residual).
        whole = np.abs(f_hi - f_lo).max(1) if len(cands) else np.zeros(0)
        need = concentration * np.maximum(cand["residuals"][cands], whole)
        alive = np.ones(len(cands), dtype=bool)
        u = torch.linspace(0, 1, refine + 1, dtype=torch.float64)[1:-1]
        rows = np.arange(len(cands))
        for _ in range(levels if len(cands) else 0):
            inner = lo.view(-1, 1) + (hi - lo).view(-1, 1) * u.view(1, -1)  # (n, refine - 1)
            f_in = _outputs(model, along(inner.reshape(-1)), batch_size).numpy()
            f_in = f_in.reshape(len(cands), refine - 1, -1)
            f_all = np.concatenate([f_lo[:, None], f_in, f_hi[:, None]], axis=1)  # (n, refine + 1, K)
            sub = np.abs(np.diff(f_all, axis=1)).max(2)  # (n, refine)
            j = sub.argmax(1)
            alive &= sub[rows, j] >= need
            ts = torch.cat([lo.view(-1, 1), inner, hi.view(-1, 1)], 1)
            jt = torch.as_tensor(j)
            lo, hi = ts[rows, jt], ts[rows, jt + 1]
            f_lo, f_hi = f_all[rows, j], f_all[rows, j + 1]
        confirmed = cands[alive]
        sizes = [float(np.abs(logits[i + 1] - logits[i]).max()) for i in confirmed]
    finally:
        model.train(was_training)
    tn = t.numpy()
    return dict(
        t=tn,
        logits=logits.numpy(),
        jumps=confirmed,
        jump_t=(tn[confirmed] + tn[confirmed + 1]) / 2,
        jump_fraction=float(len(confirmed) / max(1, len(tn) - 1)),
        jump_sizes=np.asarray(sizes),
        candidates=cand["intervals"],
        n_jumps=int(len(confirmed)),
        step=float(tn[1] - tn[0]),
        threshold=cand["threshold"],
        typical_step=cand["typical_step"],
        direction_norm=float(direction.double().norm()),
    )
