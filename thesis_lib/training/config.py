"""`TrainConfig`: every hyperparameter of a training run, with the protocol's per-model defaults.

docs/protocol.md, "Models" and "Training": the light CNN is trained with Adam (lr 1e-3, constant) for
20 epochs without augmentation; the VGG-inspired CNN with SGD and the one-cycle schedule for 60
epochs without augmentation; the CIFAR ResNets with SGD, one-cycle, 80 epochs, pad-4 crop + flip.
Fields left `None` are filled from those defaults by `resolved()`, so a run's `config.json`
always records the values actually used.

The VGG learning-rate bounds default to the thesis's range-test results (docs/protocol.md), per
activation; activations without a recorded pair use (1e-4, 0.1). Run `lr-find` to measure them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from ..utils import ThesisError

__all__ = ["TrainConfig", "METHODS", "OPTIMIZERS", "SCHEDULES", "THESIS_LR_BOUNDS"]

METHODS = ("standard", "fast_at", "pgd_at")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "one_cycle", "step")
AMP_DTYPES = ("auto", "bf16", "fp16")

# (lr_min, lr_max) from the thesis's learning-rate range tests (docs/protocol.md, "Training").
THESIS_LR_BOUNDS = {
    "vgg": {
        "relu": (1e-4, 0.08),
        "elu": (1e-4, 0.1),
        "kaf": (0.01, 1.0),
        "kaf_elu": (1e-4, 0.1),
        "swish": (1e-4, 0.3),
        "kaf_swish": (1e-4, 0.8),
        "kaf_free": (0.01, 2.0),
    },
    "resnet": {"kaf_relu": (0.01, 0.8)},
}
_FALLBACK_BOUNDS = (1e-4, 0.1)
_OMIT_WHEN_DEFAULT = {"watch_size": 0, "watch_pgd_steps": 10}


def _family(arch: str) -> str:
    return "resnet" if re.fullmatch(r"resnet\d+", str(arch)) else str(arch)


@dataclass
class TrainConfig:
    # --- model
    arch: str = "light_cnn"  # light_cnn | vgg | resnet20 | resnet56 | resnet<6n+2>
    activation: str = "relu"  # a name of thesis_lib.activations.ACTIVATIONS
    activation_options: dict = field(default_factory=dict)  # e.g. {"preset": "paper"} for KAFs, {"ratio": 0.2}
    model_options: dict = field(default_factory=dict)  # e.g. {"block": "he", "zero_init_residual": True}
    # --- method
    method: str = "standard"  # standard | fast_at (Wong et al. 2020, FGSM-RS) | pgd_at (Madry et al. 2018)
    eps: float = 8 / 255  # L-inf radius of the training attack, [0, 1] pixel units
    fgsm_step: float = 1.25  # FGSM-RS step as a multiple of eps (Wong et al.: 1.25 eps = 10/255)
    pgd_steps: int = 7  # PGD-AT attack iterations (Madry et al.'s CIFAR-10 setting)
    pgd_step: float = 2 / 255  # PGD-AT step size, pixel units
    # --- optimisation
    epochs: int | None = None  # epochs of the main schedule (default: 20 light_cnn, 60 vgg, 80 resnets)
    decay_epochs: int = 0  # extra epochs after the main schedule, lr decaying linearly a further 10x
    batch_size: int = 128  # examples per step
    optimizer: str | None = None  # sgd | adam (default: adam for light_cnn, sgd otherwise)
    lr_min: float | None = None  # schedule's lowest learning rate (one_cycle start/end)
    lr_max: float | None = None  # schedule's peak learning rate (the constant lr for "constant")
    schedule: str | None = None  # constant | one_cycle | step (default: constant with adam, one_cycle with sgd)
    momentum: float = 0.9  # SGD momentum (Adam: beta1)
    nesterov: bool = False  # SGD Nesterov momentum
    weight_decay: bool = True  # apply the protocol's L2 penalties from model.param_groups()
    grad_clip: float = 0.0  # max global gradient L2 norm; 0 = no clipping
    # --- data
    augment: bool | None = None  # pad-4 random crop + flip (default: on for resnets only)
    train_subset: int | None = None  # stratified subset size of the training set; None = all 50,000
    test_subset: int | None = None  # stratified subset size of the test set; None = all 10,000
    subset_seed: int = 0  # seed of the subsets (kept apart from `seed` so seeds share data)
    # --- run
    seed: int = 0  # seeds weights, data order, augmentation, dropout, attack starts
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision (autocast): CUDA, and CPUs with native bf16 (else fp32, said once)
    amp_dtype: str = "auto"  # auto (bf16 where supported, else fp16 + GradScaler) | bf16 | fp16
    channels_last: bool = True  # NHWC memory format of activations and conv weights (CPU and CUDA)
    eval_batch_size: int = 512  # examples per evaluation batch
    # --- monitoring
    log_norms_every: int = 0  # per-layer weight/grad norms every N steps to norms.jsonl; 0 = off
    log_norms_first: int = 100  # ... and at each of the first N steps (when log_norms_every > 0)
    nan_guard: bool = True  # stop at the first non-finite loss/gradient/weight (recorded as `diverged`)
    early_stop: bool = False  # Wong et al.'s catastrophic-overfitting check (PGD acc on held-out train batch)
    early_stop_size: int = 256  # held-out training examples for that check (removed from training)
    early_stop_drop: float = 0.2  # stop when PGD accuracy falls this far below its best (absolute)
    early_stop_pgd_steps: int = 5  # PGD iterations of the check (Wong et al.: 5, step 2/255, 1 restart)
    kwta_anneal: dict | None = None  # KWTAAnnealing fields {start, target, step, every}; None = fixed ratio
    watch_size: int = (
        0  # catastrophic-overfitting watch: PGD accuracy on this many fixed training images per epoch; 0 = off
    )
    watch_pgd_steps: int = 10  # PGD iterations of the watch (eps = the training eps, step 2/255, 1 restart)

    # ------------------------------------------------------------------ the model
    def build_model(self):
        """The untrained network this config describes (defaults filled in), on the CPU.

        Its initial weights come from the global generator: seed it first for the run's own start.
        """
        from ..models import build_model

        c = self.resolved()
        return build_model(c.arch, c.activation, activation_options=c.activation_options or None, **c.model_options)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # Fields added after runs were committed are left out while they hold their default, so the
        # stored configs (and the run-folder hashes derived from them) of those runs stay valid.
        for name, default in _OMIT_WHEN_DEFAULT.items():
            if d.get(name) == default:
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in d.items()})

    # ------------------------------------------------------------------ defaults + validation
    @property
    def total_epochs(self) -> int:
        return int(self.epochs or 0) + int(self.decay_epochs)

    def resolved(self) -> TrainConfig:
        """A copy with every per-model default filled in, validated (ValueError/ThesisError, one sentence)."""
        from ..activations import ACTIVATIONS
        from ..models import list_models

        c = dataclasses.replace(
            self,
            activation_options=dict(self.activation_options),
            model_options=dict(self.model_options),
            kwta_anneal=None if self.kwta_anneal is None else dict(self.kwta_anneal),
        )
        fam = _family(c.arch)
        if fam not in ("light_cnn", "vgg", "resnet"):
            raise ValueError(f"unknown model {c.arch!r}; valid names: {', '.join(list_models())}")
        if c.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {c.activation!r}; valid names: {', '.join(ACTIVATIONS)}")
        if c.method not in METHODS:
            raise ValueError(f"unknown training method {c.method!r}; valid: {', '.join(METHODS)}")
        if c.optimizer is None:
            c.optimizer = "adam" if fam == "light_cnn" else "sgd"
        if c.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {c.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if c.schedule is None:
            c.schedule = "constant" if c.optimizer == "adam" else "one_cycle"
        if c.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {c.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if c.epochs is None:
            c.epochs = {"light_cnn": 20, "vgg": 60, "resnet": 80}[fam]
        if c.optimizer == "adam" and c.schedule == "constant":
            lo, hi = 1e-3, 1e-3
        else:
            lo, hi = THESIS_LR_BOUNDS.get(fam, {}).get(c.activation, _FALLBACK_BOUNDS)
        if c.lr_max is None:
            c.lr_max = hi if c.lr_min is None or c.lr_min <= hi else c.lr_min
        if c.lr_min is None:
            c.lr_min = min(lo, c.lr_max) if c.schedule != "constant" else c.lr_max
        if c.augment is None:
            c.augment = fam == "resnet"
        c.eps = float(c.eps)
        _check(c)
        return c


def _check(c: TrainConfig) -> None:
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ThesisError(msg)

    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    need(
        math.isfinite(c.eps) and c.eps >= 0,
        f"eps must be a non-negative L-inf radius in [0, 1] pixel units (e.g. 8/255), got {c.eps}.",
    )
    need(c.eps <= 1, f"eps {c.eps} exceeds 1, the whole pixel range; give it in [0, 1] units, e.g. 8/255.")
    need(is_int(c.epochs) and c.epochs >= 1, f"epochs must be a positive integer, got {c.epochs!r}.")
    need(
        is_int(c.decay_epochs) and c.decay_epochs >= 0,
        f"decay_epochs must be a non-negative integer, got {c.decay_epochs!r}.",
    )
    need(is_int(c.batch_size) and c.batch_size >= 1, f"batch size must be a positive integer, got {c.batch_size!r}.")
    need(
        is_int(c.eval_batch_size) and c.eval_batch_size >= 1,
        f"eval batch size must be a positive integer, got {c.eval_batch_size!r}.",
    )
    for name in ("lr_min", "lr_max"):
        v = getattr(c, name)
        need(
            isinstance(v, (int, float)) and math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}."
        )
    need(c.lr_min <= c.lr_max, f"lr_min ({c.lr_min}) must not exceed lr_max ({c.lr_max}).")
    for name in ("train_subset", "test_subset"):
        v = getattr(c, name)
        need(v is None or (is_int(v) and v >= 1), f"{name} must be a positive number of images, got {v!r}.")
    need(is_int(c.seed), f"seed must be an integer, got {c.seed!r}.")
    need(
        c.fgsm_step > 0 and c.pgd_step > 0 and is_int(c.pgd_steps) and c.pgd_steps >= 1,
        "fgsm_step, pgd_step and pgd_steps must be positive.",
    )
    need(c.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {c.grad_clip}.")
    need(
        is_int(c.log_norms_every) and c.log_norms_every >= 0,
        f"log_norms_every must be >= 0, got {c.log_norms_every!r}.",
    )
    need(c.amp_dtype in AMP_DTYPES, f"unknown amp dtype {c.amp_dtype!r}; valid: {', '.join(AMP_DTYPES)}.")
    need(
        0 < c.early_stop_drop <= 1 and c.early_stop_size >= 1,
        "early_stop_drop must be in (0, 1] and early_stop_size >= 1.",
    )
    need(
        is_int(c.watch_size) and c.watch_size >= 0 and is_int(c.watch_pgd_steps) and c.watch_pgd_steps >= 1,
        f"watch_size must be >= 0 (0 = off) and watch_pgd_steps >= 1, got {c.watch_size!r} and {c.watch_pgd_steps!r}.",
    )
    if c.kwta_anneal is not None:
        need(c.activation == "kwta", f"kwta_anneal only applies to the kwta activation, not {c.activation!r}.")
        allowed = {"start", "target", "step", "every"}
        need(set(c.kwta_anneal) <= allowed, f"kwta_anneal takes {sorted(allowed)}, got {sorted(c.kwta_anneal)}.")
