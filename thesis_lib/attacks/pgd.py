"""Projected gradient descent (Madry et al. 2018, "Towards deep learning models resistant to adversarial
attacks"), L-inf and L2, with random restarts; thesis section 2.2 and protocol "Evaluation"
(PGD L-inf, eps 8/255, step 2/255, 50 iterations, 10 restarts).

Robust accuracy is the fraction of examples that *no* iterate of *any* restart misclassifies, so the
engine stops spending compute on an example as soon as one is found:

- an example misclassified on the clean image is done before any gradient is computed;
- within a restart, an example leaves the batch at the first iterate that is misclassified (that
  iterate lies in the eps-ball, so it is a valid adversarial example; classic PGD would keep
  iterating and could even walk back to a correct prediction, so this is never weaker);
- further restarts run only for examples that every previous restart failed to break.

The active batch is refilled continuously ("continuous batching"): finished slots are handed to the
next restart of the same example or to new examples, so the batch stays full even when only a few
examples per chunk are still unbroken. This is valid because the model is in eval mode (BatchNorm
uses running statistics, dropout is off, k-WTA is per example): every example's trajectory is
independent of its batch neighbours. Compared with running `restarts` independent attacks over the
whole set (torchattacks, ART), the work saved is everything spent on already-broken examples.
The attack runs on a copy of the model with eval-mode BatchNorm folded into the convolutions before it
(`fold.py`: the same function with fewer passes).

`stop="earliest"` changes the schedule for the robust-accuracy-vs-iterations curve: a later restart
runs only up to the earliest successful iterate found so far, so that `step` holds, per example, the
first iterate index at which any restart succeeds; PGD-k (same step size, same random starts) is a
prefix of PGD-K for k < K, so one run gives the whole curve (see `curves.py`). `stop="none"` is classic
PGD (every example runs every step of every restart; the result is the final iterate of the
highest-loss restart): high-confidence adversarial images for transfer attacks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .context import (
    attack_mode,
    autocast_for,
    check_eps,
    check_norm,
    model_device,
    prefers_channels_last,
    to_float_images,
)
from .fold import fold_batchnorm

__all__ = ["pgd", "run_pgd", "PGDResult"]


@dataclass
class PGDResult:
    """Per-example outcome of `run_pgd` (length N; flags on CPU, x_adv on the input's device)."""

    x_adv: torch.Tensor | None  # N x C x H x W float in [0, 1]; None when return_adv=False
    success: torch.Tensor  # bool: some iterate of some restart was misclassified (or hit the target)
    clean_success: torch.Tensor  # bool: the clean image itself already was
    restart: torch.Tensor  # int64: restart (0-based) of the first success; -1 if none
    step: torch.Tensor  # int64: iterate index of the success (0 = random start); -1 if none
    gradient_evaluations: int  # example-gradients computed (the attack's cost; torchattacks: N*steps*restarts)

    @property
    def n(self) -> int:
        return int(self.success.numel())


def _check_args(x, y, eps, step, steps, restarts, norm, random_start, target, stop):
    eps = check_eps(eps)
    step = check_eps(step, "step")
    norm = check_norm(norm)
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    if not isinstance(restarts, numbers.Integral) or isinstance(restarts, bool) or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1, got {restarts!r}.")
    if restarts > 1 and not random_start:
        raise ValueError(
            "restarts > 1 needs random_start=True: without a random start every restart repeats the same attack."
        )
    if stop not in ("first", "earliest", "none"):
        raise ValueError(f"stop must be 'first', 'earliest' or 'none', got {stop!r}.")
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError("x must be a tensor of images of shape N x C x H x W.")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
        raise ValueError(
            f"y must hold one class index per image ({x.shape[0]}), got shape "
            f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}."
        )
    if target is not None and (not isinstance(target, torch.Tensor) or target.shape != (x.shape[0],)):
        raise ValueError("target must be None or hold one class index per image.")
    return eps, step, norm


def _random_start(x0: torch.Tensor, eps: float, norm: str, random_start: bool, gen: torch.Generator) -> torch.Tensor:
    """A uniform point of the eps-ball around x0 (L-inf: per pixel; L2: uniform in the ball), clipped to [0, 1]."""
    if not random_start or eps == 0 or x0.numel() == 0:
        return x0.clone()
    if norm == "linf":
        u = torch.rand(x0.shape, generator=gen, device=x0.device, dtype=x0.dtype)
        return (x0 + (2 * u - 1) * eps).clamp_(0, 1)
    n = x0.shape[0]
    d = x0[0].numel()
    direction = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=x0.dtype)
    direction /= direction.reshape(n, -1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x0.dim() - 1))
    radius = eps * torch.rand(n, generator=gen, device=x0.device, dtype=x0.dtype).pow(1.0 / d)
    return (x0 + direction * radius.view(-1, *[1] * (x0.dim() - 1))).clamp_(0, 1)


def _project_step(xadv, x0, grad, eps, step, norm):
    """One ascent step followed by the projection onto the eps-ball and onto [0, 1]."""
    if norm == "linf":
        xadv = xadv + step * grad.sign()
        xadv = torch.minimum(torch.maximum(xadv, x0 - eps), x0 + eps)
        return xadv.clamp_(0, 1)
    n = x0.shape[0]
    shape = (-1, *[1] * (x0.dim() - 1))
    g = grad / grad.reshape(n, -1).norm(dim=1).clamp_min(1e-12).view(shape)
    delta = xadv + step * g - x0
    # Shrink onto the L2 ball; clipping to [0, 1] afterwards moves every coordinate towards x0,
    # so it can only shorten delta and the result stays in the ball.
    scale = (eps / delta.reshape(n, -1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(shape)
    return (x0 + delta * scale).clamp_(0, 1)


def run_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    steps: int,
    restarts: int = 1,
    norm: str = "linf",
    random_start: bool = True,
    target: torch.Tensor | None = None,
    *,
    seed: int = 0,
    batch_size: int = 512,
    stop: str = "first",
    return_adv: bool = True,
    amp: bool | None = None,
    fold_bn: bool = True,
    on_done: Callable[[int], None] | None = None,
) -> PGDResult:
    """PGD with early stopping per example and continuous batching; see the module docstring.

    `x` may be uint8 (0-255) or float in [0, 1], on any device (examples are moved to the model's
    device `batch_size` at a time). `target` makes the attack targeted (success = predicted target).
    `seed` fixes the random starts; `on_done(k)` is called when k more examples are finished
    (progress bars). `amp=None` uses autocast on CUDA only. `fold_bn` attacks a copy of the model with
    eval-mode BatchNorm folded into the preceding convolutions (same function, fewer passes; `fold.py`).
    """
    eps, step, norm = _check_args(x, y, eps, step, steps, restarts, norm, random_start, target, stop)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    steps, restarts = int(steps), int(restarts)
    if eps == 0:  # the ball is a point: the clean image is the only candidate
        steps, restarts, random_start = 0, 1, False
    device = model_device(model)
    n = x.shape[0]
    gen = torch.Generator(device=device).manual_seed(int(seed))
    cl = prefers_channels_last(model, device)  # memory format of the attacked copy and its inputs

    success = torch.zeros(n, dtype=torch.bool, device=device)
    clean_success = torch.zeros(n, dtype=torch.bool, device=device)
    s_restart = torch.full((n,), -1, dtype=torch.long, device=device)
    s_step = torch.full((n,), -1, dtype=torch.long, device=device)
    best_loss = torch.full((n,), -math.inf, device=device)
    x_adv = torch.empty((n, *x.shape[1:]), device=device) if return_adv else None
    y_all = y.to(device, torch.long)
    t_all = target.to(device, torch.long) if target is not None else None
    targeted = target is not None

    # Slot state: example index, clean image, current iterate, iterate index t, restart r, last t to evaluate.
    idx = torch.empty(0, dtype=torch.long, device=device)
    x0 = xadv = torch.empty((0, *x.shape[1:]), device=device)
    t = r = lim = torch.empty(0, dtype=torch.long, device=device)
    pending = 0
    min_refill = max(1, batch_size // 8)  # refilling one example at a time would waste small forwards
    grad_evals = 0

    def succeeded(logits, rows):
        pred = logits.argmax(1)
        return pred.eq(t_all[rows]) if targeted else pred.ne(y_all[rows])

    def done(k: int):
        if on_done is not None and k:
            on_done(int(k))

    def autocast():
        return autocast_for(device, amp)

    with attack_mode(model, channels_last=cl):
        net = fold_batchnorm(model) if fold_bn else model
        while pending < n or idx.numel():
            # Refill free slots with new examples; clean failures are finished without any gradient.
            while pending < n and (batch_size - idx.numel() >= min_refill or idx.numel() == 0):
                k = min(batch_size - idx.numel(), n - pending)
                rows = torch.arange(pending, pending + k, device=device)
                pending += k
                xs = to_float_images(x[pending - k : pending], device)
                if return_adv:  # the fallback if no iterate ever has a finite loss
                    x_adv[rows] = xs
                with torch.no_grad(), autocast():
                    hit = succeeded(_forward(net, xs, cl).float(), rows)
                success[rows[hit]] = True
                clean_success[rows[hit]] = True
                s_restart[rows[hit]] = 0
                s_step[rows[hit]] = 0
                if stop == "none":  # classic PGD attacks every example, even misclassified ones
                    keep = torch.ones_like(hit)
                else:
                    if return_adv:
                        x_adv[rows[hit]] = xs[hit]
                    done(hit.sum().item())
                    keep = ~hit
                if steps == 0 and not random_start:  # nothing left to try
                    if return_adv:
                        x_adv[rows[keep]] = xs[keep]
                    done(keep.sum().item())
                    continue
                nk = int(keep.sum())
                idx = torch.cat([idx, rows[keep]])
                x0 = torch.cat([x0, xs[keep]])
                xadv = torch.cat([xadv, _random_start(xs[keep], eps, norm, random_start, gen)])
                t = torch.cat([t, torch.zeros(nk, dtype=torch.long, device=device)])
                r = torch.cat([r, torch.zeros(nk, dtype=torch.long, device=device)])
                lim = torch.cat([lim, torch.full((nk,), steps, dtype=torch.long, device=device)])
            if idx.numel() == 0:
                continue

            # One forward/backward for every active slot, whatever its restart and iterate. When every
            # slot is at its last iterate (lockstep batches) only the forward pass is needed.
            need_grad = bool((t < lim).any())
            xa = xadv.detach().requires_grad_(need_grad)
            with torch.set_grad_enabled(need_grad), autocast():
                logits = _forward(net, xa, cl).float()
                losses = (
                    -F.cross_entropy(logits, t_all[idx], reduction="none")
                    if targeted
                    else F.cross_entropy(logits, y_all[idx], reduction="none")
                )
            if need_grad:
                (grad,) = torch.autograd.grad(losses.sum(), xa)
                grad_evals += idx.numel()
            else:
                grad = torch.zeros_like(xadv)  # unused: every slot restarts or leaves below
            with torch.no_grad():
                losses = losses.detach()
                hit = succeeded(logits.detach(), idx)
                new_x = _project_step(xadv, x0, grad, eps, step, norm)
                new_t = t + 1
                new_r = r.clone()
                new_lim = lim.clone()
                leave = torch.zeros_like(hit)

                if stop == "none":  # record the first success only; nothing ends early
                    first = hit & ~success[idx]
                    rows = idx[first]
                    success[rows] = True
                    s_restart[rows] = r[first]
                    s_step[rows] = t[first]
                    at_limit = t >= lim
                else:
                    at_limit = (t >= lim) & ~hit
                if stop != "none" and hit.any():
                    rows = idx[hit]
                    if return_adv:
                        x_adv[rows] = xadv[hit]
                    success[rows] = True
                    s_restart[rows] = r[hit]
                    s_step[rows] = t[hit]
                    if stop == "first":
                        leave |= hit
                        done(rows.numel())
                    else:  # "earliest": later restarts only look for an earlier successful iterate
                        again = hit & (r + 1 < restarts) & (t > 0)
                        leave |= hit & ~again
                        new_lim[again] = t[again] - 1
                        done(int((hit & ~again).sum()))
                        _restart(new_x, new_t, new_r, x0, again, eps, norm, random_start, gen)
                if at_limit.any():
                    rows = idx[at_limit]
                    if return_adv:
                        better = losses[at_limit] > best_loss[rows]
                        if stop != "none":
                            better &= ~success[rows]  # keep the adversarial iterate of broken examples
                        best_loss[rows[better]] = losses[at_limit][better]
                        x_adv[rows[better]] = xadv[at_limit][better]
                    again = at_limit & (r + 1 < restarts)
                    leave |= at_limit & ~again
                    done(int((at_limit & ~again).sum()))
                    _restart(new_x, new_t, new_r, x0, again, eps, norm, random_start, gen)
                if leave.any():
                    keep = ~leave
                    idx, x0, new_x, new_t, new_r, new_lim = (a[keep] for a in (idx, x0, new_x, new_t, new_r, new_lim))
                xadv, t, r, lim = new_x, new_t, new_r, new_lim

    cpu = torch.device("cpu")
    out = x_adv.to(x.device) if return_adv else None
    return PGDResult(out, success.to(cpu), clean_success.to(cpu), s_restart.to(cpu), s_step.to(cpu), grad_evals)


def _restart(new_x, new_t, new_r, x0, mask, eps, norm, random_start, gen):
    """Start the next restart in place for the slots in `mask` (new random point, iterate 0)."""
    if not mask.any():
        return
    new_x[mask] = _random_start(x0[mask], eps, norm, random_start, gen)
    new_t[mask] = 0
    new_r[mask] += 1


def _forward(model: nn.Module, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """PGD adversarial images (N x C x H x W float in [0, 1]), the worst case over `restarts`.

    Takes `run_pgd`'s arguments (`eps, step, steps, restarts=1, norm="linf", random_start=True, target=None`,
    then keyword-only `seed`, `batch_size`, `stop`, ...) and returns its `x_adv`. Per example: the first
    misclassified iterate found (any restart), else the final iterate with the highest loss.
    `stop="none"` gives classic PGD instead (every step of every restart; the final iterate of the
    highest-loss restart): stronger, higher-confidence images, e.g. for transfer or for
    comparing activations, at the full cost. `eps` and `step` are in [0, 1] pixel units (L-inf) or L2
    norm units (`norm="l2"`). The model is attacked in eval mode with frozen parameters; its state is
    restored afterwards.
    """
    return run_pgd(model, x, y, *args, **kwargs, return_adv=True).x_adv
