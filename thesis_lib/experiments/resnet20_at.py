"""Section 5.3: ResNet-20 with 8 activations, fast adversarial training with augmentation, PGD-50-10.

Protocol: ResNet-20 (thesis block) x {relu, elu, kaf, kaf_relu, kaf_elu, swish, kaf_swish,
kaf_free}; FGSM-RS (eps 8/255), SGD, batch 128, 80 epochs one-cycle, pad-4 crop + flip. The
thesis picked each model's one-cycle bounds with the same range test as for the VGG runs but
recorded only one pair (kaf_relu: 0.01, 0.8), so here the bounds come from this project's range
tests (`resnet20_lr_range`); when a sweep gives no bounds, the protocol defaults are used and the
table says so. Evaluation: PGD-50-10 on the whole test set.
"""

from __future__ import annotations

from .common import PGD_SMOKE, SMOKE, PGDSettings
from .experiment import Experiment
from .lr_range import LRRangeSettings
from .lr_range import evaluations as range_tests
from .lr_range import run as run_lr_range
from .vgg import ATSettings, at_evaluations, at_runs, run_at_experiment

__all__ = ["RESNET20_ACTIVATIONS", "LR_RANGE", "EXPERIMENT"]

RESNET20_ACTIVATIONS = ("relu", "elu", "kaf", "kaf_relu", "kaf_elu", "swish", "kaf_swish", "kaf_free")

LR_FULL = LRRangeSettings(arch="resnet20", activations=RESNET20_ACTIVATIONS, augment=True)
# cpu: one-epoch sweeps, training order = the comparisons that matter most first.
CPU_ORDER = ("relu", "kaf", "swish", "elu", "kaf_relu", "kaf_elu", "kaf_swish", "kaf_free")
LR_CPU = LRRangeSettings(arch="resnet20", activations=CPU_ORDER, augment=True, epochs=1)
LR_SMOKE = LRRangeSettings(
    arch="resnet20",
    activations=("relu", "kaf_relu"),
    augment=True,
    epochs=SMOKE.epochs,
    batch_size=SMOKE.lr_find_batch_size,
    train_subset=SMOKE.lr_find_subset,
    beta=0.7,
)

LR_RANGE = Experiment(
    name="resnet20_lr_range",
    section="5.3",
    title="Learning-rate range tests (fast AT) of ResNet-20 x 8 activations",
    run=run_lr_range,
    evaluations=range_tests,
    settings={"smoke": LR_SMOKE, "cpu": LR_CPU, "full": LR_FULL},
    notebook="09_resnet20_results",
    figures=("lr_range_tests_resnet20",),
)

AT_FULL = ATSettings(
    arch="resnet20",
    activations=RESNET20_ACTIVATIONS,
    epochs=80,
    augment=True,
    lr_source="range_test",
    lr_experiment="resnet20_lr_range",
    curve_activations=(),
    watch_size=512,
    thesis_eval=True,
    art_check_n=200,
)
# cpu: 15 of the protocol's 80 epochs (Wong et al. 2020's budget), PGD-50-10 on 1,000 stratified test images,
# the iterations curve on 500, and the catastrophic-overfitting watch on 512 training images.
AT_CPU = ATSettings(
    arch="resnet20",
    activations=CPU_ORDER,
    epochs=15,
    augment=True,
    lr_source="range_test",
    lr_experiment="resnet20_lr_range",
    pgd=PGDSettings(n=1000),
    curve_activations=("relu", "kaf"),
    curve_n=500,
    watch_size=512,
    thesis_eval=True,
    art_check_n=200,
)
AT_SMOKE = ATSettings(
    arch="resnet20",
    activations=RESNET20_ACTIVATIONS,
    epochs=SMOKE.epochs,
    augment=True,
    lr_source="range_test",
    lr_experiment="resnet20_lr_range",
    curve_activations=(),
    train_subset=SMOKE.at_train_subset,
    batch_size=SMOKE.at_batch_size,
    test_subset=SMOKE.test_subset,
    pgd=PGD_SMOKE,
    curve_n=SMOKE.attack_subset,
    thesis_eval=True,
    art_check_n=8,
)

EXPERIMENT = Experiment(
    name="resnet20_at",
    section="5.3",
    title="ResNet-20 x 8 activations, fast adversarial training, PGD-50-10",
    run=run_at_experiment,
    settings={"smoke": AT_SMOKE, "cpu": AT_CPU, "full": AT_FULL},
    notebook="09_resnet20_results",
    requires=("resnet20_lr_range",),
    runs=at_runs,
    evaluations=at_evaluations,
    figures=("resnet20_results", "resnet20_accuracy_vs_robustness"),
)
