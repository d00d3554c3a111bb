"""Attack-time model simplification: fold eval-mode BatchNorm into the preceding convolution.

In eval mode BatchNorm is a per-channel affine map y = s * x + b with fixed s, b (running statistics),
so conv -> BN equals one convolution with weights W * s and bias (bias - mean) * s + beta (the
standard inference-time fusion, e.g. Jacob et al. 2018, section 3.2). Attacks run thousands of
forward/backward passes through a frozen eval-mode model, so removing the BN passes is free speed
(1.1-1.4x per PGD step for the light CNN on CPU, benchmarks/README.md). The function computed is the
same up to float rounding (~1e-6 on the logits); reported accuracies are re-checked on the original
model anyway (`robust_accuracy`).

Only pairs whose order is certain are folded: a Conv2d immediately followed by a BatchNorm2d inside an
`nn.Sequential` (the light CNN, the VGG, the ResNet stem and He-block shortcuts). Pairs wired together
in a custom `forward` (inside residual blocks) are left alone. BatchNorm without running statistics
(which normalises with batch statistics even in eval mode) is never folded.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.batchnorm import BatchNorm2d

__all__ = ["fold_batchnorm", "foldable_pairs"]


def foldable_pairs(model: nn.Module) -> list[tuple[nn.Sequential, str, str]]:
    """(container, conv name, bn name) for every conv -> BN pair that `fold_batchnorm` would fuse."""
    pairs = []
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if (
                type(conv) is nn.Conv2d
                and type(bn) in (nn.BatchNorm2d, BatchNorm2d)
                and bn.track_running_stats
                and bn.running_mean is not None
                and conv.out_channels == bn.num_features
            ):
                pairs.append((seq, a, b))
    return pairs


@torch.no_grad()
def _fused(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale + (bn.bias if bn.affine else 0.0)
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    # skip_init: no random initialisation (it would draw from, and so shift, the global generator,
    # e.g. the training stream of a run whose per-epoch watch attacks the model)
    out = nn.utils.skip_init(
        nn.Conv2d,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
    out.bias.copy_(shift.to(conv.weight.dtype))
    out.weight.requires_grad_(False)
    out.bias.requires_grad_(False)
    return out


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with foldable conv -> BN pairs fused; `model` itself if none is foldable.

    The BN's slot keeps its name (it becomes an `nn.Identity`, or the fixed activation fused into it
    by `models.batchnorm.fuse_activations`; a KAF fused into it is computed in its own slot again), so
    module paths and forward hooks on the other modules are unchanged. A model that cannot be
    deep-copied is returned as it is.
    """
    if not foldable_pairs(model):
        return model
    try:
        net = copy.deepcopy(model)
    except Exception:  # e.g. modules holding non-copyable handles: attack the original instead
        return model
    for seq, a, b in foldable_pairs(net):
        bn = seq._modules[b]
        seq._modules[a] = _fused(seq._modules[a], bn)
        seq._modules[b] = getattr(bn, "activation", None) or nn.Identity()
        if getattr(bn, "kaf", None) is not None:  # a KAF fused into the BN computes itself again in its slot
            bn.kaf.fused_into_batchnorm = False
    return net.eval()
