"""Activation functions by name: the registry behind `make_activation(name, channels, **options)`.

Every activation takes the same constructor `(channels, **options)`, so any model in
`thesis_lib.models` can swap one for another by name (timm-style registry): the fixed activations of
thesis section 2.1.3, k-WTA (section 3.1) and the KAF presets (section 2.4).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .fixed import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Swish, Tanh
from .kaf import KAF
from .kwta import KWTA

__all__ = ["ACTIVATIONS", "FIXED_ACTIVATIONS", "KAF_ACTIVATIONS", "make_activation", "list_activations", "is_kaf"]


def _kaf(name: str, **preset) -> Callable[..., KAF]:
    def make(channels, **options):
        m = KAF(channels, **{**preset, **options})
        m.name = name
        return m

    make.__name__ = name
    return make


ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "swish": Swish,
    "softplus": Softplus,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "kwta": KWTA,
    "kaf": _kaf("kaf"),
    "kaf_relu": _kaf("kaf_relu", init="relu"),
    "kaf_elu": _kaf("kaf_elu", init="elu"),
    "kaf_swish": _kaf("kaf_swish", init="swish"),
    "kaf_free": _kaf("kaf_free", trainable_dictionary=True),
}
FIXED_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "swish", "softplus", "sigmoid", "tanh")
KAF_ACTIVATIONS = ("kaf", "kaf_relu", "kaf_elu", "kaf_swish", "kaf_free")


def list_activations() -> list[str]:
    return list(ACTIVATIONS)


def is_kaf(name: str) -> bool:
    return name in KAF_ACTIVATIONS


def make_activation(name: str, channels: int | None = None, **options) -> nn.Module:
    """Build activation `name` for a layer with `channels` channels (or units).

    Raises ValueError listing the valid names when `name` is unknown.
    """
    try:
        factory = ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}") from None
    return factory(channels, **options)
