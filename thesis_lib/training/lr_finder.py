"""Learning-rate range test (Smith 2017, "Cyclical learning rates"; thesis section 4.2).

Train from scratch while the learning rate grows exponentially from `lr_start` to `lr_end`
(the thesis: 1e-4 to 3 over 5 epochs, with the training method of the final run), record the
loss at every step, smooth it (exponential moving average with bias correction, beta 0.98) and
read the bounds of the one-cycle schedule off the curve:

- L0 = the smoothed loss at the start (mean of the first 5% of steps), Lmin = its minimum,
  drop = L0 - Lmin (only the part of the sweep before the minimum is considered);
- lr_min: the first lr at which the loss has fallen by `low` (5%) of the drop ("where the loss
  first starts to fall");
- lr_max: the first lr at which the loss is within `high` (5%) of the drop from its minimum
  ("where it plateaus", before it blows up).
- The rule fails (ThesisError) when the curve never falls or falls to its plateau in one step
  (lr_min = lr_max would be no cycle at all); callers then say which bounds they used instead.

The sweep stops early once the smoothed loss exceeds `divergence` (4x) its minimum or turns
non-finite. The rule is a documented, reproducible reading of the thesis's by-eye choice.

A sweep can satisfy the rule and still say little: when the smoothed loss falls by less than
`FLAT_DROP` (5%) of its starting level (`loss_drop`), the rule's 5% steps of that drop are under
0.25% of the loss, about the batch-to-batch noise left in the smoothed curve, so the bounds are
poorly determined. Such "flat" sweeps are reported as such next to their bounds; the bounds are
still used, as the rule says.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..utils import ThesisError, atomic_write_json, get_device, progress_disabled, provenance
from .config import TrainConfig
from .trainer import _as_config, _setup

__all__ = ["lr_find", "suggest_lr_bounds", "smooth_losses", "loss_drop", "FLAT_DROP"]

FLAT_DROP = 0.05  # a sweep whose smoothed loss fell by less than this fraction of its start is flat


def smooth_losses(losses: list[float], beta: float = 0.98) -> list[float]:
    """Bias-corrected exponential moving average (the curve the bounds are read from)."""
    out, avg = [], 0.0
    for i, v in enumerate(losses, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return out


def _start_and_minimum(smoothed: list[float]) -> tuple[list[int], int, float, int]:
    """(finite indices, k, L0 = mean of the first k = 5% finite values, index of the minimum)."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 3:
        raise ThesisError(
            "The learning-rate range test recorded too few finite losses to suggest bounds; "
            "lower --lr-start or train for more steps."
        )
    k = max(1, len(finite) // 20)
    l0 = sum(smoothed[i] for i in finite[:k]) / k
    return finite, k, l0, min(finite, key=lambda i: smoothed[i])


def loss_drop(smoothed: list[float]) -> float:
    """(L0 - Lmin) / L0 of a smoothed range-test curve (a fraction): below `FLAT_DROP` the sweep is flat."""
    _, _, l0, i_min = _start_and_minimum(smoothed)
    return (l0 - smoothed[i_min]) / l0 if l0 > 0 else 0.0


def suggest_lr_bounds(
    lrs: list[float], smoothed: list[float], low: float = 0.05, high: float = 0.05
) -> tuple[float, float]:
    """(lr_min, lr_max) read off a smoothed loss-vs-lr curve by the rule in the module docstring."""
    finite, k, l0, i_min = _start_and_minimum(smoothed)
    drop = l0 - smoothed[i_min]
    if drop <= 0 or i_min < finite[k - 1]:  # never fell below its starting level
        raise ThesisError(
            "The loss never fell during the learning-rate range test; widen the lr range "
            "(--lr-start/--lr-end) or sweep over more epochs."
        )
    before = [i for i in finite if i <= i_min]
    i_lo = next(i for i in before if smoothed[i] <= l0 - low * drop)
    i_hi = next(i for i in before if smoothed[i] <= smoothed[i_min] + high * drop)
    if i_hi <= i_lo:  # the loss fell in one step: the curve gives no range to cycle over
        raise ThesisError(
            f"The learning-rate range test gave no range: the loss fell to its plateau at one "
            f"learning rate ({lrs[i_lo]:.3g}), so lr_min = lr_max; sweep over more steps."
        )
    return float(lrs[i_lo]), float(lrs[i_hi])


def lr_find(
    config: TrainConfig | dict,
    out_dir: str | Path | None = None,
    lr_start: float = 1e-4,
    lr_end: float = 3.0,
    epochs: int | None = None,
    data=None,
    beta: float = 0.98,
    divergence: float = 4.0,
    verbose: bool = True,
) -> dict:
    """Run the range test with `config`'s model, method, optimizer and data.

    epochs: length of the sweep (default: config.epochs). Returns {"lrs", "losses" (smoothed),
    "raw_losses", "lr_min", "lr_max", "rule", "config", ...}; with `out_dir` also writes
    out_dir/lr_find.json.
    """
    t0 = time.perf_counter()
    cfg = _as_config(config)
    if not (0 < lr_start < lr_end and math.isfinite(lr_end)):
        raise ThesisError(f"The range test needs 0 < lr_start < lr_end, got {lr_start} and {lr_end}.")
    sweep_epochs = cfg.epochs if epochs is None else int(epochs)
    if sweep_epochs < 1:
        raise ThesisError(f"The range test needs at least one epoch, got {sweep_epochs}.")
    device = get_device(cfg.device)
    data, prec, model, optimizer, loader, stepper = _setup(cfg, device, data)
    total = sweep_epochs * len(loader)
    lrs, raw, smoothed = [], [], []
    best, avg, stopped = math.inf, 0.0, None
    model.train()
    with tqdm(total=total, desc="lr range test", disable=progress_disabled()) as bar:
        for _epoch in range(sweep_epochs):
            for x, y in loader:
                i = len(lrs)
                lr = lr_start * (lr_end / lr_start) ** (i / max(total - 1, 1))
                for g in optimizer.param_groups:
                    g["lr"] = lr
                _, _, loss = stepper.forward_backward(x, y)
                v = float(loss.detach())
                avg = beta * avg + (1 - beta) * v
                s = avg / (1 - beta ** (i + 1))
                lrs.append(lr)
                raw.append(v)
                smoothed.append(s)
                bar.update(1)
                if not math.isfinite(s) or s > divergence * best:
                    stopped = {"step": i, "lr": lr, "reason": "loss diverged"}
                    break
                best = min(best, s)
                stepper.update()
            if stopped:
                break
    lr_min, lr_max = suggest_lr_bounds(lrs, smoothed)
    result = {
        "lr_min": lr_min,
        "lr_max": lr_max,
        "lrs": lrs,
        "losses": smoothed,
        "raw_losses": raw,
        "stopped_early": stopped,
        "lr_start": lr_start,
        "lr_end": lr_end,
        "sweep_epochs": sweep_epochs,
        "rule": "lr_min: first lr where the smoothed loss fell 5% of its total drop; "
        "lr_max: first lr within 5% of the drop from the minimum (plateau); EMA beta 0.98",
        "config": cfg.to_dict(),
        "n_train": loader.num_examples,
        "data_source": data["source"],
        "wall_time_s": round(time.perf_counter() - t0, 3),
        **provenance(device),
    }
    if verbose:
        print(
            f"suggested lr_min {lr_min:.3g}, lr_max {lr_max:.3g} ({len(lrs)} steps"
            f"{', stopped when the loss diverged' if stopped else ''})"
        )
        if (drop := loss_drop(smoothed)) < FLAT_DROP:
            print(f"the smoothed loss fell by only {drop:.1%} of its start: a flat sweep, bounds poorly determined")
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / "lr_find.json", result)
    return result
