"""Does each observation of thesis chapter 4 hold on a set of light-CNN results, and how sure is it?

Chapter 4 (solution approach) states, for light CNNs with ReLU, k-WTA and KAF activations under
standard training: KAF layers keep clean and adversarial activations closer than ReLU layers; KAF
matches ReLU's clean accuracy; k-WTA looks more robust under plain PGD but masks gradients; and the
question is whether KAF is more robust than ReLU. Each observation becomes a measured difference
with a 95% interval (`Estimate`), computed from the stored results of experiment `light_cnn`:

- accuracies on the same 1,000 attacked images: paired difference of per-image outcomes, Newcombe's
  interval for paired proportions (method 10 of Newcombe 1998, Stat. Med. 17:2635, with its corrected
  correlation: the Wilson intervals of the two accuracies combined by their correlation); unlike the
  normal approximation it does not shrink to a point when no image is discordant (two networks both
  at 0 of 1,000);
- clean accuracies on the 10,000 test images: difference of independent proportions (Newcombe's
  hybrid Wilson interval; per-image clean outcomes of the full test set are not stored);
- relative layer distances: Welch interval on the per-pair means (each network's pairs are its own
  correctly classified images).

"holds" is the direction of the point estimate; "excludes_0" says whether the 95% interval excludes
no difference (if not, the run cannot tell either way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Estimate",
    "wilson",
    "percent_ci",
    "paired_difference",
    "mcnemar_exact",
    "proportion_difference",
    "welch_difference",
    "chapter4_observations",
    "compare_profiles",
    "from_results",
    "observations_table",
    "observations_across_profiles",
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


def _robust_per_image(pgd: dict) -> list[bool]:
    """True where no iterate of any restart broke the image (and it was classified correctly)."""
    return [s == -1 for s in pgd["success_step"]]


def _pair_means(rows: list[dict], activation: str) -> list[float]:
    per: dict[int, list[float]] = {}
    for r in rows:
        if r["activation"] == activation and r["distance"] > 0:
            per.setdefault(r["sample"], []).append(r["relative_distance"])
    return [sum(v) / len(v) for v in per.values()]


def chapter4_observations(
    models: dict[str, dict], pgd: dict[str, dict], distances: list[dict], n_test: int = 10000
) -> list[dict]:
    """One row per observation: {"observation", "measured", "estimate", "holds", "excludes_0"}.

    models: activation -> the light_cnn summary's model entry (clean_acc, gradient_masking_flagged, ...);
    pgd: activation -> the stored PGD step (per-image success_step on the shared attacked images);
    distances: the layer-distance rows of every activation; n_test: test images behind clean_acc.
    """
    rel = {a: _pair_means(distances, a) for a in ("relu", "kaf")}
    robust = {a: _robust_per_image(pgd[a]) for a in pgd}
    rows = []

    def add(name, measured, est: Estimate | None, holds: bool):
        excl = None if est is None or math.isnan(est.lo) else bool(est.lo > 0 or est.hi < 0)
        rows.append({"observation": name, "measured": measured, "estimate": est, "holds": holds, "excludes_0": excl})

    d = welch_difference(rel["kaf"], rel["relu"])
    add(
        "KAF: smaller clean-vs-adversarial activation gaps than ReLU",
        f"relative distance kaf - relu {d}",
        d,
        bool(d.value < 0),
    )
    c = proportion_difference(models["kaf"]["clean_acc"], n_test, models["relu"]["clean_acc"], n_test)
    add("KAF: clean accuracy at least ReLU's", f"clean kaf - relu {c}", c, bool(c.value >= 0))
    k = paired_difference(robust["kwta"], robust["relu"])
    add("k-WTA: more robust than ReLU under plain PGD", f"robust kwta - relu {k}", k, bool(k.value > 0))
    flagged = bool(models["kwta"]["gradient_masking_flagged"])
    add("k-WTA: flagged for gradient masking by the sanity report", f"flagged: {flagged}", None, flagged)
    r = paired_difference(robust["kaf"], robust["relu"])
    add("KAF: more robust than ReLU under plain PGD", f"robust kaf - relu {r}", r, bool(r.value > 0))
    return rows


def compare_profiles(by_profile: dict[str, list[dict]]) -> list[dict]:
    """Side by side: per observation, each profile's measurement and verdict, and whether the verdict changed.

    by_profile: profile label -> rows of `chapter4_observations`, in display order (the last is the current one).
    """
    labels = list(by_profile)
    out = []
    for i, row in enumerate(by_profile[labels[-1]]):
        rec = {"observation": row["observation"]}
        verdicts = []
        for lab in labels:
            r = by_profile[lab][i]
            note = {None: "", True: ", interval excludes 0", False: ", inconclusive (interval includes 0)"}[
                r["excludes_0"]
            ]
            rec[f"{lab}: measured"] = r["measured"]
            rec[f"{lab}: holds"] = ("yes" if r["holds"] else "no") + note
            verdicts.append(r["holds"])
        if len(labels) > 1:
            rec["verdict changed"] = "yes" if len(set(verdicts)) > 1 else "no"
        out.append(rec)
    return out


def from_results(res) -> list[dict]:
    """`chapter4_observations` of a `light_cnn` ExperimentResults (anything with .settings, .result, .step)."""
    acts = list(res.settings["activations"])
    models = {m["activation"]: m for m in res.result["models"]}
    pgd = {a: res.step(f"pgd_{a}") for a in acts}
    distances = [r for a in acts for r in res.step(f"layer_distances_{a}")]
    return chapter4_observations(models, pgd, distances, res.settings.get("test_subset") or 10000)


def observations_table(results: list):
    """A DataFrame (index: observation) comparing light_cnn results of several profiles, the last one current."""
    import pandas as pd

    by = {f"{r.profile}, {r.settings['epochs']} epochs": from_results(r) for r in results}
    return pd.DataFrame(compare_profiles(by)).set_index("observation")


def observations_across_profiles(res):
    """`observations_table` of `res` beside the same experiment's finished runs of the smaller non-smoke profiles.

    `res`: an ExperimentResults of `light_cnn`. For the `full` runs that means the 5-epoch `cpu` runs
    when their results exist and match the current settings; `smoke` (networks near chance) is never
    compared, and a `cpu` or `smoke` result is shown alone.
    """
    from ..experiments import PROFILES, ExperimentResults, is_complete

    results_dir = res.dir.parent.parent  # <results_dir>/<profile>/<name>
    smaller = PROFILES[1 : PROFILES.index(res.profile)]
    earlier = [ExperimentResults(res.name, p, results_dir) for p in smaller if is_complete(res.name, p, results_dir)]
    return observations_table(earlier + [res])
