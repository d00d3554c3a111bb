"""`load_cifar10`: CIFAR-10 as uint8 tensors, from any supported source, decoded once and cached.

Images come back as an N x 3 x 32 x 32 uint8 CPU tensor (pixels 0..255; the models take x / 255
in [0, 1], no mean/std normalisation, docs/protocol.md) and labels as int64 in CIFAR-10's class order.

Caching policy: a full split is decoded once and cached; a subset is read from its own small cache
file, else taken from the full split's cache, else only the subset's images are decoded and cached
on their own (a 2,000-image subset of the JPEG copy is ready in under 2 s on our 2-core CPU, the
full 50k training split in about 7 s; cached reads take milliseconds).
"""

from __future__ import annotations

import os

import torch

from .cache import cache_file, read_cache, write_cache
from .sources import CIFAR10_CLASSES, find_source, index_split
from .subset import stratified_indices

__all__ = ["load_cifar10", "CIFAR10_CLASSES", "describe_source"]


def describe_source(root: str | os.PathLike | None = None) -> str:
    """Human-readable name of the source `load_cifar10(root=root)` would use (recorded in run metadata)."""
    return str(find_source(root))


def load_cifar10(
    split: str = "train", root: str | os.PathLike | None = None, subset: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 `split` ("train" or "test") as (images uint8 N x 3 x 32 x 32, labels int64 N).

    root: a data location (see `thesis_lib.data.sources`); None -> $THESIS_DATA -> torchvision
    download into ./data. subset: None for the whole split, or n for a deterministic stratified
    subset (depends only on n and `seed`). Missing data raises ThesisError saying where it looked.
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown CIFAR-10 split {split!r}; valid: train, test")
    source = find_source(root)
    sub_path = cache_file(source.fingerprint, split, subset, seed) if subset is not None else None
    if sub_path is not None and (cached := read_cache(sub_path)) is not None:
        return cached
    full_path = cache_file(source.fingerprint, split)
    if (cached := read_cache(full_path)) is not None:
        images, labels = cached
        if subset is None:
            return images, labels
        idx = stratified_indices(labels, subset, seed)
        return images[idx].contiguous(), labels[idx]
    labels, decode = index_split(source, split)
    idx = torch.arange(len(labels)) if subset is None else stratified_indices(labels, subset, seed)
    images = decode(idx)
    labels = labels[idx].clone()
    write_cache(full_path if sub_path is None else sub_path, images, labels, str(source))
    return images, labels
