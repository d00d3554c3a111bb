"""The thesis's own robustness evaluation, reproduced: IBM ART `ProjectedGradientDescent` (2020) without labels.

The thesis (2020) measured robustness with ART's PGD (L-inf, eps 8/255, eps_step 2/255, max_iter 50,
num_random_init 10) calling `attack.generate(x)` without `y`, then took the accuracy of the model on the
returned images against the true labels. `thesis_protocol_pgd` reruns that procedure in PyTorch (our
code, same arithmetic) so that the thesis's numbers can be compared with the protocol's worst-case
robust accuracy (`robust_accuracy`). What ART did, read in the released wheels from PyPI:

- ART 1.3.0, 1.3.3, 1.4.1, 1.4.3 (wheels built 2020-06-15 to 2020-11-21), `art/attacks/evasion/
  projected_gradient_descent/projected_gradient_descent_pytorch.py` (used for a `PyTorchClassifier`
  without preprocessing) and `..._numpy.py` (a classifier with preprocessing, or another framework;
  it draws the random start for all of x at once, the same NumPy stream); the same loop is in the 2020
  development source of the first file in Trusted-AI/adversarial-robustness-toolbox at commit
  00ab1af31293048ee10b887d62059cb131403c9e:
  `y=None` -> targets = one-hot argmax of `estimator.predict(x)`, so the attack raises the loss of the
  model's own prediction. Then, for each of max(1, num_random_init) restarts, PGD runs on *all* of `x`
  (in chunks of `batch_size`, default 32, a compute detail only) and, when num_random_init > 1,
  `art.utils.compute_success(estimator, x, targets, adv_x)` = the fraction of *all of x* whose predicted
  class differs from the clean prediction (`compute_success_array`: `adv_preds != preds`, labels unused
  when untargeted); the restart with the highest fraction is kept for every image (`rate > rate_best`:
  the first of equal ones). One restart for the whole input, not the worst case per image.
- ART 1.5.0 (2020-12-01) to 1.20.1 (installed here): restarts are reduced per `batch_size` chunk and per
  image: after restart 0, every later restart whose image changes the clean prediction replaces it
  (`compute_success_array`), i.e. per image the *last* successful restart, else restart 0.
- Both: random init (restarts >= 1) at iteration 0 only, `random_sphere(n, m, eps, inf)` =
  `np.random.uniform(-eps, eps)` per pixel from NumPy's global generator, cast to float32, clipped to
  `clip_values`; each iteration: gradient of the estimator's loss (here `nn.CrossEntropyLoss()`, mean
  over the chunk), x + eps_step * sign(grad), clipped to `clip_values`, then delta = x - x_init projected
  by sign(delta) * min(|delta|, eps) and x = x_init + delta (no clip after the projection; none is
  needed, the clipped point and x_init lie in the box). The final iterate is returned (no early stop, no
  best iterate). `estimator.predict` puts the model in eval mode, and later ART sets it explicitly.

Consequences for the thesis's number, accuracy(model(x_adv) == true label):
(a) an image the model already misclassifies is attacked away from its wrong class, and can land on the
true one: it then counts as robust. Images whose prediction the attack does not change keep it (a
misclassified image stays wrong). `robust_acc_clean_and_adv` below removes this effect.
(b) with `selection="best_rate"` one restart is kept for the whole input, so an image broken by another
restart may count as robust. With `selection="per_example"` (ART >= 1.5) each image keeps the last
restart that changed its prediction (if any), which is closer to, but still not, the worst case
against the true label.

The random starts come from `numpy.random.RandomState(seed)` drawn in ART's order, so with the same
model, batch_size and `np.random.seed(seed)` before `generate`, ART returns the same images
(`tests/test_thesis_protocol.py` checks both rules against ART). The model runs in float32, default
memory format, no autocast, as ART ran it.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..utils import get_device, progress_disabled
from .context import attack_mode, model_device, to_float_images
from .evaluate import AttackSettings

__all__ = ["thesis_protocol_pgd", "art_crosscheck", "SELECTIONS"]

SELECTIONS = ("best_rate", "per_example")  # ART 1.2 - 1.4.x (2020) | ART >= 1.5.0


def _positive_int(value, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def _positive_float(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number such as 8/255, got {value!r}.") from None
    if not 0 < v < float("inf"):
        raise ValueError(f"{name} must be a finite number > 0 (in [0, 1] pixel units), got {value!r}.")
    return v


def _check_args(images, labels, eps, step, steps, restarts, random_init, batch_size, reduction_size, selection):
    eps = _positive_float(eps, "eps")
    step = _positive_float(step, "step")
    if step > eps:
        raise ValueError(f"step must not exceed eps (ART's rule), got step={step!r} > eps={eps!r}.")
    steps = _positive_int(steps, "steps")
    restarts = _positive_int(restarts, "restarts")
    if restarts > 1 and not random_init:
        raise ValueError("restarts > 1 needs random_init=True: without it every restart repeats the same attack.")
    batch_size = _positive_int(batch_size, "batch_size")
    if reduction_size is not None:
        reduction_size = _positive_int(reduction_size, "reduction_size")
    if selection not in SELECTIONS:
        raise ValueError(
            f"selection must be 'best_rate' (ART <= 1.4) or 'per_example' (ART >= 1.5), not {selection!r}."
        )
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError("images must be a tensor of shape N x C x H x W (uint8 or float in [0, 1]).")
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must hold one class per image ({images.shape[0]}), got shape {tuple(labels.shape)}.")
    return eps, step, steps, restarts, batch_size, reduction_size, labels


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def _art_pgd(model, x0, target, eps_t, step_t, steps, noise):
    """ART's PGD on one chunk: optional random start, then `steps` signed steps, clip, project (final iterate)."""
    zero, one = torch.zeros((), device=x0.device), torch.ones((), device=x0.device)
    xa = x0 if noise is None else torch.maximum(torch.minimum(x0 + noise, one), zero)
    for _ in range(steps):
        xg = xa.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), target), xg)
        with torch.no_grad():
            xa = torch.maximum(torch.minimum(xa + step_t * grad.sign(), one), zero)
            delta = xa - x0
            xa = x0 + delta.sign() * torch.minimum(delta.abs(), eps_t)
    return xa.detach()


def thesis_protocol_pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 8 / 255,
    step: float = 2 / 255,
    steps: int = 50,
    restarts: int = 10,
    *,
    random_init: bool = True,
    batch_size: int = 32,
    reduction_size: int | None = None,
    selection: str = "best_rate",
    seed: int = 0,
    device: str | torch.device | None = None,
    return_adversarials: bool = False,
    desc: str | None = None,
    channels_last: bool = False,
) -> dict:
    """The thesis's robust accuracy: ART PGD without labels, accuracy of x_adv against the true `labels`.

    ART equivalent: `ProjectedGradientDescent(PyTorchClassifier(model, nn.CrossEntropyLoss(), clip_values=(0, 1)),
    norm=inf, eps, eps_step=step, max_iter=steps, num_random_init=restarts if random_init else 0, batch_size)`
    and `generate(x)` called once per `reduction_size` images (None: once on all of `images`). `selection`:
    "best_rate" (ART 1.2 - 1.4.x: the restart with the most changed predictions over each generate call) or
    "per_example" (ART >= 1.5: per image, the last restart that changed its prediction). `images` are uint8
    or float in [0, 1]; `batch_size` chunks the gradients (ART's default 32; the sign of each image's
    gradient does not depend on it). `channels_last=True` runs the model in NHWC (faster on CPUs; the
    same images up to float rounding, so not bitwise ART's).

    Returns a dict: robust_acc (the thesis's number), per_example (list[bool]: x_adv classified as the true
    label), clean_acc, robust_acc_clean_and_adv (also correct clean), flipped_to_correct (misclassified
    clean, correct on x_adv), attack_success_rate (ART's logged rate: predictions changed), kept_restart
    (best_rate: one per generate call; per_example: one per image), restart_success_rates (best_rate: per
    call, the fraction of changed predictions of every restart), n, seconds, settings; and "x_adv" (CPU
    float) with `return_adversarials=True`.
    """
    eps, step, steps, restarts, batch_size, reduction_size, labels = _check_args(
        images, labels, eps, step, steps, restarts, random_init, batch_size, reduction_size, selection
    )
    if device is not None:
        model.to(get_device(device))
    dev = model_device(model)
    n = images.shape[0]
    group = reduction_size or max(n, 1)
    rng = np.random.RandomState(int(seed))
    eps_t = torch.tensor(eps, dtype=torch.float32, device=dev)
    step_t = torch.tensor(step, dtype=torch.float32, device=dev)
    t0 = time.perf_counter()

    def noise_for(x0: torch.Tensor) -> torch.Tensor | None:
        if not random_init:
            return None
        u = rng.uniform(-eps, eps, (x0.shape[0], x0[0].numel())).astype(np.float32)
        return torch.from_numpy(u.reshape(tuple(x0.shape))).to(dev)

    clean_pred = torch.empty(n, dtype=torch.long)
    adv_pred = torch.empty(n, dtype=torch.long)
    x_adv = torch.empty((n, *images.shape[1:]), dtype=torch.float32)
    kept: list[int] = []
    kept_per_image = torch.zeros(n, dtype=torch.long)
    rates: list[list[float]] = []

    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def load(b0: int, b1: int) -> torch.Tensor:
        return to_float_images(images[b0:b1], dev).contiguous(memory_format=fmt)

    with (
        attack_mode(model, channels_last=channels_last),
        tqdm(
            total=n * restarts, desc=desc or f"ART-PGD-{steps}x{restarts}", disable=progress_disabled(), leave=False
        ) as bar,
    ):
        for g0 in range(0, n, group):  # one ART generate call per group
            g1 = min(g0 + group, n)
            chunks = [(b, min(b + batch_size, g1)) for b in range(g0, g1, batch_size)]
            for b0, b1 in chunks:  # targets: the model's own predictions (ART with y=None)
                clean_pred[b0:b1] = _predict(model, load(b0, b1)).cpu()
            if selection == "best_rate":  # restart outer, chunks inner; one restart kept for [g0, g1)
                best, group_rates = -1, []
                for r in range(restarts):
                    cand = torch.empty((g1 - g0, *images.shape[1:]))
                    cand_pred = torch.empty(g1 - g0, dtype=torch.long)
                    for b0, b1 in chunks:
                        x0 = load(b0, b1)
                        xa = _art_pgd(model, x0, clean_pred[b0:b1].to(dev), eps_t, step_t, steps, noise_for(x0))
                        cand[b0 - g0 : b1 - g0] = xa.cpu()
                        cand_pred[b0 - g0 : b1 - g0] = _predict(model, xa).cpu()
                        bar.update(b1 - b0)
                    changed = int(cand_pred.ne(clean_pred[g0:g1]).sum())
                    group_rates.append(changed / (g1 - g0))
                    if changed > best:  # ART: rate > rate_best, so the first of equal rates stays
                        best = changed
                        x_adv[g0:g1], adv_pred[g0:g1] = cand, cand_pred
                        kept_per_image[g0:g1] = r
                        kept_r = r
                kept.append(kept_r)
                rates.append(group_rates)
            else:  # chunk outer, restart inner; per image the last restart that changed the prediction
                for b0, b1 in chunks:
                    x0 = load(b0, b1)
                    target = clean_pred[b0:b1].to(dev)
                    for r in range(restarts):
                        xa = _art_pgd(model, x0, target, eps_t, step_t, steps, noise_for(x0))
                        pred = _predict(model, xa).cpu()
                        xa = xa.cpu()
                        take = torch.ones(b1 - b0, dtype=torch.bool) if r == 0 else pred.ne(clean_pred[b0:b1])
                        x_adv[b0:b1][take] = xa[take]
                        adv_pred[b0:b1][take] = pred[take]
                        kept_per_image[b0:b1][take] = r
                        bar.update(b1 - b0)

    clean_correct = clean_pred.eq(labels)
    per_example = adv_pred.eq(labels)
    nan = float("nan")
    out = {
        "robust_acc": per_example.float().mean().item() if n else nan,
        "per_example": per_example.tolist(),
        "clean_acc": clean_correct.float().mean().item() if n else nan,
        "robust_acc_clean_and_adv": (per_example & clean_correct).float().mean().item() if n else nan,
        "flipped_to_correct": int((per_example & ~clean_correct).sum()),
        "attack_success_rate": adv_pred.ne(clean_pred).float().mean().item() if n else nan,
        "kept_restart": kept if selection == "best_rate" else kept_per_image.tolist(),
        "restart_success_rates": rates,
        "n": n,
        "seconds": round(time.perf_counter() - t0, 3),
        "settings": {
            "eps": eps,
            "step": step,
            "steps": steps,
            "restarts": restarts,
            "random_init": bool(random_init),
            "batch_size": batch_size,
            "reduction_size": reduction_size,
            "selection": selection,
            "seed": int(seed),
            "channels_last": bool(channels_last),
            "art": {
                "norm": "inf",
                "eps": eps,
                "eps_step": step,
                "max_iter": steps,
                "num_random_init": restarts if random_init else 0,
                "batch_size": batch_size,
                "y": None,
                "clip_values": (0.0, 1.0),
            },
        },
    }
    if return_adversarials:
        out["x_adv"] = x_adv
    return out


def _version(text: str) -> tuple[int, ...]:
    """'1.4.3' -> (1, 4, 3); a suffix such as '.dev0' ends the number."""
    out = []
    for part in text.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def art_crosscheck(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: AttackSettings | None = None,
    batch_size: int = 100,
) -> dict:
    """The installed ART's own PGD (no labels) next to `thesis_protocol_pgd` with that ART's restart rule.

    Both in float32, NCHW, with the same random starts (`np.random.seed(seed)` before ART's generate);
    an ART >= 1.5 reduces restarts per image (`selection="per_example"`), a 2020 release before 1.5 keeps
    the restart with the best success rate over the whole input (`"best_rate"`, the thesis's). Returns both
    robust accuracies, the fraction of images with the same outcome, the largest pixel difference of the
    adversarial images and ART's version. `attack`: the PGD's eps, step, steps, restarts and seed (default:
    the thesis's, `AttackSettings()`). Needs `adversarial-robustness-toolbox`.
    """
    a = attack if attack is not None else AttackSettings()  # the thesis's: PGD-50x10, eps 8/255, step 2/255
    eps, step, steps, restarts, seed = a.eps, a.step, a.steps, a.restarts, a.seed
    try:
        import art
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        raise ImportError(
            "The ART cross-check needs IBM's adversarial-robustness-toolbox: "
            "pip install adversarial-robustness-toolbox."
        ) from None
    selection = "best_rate" if _version(art.__version__) < (1, 5) else "per_example"
    dev = model_device(model)
    x = to_float_images(images, torch.device("cpu"))
    t0 = time.perf_counter()
    with attack_mode(model, channels_last=False):
        clf = PyTorchClassifier(
            model,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(x.shape[1:]),
            nb_classes=10,
            clip_values=(0.0, 1.0),
            device_type="gpu" if dev.type == "cuda" else "cpu",
        )
        attack = ProjectedGradientDescent(
            clf,
            norm=np.inf,
            eps=eps,
            eps_step=step,
            max_iter=steps,
            num_random_init=restarts,
            batch_size=batch_size,
            verbose=False,
        )
        np.random.seed(int(seed))
        x_art = torch.from_numpy(attack.generate(x.numpy()))
        with torch.no_grad():
            art_pred = torch.cat(
                [model(x_art[i : i + batch_size].to(dev)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
            )
    art_seconds = time.perf_counter() - t0
    ours = thesis_protocol_pgd(
        model,
        images,
        labels,
        eps,
        step,
        steps,
        restarts,
        batch_size=batch_size,
        selection=selection,
        seed=seed,
        return_adversarials=True,
    )
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    art_ok = art_pred.eq(labels)
    our_ok = torch.tensor(ours["per_example"])
    return {
        "art_version": art.__version__,
        "n": len(labels),
        "art_robust_acc": art_ok.float().mean().item(),
        "ours_robust_acc": ours["robust_acc"],
        "same_outcome": art_ok.eq(our_ok).float().mean().item(),
        "max_abs_pixel_diff": (ours["x_adv"] - x_art).abs().max().item(),
        "art_seconds": round(art_seconds, 1),
        "ours_seconds": ours["seconds"],
        "settings": {**ours["settings"], "selection": selection},
    }
