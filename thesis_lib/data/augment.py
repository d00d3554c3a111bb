"""CIFAR-10 augmentation as batched tensor ops on the device (docs/protocol.md, "Models": ResNets).

Pad 4 pixels with zeros, take a random 32x32 crop and flip horizontally with probability 1/2 —
the same distribution as torchvision's `RandomCrop(32, padding=4)` + `RandomHorizontalFlip()`,
but one gather per batch instead of PIL work per image. Crop and flip are folded into a single
index computation, so the batch is read exactly once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["random_crop_flip", "sample_crop_flip"]


def sample_crop_flip(n: int, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random parameters for `n` images: an (n, 3) int64 CPU tensor of (dy, dx, flip)."""
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    flips = torch.randint(0, 2, (n, 1), generator=generator)
    return torch.cat([offsets, flips], dim=1)


def random_crop_flip(images: torch.Tensor, params: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Apply crop/flip `params` (from `sample_crop_flip`) to `images` (N x C x H x W, any dtype).

    Works on any device; `params` is moved to the images' device (it is tiny). One `gather` over
    the flattened padded images (3x faster on CPU than 4-D advanced indexing, same result).
    """
    n, c, h, w = images.shape
    dev = images.device
    params = params.to(dev)
    padded = F.pad(images, (pad, pad, pad, pad))
    cols = torch.arange(w, device=dev).expand(n, w)
    cols = torch.where(params[:, 2:3].bool(), w - 1 - cols, cols) + params[:, 1:2]  # flip, then shift
    rows = params[:, 0:1] + torch.arange(h, device=dev)
    flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(n, 1, h * w)
    return padded.view(n, c, -1).gather(2, flat.expand(n, c, h * w)).view(n, c, h, w)
