"""Robust-accuracy curves: against eps, PGD iterations (the thesis plots up to 150) and random restarts.

Protocol "Evaluation": "robust accuracy vs PGD iterations (up to 150) shows the attack has converged by
about 50 iterations". How each curve is computed (and why that is valid):

- **iterations**: ONE run of PGD-K (K = max(iterations)) with `stop="earliest"` (see `pgd.py`). With a
  constant step size, PGD-k from the same random start is exactly the first k steps of PGD-K, so an
  example survives PGD-k (with R restarts) iff no restart misclassifies any of its iterates 0..k. The
  engine records, per example, the earliest such iterate over all restarts, so every point of the
  curve comes from one run costing at most as much as PGD-K alone. By construction the curve is
  non-increasing; the independent-runs check lives in `sanity.py`.
- **restarts**: ONE run with R = max(restarts); the accuracy at r restarts counts the first r restarts
  of that run (the restarts are i.i.d., so this is an unbiased PGD-r estimate at no extra cost).
- **eps**: one independent run per eps (different radii share nothing), step = `step_ratio * eps`
  unless a fixed `step` is given (the thesis's 2/255 is 8/255 / 4).

Each function returns a list of flat dicts (`pandas.DataFrame(rows)` ready).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..utils import progress_disabled
from .evaluate import AttackSettings, predict, robust_accuracy
from .pgd import run_pgd

__all__ = ["accuracy_vs_eps", "accuracy_vs_iterations", "accuracy_vs_restarts"]


def _sorted_ints(values: Iterable[int], name: str, minimum: int) -> list[int]:
    vals = sorted({int(v) for v in values})
    if not vals or vals[0] < minimum:
        raise ValueError(f"{name} must be a non-empty list of integers >= {minimum}, got {list(values)!r}.")
    return vals


def accuracy_vs_eps(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps_values: Sequence[float] = (0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255),
    attack: str = "pgd",
    step: float | None = None,
    step_ratio: float = 0.25,
    steps: int = 50,
    restarts: int = 1,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int = 0,
) -> list[dict]:
    """Rows {eps, eps_255, step, attack, steps, restarts, clean_acc, robust_acc, n, seconds}, eps ascending."""
    rows = []
    for i, eps in enumerate(sorted(float(e) for e in eps_values)):
        st = step if step is not None else step_ratio * eps
        r = robust_accuracy(
            model,
            images,
            labels,
            attack,
            eps,
            st,
            steps,
            restarts,
            batch_size,
            None,
            norm,
            seed=seed + i,
            desc=f"eps={eps * 255:.2f}/255",
        )
        rows.append(
            {
                "eps": eps,
                "eps_255": eps * 255,
                "step": st,
                "attack": attack,
                "steps": steps,
                "restarts": restarts,
                "norm": norm,
                "clean_acc": r["clean_acc"],
                "robust_acc": r["robust_acc"],
                "n": r["n"],
                "seconds": r["seconds"],
            }
        )
    return rows


def _pgd_once(model, images, labels, a: AttackSettings, stop: str):
    """One PGD run under `a` (no adversarial images kept): clean correctness, the run, its seconds."""
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    clean = predict(model, images, a.batch_size).eq(labels)
    t0 = time.perf_counter()
    desc = f"{a.label()} (curve)"
    with tqdm(total=images.shape[0], desc=desc, unit="img", disable=progress_disabled(), leave=False) as bar:
        res = run_pgd(
            model,
            images,
            labels,
            a.eps,
            a.step,
            a.steps,
            a.restarts,
            a.norm,
            seed=a.seed,
            batch_size=a.batch_size,
            stop=stop,
            return_adv=False,
            on_done=bar.update,
        )
    return clean, res, time.perf_counter() - t0


def accuracy_vs_iterations(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    iterations: Sequence[int] = (1, 2, 5, 10, 20, 50, 100, 150),
    eps: float = 8 / 255,
    step: float = 2 / 255,
    restarts: int = 1,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int = 0,
) -> list[dict]:
    """Rows {iterations, robust_acc, clean_acc, restarts, eps, step, n, seconds} from one PGD-max(iterations) run.

    `iterations=0` is allowed (the random start alone). The run's total seconds are on every row.
    """
    its = _sorted_ints(iterations, "iterations", 0)
    a = AttackSettings("pgd", eps, step, its[-1], restarts, norm, seed=seed, batch_size=batch_size)
    clean, res, secs = _pgd_once(model, images, labels, a, "earliest")
    fixed = {"restarts": restarts, "eps": eps, "step": step, "norm": norm}
    return _curve_rows(clean, "iterations", its, lambda k: res.success & (res.step <= k), fixed, secs)


def accuracy_vs_restarts(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    restarts: Sequence[int] = (1, 2, 5, 10),
    eps: float = 8 / 255,
    step: float = 2 / 255,
    steps: int = 50,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int = 0,
) -> list[dict]:
    """Rows {restarts, robust_acc, clean_acc, steps, eps, step, n, seconds} from one PGD-steps x max(restarts) run."""
    rs = _sorted_ints(restarts, "restarts", 1)
    a = AttackSettings("pgd", eps, step, steps, rs[-1], norm, seed=seed, batch_size=batch_size)
    clean, res, secs = _pgd_once(model, images, labels, a, "first")
    fixed = {"steps": steps, "eps": eps, "step": step, "norm": norm}
    return _curve_rows(clean, "restarts", rs, lambda r: res.success & (res.restart < r), fixed, secs)


def _curve_rows(clean: torch.Tensor, name: str, grid, broken_at, fixed: dict, secs: float) -> list[dict]:
    """One row per grid value k: robust accuracy when the examples `broken_at(k)` count as broken."""
    n = clean.numel()
    nan = float("nan")
    return [
        {
            name: k,
            "robust_acc": (clean & ~broken_at(k)).float().mean().item() if n else nan,
            "clean_acc": clean.float().mean().item() if n else nan,
            **fixed,
            "n": n,
            "seconds": round(secs, 3),
        }
        for k in grid
    ]
