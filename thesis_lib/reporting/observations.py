"""Does each observation of thesis chapter 4 hold on a set of light-CNN results, and how sure is it?

Chapter 4 (solution approach) states, for light CNNs with ReLU, k-WTA and KAF activations under
standard training: KAF layers keep clean and adversarial activations closer than ReLU layers; KAF
matches ReLU's clean accuracy; k-WTA looks more robust under plain PGD but masks gradients; and the
question is whether KAF is more robust than ReLU. Each observation becomes a measured difference
with a 95% interval (`Estimate`, from `thesis_lib.analysis.stats`), computed from the stored results
of experiment `light_cnn`:

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

from ..analysis.stats import Estimate, paired_difference, proportion_difference, welch_difference

__all__ = [
    "chapter4_observations",
    "compare_profiles",
    "from_results",
    "observations_table",
    "observations_across_profiles",
]


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
