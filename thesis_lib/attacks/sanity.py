"""Gradient-masking checks (Carlini et al. 2019, "On Evaluating Adversarial Robustness", sections 5-7;
Athalye, Carlini, Wagner 2018, "Obfuscated gradients give a false sense of security", section 3.1).

A robustness number from a gradient attack means something only if the gradients it follows are
informative. `gradient_masking_report` runs the checklist on a model and a handful of images:

1. accuracy is non-increasing in eps, in PGD iterations and in restarts (independent runs, new seeds);
2. an (almost) unbounded eps drives accuracy to (almost) 0%;
3. PGD is not weaker than FGSM (iterative >= single step);
4. PGD is not weaker than random noise of the same eps (worst of several uniform draws per example),
   in aggregate and per example ("random sampling finds adversarial examples" is a masking sign);
5. PGD is not weaker than a transfer attack from a surrogate model (white-box >= black-box);
6. few input gradients are exactly zero (saturated softmax / zero-gradient layers);
7. the gradient predicts the loss change of a small step ("shattered gradients").

Check 7 is the one that catches k-WTA reliably, even on tiny, briefly trained networks: k-WTA is
discontinuous in its input (thesis section 3.1), so the first-order prediction m(x + h d) - m(x) ~
grad m . (h d) fails however small h is (a jump does not shrink with h), whereas for any continuous
piecewise-linear (ReLU) or smooth (ELU, Swish, KAF) network the relative error vanishes like O(h).
It is computed on a float64 copy of the model with the logit margin m = z_y - max_{j != y} z_j
(not the cross-entropy, whose float32 value saturates on confident examples), along the attack's own
direction d = -sign(grad m), with h = eps / 128 (0.06/255 for eps = 8/255). Measured medians on small
light CNNs (benchmarks/README.md, "Attacks"): 0.003-0.02 for ReLU, Swish and KAF networks, 0.6-6 for
k-WTA ones, trained or not; the pass threshold is 0.1. Checks 4-6 alone do not flag small k-WTA
models: their input gradients are not mostly zero (well under 10% of the entries), and PGD still beats
noise and transfer on them; k-WTA's masking shows up first as gradients that do not describe the loss.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .context import attack_mode, check_eps, model_device, to_float_images
from .evaluate import predict, robust_accuracy
from .pgd import run_pgd

__all__ = ["SanityConfig", "gradient_masking_report", "first_order_error", "zero_gradient_fraction"]


@dataclass
class SanityConfig:
    """Settings and pass thresholds of the gradient-masking report (L-inf; eps in [0, 1] pixel units)."""

    step: float | None = None  # PGD step; None -> eps / 4 (the thesis's 2/255 for 8/255)
    steps: int = 20  # PGD iterations of the main run
    restarts: int = 2  # PGD restarts of the main run
    eps_factors: tuple = (0.0, 0.25, 0.5, 1.0, 2.0)  # eps grid (multiples of eps) for the monotonicity check
    iteration_grid: tuple | None = (
        None  # PGD iterations for the monotonicity check; None -> (1, steps/4, steps, 2 steps)
    )
    large_eps: float = 0.5  # "unbounded" L-inf radius: every image can be moved to mid-grey
    large_eps_max_acc: float = 0.02  # pass if accuracy at large_eps is at most this (plus one example)
    noise_samples: int = 10  # uniform-noise draws per example (a small random search)
    tolerance: float = 0.01  # accuracy slack for "not weaker than" / "non-increasing" (at least one example)
    zero_grad_max: float = 0.10  # pass if at most this fraction of examples has an all-zero input gradient
    linearity_h: float = 1 / 128  # finite-difference step of check 7, as a fraction of eps
    linearity_max_error: float = 0.1  # pass if the median relative first-order error is at most this
    seed: int = 0  # seeds every random start and noise draw (each run gets its own derived seed)
    batch_size: int = 256  # examples attacked concurrently


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y - max_{j != y} z_j: positive iff correctly classified; piecewise linear for ReLU networks."""
    zy = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf"))
    return zy - other.max(1).values


def zero_gradient_fraction(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> dict:
    """Fractions of input-gradient entries and of whole examples whose cross-entropy gradient is exactly zero."""
    device = model_device(model)
    zeros = total = zero_examples = 0
    with attack_mode(model):
        for i in range(0, images.shape[0], batch_size):
            x = to_float_images(images[i : i + batch_size], device).requires_grad_(True)
            y = torch.as_tensor(labels[i : i + batch_size]).to(device)
            with torch.enable_grad():
                loss = F.cross_entropy(model(x), y, reduction="sum")
            (g,) = torch.autograd.grad(loss, x)
            zeros += int((g == 0).sum())
            total += g.numel()
            zero_examples += int((g.flatten(1) == 0).all(1).sum())
    n = images.shape[0]
    return {"entries": zeros / max(total, 1), "examples": zero_examples / max(n, 1)}


def first_order_error(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, h: float, batch_size: int = 256, double: bool = True
) -> dict:
    """How well the input gradient predicts the margin change of an L-inf step of size h (check 7).

    Per example: |m(x') - m(x) - g.(x' - x)| / |g.(x' - x)| with x' = clip(x - h sign(g)), g = grad m(x).
    Returns {"median", "q90", "per_example" (list; NaN where g = 0), "dtype"}. A float64 copy of the
    model is used when possible so that rounding cannot pass for a discontinuity.
    """
    h = check_eps(h, "h")
    device = model_device(model)
    net, dtype = model, torch.float32
    if double:
        try:
            net, dtype = copy.deepcopy(model).double(), torch.float64
        except Exception:  # a module that cannot be copied or cast: fall back to float32
            net, dtype = model, torch.float32
    errs = []
    with attack_mode(net):
        for i in range(0, images.shape[0], batch_size):
            x = to_float_images(images[i : i + batch_size], device).to(dtype).requires_grad_(True)
            y = torch.as_tensor(labels[i : i + batch_size]).to(device)
            with torch.enable_grad():
                m0 = _margin(net(x), y)
            (g,) = torch.autograd.grad(m0.sum(), x)
            with torch.no_grad():
                x1 = (x - h * g.sign()).clamp(0, 1)
                predicted = (g * (x1 - x)).flatten(1).sum(1)
                actual = _margin(net(x1), y) - m0
                err = (actual - predicted).abs() / predicted.abs()
                err[predicted == 0] = float("nan")
            errs.append(err.float().cpu())
    e = torch.cat(errs) if errs else torch.empty(0)
    valid = e[~e.isnan()]
    return {
        "median": valid.median().item() if valid.numel() else float("nan"),
        "q90": valid.quantile(0.9).item() if valid.numel() else float("nan"),
        "per_example": e.tolist(),
        "dtype": str(dtype).replace("torch.", ""),
    }


def _check(name: str, passed: bool | None, detail: str, **values) -> dict:
    return {"name": name, "passed": passed, "detail": detail, "values": values}


def _non_increasing(accs: list[float], tol: float) -> list[int]:
    """Indices i where accs[i] exceeds the smallest earlier value by more than tol."""
    bad, low = [], float("inf")
    for i, a in enumerate(accs):
        if a > low + tol:
            bad.append(i)
        low = min(low, a)
    return bad


def _fmt(a: float) -> str:
    return f"{100 * a:.1f}%"


def gradient_masking_report(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 8 / 255,
    surrogate: nn.Module | None = None,
    config: SanityConfig | None = None,
    **overrides,
) -> dict:
    """Run the gradient-masking checklist; returns {checks: [{name, passed, detail, values}], flagged, summary,
    accuracies, config, n}. `passed` is None for a skipped check (no surrogate). `flagged` is True when any
    check fails. Keyword overrides set `SanityConfig` fields (e.g. steps=50, restarts=10).
    """
    try:
        cfg = dataclasses.replace(config or SanityConfig(), **overrides)
    except TypeError as e:
        raise ValueError(f"Unknown gradient_masking_report option: {e}.") from None
    eps = check_eps(eps)
    if eps == 0:
        raise ValueError("eps must be > 0 for the gradient-masking checks.")
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    n = images.shape[0]
    if n == 0:
        raise ValueError("gradient_masking_report needs at least one image.")
    step = cfg.step if cfg.step is not None else eps / 4
    tol = max(cfg.tolerance, 1.0 / n)
    tol_count = max(1, int(cfg.tolerance * n))
    bs = cfg.batch_size
    seed = iter(range(cfg.seed * 1000, cfg.seed * 1000 + 1000))  # a fresh seed for every run

    def pgd_acc(e, st, steps, restarts):
        return robust_accuracy(model, images, labels, "pgd", e, st, steps, restarts, bs, seed=next(seed))

    checks, acc = [], {}
    clean = predict(model, images, bs).eq(labels)
    acc["clean"] = clean.float().mean().item()
    main = pgd_acc(eps, step, cfg.steps, cfg.restarts)
    pgd_ok = torch.tensor(main["per_example"])
    acc["pgd"] = main["robust_acc"]
    label = f"PGD-{cfg.steps}x{cfg.restarts}"

    # 1. Monotonicity in eps, iterations, restarts (independent runs: nothing shared between points).
    factors = sorted(set(cfg.eps_factors))
    eps_accs = [pgd_acc(f * eps, step * f, cfg.steps, 1)["robust_acc"] if f > 0 else acc["clean"] for f in factors]
    acc["vs_eps"] = [{"eps": f * eps, "robust_acc": a} for f, a in zip(factors, eps_accs)]
    bad = _non_increasing(eps_accs, tol)
    checks.append(
        _check(
            "accuracy_non_increasing_in_eps",
            not bad,
            "robust accuracy at eps x "
            + ", ".join(f"{f:g}: {_fmt(a)}" for f, a in zip(factors, eps_accs))
            + (f"; rises at eps x {', '.join(f'{factors[i]:g}' for i in bad)}" if bad else ""),
            accuracies=eps_accs,
        )
    )

    grid = cfg.iteration_grid or (1, max(1, cfg.steps // 4), cfg.steps, 2 * cfg.steps)
    grid = sorted(set(int(k) for k in grid))
    it_accs = [pgd_acc(eps, step, k, 1)["robust_acc"] for k in grid]
    acc["vs_iterations"] = [{"iterations": k, "robust_acc": a} for k, a in zip(grid, it_accs)]
    bad = _non_increasing(it_accs, tol)
    checks.append(
        _check(
            "accuracy_non_increasing_in_iterations",
            not bad,
            "robust accuracy after "
            + ", ".join(f"{k}: {_fmt(a)}" for k, a in zip(grid, it_accs))
            + " iterations"
            + (f"; rises at {', '.join(str(grid[i]) for i in bad)} iterations" if bad else ""),
            accuracies=it_accs,
        )
    )

    one = pgd_acc(eps, step, cfg.steps, 1)["robust_acc"]
    acc["vs_restarts"] = [{"restarts": 1, "robust_acc": one}, {"restarts": cfg.restarts, "robust_acc": acc["pgd"]}]
    checks.append(
        _check(
            "accuracy_non_increasing_in_restarts",
            acc["pgd"] <= one + tol,
            f"1 restart: {_fmt(one)}, {cfg.restarts} restarts: {_fmt(acc['pgd'])}",
            one=one,
            many=acc["pgd"],
        )
    )

    # 2. Unbounded attack.
    big = pgd_acc(cfg.large_eps, cfg.large_eps / 8, max(cfg.steps, 20), 1)["robust_acc"]
    acc["large_eps"] = big
    checks.append(
        _check(
            "large_eps_reaches_zero",
            big <= cfg.large_eps_max_acc + 1.0 / n,
            f"accuracy {_fmt(big)} at eps {cfg.large_eps:g} (must be <= {_fmt(cfg.large_eps_max_acc)})",
            accuracy=big,
        )
    )

    # 3. Iterative vs single step.
    fg = robust_accuracy(model, images, labels, "fgsm", eps, batch_size=bs)
    acc["fgsm"] = fg["robust_acc"]
    checks.append(
        _check(
            "pgd_not_weaker_than_fgsm",
            acc["pgd"] <= acc["fgsm"] + tol,
            f"{label}: {_fmt(acc['pgd'])}, FGSM: {_fmt(acc['fgsm'])}",
            pgd=acc["pgd"],
            fgsm=acc["fgsm"],
        )
    )

    def not_weaker(name, ok, what):
        """Checks 4 and 5: PGD breaks what attack `name` breaks (`ok`: still correct under it), up to the tolerance."""
        acc[name] = ok.float().mean().item()
        only = int((~ok & pgd_ok).sum())
        return _check(
            f"pgd_not_weaker_than_{name}",
            acc["pgd"] <= acc[name] + tol and only <= tol_count,
            f"{label}: {_fmt(acc['pgd'])}, {what}: {_fmt(acc[name])}; "
            f"{only} example(s) broken by {name} but not by PGD",
            pgd=acc["pgd"],
            **{name: acc[name], f"broken_only_by_{name}": only},
        )

    # 4. Random noise, worst of several draws per example.
    noise_ok = clean.clone()
    for _ in range(cfg.noise_samples):
        r = robust_accuracy(model, images, labels, "noise", eps, batch_size=bs, seed=next(seed))
        noise_ok &= torch.tensor(r["per_example"])
    checks.append(not_weaker("noise", noise_ok, f"uniform noise (worst of {cfg.noise_samples})"))

    # 5. Transfer from a surrogate (classic PGD on the surrogate: high-confidence adversarial images).
    if surrogate is not None:
        res = run_pgd(surrogate, images, labels, eps, step, cfg.steps, 1, seed=next(seed), batch_size=bs, stop="none")
        tr_ok = clean & predict(model, res.x_adv, bs).eq(labels)
        checks.append(not_weaker("transfer", tr_ok, "transfer from surrogate"))
    else:
        checks.append(_check("pgd_not_weaker_than_transfer", None, "skipped: no surrogate model given"))

    # 6. Zero gradients.
    z = zero_gradient_fraction(model, images, labels, bs)
    checks.append(
        _check(
            "few_zero_gradients",
            z["examples"] <= cfg.zero_grad_max,
            f"{_fmt(z['examples'])} of examples have an all-zero input gradient "
            f"({_fmt(z['entries'])} of entries are zero)",
            examples=z["examples"],
            entries=z["entries"],
        )
    )

    # 7. Shattered gradients: does the gradient predict the effect of a tiny step?
    h = cfg.linearity_h * eps
    fo = first_order_error(model, images, labels, h, bs)
    fo_step = first_order_error(model, images, labels, step, bs)
    checks.append(
        _check(
            "gradients_predict_loss_changes",
            fo["median"] <= cfg.linearity_max_error,
            f"median relative error of the first-order margin prediction: {fo['median']:.3g} at h = eps/"
            f"{1 / cfg.linearity_h:g}, {fo_step['median']:.3g} at h = step "
            f"(must be <= {cfg.linearity_max_error:g} at the "
            "small h; a discontinuous network stays large however small h is)",
            median_small_h=fo["median"],
            q90_small_h=fo["q90"],
            median_step=fo_step["median"],
            dtype=fo["dtype"],
        )
    )

    flagged = any(c["passed"] is False for c in checks)
    lines = [
        f"Gradient-masking checks on {n} images, eps = {eps * 255:.3g}/255, {label} (step {step * 255:.3g}/255): "
        f"clean {_fmt(acc['clean'])}, robust {_fmt(acc['pgd'])}"
    ]
    for c in checks:
        mark = "SKIP" if c["passed"] is None else ("pass" if c["passed"] else "FAIL")
        lines.append(f"  [{mark}] {c['name']}: {c['detail']}")
    lines.append(
        "verdict: "
        + (
            "GRADIENT MASKING SUSPECTED (failed: " + ", ".join(c["name"] for c in checks if c["passed"] is False) + ")"
            if flagged
            else "no sign of gradient masking"
        )
    )
    return {
        "checks": checks,
        "flagged": flagged,
        "summary": "\n".join(lines),
        "accuracies": acc,
        "config": {**asdict(cfg), "eps": eps, "step": step},
        "n": n,
    }
