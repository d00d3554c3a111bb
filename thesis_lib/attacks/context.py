"""How every attack touches a model: eval mode, no parameter gradients, state restored afterwards.

Attacks need gradients with respect to the *input* only. Switching `requires_grad` off on the
parameters stops autograd from keeping the tensors it would need for weight gradients (less memory,
less work) and guarantees that an attack never leaves gradients in `.grad` that a training loop
could pick up. BatchNorm and dropout must be in eval mode, otherwise the attack would see (and
update) batch statistics and random masks instead of the deployed model (Carlini et al. 2019,
"On Evaluating Adversarial Robustness", section 4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..utils import frozen_parameters, model_device

__all__ = [
    "attack_mode",
    "prefers_channels_last",
    "model_device",
    "autocast_for",
    "check_eps",
    "check_norm",
    "NORMS",
    "to_float_images",
]

NORMS = ("linf", "l2")


def prefers_channels_last(model: nn.Module, device: torch.device | None = None) -> bool:
    """Whether attacks should run `model` in channels_last memory format.

    On CUDA always (faster cuDNN kernels). On CPU unless the model has a k-WTA layer: its per-example
    top-k over C*H*W wants contiguous rows (channels_last made a k-WTA PGD step 0.8x as fast); every
    pointwise activation, the KAF's vector kernels included, is as fast or faster in NHWC
    (benchmarks/README.md).
    """
    device = model_device(model) if device is None else device
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    from ..activations import KWTA  # lazy: the attacks do not otherwise depend on the activations

    return not any(isinstance(m, KWTA) for m in model.modules())


@contextlib.contextmanager
def attack_mode(model: nn.Module, channels_last: bool | None = None) -> Iterator[nn.Module]:
    """Put `model` in eval mode with parameters frozen; restore every module's mode and flag on exit.

    Each submodule's `training` flag is restored individually (a model may be training with some
    BatchNorm layers deliberately frozen). With `channels_last` (default: `prefers_channels_last`) the
    model is switched to channels_last for the duration and switched back if it was not before; the
    function it computes is the same up to float rounding.
    """
    modes = [(m, m.training) for m in model.modules()]
    if channels_last is None:
        channels_last = prefers_channels_last(model)
    restore_format = False
    if channels_last:
        w = next((p for p in model.parameters() if p.dim() == 4), None)
        if w is not None and not w.is_contiguous(memory_format=torch.channels_last):
            model.to(memory_format=torch.channels_last)
            restore_format = True
    model.eval()
    try:
        with frozen_parameters(model):
            yield model
    finally:
        for m, mode in modes:
            m.training = mode
        if restore_format:
            model.to(memory_format=torch.contiguous_format)


def autocast_for(device: torch.device, enabled: bool | None = None) -> contextlib.AbstractContextManager:
    """Mixed precision for attack iterations.

    CUDA: on unless `enabled=False` (bfloat16 where supported, else float16). CPU: off unless
    `enabled=True`, then bfloat16 if the CPU has it natively: PGD-50 x 10 robust accuracy in bf16
    differs from float32 by more than the 0.3 points allowed for a default (benchmarks/README.md).
    """
    if device.type == "cuda" and enabled is not False:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and enabled is True:
        from ..precision import cpu_has_bf16

        if cpu_has_bf16():
            return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_eps(eps: float, name: str = "eps") -> float:
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number such as 8/255, got {eps!r}.") from None
    if not value >= 0 or value != value or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0 (in [0, 1] pixel units), got {eps!r}.")
    return value


def check_norm(norm: str) -> str:
    if not isinstance(norm, str) or norm.lower() not in NORMS:
        raise ValueError(f"Unknown norm {norm!r}: use 'linf' or 'l2'.")
    return norm.lower()


def to_float_images(x: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; float images are checked to lie in [0, 1]."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"Images must be a tensor of shape N x C x H x W, got {shape}.")
    if x.dtype == torch.uint8:
        x = x.to(device).float().div_(255) if device is not None else x.float().div_(255)
        return x
    if not x.is_floating_point():
        raise ValueError(f"Images must be uint8 (0-255) or float in [0, 1], got dtype {x.dtype}.")
    x = x.to(device) if device is not None else x
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("Float images must lie in [0, 1] (no mean/std normalisation): rescale them first.")
    return x.float()
