"""Learning-rate schedules, evaluated per optimisation step.

One-cycle triangular schedule (Smith 2017/2018; as used by Wong et al. 2020 for fast adversarial
training; thesis section 4.2): lr rises linearly from lr_min to lr_max at half of the run and
falls linearly back to lr_min at its end. An optional tail of `decay_steps` then decays linearly
from lr_min to lr_min / 10. `step` is the classic He et al. schedule (x0.1 at 50% and 75%).
"""

from __future__ import annotations

__all__ = ["one_cycle_lr", "schedule_lr"]


def _tail(step: int, total_steps: int, decay_steps: int, lr_end: float) -> float:
    """Linear decay lr_end -> lr_end / 10 over the `decay_steps` after `total_steps`."""
    t = min(step - total_steps, decay_steps) / decay_steps if decay_steps > 0 else 1.0
    return lr_end * (1.0 - 0.9 * t)


def one_cycle_lr(step: int, total_steps: int, lr_min: float, lr_max: float, decay_steps: int = 0) -> float:
    """Learning rate of optimisation step `step` (0-based) in a run of `total_steps` (+ `decay_steps`).

    step 0 -> lr_min, step total_steps / 2 -> lr_max, step total_steps -> lr_min, then the decay
    tail to lr_min / 10 at total_steps + decay_steps (and after).
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if step >= total_steps:
        return _tail(step, total_steps, decay_steps, lr_min)
    half = total_steps / 2
    frac = step / half if step <= half else (total_steps - step) / (total_steps - half)
    return lr_min + (lr_max - lr_min) * frac


def schedule_lr(kind: str, step: int, total_steps: int, lr_min: float, lr_max: float, decay_steps: int = 0) -> float:
    """Learning rate of `step` under schedule `kind` ("constant", "one_cycle", "step")."""
    if kind == "one_cycle":
        return one_cycle_lr(step, total_steps, lr_min, lr_max, decay_steps)
    if kind == "constant":
        return lr_max if step < total_steps else _tail(step, total_steps, decay_steps, lr_max)
    if kind == "step":
        if step >= total_steps:
            return _tail(step, total_steps, decay_steps, lr_max * 0.01)
        return lr_max * (0.1 ** ((step >= 0.5 * total_steps) + (step >= 0.75 * total_steps)))
    raise ValueError(f"unknown schedule {kind!r}; valid: constant, one_cycle, step")
