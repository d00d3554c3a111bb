"""Robust accuracy over a data set (protocol "Evaluation": PGD L-inf, eps 8/255, step 2/255, 50 iterations,
10 restarts, whole CIFAR-10 test set; robust accuracy = fraction still correct under the worst restart).

An example counts as robust only if it is classified correctly both clean and on its adversarial image
(the AutoAttack / RobustBench convention). Every returned adversarial image is re-checked with a plain
float32 forward pass (no autocast), so the reported accuracy is that of the images, not the attack's
bookkeeping (Carlini et al. 2019: verify the adversarial examples you report).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import torch
from torch import nn
from tqdm.auto import tqdm

from ..allocator import keep_freed_memory
from ..utils import get_device, progress_disabled
from .context import attack_mode, check_eps, check_norm, model_device, to_float_images
from .fgsm import fgsm
from .pgd import run_pgd

__all__ = ["AttackSettings", "robust_accuracy", "predict", "uniform_noise", "ATTACKS"]

ATTACKS = ("pgd", "fgsm", "noise")


@dataclass(frozen=True)
class AttackSettings:
    """One attack configuration (the thesis's evaluation setting by default): the single settings type of
    every evaluation, validated on construction; `evaluate` runs it through `robust_accuracy`."""

    attack: str = "pgd"  # pgd | fgsm | noise (uniform noise in the eps-ball: the baseline an attack must beat)
    eps: float = 8 / 255  # radius in [0, 1] pixel units (L-inf) or L2 norm units (norm="l2")
    step: float = 2 / 255  # PGD step size, same units as eps
    steps: int = 50  # PGD iterations per restart
    restarts: int = 10  # PGD random restarts; an example broken by any restart stays broken
    norm: str = "linf"  # linf | l2 (PGD and noise; FGSM is L-inf)
    random_start: bool = True  # PGD starts at a uniform point of the eps-ball
    seed: int = 0  # seeds the random starts (and the noise)
    batch_size: int = 256  # examples attacked concurrently

    def __post_init__(self):
        if self.attack not in ATTACKS:
            raise ValueError(f"Unknown attack {self.attack!r}: use one of {', '.join(ATTACKS)}.")
        object.__setattr__(self, "eps", check_eps(self.eps))  # frozen: normalised once, here
        object.__setattr__(self, "step", check_eps(self.step, "step"))
        object.__setattr__(self, "norm", check_norm(self.norm))
        if self.attack == "fgsm" and self.norm != "linf":
            raise ValueError("FGSM is an L-inf attack: use norm='linf' (or PGD for L2).")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")

    def label(self) -> str:
        if self.attack == "pgd":
            return f"PGD-{self.steps}x{self.restarts}"
        return self.attack.upper() if self.attack == "fgsm" else "noise"

    def attack_fields(self) -> dict:
        """The fields of this type only (a subclass may add its own, e.g. how many images)."""
        return {f.name: getattr(self, f.name) for f in fields(AttackSettings)}

    def evaluate(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **options) -> dict:
        """`robust_accuracy` of `model` under these settings; options: device, return_adversarials, desc, amp."""
        return robust_accuracy(model, images, labels, **self.attack_fields(), **options)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted classes (CPU int64) in float32 and eval mode; the model's mode is restored."""
    device = model_device(model)
    out = []
    with attack_mode(model):
        for i in range(0, images.shape[0], batch_size):
            out.append(model(to_float_images(images[i : i + batch_size], device)).argmax(1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def uniform_noise(
    x: torch.Tensor, eps: float, norm: str = "linf", generator: torch.Generator | None = None
) -> torch.Tensor:
    """x plus noise drawn uniformly from the eps-ball (L-inf: per pixel; L2: uniform in the ball), in [0, 1]."""
    from .pgd import _random_start

    norm = check_norm(norm)
    gen = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
    return _random_start(x.float(), check_eps(eps), norm, True, gen)


def robust_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: str = "pgd",
    eps: float = 8 / 255,
    step: float = 2 / 255,
    steps: int = 50,
    restarts: int = 10,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    norm: str = "linf",
    *,
    seed: int = 0,
    random_start: bool = True,
    return_adversarials: bool = False,
    desc: str | None = None,
    amp: bool | None = None,
) -> dict:
    """Clean and robust accuracy of `model` on `images` (uint8 or float in [0, 1]) under `attack`.

    Returns a dict: clean_acc, robust_acc (fractions), per_example (list[bool], True = still correct),
    clean_correct, n, settings, seconds, gradient_evaluations (PGD/FGSM cost) and, for PGD,
    success_restart / success_step per example (-1 = never broken). `device` moves the model there
    (default: where the model is). `return_adversarials=True` adds "x_adv" (CPU float tensor).
    `amp`: the PGD iterations under autocast (None: on CUDA only; True on CPU: bfloat16 where the CPU
    has it); the clean and adversarial predictions that decide robustness are float32 either way.
    """
    s = AttackSettings(attack, eps, step, steps, restarts, norm, random_start, seed, batch_size)
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError("images must be a tensor of shape N x C x H x W (uint8 or float in [0, 1]).")
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must hold one class per image ({images.shape[0]}), got shape {tuple(labels.shape)}.")
    if device is not None:
        model.to(get_device(device))
    dev = model_device(model)
    if dev.type == "cpu":
        keep_freed_memory()  # each attack step re-allocates the same tensors: reuse the pages
    n = images.shape[0]
    t0 = time.perf_counter()
    clean_pred = predict(model, images, s.batch_size)
    clean_correct = clean_pred.eq(labels)
    extra: dict = {}
    with tqdm(total=n, desc=desc or s.label(), unit="img", disable=progress_disabled(), leave=False) as bar:
        if s.attack == "pgd":
            res = run_pgd(
                model,
                images,
                labels,
                s.eps,
                s.step,
                s.steps,
                s.restarts,
                s.norm,
                s.random_start,
                seed=s.seed,
                batch_size=s.batch_size,
                on_done=bar.update,
                amp=amp,
            )
            x_adv = res.x_adv
            extra = {
                "gradient_evaluations": res.gradient_evaluations,
                "success_restart": res.restart.tolist(),
                "success_step": res.step.tolist(),
            }
        elif s.attack == "fgsm":
            x_adv = fgsm(model, images, labels, s.eps, batch_size=s.batch_size)
            bar.update(n)
            extra = {"gradient_evaluations": n}
        else:  # noise
            gen = torch.Generator(device=dev).manual_seed(s.seed)
            x_adv = (
                torch.cat(
                    [
                        uniform_noise(to_float_images(images[i : i + s.batch_size], dev), s.eps, s.norm, gen).cpu()
                        for i in range(0, n, s.batch_size)
                    ]
                )
                if n
                else images.float()
            )
            bar.update(n)
            extra = {"gradient_evaluations": 0}
    adv_correct = predict(model, x_adv, s.batch_size).eq(labels)
    per_example = clean_correct & adv_correct
    out = {
        "clean_acc": clean_correct.float().mean().item() if n else float("nan"),
        "robust_acc": per_example.float().mean().item() if n else float("nan"),
        "per_example": per_example.tolist(),
        "clean_correct": clean_correct.tolist(),
        "n": n,
        "settings": s.attack_fields(),
        "seconds": round(time.perf_counter() - t0, 3),
        **extra,
    }
    if return_adversarials:
        out["x_adv"] = x_adv.cpu()
    return out
