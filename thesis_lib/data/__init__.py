"""CIFAR-10 data for the thesis's experiments.

- `load_cifar10(split, root=None, subset=None, seed=0)` -> (uint8 images, int64 labels), from
  torchvision's download, a torchvision CIFAR-10 folder, or an image-folder tree (folder or
  .tar.gz), decoded once and cached as safetensors in $THESIS_LIB_CACHE (~/.cache/thesis_lib).
- `DeviceLoader`: batches assembled and augmented (pad 4 + random crop + flip) on the device.
- `stratified_indices`: the deterministic class-balanced subsets behind `subset=`.
"""

from .augment import random_crop_flip, sample_crop_flip
from .cache import cache_dir
from .cifar10 import describe_source, load_cifar10
from .loader import DeviceLoader
from .sources import CIFAR10_CLASSES, find_source
from .subset import stratified_indices

__all__ = [
    "load_cifar10",
    "CIFAR10_CLASSES",
    "DeviceLoader",
    "stratified_indices",
    "random_crop_flip",
    "sample_crop_flip",
    "cache_dir",
    "find_source",
    "describe_source",
]
