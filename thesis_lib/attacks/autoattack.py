"""Adaptive evaluation with AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness
with an ensemble of diverse parameter-free attacks"); thesis chapter 6 ("adaptive attacks against
adversarially trained KAF networks"). Uses the PyPI package `pyautoattack` (import name `autoattack`),
imported only when called; it downloads nothing.

Versions:
- "standard": APGD-CE, APGD-T (9 target classes), FAB-T (9 targets), Square (5000 queries), one restart each;
- "apgd": the cheaper APGD-CE + APGD-T pair (AutoAttack `version="custom"` with the standard version's
  per-attack settings), which accounts for almost all of AutoAttack's success on non-masked models.

As in AutoAttack, each attack only sees the examples that all previous attacks failed to break, so the
report can say how much each attack added. Every returned image is re-checked with a float32 forward
pass and its perturbation norm is verified to be within eps.
"""

from __future__ import annotations

import time
import warnings

import torch
from torch import nn

from .context import attack_mode, check_eps, check_norm, model_device, to_float_images
from .evaluate import predict

__all__ = ["autoattack_eval", "AUTOATTACK_VERSIONS"]

AUTOATTACK_VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "apgd": ("apgd-ce", "apgd-t"),
}


def _zero_gradients(x) -> None:
    """torch < 1.9's `torch.autograd.gradcheck.zero_gradients`, which pyautoattack 0.2's FAB still imports."""
    if isinstance(x, torch.Tensor):
        if x.grad is not None:
            x.grad.detach_()
            x.grad.zero_()
    else:
        for elem in x:
            _zero_gradients(elem)


def _import_autoattack():
    """Import `autoattack.AutoAttack`, restoring the helper that newer torch removed (a missing-name shim only)."""
    import importlib

    # `torch.autograd.gradcheck` is also a function name, so fetch the module itself.
    gradcheck = importlib.import_module("torch.autograd.gradcheck")
    if not hasattr(gradcheck, "zero_gradients"):
        gradcheck.zero_gradients = _zero_gradients
    try:
        from autoattack import AutoAttack
    except ImportError as e:  # pragma: no cover - listed in requirements.txt
        raise ImportError("AutoAttack is not installed: pip install pyautoattack (import name autoattack).") from e
    return AutoAttack


def _configure(adversary, version: str, num_classes: int, n_iter: int | None, n_queries: int | None) -> None:
    """The standard version's per-attack settings (AutoAttack's set_version), also for the "apgd" subset."""
    targets = max(1, min(9, num_classes - 1))
    adversary.apgd.n_restarts = 1
    adversary.apgd_targeted.n_restarts = 1
    adversary.apgd_targeted.n_target_classes = targets
    adversary.fab.n_restarts = 1
    adversary.fab.n_target_classes = targets
    adversary.square.n_queries = 5000
    if n_iter is not None:  # cheaper runs (tests, smoke checks); AutoAttack's default is 100
        adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = int(n_iter)
    if n_queries is not None:
        adversary.square.n_queries = int(n_queries)


def autoattack_eval(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 8 / 255,
    version: str = "standard",
    norm: str = "linf",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    seed: int = 0,
    *,
    n_iter: int | None = None,
    n_queries: int | None = None,
) -> dict:
    """AutoAttack robust accuracy with a per-attack breakdown.

    Returns {clean_acc, robust_acc, per_example (list[bool], True = still correct), n, version, attacks,
    per_attack: [{attack, robust_acc, broken, seconds}], max_perturbation, settings, seconds, summary}.
    `n_iter` / `n_queries` override AutoAttack's iterations (100) / Square queries (5000) for quick runs.
    """
    if version not in AUTOATTACK_VERSIONS:
        raise ValueError(f"Unknown AutoAttack version {version!r}: use {' or '.join(map(repr, AUTOATTACK_VERSIONS))}.")
    eps = check_eps(eps)
    norm = check_norm(norm)
    AutoAttack = _import_autoattack()
    if device is not None:
        from ..utils import get_device

        model.to(get_device(device))
    dev = model_device(model)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or labels.shape != (images.shape[0],):
        raise ValueError("images must be N x C x H x W and labels must hold one class per image.")
    x = to_float_images(images).cpu()
    n = x.shape[0]
    t0 = time.perf_counter()
    clean = predict(model, x, batch_size).eq(labels)
    robust = clean.clone()
    x_adv = x.clone()
    attacks = AUTOATTACK_VERSIONS[version]
    per_attack = []
    with attack_mode(model):
        with torch.no_grad():
            num_classes = model(x[:1].to(dev)).shape[1] if n else 10
        adversary = AutoAttack(
            model,
            norm="Linf" if norm == "linf" else "L2",
            eps=eps,
            version="custom",
            attacks_to_run=list(attacks),
            seed=seed,
            verbose=False,
            device=str(dev),
        )
        _configure(adversary, version, num_classes, n_iter, n_queries)
        # AutoAttack reseeds the global RNG before every attack: keep the caller's random state intact.
        # (Its losses still pass the long-deprecated size_average/reduce arguments: silence that warning.)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="size_average and reduce args will be deprecated")
            for name in attacks:
                ta = time.perf_counter()
                rows = robust.nonzero().flatten()
                broken = 0
                if rows.numel():
                    adversary.attacks_to_run = [name]
                    adv = adversary.run_standard_evaluation(x[rows].to(dev), labels[rows].to(dev), bs=batch_size).cpu()
                    still = predict(model, adv, batch_size).eq(labels[rows])
                    x_adv[rows[~still]] = adv[~still]
                    robust[rows[~still]] = False
                    broken = int((~still).sum())
                per_attack.append(
                    {
                        "attack": name,
                        "robust_acc": robust.float().mean().item() if n else float("nan"),
                        "broken": broken,
                        "seconds": round(time.perf_counter() - ta, 3),
                    }
                )
    delta = (x_adv - x).flatten(1)
    max_pert = (delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)).max().item() if n else 0.0
    if max_pert > eps + 1e-5:  # AutoAttack's own final check; never report images outside the threat model
        raise RuntimeError(f"AutoAttack returned a perturbation of norm {max_pert:.6f} > eps = {eps:.6f}.")
    result = {
        "clean_acc": clean.float().mean().item() if n else float("nan"),
        "robust_acc": robust.float().mean().item() if n else float("nan"),
        "per_example": robust.tolist(),
        "clean_correct": clean.tolist(),
        "n": n,
        "version": version,
        "attacks": list(attacks),
        "per_attack": per_attack,
        "max_perturbation": max_pert,
        "settings": {
            "eps": eps,
            "norm": norm,
            "version": version,
            "seed": seed,
            "batch_size": batch_size,
            "n_iter": n_iter if n_iter is not None else 100,
            "n_queries": n_queries if n_queries is not None else 5000,
        },
        "seconds": round(time.perf_counter() - t0, 3),
    }
    result["summary"] = autoattack_summary(result)
    return result


def autoattack_summary(result: dict) -> str:
    """A few readable lines: clean accuracy, then robust accuracy after each attack of the ensemble."""
    s = result["settings"]
    eps_txt = f"{s['eps'] * 255:.3g}/255" if s["norm"] == "linf" else f"{s['eps']:.3g}"
    lines = [
        f"AutoAttack ({result['version']}: {', '.join(result['attacks'])}), {s['norm']} eps = {eps_txt}, "
        f"{result['n']} images",
        f"  clean accuracy:  {100 * result['clean_acc']:.2f}%",
    ]
    for p in result["per_attack"]:
        lines.append(
            f"  after {p['attack']:<8} {100 * p['robust_acc']:.2f}%  (-{p['broken']} images, {p['seconds']:.1f} s)"
        )
    lines.append(
        f"  robust accuracy: {100 * result['robust_acc']:.2f}%  (max perturbation {result['max_perturbation']:.5f})"
    )
    return "\n".join(lines)
