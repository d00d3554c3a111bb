"""`DeviceLoader`: batches built, augmented and scaled on the training device.

CIFAR-10 fits in any accelerator's memory as uint8 (150 MB for 50k images), so the whole split
goes to the device once; each batch is then an index into it, plus the vectorised crop/flip of
`augment.py`, plus one conversion to float in [0, 1]. No PIL, no worker processes, and the
randomness is a single CPU generator whose state a checkpoint can store (exact resume).
"""

from __future__ import annotations

import math

import torch

from ..utils import get_device
from .augment import random_crop_flip, sample_crop_flip

__all__ = ["DeviceLoader"]


class DeviceLoader:
    """Iterate over (x float in [0, 1] on `device`, y int64 on `device`) batches.

    images_u8: N x 3 x H x W uint8 (CPU or device); labels: N int64. `shuffle` draws a new order
    each pass; `augment` applies pad-4 random crop + horizontal flip. `seed` seeds the loader's own
    generator (`generator` attribute; `state_dict()` / `load_state_dict()` save and restore it).
    """

    def __init__(
        self,
        images_u8: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 128,
        shuffle: bool = False,
        augment: bool = False,
        device: str | torch.device | None = None,
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
    ):
        if images_u8.dtype != torch.uint8 or images_u8.dim() != 4:
            raise ValueError(
                f"DeviceLoader expects N x C x H x W uint8 images, got {images_u8.dtype} {tuple(images_u8.shape)}"
            )
        if len(images_u8) != len(labels):
            raise ValueError(f"{len(images_u8)} images but {len(labels)} labels")
        if int(batch_size) < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.device = get_device(device)
        self.images = images_u8.to(self.device)
        self.labels = torch.as_tensor(labels, dtype=torch.long).to(self.device)
        self.batch_size = int(batch_size)
        self.shuffle, self.augment, self.drop_last = bool(shuffle), bool(augment), bool(drop_last)
        self.channels_last = bool(channels_last)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                x = random_crop_flip(x, sample_crop_flip(len(idx), generator=self.generator))
            x = x.float().div_(255.0)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
