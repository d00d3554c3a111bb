"""CIFAR ResNets with 6n+2 layers (He, Zhang, Ren, Sun 2016, section 4.2); thesis sections 5.2-5.3.

Stem conv3x3(16) -> BN -> act; three stages of n residual blocks with 16, 32, 64 filters on
32x32, 16x16, 8x8 maps (stride 2 on the first conv of stages 2 and 3); global average pool ->
dense(num_classes). ResNet-20: n = 3 (about 0.27M parameters); ResNet-56: n = 9.

Two residual blocks:
- `block="thesis"` (the thesis code's): conv -> BN -> act -> conv, plus the shortcut (a strided 3x3
  conv where the shape changes, identity otherwise), then add -> BN -> act.
- `block="he"` (He et al.'s): conv -> BN -> act -> conv -> BN, plus the shortcut (identity, or a
  strided 1x1 conv + BN where the shape changes), then add -> act.
`zero_init_residual=True` zero-initialises the last BN scale of each residual branch (He block)
or of the post-add BN (thesis block), one of the candidate fixes for deep KAF ResNets.
Keras-style L2 5e-4 on every conv and dense kernel.
"""

from __future__ import annotations

from torch import nn

from .base import ActivationFactory, ThesisModel
from .batchnorm import BatchNorm2d

__all__ = ["ResNet", "ThesisBlock", "HeBlock", "BLOCKS"]


class _Block(nn.Module):
    """The start both blocks share: conv -> BN -> act -> conv. Each block registers the rest (bn2, its
    shortcut, act2) after these; the registration order fixes the parameter order and the initial weights."""

    def __init__(self, cin: int, cout: int, stride: int, act: ActivationFactory):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(cout)
        self.act1 = act(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def bn_activation_pairs(self) -> list[tuple[str, str]]:
        """(BatchNorm, activation) attribute pairs whose activation `forward` applies right after the BatchNorm."""
        return [("bn1", "act1")]


class ThesisBlock(_Block):
    """conv -> BN -> act -> conv (+ shortcut) -> add -> BN -> act."""

    def __init__(self, cin: int, cout: int, stride: int, act: ActivationFactory):
        super().__init__(cin, cout, stride, act)
        self.shortcut = (
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False) if (stride != 1 or cin != cout) else nn.Identity()
        )
        self.bn2 = BatchNorm2d(cout)
        self.act2 = act(cout)

    def bn_activation_pairs(self) -> list[tuple[str, str]]:
        return [("bn1", "act1"), ("bn2", "act2")]

    def forward(self, x):
        out = self.conv2(self.act1(self.bn1(self.conv1(x))))
        return self.act2(self.bn2(out + self.shortcut(x)))


class HeBlock(_Block):
    """conv -> BN -> act -> conv -> BN (+ shortcut) -> add -> act."""

    def __init__(self, cin: int, cout: int, stride: int, act: ActivationFactory):
        super().__init__(cin, cout, stride, act)
        self.bn2 = BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), BatchNorm2d(cout))
            if (stride != 1 or cin != cout)
            else nn.Identity()
        )
        self.act2 = act(cout)

    def forward(self, x):
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


BLOCKS = {"thesis": ThesisBlock, "he": HeBlock}


class ResNet(ThesisModel):
    l2_conv = 5e-4
    l2_dense = 5e-4

    def __init__(
        self,
        depth: int = 20,
        activation: str = "relu",
        num_classes: int = 10,
        block: str = "thesis",
        activation_options: dict | None = None,
        width: int = 16,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 32, 44, 56, ...), got {depth}")
        if block not in BLOCKS:
            raise ValueError(f"unknown residual block {block!r}; valid: {', '.join(BLOCKS)}")
        self.arch = f"resnet{depth}"
        self.depth, self.block_type = depth, block
        n = (depth - 2) // 6
        act = ActivationFactory(activation, activation_options)
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), BatchNorm2d(width), act(width))
        blocks, cin = [], width
        for stage, w in enumerate((width, 2 * width, 4 * width)):
            for b in range(n):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(BLOCKS[block](cin, w, stride, act))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for blk in self.blocks:
                nn.init.zeros_(blk.last_bn().weight)

    def forward(self, x):
        self.check_input(x)
        return self.fc(self.pool(self.blocks(self.stem(x))))
