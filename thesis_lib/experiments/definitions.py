"""Registers every experiment, in an order that respects requirements (and, within that, thesis order).

| experiment | thesis | notebook |
| --- | --- | --- |
| light_cnn | 4 | 05_activation_distributions |
| adversarial_examples | 1.1 / 2.2 | 02_adversarial_examples |
| kwta_line | 3.1 | 04_kwta_discontinuities |
| vgg_lr_range | 4.2 / 5.1 | 06_fast_adversarial_training |
| vgg | 5.1 | 07_vgg_results |
| kaf_shapes | 2.4 | 03_kernel_activation_functions |
| resnet_standard | 5.2 | 08_exploding_gradients |
| resnet20_lr_range, resnet20_at | 5.3 | 09_resnet20_results |
| lipschitz, autoattack, resnet56_fix | 4.1 / 6 | 10_future_work |

(Section 2.1.3's figures are analytic: notebook 01 needs no experiment.)
"""

from . import (
    adversarial_examples,  # noqa: F401  (1.1 / 2.2; uses the light ReLU CNN)
    autoattack_eval,  # noqa: F401  (6)
    kaf_shapes,  # noqa: F401  (2.4; uses the VGG kaf / kaf_elu runs)
    kwta_line,  # noqa: F401  (3.1; uses the light k-WTA / KAF CNNs)
    light_cnn,  # noqa: F401  (chapter 4)
    lipschitz,  # noqa: F401  (4.1 / 6)
    lr_range,  # noqa: F401  (4.2)
    resnet20_at,  # noqa: F401  (5.3)
    resnet56_fix,  # noqa: F401  (6)
    resnet_standard,  # noqa: F401  (5.2)
    vgg,  # noqa: F401  (5.1)
)

__all__: list[str] = []
