"""Fast gradient sign method (Goodfellow, Shlens, Szegedy 2015, "Explaining and harnessing adversarial
examples"); thesis section 2.2. One L-inf step of size eps along the sign of the input gradient of the
cross-entropy loss, clipped to [0, 1]. The single-step baseline that PGD must beat (Carlini et al. 2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .context import attack_mode, autocast_for, check_eps, model_device, prefers_channels_last, to_float_images
from .fold import fold_batchnorm

__all__ = ["fgsm"]


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, batch_size: int = 512, amp: bool | None = None
) -> torch.Tensor:
    """FGSM adversarial images x + eps * sign(grad_x CE(model(x), y)), clipped to [0, 1].

    `x` uint8 or float in [0, 1]; the result is float on `x`'s device. Eval mode, frozen parameters,
    model state restored afterwards.
    """
    eps = check_eps(eps)
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError("x must be a tensor of images of shape N x C x H x W.")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
        raise ValueError(f"y must hold one class index per image ({x.shape[0]}).")
    device = model_device(model)
    cl = prefers_channels_last(model, device)
    out = []
    with attack_mode(model, channels_last=cl):
        net = fold_batchnorm(model)  # same function, fewer passes (fold.py)
        for i in range(0, x.shape[0], batch_size):
            xb = to_float_images(x[i : i + batch_size], device).requires_grad_(True)
            yb = y[i : i + batch_size].to(device)
            with torch.enable_grad(), autocast_for(device, amp):
                logits = net(xb.contiguous(memory_format=torch.channels_last) if cl else xb)
                loss = F.cross_entropy(logits.float(), yb, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xb)
            out.append((xb.detach() + eps * grad.sign()).clamp_(0, 1).to(x.device))
    if not out:
        return torch.empty(x.shape, dtype=torch.float32, device=x.device)
    return torch.cat(out)
