"""Training-time adversarial examples (thesis section 4.2).

- FGSM with random start, "FGSM-RS" (Wong, Rice, Kolter, ICLR 2020, "Fast is better than free"):
  delta ~ U(-eps, eps), clipped so that x + delta stays in [0, 1]; one signed-gradient step of
  size `step` (1.25 eps); delta clipped back to [-eps, eps] and x + delta to [0, 1]. Like Wong et
  al.'s code, the gradient is taken in the model's current (training) mode. The initial clip to
  the image box follows their code too; the protocol's formula leaves it implicit.
- PGD (Madry et al., ICLR 2018) through `thesis_lib.attacks.run_pgd` (the evaluation attack's
  engine, which runs the model in eval mode — BatchNorm running statistics, no dropout — and
  restores its mode afterwards).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ..attacks import PGDResult, run_pgd
from ..utils import frozen_parameters

__all__ = ["fgsm_rs_perturb", "pgd_perturb", "pgd_robust_accuracy"]


def fgsm_rs_perturb(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float | None = None,
    autocast=nullcontext,
    loss_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """FGSM-RS adversarial examples: ||x_adv - x||_inf <= eps and x_adv in [0, 1].

    step: FGSM step size (default 1.25 eps). autocast: a context factory (mixed precision).
    loss_scale: multiply the loss before differentiating (fp16 underflow; the sign is unchanged).
    Only the input gradient is computed: parameter gradients are neither needed nor accumulated.
    """
    if eps == 0:
        return x
    step = 1.25 * eps if step is None else step
    noise = torch.rand(x.shape, generator=generator, device="cpu" if generator is not None else x.device)
    delta = (noise.to(x.device, x.dtype) * 2 - 1) * eps
    delta = (torch.clamp(x + delta, 0, 1) - x).requires_grad_(True)
    with frozen_parameters(model), autocast():
        loss = F.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss * loss_scale, delta)
    delta = torch.clamp(delta.detach() + step * grad.sign(), -eps, eps)
    return torch.clamp(x + delta, 0, 1).detach()


def _seed() -> int:
    # Drawn from the global generator: a fresh random start per batch, restored exactly on resume.
    return int(torch.randint(0, 2**31 - 1, (1,)).item())


def _linf_pgd(model, x, y, eps, step, steps, seed: int, **options) -> PGDResult:
    """`run_pgd` in the training-time setting: L-inf, one restart from a random start."""
    return run_pgd(model, x, y, eps, step, steps, restarts=1, norm="linf", random_start=True, seed=seed, **options)


def pgd_perturb(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, steps: int
) -> torch.Tensor:
    """Madry et al.'s training attack: PGD-`steps`, L-inf, one random start, the final iterate.

    Uses `thesis_lib.attacks.run_pgd` with `stop="none"` (classic PGD: every example runs every
    step; the evaluation default stops at the first misclassified iterate, which would give a
    weaker training signal). Autocast on CUDA is handled by the attack.
    """
    return _linf_pgd(model, x, y, eps, step, steps, _seed(), batch_size=len(x), stop="none").x_adv.to(x.device)


def pgd_robust_accuracy(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    steps: int,
    batch_size: int = 512,
    seed: int | None = None,
) -> float:
    """Fraction of (x, y) that PGD (one random start; any misclassified iterate counts) does not break.

    seed: of the random start; None draws it from the global generator (a fresh start per call).
    """
    seed = _seed() if seed is None else seed
    res = _linf_pgd(model, x, y, eps, step, steps, seed, batch_size=batch_size, stop="first", return_adv=False)
    return 1.0 - res.success.float().mean().item()
