"""Interval estimates and tests for accuracies and differences: what every verdict of the thesis rests on.

The chapter-4 observations (`thesis_lib.reporting.observations`), the chapter-5 verdicts (sections 5.2
and 5.3, `thesis_lib.reporting.chapter5`), the claims and the README quote their numbers with these 95%
intervals and tests; they are pure computations on counts and per-image outcomes and read nothing.

- `wilson`: Wilson score interval of one proportion k / n; `percent_ci` formats an accuracy with it;
- `paired_difference`: difference of two accuracies on the same examples, with Newcombe's interval for
  paired proportions (method 10 of Newcombe 1998, Stat. Med. 17:2635, with its corrected correlation:
  the Wilson intervals of the two accuracies combined by their correlation); unlike the normal
  approximation it does not shrink to a point when no example is discordant (two networks both at 0
  of 1,000); `mcnemar_exact`: McNemar's exact test on the discordant examples;
- `proportion_difference`: difference of independent proportions (Newcombe's hybrid Wilson interval);
- `welch_difference`: difference of two means with Welch's interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Z95",
    "Estimate",
    "wilson",
    "percent_ci",
    "paired_difference",
    "mcnemar_exact",
    "proportion_difference",
    "welch_difference",
]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a 95% interval; `scale` 100 for percentage points."""

    value: float
    lo: float
    hi: float
    scale: float = 1.0
    unit: str = ""

    def __str__(self) -> str:
        if any(math.isnan(v) for v in (self.value, self.lo, self.hi)):
            return "n/a"
        s = self.scale
        digits = 1 if s == 100 else 3
        return f"{s * self.value:+.{digits}f} [{s * self.lo:+.{digits}f}, {s * self.hi:+.{digits}f}]{self.unit}"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def percent_ci(x, n, digits: int = 1) -> str:
    """Accuracy `x` of `n` images as "59.6 [58.6, 60.6]": percent with its 95% Wilson interval ("--" if unknown)."""
    if x is None or n in (None, 0) or math.isnan(float(x)):
        return "--"
    lo, hi = wilson(round(float(x) * int(n)), int(n))
    d = max(digits, 2) if 100 * hi < 0.1 else digits  # an upper bound under 0.1% would round to 0.0
    return f"{100 * float(x):.{digits}f} [{100 * lo:.{d}f}, {100 * hi:.{d}f}]"


def paired_difference(a: list[bool], b: list[bool], z: float = Z95) -> Estimate:
    """mean(a) - mean(b) for outcomes of the same examples, with Newcombe's paired interval (method 10)."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need the same examples: got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 100, " pts")
    both = sum(1 for x, y in zip(a, b) if x and y)
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    neither = n - both - a_only - b_only
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson(both + a_only, n, z)
    l2, u2 = wilson(both + b_only, n, z)
    # The correlation of the two outcomes, with Newcombe's continuity correction (a positive one is shrunk
    # by n / 2, which keeps the interval from being too narrow when few images are discordant).
    den = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    cross = both * neither - a_only * b_only
    phi = 0.0 if not den or 0 <= cross <= n / 2 else (cross - n / 2 * (cross > 0)) / math.sqrt(den)
    lo = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    hi = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    d = p1 - p2
    return Estimate(d, d - lo, d + hi, 100, " pts")


def mcnemar_exact(a: list[bool], b: list[bool]) -> dict:
    """McNemar's exact test of "a and b succeed equally often" on the same examples.

    Only discordant examples count: `a_only` (a right, b wrong) and `b_only`; under the null each
    discordant example goes either way with probability 1/2, so the two-sided p-value is twice the
    binomial tail of the smaller count (capped at 1). Returns {a_only, b_only, n, p_value}.
    """
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need the same examples: got {len(a)} and {len(b)}")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    m = a_only + b_only
    tail = sum(math.comb(m, k) for k in range(min(a_only, b_only) + 1))
    p = 1.0 if m == 0 else min(1.0, 2 * tail / 2**m)
    return {"a_only": a_only, "b_only": b_only, "n": len(a), "p_value": p}


def proportion_difference(p1: float, n1: int, p2: float, n2: int) -> Estimate:
    """p1 - p2 of two independent proportions, Newcombe's hybrid score interval."""
    l1, u1 = wilson(round(p1 * n1), n1)
    l2, u2 = wilson(round(p2 * n2), n2)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Estimate(d, lo, hi, 100, " pts")


def _t975(df: float) -> float:
    """Two-sided 95% Student-t quantile (Hill's approximation, within 1e-3 for df >= 2)."""
    if df <= 0 or math.isnan(df):
        return math.nan
    z = Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def welch_difference(x: list[float], y: list[float]) -> Estimate:
    """mean(x) - mean(y) with Welch's 95% interval."""
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        d = (sum(x) / nx - sum(y) / ny) if nx and ny else math.nan
        return Estimate(d, math.nan, math.nan)
    mx, my = sum(x) / nx, sum(y) / ny
    vx = sum((v - mx) ** 2 for v in x) / (nx - 1) / nx
    vy = sum((v - my) ** 2 for v in y) / (ny - 1) / ny
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / ((vx**2 / (nx - 1) if vx else 0) + (vy**2 / (ny - 1) if vy else 0) or math.inf)
    half = _t975(df) * se if se > 0 else 0.0
    return Estimate(mx - my, mx - my - half, mx - my + half)
