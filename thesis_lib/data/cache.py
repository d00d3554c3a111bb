"""Decoded-CIFAR-10 cache: uint8 tensors in safetensors files under $THESIS_LIB_CACHE (~/.cache/thesis_lib).

Decoding is done once per data source; the file name carries a fingerprint of the source (path,
size, modification time), so a changed source is decoded again and a stale cache is never read.
A cache file that cannot be read is deleted and rebuilt: it is derived data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..utils import atomic_write_bytes

__all__ = ["cache_dir", "cache_file", "read_cache", "write_cache"]

CACHE_VERSION = "pil-1"  # change when the decoded content would change (decoder, layout)


def cache_dir() -> Path:
    """$THESIS_LIB_CACHE if set, else ~/.cache/thesis_lib."""
    env = os.environ.get("THESIS_LIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "thesis_lib"


def cache_file(fingerprint: str, split: str, subset: int | None = None, seed: int = 0) -> Path:
    key = hashlib.sha256(f"v{CACHE_VERSION}|{fingerprint}".encode()).hexdigest()[:16]
    tail = "" if subset is None else f"-n{subset}-s{seed}"
    return cache_dir() / f"cifar10-{key}-{split}{tail}.safetensors"


def read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(images, labels) from a cache file, or None when it is missing or unreadable (then deleted)."""
    if not path.is_file():
        return None
    try:
        tensors = load_file(path)
        images, labels = tensors["images"], tensors["labels"]
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ValueError("unexpected tensor layout")
        return images, labels.long()
    except (SafetensorError, KeyError, ValueError, OSError):
        path.unlink(missing_ok=True)
        return None


def write_cache(path: Path, images: torch.Tensor, labels: torch.Tensor, source: str) -> None:
    """Atomic write (a reader never sees half a file); a read-only cache folder is not an error."""
    data = save(
        {"images": images.contiguous(), "labels": labels.contiguous()},
        metadata={"source": source, "version": CACHE_VERSION},
    )
    try:
        atomic_write_bytes(path, data)
    except OSError:
        pass
