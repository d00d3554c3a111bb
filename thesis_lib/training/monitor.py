"""Per-layer weight/gradient norms and the non-finite guard (thesis section 5.2, exploding gradients).

The exploding-gradients chapter plots, for ResNet-20/56 with ReLU and KAF activations, each
layer's weight and gradient L2 norm over the first iterations. `parameter_norms` measures them in
one pass (one device sync) and `find_nonfinite` names the first parameter — in registration order,
which is forward order for the thesis's models — whose gradient or weight is NaN/inf.
A run whose loss or gradients turn non-finite is stopped cleanly and reports `diverged`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["parameter_norms", "find_nonfinite", "first_nonfinite_module", "Divergence"]


def _norm_tensor(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norms of `tensors` as one float32 tensor (fused multi-tensor kernel where available).

    A NaN/inf entry makes its norm NaN/inf; a finite tensor so large that its norm overflows
    float32 (|values| around 1e19) reads as inf too, which for training is divergence all the same.
    """
    if not tensors:
        return torch.zeros(0)
    try:
        norms = torch._foreach_norm([t.detach() for t in tensors])
    except (RuntimeError, AttributeError):  # pragma: no cover  (mixed devices/dtypes, old torch)
        norms = [t.detach().float().norm() for t in tensors]
    return torch.stack([n.float() for n in norms])


def _named(model: nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def parameter_norms(model: nn.Module) -> dict[str, dict[str, float]]:
    """{"weight": {param name: L2 norm}, "grad": {param name: L2 norm of .grad}} in registration order.

    Non-finite norms stay NaN/inf (written to JSON as NaN/Infinity, which Python and pandas read).
    """
    named = _named(model)
    with_grad = [(n, p.grad) for n, p in named if p.grad is not None]
    w = _norm_tensor([p for _, p in named])
    g = _norm_tensor([t for _, t in with_grad])
    both = torch.cat([w.cpu(), g.cpu()]).tolist()
    return {
        "weight": dict(zip([n for n, _ in named], both[: len(named)])),
        "grad": dict(zip([n for n, _ in with_grad], both[len(named) :])),
    }


class Divergence(dict):
    """{"step": int, "layer": str | None, "quantity": "loss" | "grad" | "weight"}: where a run went non-finite."""


def find_nonfinite(model: nn.Module, loss: torch.Tensor | float | None, step: int) -> Divergence | None:
    """None when loss, gradients and weights are all finite; else where the first non-finite value is.

    The common case is one fused norm kernel and one device sync; the per-parameter search runs
    only on failure. Order of blame: a non-finite weight (the model is already broken), then the
    loss, then the first gradient.
    """
    named = _named(model)
    grads = [p.grad for _, p in named if p.grad is not None]
    parts = [_norm_tensor([p for _, p in named] + grads)]
    if loss is not None:
        parts.append(torch.as_tensor(loss).detach().float().reshape(-1).to(parts[0].device))
    if bool(torch.isfinite(torch.cat(parts)).all()):
        return None
    for n, p in named:
        if not bool(torch.isfinite(p.detach()).all()):
            return Divergence(step=step, layer=n, quantity="weight")
    if loss is not None and not bool(torch.isfinite(torch.as_tensor(loss)).all()):
        return Divergence(step=step, layer=None, quantity="loss")
    for n, p in named:
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            return Divergence(step=step, layer=n, quantity="grad")
    # Only a norm overflowed (finite entries whose squares exceed float32): name that tensor.
    norms = _norm_tensor([p for _, p in named])
    for (n, _), v in zip(named, norms.tolist()):
        if not math.isfinite(v):
            return Divergence(step=step, layer=n, quantity="weight")
    gnamed = [(n, p.grad) for n, p in named if p.grad is not None]
    for (n, _), v in zip(gnamed, _norm_tensor([g for _, g in gnamed]).tolist()):
        if not math.isfinite(v):
            return Divergence(step=step, layer=n, quantity="grad")
    return None  # pragma: no cover


@torch.no_grad()
def first_nonfinite_module(model: nn.Module, x: torch.Tensor) -> str | None:
    """Name of the first leaf module (in execution order) whose output is non-finite on `x`, or None.

    Used once, after a non-finite loss, to say where the forward pass broke. It runs the model in
    eval mode (no BatchNorm statistics updated, no dropout), so it can miss a train-mode-only cause.
    """
    found: list[str] = []
    hooks = []
    for name, mod in model.named_modules():
        if name and not list(mod.children()):

            def hook(m, inp, out, name=name):
                if not found and isinstance(out, torch.Tensor) and not bool(torch.isfinite(out).all()):
                    found.append(name)

            hooks.append(mod.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found[0] if found else None
