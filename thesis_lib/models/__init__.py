"""The thesis's models by name: `build_model(arch, activation="relu", num_classes=10, **options)`.

Names: light_cnn, vgg, resnet20, resnet56, and any resnet<6n+2> (resnet32, resnet44, resnet110, ...).
Inputs are N x 3 x 32 x 32 images in [0, 1] (no mean/std normalisation: attacks work in pixel space).
"""

from __future__ import annotations

import re

from .base import ThesisModel
from .cnn import VGG, LightCNN
from .resnet import BLOCKS, ResNet

__all__ = ["build_model", "list_models", "ThesisModel", "LightCNN", "VGG", "ResNet", "BLOCKS"]

MODELS = ("light_cnn", "vgg", "resnet20", "resnet56")


def list_models() -> list[str]:
    return list(MODELS) + ["resnet<6n+2>"]


def build_model(arch: str, activation: str = "relu", num_classes: int = 10, **options) -> ThesisModel:
    """Build `arch` with every activation set to `activation` (a name of `list_activations()`).

    Options go to the model class (e.g. `block="he"`, `activation_options={"ratio": 0.2}`).
    Raises ValueError listing the valid names for an unknown arch or activation.
    """
    from ..activations import ACTIVATIONS

    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid names: {', '.join(ACTIVATIONS)}")
    if arch == "light_cnn":
        model: ThesisModel = LightCNN(activation, num_classes, **options)
    elif arch == "vgg":
        model = VGG(activation, num_classes, **options)
    elif isinstance(arch, str) and (m := re.fullmatch(r"resnet(\d+)", arch)):
        model = ResNet(int(m.group(1)), activation, num_classes, **options)
    else:
        raise ValueError(f"unknown model {arch!r}; valid names: {', '.join(list_models())}")
    model.activation_name = activation
    return model
