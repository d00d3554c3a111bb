"""Activation functions by name: `make_activation(name, channels, **options)`.

Every activation takes the same constructor `(channels, **options)`, so any model in
`thesis_lib.models` can swap one for another by name (a timm-style registry, in `registry`). The modules
import each other directly, never this package, so importing it has no cycle.
"""

from __future__ import annotations

from .fixed import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Swish, Tanh
from .kaf import KAF, KAF_PRESETS, KERNELS, kaf_reference, ridge_alpha
from .kwta import KWTA, KWTAAnnealing, kwta
from .registry import ACTIVATIONS, FIXED_ACTIVATIONS, KAF_ACTIVATIONS, is_kaf, list_activations, make_activation

__all__ = [
    "make_activation",
    "list_activations",
    "is_kaf",
    "ACTIVATIONS",
    "FIXED_ACTIVATIONS",
    "KAF_ACTIVATIONS",
    "KAF",
    "KWTA",
    "KWTAAnnealing",
    "kwta",
    "KAF_PRESETS",
    "KERNELS",
    "kaf_reference",
    "ridge_alpha",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "GELU",
    "Swish",
    "Softplus",
    "Sigmoid",
    "Tanh",
]
