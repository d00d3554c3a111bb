"""The thesis's plain CNNs (docs/protocol.md, "Models").

Light CNN (chapter 4, "Solution approach"): [conv3x3(32) -> BN -> act] x2 -> maxpool -> dropout .2 ->
[conv3x3(64) -> BN -> act] x2 -> maxpool -> dropout .3 -> global average pool -> dense(128) -> act ->
dropout .4 -> dense(10).

VGG-inspired CNN (section 5.1): three blocks of [conv3x3 -> BN -> act] x2 -> maxpool -> dropout with
32, 64, 128 filters, then flatten -> dense(128) -> act -> dropout -> dense(10). The thesis says the dropout
"rises by 0.05 per application from 0.2 up to 0.4 at the last one" but lists no exact values; we use
0.20, 0.25, 0.30 after the three blocks and 0.40 before the classifier (rising, ending at 0.4; the
exact list is the `dropouts` option). He-uniform init; Keras-style L2 1.2e-3 on dense layers.
"""

from __future__ import annotations

from torch import nn

from .base import ActivationFactory, ThesisModel, he_uniform_
from .batchnorm import BatchNorm2d

__all__ = ["LightCNN", "VGG"]


def _conv_bn_act(cin: int, cout: int, act: ActivationFactory) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), BatchNorm2d(cout), act(cout)]


class _PlainCNN(ThesisModel):
    """The two plain CNNs: `features` then `classifier`, Keras-style L2 on the dense layers only."""

    l2_dense = 1.2e-3

    def forward(self, x):
        self.check_input(x)
        return self.classifier(self.features(x))


class LightCNN(_PlainCNN):
    arch = "light_cnn"

    def __init__(
        self,
        activation: str = "relu",
        num_classes: int = 10,
        activation_options: dict | None = None,
        width: int = 32,
        dropouts: tuple = (0.2, 0.3, 0.4),
    ):
        super().__init__()
        act = ActivationFactory(activation, activation_options)
        w = width
        self.features = nn.Sequential(
            *_conv_bn_act(3, w, act),
            *_conv_bn_act(w, w, act),
            nn.MaxPool2d(2),
            nn.Dropout(dropouts[0]),
            *_conv_bn_act(w, 2 * w, act),
            *_conv_bn_act(2 * w, 2 * w, act),
            nn.MaxPool2d(2),
            nn.Dropout(dropouts[1]),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(2 * w, 128), act(128), nn.Dropout(dropouts[2]), nn.Linear(128, num_classes)
        )
        he_uniform_(self)


class VGG(_PlainCNN):
    arch = "vgg"

    def __init__(
        self,
        activation: str = "relu",
        num_classes: int = 10,
        activation_options: dict | None = None,
        widths: tuple = (32, 64, 128),
        dropouts: tuple = (0.2, 0.25, 0.3, 0.4),
        hidden: int = 128,
    ):
        super().__init__()
        if len(dropouts) != len(widths) + 1:
            raise ValueError(f"VGG needs {len(widths) + 1} dropout rates (one per block + classifier), got {dropouts}")
        act = ActivationFactory(activation, activation_options)
        layers, cin = [], 3
        for w, p in zip(widths, dropouts):
            layers += [*_conv_bn_act(cin, w, act), *_conv_bn_act(w, w, act), nn.MaxPool2d(2), nn.Dropout(p)]
            cin = w
        self.features = nn.Sequential(*layers, nn.Flatten())
        side = 32 // 2 ** len(widths)
        self.classifier = nn.Sequential(
            nn.Linear(cin * side * side, hidden), act(hidden), nn.Dropout(dropouts[-1]), nn.Linear(hidden, num_classes)
        )
        he_uniform_(self)
