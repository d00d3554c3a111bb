"""Chapter 5 in numbers: the ResNet-20 robustness table and the verdicts on the thesis's comparisons
(section 5.3), and the exploding-gradient runs of the CIFAR ResNets (section 5.2), from stored results.

Inputs are `ExperimentResults` of `resnet20_at` (with `resnet20_lr_range`) and `resnet_standard`
(anything with `.profile`, `.name`, `.settings`, `.result`, `.step(name)` and `.run(key)`); outputs are
pandas DataFrames. Accuracies are fractions in [0, 1] in the tables, differences in the verdict tables
are percentage points. Fields that older results lack come out as NaN / None, never as an error.

Statistics (95% intervals, two-sided tests at `ALPHA` = 0.05):

- accuracy of one model: Wilson score interval of k correct out of n;
- robust accuracies of two models, or of two evaluations of one model, on the same attacked images:
  paired difference of per-image outcomes (Newcombe's paired interval, `analysis.stats.paired_difference`)
  and McNemar's exact test on the discordant images (the p-value decides the verdict);
- clean accuracies on the test set: Newcombe's hybrid score interval of the difference and the pooled
  two-proportion z-test (the per-image clean outcomes of the test set are not stored, so the two
  models are treated as independent samples, which is conservative for the same test images).

A verdict is "supported" when the difference goes the thesis's way with p < ALPHA, "contradicted"
when it goes the other way with p < ALPHA, and "not distinguishable at this scale" otherwise. A
`smoke` result never decides anything ("smoke: not a result"), and neither does a comparison with a
network whose clean accuracy is below `CHANCE_LEVEL` (it has not learnt the task).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from ..analysis.stats import Estimate, mcnemar_exact, paired_difference, proportion_difference, wilson

__all__ = [
    "ALPHA",
    "CHANCE_LEVEL",
    "SUPPORTED",
    "CONTRADICTED",
    "UNDECIDED",
    "KAF_COUNTERPARTS",
    "attack_label",
    "chapter5_stamp",
    "profile_note",
    "two_proportion_p",
    "at_outcomes",
    "thesis_lr_rows",
    "seed_outcomes",
    "seed_table",
    "seed_display",
    "robustness_table",
    "robustness_verdicts",
    "robust_comparison",
    "evaluation_table",
    "art_crosscheck_table",
    "iterations_table",
    "range_tests",
    "layer_group",
    "init_gradient_norms",
    "zero_gradient_layers",
    "exploding_table",
    "exploding_verdicts",
    "NONINFERIORITY_MARGIN",
    "fix_table",
    "fix_verdicts",
    "histories",
    "convergence_table",
    "format_intervals",
    "robustness_display",
    "exploding_display",
    "verdicts_display",
    "collapsed_activations",
    "failed_runs",
    "verdict_lines",
    "verdict_counts",
    "format_p",
    "watch_label",
    "init_gradient_lines",
]

ALPHA = 0.05  # significance level of every verdict (two-sided)
CHANCE_LEVEL = 0.2  # below this clean accuracy a network has not learnt CIFAR-10 (chance: 10%)
SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "not distinguishable at this scale"
SMOKE_VERDICT = "smoke: not a result"
KAF_COUNTERPARTS = {"kaf": "relu", "kaf_relu": "relu", "kaf_elu": "elu", "kaf_swish": "swish"}
TEST_SET = 10000  # CIFAR-10 test images (a profile's test_subset None = all of them)
NONINFERIORITY_MARGIN = 0.02  # "reaches ReLU's accuracy": the fix is at most this far below (absolute, 95% interval)

_MCNEMAR = "McNemar exact, paired"
_NEWCOMBE = "Newcombe interval, z-test"
_SEEDS = "t-test over training seeds"


# ------------------------------------------------------------------------------------------ helpers
def _try(fn, default=None):
    """fn(), or `default` where a stored file or field is missing or damaged."""
    from ..utils import ThesisError

    try:
        return fn()
    except (ThesisError, KeyError, IndexError, TypeError, ValueError, OSError):
        return default


def _num(v) -> float:
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _interval(acc: float, n) -> tuple[float, float]:
    if math.isnan(acc) or not n:
        return math.nan, math.nan
    return wilson(round(acc * n), int(n))


def attack_label(pgd: Mapping | None) -> str:
    """The attack's short name, e.g. PGD-50x10, from a PGDSettings dict ("PGD" when unknown)."""
    if not pgd or pgd.get("steps") is None:
        return "PGD"
    return f"PGD-{pgd['steps']}x{pgd.get('restarts', 1)}"


def _protocol_settings(name: str) -> dict:
    """The `full` settings of experiment `name` (the protocol), {} when it is not registered."""

    def read():
        from ..experiments.registry import get_experiment

        return get_experiment(name).settings_dict("full")

    return _try(read, {}) or {}


def _images(n) -> str:
    return f"{int(n):,} images" if n else "the whole test set"


def chapter5_stamp(res) -> str:
    """A one-line stamp for figures, from the results' own settings.

    smoke: "smoke profile: not a result (1 epoch, 64 training images; PGD-5x1 on 32 images)";
    cpu: "cpu profile: 15 of 80 epochs, PGD-50x10 on 1,000 images"; the protocol's epochs come from
    the registry's `full` settings of the same experiment.
    """
    s = res.settings or {}
    epochs = s.get("epochs")
    full = _protocol_settings(res.name).get("epochs")
    pgd = s.get("pgd")
    if res.profile == "smoke":
        bits = [f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs is not None else None]
        if s.get("train_subset"):
            bits.append(f"{int(s['train_subset']):,} training images")
        inner = ", ".join(b for b in bits if b)
        if pgd:
            inner += f"; {attack_label(pgd)} on {_images(pgd.get('n'))}"
        elif s.get("test_subset") and "lr_end" not in s:
            inner += f"; {int(s['test_subset']):,} test images"
        return f"smoke profile: not a result ({inner})"
    sweep = "lr_end" in s  # a learning-rate range test: epochs of the sweep, no evaluation
    unit = "sweep epochs" if sweep else "epochs"
    if epochs is None:
        what = ""
    elif full is not None and full != epochs:
        what = f"{epochs} of {full} {unit}"
    else:
        what = f"{epochs} {unit}" + (" (the protocol)" if full == epochs else "")
    if s.get("train_subset"):
        what += f" on {int(s['train_subset']):,} training images"
    if pgd:
        what += f", {attack_label(pgd)} on {_images(pgd.get('n'))}"
    elif not sweep:
        what += f", clean accuracy on {int(s.get('test_subset') or TEST_SET):,} test images"
    return f"{res.profile} profile: {what.strip(', ')}"


def profile_note(
    res, clean: Iterable[float] | None = None, at_chance: str = "comparisons with them cannot decide anything"
) -> str:
    """What the numbers of `res` are: a sentence for the notebook (smoke: plainly not a result).

    clean: the networks' clean accuracies (fractions), to say how far from chance they are; at_chance:
    what a network below CHANCE_LEVEL means for the notebook's comparisons.
    """
    accs = [_num(v) for v in (list(clean) if clean is not None else []) if not math.isnan(_num(v))]
    lo, hi = (f"{100 * min(accs):.1f}%", f"{100 * max(accs):.1f}%") if accs else ("", "")
    span = "" if not accs else f" (clean accuracy {lo})" if lo == hi else f" (clean accuracy {lo} to {hi})"
    stamp = chapter5_stamp(res)
    if res.profile == "smoke":
        return (
            f"{stamp}. The smoke networks are at or near chance{span}: the tables and figures below only "
            "prove that the pipeline runs end to end. None of these numbers is a result of the thesis, and "
            f"every verdict says '{SMOKE_VERDICT}'."
        )
    low = [v for v in accs if v < CHANCE_LEVEL]
    tail = f" {len(low)} network(s) stayed below {100 * CHANCE_LEVEL:.0f}% clean accuracy: {at_chance}." if low else ""
    return (
        f"{stamp}{span}. The verdicts below hold for this scale; where it is a reduction of the protocol, "
        f"they are not the protocol's results.{tail}"
    )


def two_proportion_p(p1: float, n1: int, p2: float, n2: int) -> float:
    """Two-sided p-value of the pooled z-test of p1 = p2 (independent proportions)."""
    if not n1 or not n2 or math.isnan(p1) or math.isnan(p2):
        return math.nan
    k1, k2 = round(p1 * n1), round(p2 * n2)
    pool = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if k1 / n1 == k2 / n2 else 0.0
    z = (k1 / n1 - k2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def _newcombe(p1: float, n1, p2: float, n2) -> Estimate:
    """`proportion_difference`, NaN where either accuracy or size is missing."""
    if math.isnan(p1) or math.isnan(p2) or not n1 or not n2:
        return Estimate(math.nan, math.nan, math.nan, 100, " pts")
    return proportion_difference(p1, int(n1), p2, int(n2))


def _decide(diff: float, p: float, blocked: str | None, alpha: float = ALPHA) -> str:
    """The verdict on "diff > 0" (the thesis's direction) with p-value p."""
    if blocked:
        return blocked
    if math.isnan(p) or math.isnan(diff):
        return "cannot decide: not measured"
    if p < alpha:
        return SUPPORTED if diff > 0 else CONTRADICTED
    return UNDECIDED


def _blocked(profile: str, clean: Mapping[str, float]) -> str | None:
    """Why a comparison of these networks cannot decide anything (None: it can)."""
    if profile == "smoke":
        return SMOKE_VERDICT
    low = [f"{a} ({100 * v:.1f}% clean)" for a, v in clean.items() if not v >= CHANCE_LEVEL and not math.isnan(v)]
    missing = [a for a, v in clean.items() if math.isnan(v)]
    if low:
        return "cannot decide: at chance: " + ", ".join(low)
    if missing:
        return "cannot decide: no clean accuracy for " + ", ".join(missing)
    return None


def _row(comparison, measured, est: Estimate | None, p, test, n, verdict, detail="", networks=()) -> dict:
    """One verdict row; `networks`: the activations it compares (a collapsed one makes it measure the collapse)."""
    scale = 100.0
    value, lo, hi = (math.nan,) * 3 if est is None else (est.value, est.lo, est.hi)
    return {
        "comparison": comparison,
        "measured": measured,
        "difference (pts)": scale * value,
        "lo (pts)": scale * lo,
        "hi (pts)": scale * hi,
        "p-value": p,
        "test": test,
        "n": n,
        "detail": detail,
        "verdict": verdict,
        "networks": tuple(networks),
    }


# -------------------------------------------------------------------------------- section 5.3 (AT)
def _per_example(step: Mapping | None) -> list[bool] | None:
    if not step:
        return None
    if step.get("per_example") is not None:
        return [bool(v) for v in step["per_example"]]
    if step.get("success_step") is not None:
        return [s == -1 for s in step["success_step"]]
    return None


def at_outcomes(res) -> dict[str, dict]:
    """Per activation (training order) what the tables and verdicts need, missing fields as NaN / None.

    Keys: clean, clean_n (test set, from the training run), robust, robust_n, robust_pe (per-image
    outcomes of PGD), thesis, thesis_n, thesis_pe (the thesis's evaluation), flipped_to_correct, model
    (the summary row), run (the training metrics, {} when absent).
    """
    s = res.settings or {}
    out = {}
    for m in (res.result or {}).get("models", []):
        act = m["activation"]
        run = _try(lambda act=act: res.run(act), {}) or {}
        clean = _num(m.get("clean_acc_train_eval", run.get("clean_acc")))
        clean_n = run.get("n_test") or s.get("test_subset") or TEST_SET
        pgd = _try(lambda act=act: res.step(f"pgd_{act}"))
        pe = _per_example(pgd)
        robust = sum(pe) / len(pe) if pe else _num(m.get("robust_acc"))
        robust_n = len(pe) if pe else m.get("n_eval")
        th = _try(lambda act=act: res.step(f"thesis_pgd_{act}"))
        tpe = _per_example(th)
        thesis = sum(tpe) / len(tpe) if tpe else _num((th or {}).get("robust_acc", m.get("thesis_robust_acc")))
        out[act] = {
            "clean": clean,
            "clean_n": clean_n,
            "robust": robust,
            "robust_n": robust_n,
            "robust_pe": pe,
            "thesis": thesis,
            "thesis_n": len(tpe) if tpe else (th or {}).get("n"),
            "thesis_pe": tpe,
            "flipped_to_correct": (th or {}).get("flipped_to_correct", m.get("thesis_flipped_to_correct")),
            "model": m,
            "run": run,
        }
    return out


class _RowSet:
    """The second row set of a fast-AT family (`ATSettings.thesis_lr_rows`), read as results of their own:
    `result["models"]` is that row set and every run and step name gets the row set's key suffix."""

    def __init__(self, res, models_key: str, suffix: str):
        self._res, self._suffix = res, suffix
        self.name, self.profile = res.name, res.profile
        self.summary = getattr(res, "summary", None)
        # the second row set has no ART cross-check and no iterations curve
        self.settings = {**(res.settings or {}), "curve_activations": [], "art_check_n": 0}
        self.result = {**(res.result or {}), "models": list((res.result or {}).get(models_key) or [])}

    def step(self, name: str):
        return self._res.step(name + self._suffix)

    def run(self, key: str):
        return self._res.run(key + self._suffix)

    def provenance(self) -> str:
        return self._res.provenance()


def thesis_lr_rows(res):
    """The models trained between the thesis's recorded bounds (a second row set), with the same interface as
    `res`, so every table and verdict of this module applies to them; None when the results have none."""
    from ..experiments.vgg import THESIS_LR_SUFFIX

    if not (res.result or {}).get("thesis_lr_models"):
        return None
    return _RowSet(res, "thesis_lr_models", THESIS_LR_SUFFIX)


def seed_outcomes(res, res_seeds=None) -> dict[str, dict[int, dict]]:
    """activation -> {training seed -> its outcomes (as `at_outcomes`)}: the base family's own models (its
    seed) and, with `res_seeds` (`resnet20_seeds` results), their repeats with other seeds."""
    base_seed = int((res.settings or {}).get("seed", 0))
    out = {act: {base_seed: o} for act, o in at_outcomes(res).items()}
    if res_seeds is None:
        return out
    for m in (res_seeds.result or {}).get("models", []):
        key, act, seed = m["key"], m["activation"], int(m["seed"])
        run = _try(lambda key=key: res_seeds.run(key), {}) or {}
        pe = _per_example(_try(lambda key=key: res_seeds.step(f"pgd_{key}")))
        tpe = _per_example(_try(lambda key=key: res_seeds.step(f"thesis_pgd_{key}")))
        out.setdefault(act, {})[seed] = {
            "clean": _num(m.get("clean_acc_train_eval", run.get("clean_acc"))),
            "clean_n": run.get("n_test") or TEST_SET,
            "robust": sum(pe) / len(pe) if pe else _num(m.get("robust_acc")),
            "robust_n": len(pe) if pe else m.get("n_eval"),
            "robust_pe": pe,
            "thesis": sum(tpe) / len(tpe) if tpe else _num(m.get("thesis_robust_acc")),
            "thesis_pe": tpe,
            "model": m,
            "run": run,
        }
    return out


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return math.nan, math.nan
    mean = sum(v) / len(v)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else math.nan
    return mean, sd


def seed_table(res, res_seeds=None):
    """Per activation with more than one training seed: mean and standard deviation over seeds (fractions) of
    clean accuracy (test set) and PGD robust accuracy (the same images for every run), and each seed's value.

    Columns: seeds, runs, clean_mean, clean_sd, robust_mean, robust_sd, thesis_mean, thesis_sd, clean_per_seed,
    robust_per_seed (text, in %). Empty without repeats.
    """
    import pandas as pd

    rows = []
    for act, by_seed in seed_outcomes(res, res_seeds).items():
        if len(by_seed) < 2:
            continue
        seeds = sorted(by_seed)
        row = {"activation": act, "seeds": ", ".join(str(k) for k in seeds), "runs": len(seeds)}
        for key in ("clean", "robust", "thesis"):
            row[f"{key}_mean"], row[f"{key}_sd"] = _mean_sd([by_seed[k][key] for k in seeds])
        for key in ("clean", "robust"):
            row[f"{key}_per_seed"] = " / ".join(f"{100 * by_seed[k][key]:.1f}" for k in seeds)
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation") if rows else pd.DataFrame()


def seed_display(table):
    """`seed_table` for reading: "mean ± SD" in percent per accuracy, and each seed's value."""
    import pandas as pd

    if not len(table):
        return table

    def cell(m, sd):
        return "n/a" if math.isnan(m) else f"{100 * m:.1f} ± {100 * sd:.1f}"

    return pd.DataFrame(
        {
            "seeds": table["seeds"],
            "clean (%), mean ± SD": [cell(m, sd) for m, sd in zip(table["clean_mean"], table["clean_sd"])],
            "clean per seed": table["clean_per_seed"],
            "robust (%), mean ± SD": [cell(m, sd) for m, sd in zip(table["robust_mean"], table["robust_sd"])],
            "robust per seed": table["robust_per_seed"],
        },
        index=table.index,
    )


def _seed_row(comparison, name_a, name_b, by_a, by_b, what, blocked, alpha: float = ALPHA) -> dict | None:
    """ "a beats b" over training seeds (None when fewer than two seeds have both): the per-seed differences
    (robust: paired on the same images; clean: test-set accuracies), their mean with a t interval over seeds
    and a one-sample t-test of mean 0 (the seed, not the image, is the unit: runs of one seed are not repeats)."""
    common = sorted(set(by_a) & set(by_b))
    diffs = [by_a[k][what] - by_b[k][what] for k in common]
    if len(common) < 2 or any(math.isnan(d) for d in diffs):
        return None
    from scipy import stats

    mean, sd = _mean_sd(diffs)
    k = len(diffs)
    if sd == 0:
        p = 0.0 if mean != 0 else 1.0
        half = 0.0
    else:
        se = sd / math.sqrt(k)
        p = float(2 * stats.t.sf(abs(mean) / se, k - 1))
        half = float(stats.t.ppf(1 - alpha / 2, k - 1)) * se
    est = Estimate(mean, mean - half, mean + half, 100, " pts")
    detail = "per seed " + ", ".join(f"{s}: {100 * d:+.1f}" for s, d in zip(common, diffs))
    verdict = _decide(mean, p, blocked, alpha)
    measured = f"{what} {name_a} - {name_b}"
    return _row(comparison, measured, est, p, _SEEDS, f"{k} seeds", verdict, detail, (name_a, name_b))


def _within_seed_spread(row: dict, by_seed: Mapping, what: str) -> dict:
    """A comparison decided on one training seed, while the repeats of one of its two networks spread over
    more than the measured difference: which seed was trained could explain the difference as well as the
    activation, so a verdict either way becomes "not distinguishable", and `measured` says why."""
    if row["verdict"] not in (SUPPORTED, CONTRADICTED) or math.isnan(row["difference (pts)"]):
        return row
    for act in row["networks"]:
        values = [r[what] for r in by_seed.get(act, {}).values() if not math.isnan(r[what])]
        if len(values) >= 2 and 100 * (max(values) - min(values)) >= abs(row["difference (pts)"]):
            spread = f"{100 * min(values):.1f}-{100 * max(values):.1f}%"
            row["measured"] += f" (one seed; {act}: {spread} over {len(values)} seeds)"
            row["verdict"] = UNDECIDED
            break
    return row


def _overfitting(model: Mapping, run: Mapping) -> dict | None:
    if "overfitting" in model:
        return model["overfitting"]
    hist = run.get("history") or []
    if not any(h.get("watch_pgd_acc") is not None for h in hist):
        return None
    from ..experiments.vgg import overfitting_watch

    return overfitting_watch(hist)


def _range_test_state(r) -> str:
    """ "not run", "failed: <why>", "flat: loss fell x%" (`training.FLAT_DROP`) or "ok"."""
    from ..training import FLAT_DROP, loss_drop

    if r is None:
        return "not run"
    if r.get("error"):
        return "failed: " + r["error"]
    drop = loss_drop(r["losses"])
    return f"flat: loss fell {100 * drop:.1f}%" if drop < FLAT_DROP else "ok"


def robustness_table(res, res_lr=None):
    """Section 5.3's table: one row per activation (index), accuracies as fractions.

    Columns: lr_min, lr_max, lr_source (and range_test: "ok", "flat: ..." or why it failed, with `res_lr`);
    clean (test set) with clean_lo, clean_hi (Wilson 95%), clean_n; robust (PGD of the profile, robust
    under every restart) with robust_lo, robust_hi, robust_n; thesis (the thesis's own evaluation on the
    same images) with thesis_lo, thesis_hi, thesis_n; thesis_minus_ours with _lo, _hi (paired) and
    flipped_to_correct; collapsed, watch_best, watch_best_epoch, watch_final (catastrophic-overfitting
    watch; NaN / None without one); train_min (training minutes); diverged (step or None).
    """
    import pandas as pd

    rows = []
    for act, o in at_outcomes(res).items():
        m, run = o["model"], o["run"]
        row = {"activation": act, "lr_min": _num(m.get("lr_min")), "lr_max": _num(m.get("lr_max"))}
        row["lr_source"] = m.get("lr_source")
        if res_lr is not None:
            r = _try(lambda act=act: res_lr.step(f"lr_find_{act}"))
            row["range_test"] = _range_test_state(r)
        for key in ("clean", "robust", "thesis"):
            lo, hi = _interval(o[key], o[f"{key}_n"])
            row.update({key: o[key], f"{key}_lo": lo, f"{key}_hi": hi, f"{key}_n": o[f"{key}_n"]})
        d = _paired(o["thesis_pe"], o["robust_pe"])
        row.update(
            thesis_minus_ours=d.value if d else math.nan,
            thesis_minus_ours_lo=d.lo if d else math.nan,
            thesis_minus_ours_hi=d.hi if d else math.nan,
            flipped_to_correct=o["flipped_to_correct"],
        )
        of = _overfitting(m, run) or {}
        row.update(
            collapsed=of.get("collapsed"),
            watch_best=_num(of.get("best")),
            watch_best_epoch=of.get("best_epoch"),
            watch_final=_num(of.get("final")),
        )
        secs = m.get("train_wall_time_s", run.get("wall_time_s"))
        row["train_min"] = _num(secs) / 60
        div = m.get("diverged", run.get("diverged"))
        row["diverged"] = div.get("step") if isinstance(div, Mapping) else None
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation") if rows else pd.DataFrame()


def _paired(a: list[bool] | None, b: list[bool] | None) -> Estimate | None:
    if not a or not b or len(a) != len(b):
        return None
    return paired_difference(a, b)


def _mcnemar_row(comparison, name_a, name_b, a, b, blocked, what="robust", alpha: float = ALPHA) -> dict:
    """Row for "a beats b" on paired per-image outcomes (None when either is missing)."""
    measured, nets = f"{what} {name_a} - {name_b}", (name_a, name_b)
    if not a or not b:
        verdict = blocked or "cannot decide: not measured"
        return _row(comparison, measured, None, math.nan, _MCNEMAR, None, verdict, networks=nets)
    if len(a) != len(b):
        verdict = blocked or "cannot decide: different images"
        return _row(comparison, measured, None, math.nan, _MCNEMAR, None, verdict, networks=nets)
    est = paired_difference(a, b)
    t = mcnemar_exact(a, b)
    detail = f"{name_a} only {t['a_only']}, {name_b} only {t['b_only']}"
    verdict = _decide(est.value, t["p_value"], blocked, alpha)
    return _row(comparison, measured, est, t["p_value"], _MCNEMAR, t["n"], verdict, detail, nets)


def _blocked_over_seeds(profile: str, o: Mapping, by_seed: Mapping, acts) -> str | None:
    """`_blocked`, where every seed's network must have learnt the task (the lowest clean accuracy decides)."""
    lowest = {a: min((r["clean"] for r in by_seed.get(a, {}).values()), default=o[a]["clean"]) for a in acts}
    return _blocked(profile, lowest)


def _paired_verdict(profile: str, o: Mapping, by_seed: Mapping, comparison: str, a: str, b: str, alpha: float) -> dict:
    """ "a more robust than b": over the training seeds both have (`_seed_row`), else McNemar's test on the
    base seed's images, not distinguishable when one side's repeats spread wider (`_within_seed_spread`)."""
    blocked = _blocked_over_seeds(profile, o, by_seed, (a, b))
    seeded = _seed_row(comparison, a, b, by_seed.get(a, {}), by_seed.get(b, {}), "robust", blocked, alpha)
    if seeded is not None:
        return seeded
    row = _mcnemar_row(comparison, a, b, o[a]["robust_pe"], o[b]["robust_pe"], blocked, alpha=alpha)
    return _within_seed_spread(row, by_seed, "robust")


def robust_comparison(res, comparison: str, a: str, b: str, res_seeds=None, alpha: float = ALPHA) -> dict:
    """One verdict row "`a` more robust than `b`" as `robustness_verdicts` decides it (seeds where they exist)."""
    by_seed = seed_outcomes(res, res_seeds) if res_seeds is not None else {}
    return _paired_verdict(res.profile, at_outcomes(res), by_seed, comparison, a, b, alpha)


def robustness_verdicts(res, claimed_best: str | None = None, alpha: float = ALPHA, res_seeds=None):
    """The thesis's comparisons of section 5.3, one row each (see the module docstring for the rules).

    Rows: which activation is most robust (the best by PGD robust accuracy against the runner-up, or
    against `claimed_best` when given); KAF more robust than ReLU, and each KAF variant than its fixed
    counterpart (`KAF_COUNTERPARTS`); each KAF's clean accuracy against ReLU's; per model, the thesis's
    evaluation against ours on the same images ("the evaluation choice moves robust accuracy": this one is
    two-sided, and is not blocked by a network at chance, since it is a property of the evaluation).
    Columns: comparison, measured, difference (pts), lo (pts), hi (pts), p-value, test, n, detail, verdict.

    With `res_seeds` (repeats of some models with other training seeds), a comparison of two activations
    that both have several seeds is decided over the seeds instead (`_seed_row`: mean per-seed difference,
    t interval and t-test over seeds), since the seed-to-seed spread is then part of the question. One
    decided on a single seed is not distinguishable when one side's repeats spread over more than the
    measured difference (`_within_seed_spread`).
    """
    import pandas as pd

    o = at_outcomes(res)
    by_seed = seed_outcomes(res, res_seeds) if res_seeds is not None else {}
    rows = []

    def blocked(*acts):
        return _blocked_over_seeds(res.profile, o, by_seed, acts)

    def paired(comparison, a, b):
        return _paired_verdict(res.profile, o, by_seed, comparison, a, b, alpha)

    # which activation is most robust
    ranked = [a for a in o if not math.isnan(o[a]["robust"])]
    ranked.sort(key=lambda a: -o[a]["robust"])  # stable: ties keep the training order
    if len(ranked) >= 2:
        best = ranked[0]
        if claimed_best in o and claimed_best != best:
            # the thesis's pick is not the measured best: is the best significantly ahead of it?
            rival, comparison = claimed_best, f"most robust activation: {claimed_best} (the thesis's pick)"
        else:
            rival, comparison = ranked[1], f"most robust activation: {best}"
        r = paired(comparison, best, rival)
        r["measured"] += " (runner-up)" if rival == ranked[1] else ""
        if rival == claimed_best and r["verdict"] == SUPPORTED:
            r["verdict"] = CONTRADICTED  # another activation is significantly more robust than the claimed one
        rows.append(r)
    # KAF more robust than its fixed counterpart
    for kaf, fixed in KAF_COUNTERPARTS.items():
        if kaf in o and fixed in o:
            rows.append(paired(f"{kaf} more robust than {fixed}", kaf, fixed))
    # KAFs raise clean accuracy over ReLU
    if "relu" in o:
        r0 = o["relu"]
        for kaf in (a for a in o if a.startswith("kaf")):
            comparison = f"{kaf} raises clean accuracy over relu"
            seeded = _seed_row(
                comparison,
                kaf,
                "relu",
                by_seed.get(kaf, {}),
                by_seed.get("relu", {}),
                "clean",
                blocked(kaf, "relu"),
                alpha,
            )
            if seeded is not None:
                rows.append(seeded)
                continue
            k = o[kaf]
            est = _newcombe(k["clean"], k["clean_n"], r0["clean"], r0["clean_n"])
            p = two_proportion_p(k["clean"], k["clean_n"], r0["clean"], r0["clean_n"])
            n = f"{k['clean_n']} / {r0['clean_n']}"
            verdict = _decide(est.value, p, blocked(kaf, "relu"), alpha)
            row = _row(comparison, f"clean {kaf} - relu", est, p, _NEWCOMBE, n, verdict, networks=(kaf, "relu"))
            rows.append(_within_seed_spread(row, by_seed, "clean"))
    # the evaluation choice moves robust accuracy (two-sided)
    for act, v in o.items():
        comparison = f"the evaluation choice moves robust accuracy ({act})"
        smoke = SMOKE_VERDICT if res.profile == "smoke" else None
        r = _mcnemar_row(comparison, "thesis", "ours", v["thesis_pe"], v["robust_pe"], smoke, alpha=alpha)
        r["measured"], r["networks"] = f"{act}: thesis protocol - ours", (act,)
        if r["verdict"] == CONTRADICTED:
            r["verdict"] = SUPPORTED  # two-sided claim: a significant move either way supports it
        if v["flipped_to_correct"] is not None:
            r["detail"] += f"; flipped to correct {v['flipped_to_correct']}"
        rows.append(r)
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def evaluation_table(res):
    """Per model: our PGD vs the thesis's evaluation on the same images (fractions), and what moved.

    Columns: n, ours, thesis, thesis_clean_and_adv (the thesis's number counting only images also
    correct clean), flipped_to_correct (wrong clean, right after the label-free attack), attack_success_rate
    (the thesis's restart-selection score), kept_restart (the restart kept for the whole set).
    """
    import pandas as pd

    rows = []
    for act, o in at_outcomes(res).items():
        th = _try(lambda act=act: res.step(f"thesis_pgd_{act}")) or {}
        kept = th.get("kept_restart")
        rows.append(
            {
                "activation": act,
                "n": o["robust_n"],
                "ours": o["robust"],
                "thesis": o["thesis"],
                "thesis_clean_and_adv": _num(th.get("robust_acc_clean_and_adv")),
                "flipped_to_correct": th.get("flipped_to_correct"),
                "attack_success_rate": _num(th.get("attack_success_rate")),
                "kept_restart": ", ".join(str(k) for k in kept) if isinstance(kept, list) else kept,
            }
        )
    return pd.DataFrame(rows).set_index("activation") if rows else pd.DataFrame()


def art_crosscheck_table(res):
    """The cross-check of our thesis-protocol PGD against the installed ART (empty without one)."""
    import pandas as pd

    rows = []
    for act in (res.settings or {}).get("activations", []):
        r = _try(lambda act=act: res.step(f"art_crosscheck_{act}"))
        if r:
            rows.append(
                {
                    "activation": act,
                    "n": r.get("n"),
                    "ART version": r.get("art_version"),
                    "same outcome": _num(r.get("same_outcome")),
                    "max |pixel diff|": _num(r.get("max_abs_pixel_diff")),
                    "ours robust acc": _num(r.get("ours_robust_acc")),
                    "ART robust acc": _num(r.get("art_robust_acc")),
                }
            )
    return pd.DataFrame(rows).set_index("activation") if rows else pd.DataFrame()


def iterations_table(res):
    """Robust accuracy vs PGD iterations (tidy: activation, iterations, robust_acc, lo, hi, n); empty without."""
    import pandas as pd

    rows = []
    for act in (res.settings or {}).get("curve_activations", []) or []:
        curve = _try(lambda act=act: res.step(f"pgd_iterations_{act}")) or []
        for r in curve:
            acc, n = _num(r.get("robust_acc")), r.get("n")
            lo, hi = _interval(acc, n)
            rows.append(
                {"activation": act, "iterations": r.get("iterations"), "robust_acc": acc, "lo": lo, "hi": hi, "n": n}
            )
    return pd.DataFrame(rows, columns=["activation", "iterations", "robust_acc", "lo", "hi", "n"])


def range_tests(res_lr) -> dict[str, dict]:
    """activation -> its stored range test (lrs, losses, raw_losses, lr_min, lr_max, error); {} for a missing one."""
    return {a: _try(lambda a=a: res_lr.step(f"lr_find_{a}"), {}) or {} for a in res_lr.settings.get("activations", [])}


def histories(res, keys: Iterable[str] | None = None) -> dict[str, list]:
    """Training history (per-epoch dicts) of each run: `keys` (default: the activations of an AT family);
    a run without a stored history is left out."""
    keys = list(keys) if keys is not None else list((res.settings or {}).get("activations", []))
    out = {}
    for k in keys:
        h = _try(lambda k=k: res.run(k)["history"])
        if h:
            out[k] = h
    return out


def watch_label(res) -> str:
    """What the catastrophic-overfitting watch measures, from the training runs: "PGD-10 accuracy on 512
    training images" ("PGD accuracy on the watch images" when no run says)."""
    for act in (res.settings or {}).get("activations", []):
        run = _try(lambda act=act: res.run(act), {}) or {}
        n = run.get("n_watch")
        if n:
            steps = (run.get("config") or {}).get("watch_pgd_steps", 10)
            return f"PGD-{steps} accuracy on {int(n):,} training images"
    return "PGD accuracy on the watch images"


def convergence_table(res, at: int | None = None):
    """Has PGD converged? Per curve activation: robust accuracy at `at` iterations (default: the
    evaluation's PGD steps) and at the most iterations measured, the drop between them (pts) and the
    images broken only after `at` (one run: the curve can only fall). Empty without curves."""
    import pandas as pd

    curves = iterations_table(res)
    if curves.empty:
        return pd.DataFrame()
    at = at or ((res.settings or {}).get("pgd") or {}).get("steps") or 50
    rows = []
    for act, c in curves.groupby("activation", sort=False):
        c = c.sort_values("iterations")
        upto = c[c["iterations"] <= at]
        if upto.empty:
            continue
        a, last = upto.iloc[-1], c.iloc[-1]
        n = last["n"]
        rows.append(
            {
                "activation": act,
                "n": n,
                f"robust at {int(a['iterations'])} (%)": 100 * a["robust_acc"],
                f"robust at {int(last['iterations'])} (%)": 100 * last["robust_acc"],
                "drop (pts)": 100 * (a["robust_acc"] - last["robust_acc"]),
                "images broken later": round((a["robust_acc"] - last["robust_acc"]) * n) if n else None,
            }
        )
    return pd.DataFrame(rows).set_index("activation") if rows else pd.DataFrame()


# ---------------------------------------------------------------------- section 5.2 (standard)
_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
GROUPS = ("stem", "stage 1", "stage 2", "stage 3", "dense")


def layer_group(param: str, n_blocks: int) -> str:
    """The group of a parameter or module: stem, stage 1 to 3 (blocks split in thirds), dense (classifier) or other."""
    if param.startswith("stem"):
        return "stem"
    if param.startswith("fc") or param.startswith("dense") or param.startswith("classifier"):
        return "dense"
    m = _BLOCK.search(param)
    if m and n_blocks >= 3:
        return f"stage {min(3, int(m[1]) * 3 // n_blocks + 1)}"
    return "other"


def _n_blocks(params: Sequence[str]) -> int:
    idx = [int(m[1]) for p in params if (m := _BLOCK.search(p))]
    return max(idx) + 1 if idx else 0


def init_gradient_norms(norms: Mapping | None) -> dict[str, float]:
    """Largest gradient L2 norm per layer group at the first logged step (initialisation); NaN / inf kept.

    norms: the stored `norms_<key>` step ({params, steps, grad: per step a norm per param}).
    """
    if not norms or not norms.get("steps") or not norms.get("grad"):
        return {}
    params = norms["params"]
    nb = _n_blocks(params)
    groups: dict[str, list[float]] = {}
    for name, g in zip(params, norms["grad"][0]):
        if g is not None:  # None: the parameter had no gradient at that step
            groups.setdefault(layer_group(name, nb), []).append(_num(g))
    out = {}
    for group, values in groups.items():
        bad = [v for v in values if not math.isfinite(v)]
        out[group] = (math.inf if math.inf in bad else bad[0]) if bad else max(values)
    return out


def zero_gradient_layers(norms: Mapping | None) -> list[int]:
    """Layers (forward order, 0 = stem) whose gradient norm is exactly 0 at every logged step after the
    first: layers that stopped learning after the first update (a dead network rather than a NaN one).

    norms: the stored `norms_<key>` step, as for `init_gradient_norms`; [] with fewer than two steps.
    """
    if not norms or len(norms.get("grad") or []) < 2:
        return []
    later = norms["grad"][1:]
    return [i for i in range(len(norms["params"])) if all(g[i] is not None and g[i] == 0 for g in later)]


def _std_runs(res) -> list[dict]:
    s = res.settings or {}
    out = []
    for m in (res.result or {}).get("models", []):
        key = f"{m['arch']}_{m['activation']}"
        run = _try(lambda key=key: res.run(key), {}) or {}
        n = run.get("n_test") or s.get("test_subset") or TEST_SET
        div = m.get("diverged", run.get("diverged"))
        out.append(
            {
                "key": key,
                "arch": m["arch"],
                "activation": m["activation"],
                "clean": _num(m.get("clean_acc", run.get("clean_acc"))),
                "clean_n": n,
                "best": _num(m.get("best_test_acc")),
                "epochs": m.get("epochs_done", run.get("epochs_done")),
                "diverged": div if isinstance(div, Mapping) else None,
                "norms": _try(lambda key=key: res.step(f"norms_{key}")),
            }
        )
    return out


def exploding_table(res):
    """Section 5.2's table: one row per run, index (model, activation), accuracies as fractions.

    Columns: clean, clean_lo, clean_hi (Wilson 95%), clean_n; best_test_acc; epochs; diverged_step,
    diverged_layer, diverged_quantity (None when the run stayed finite); grad_init_<group> for the
    groups of `layer_group` (largest gradient norm of the group's kernels at the first iteration);
    zero_grad_layers (how many layers `zero_gradient_layers` finds), zero_grad_first / _last (the first
    and last of them), layers (how many were logged).
    """
    import pandas as pd

    rows = []
    for r in _std_runs(res):
        lo, hi = _interval(r["clean"], r["clean_n"])
        d = r["diverged"] or {}
        row = {
            "model": r["arch"],
            "activation": r["activation"],
            "clean": r["clean"],
            "clean_lo": lo,
            "clean_hi": hi,
            "clean_n": r["clean_n"],
            "best_test_acc": r["best"],
            "epochs": r["epochs"],
            "diverged_step": d.get("step"),
            "diverged_layer": d.get("layer"),
            "diverged_quantity": d.get("quantity"),
        }
        g = init_gradient_norms(r["norms"])
        for group in GROUPS:
            row[f"grad_init_{group}"] = g.get(group, math.nan)
        zero = zero_gradient_layers(r["norms"])
        row["zero_grad_layers"] = len(zero)
        row["zero_grad_first"], row["zero_grad_last"] = (zero[0], zero[-1]) if zero else (None, None)
        row["layers"] = len((r["norms"] or {}).get("params") or [])
        rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "activation"]) if rows else pd.DataFrame()


def _trains(r: Mapping) -> bool:
    lo, _ = _interval(r["clean"], r["clean_n"])
    return r["diverged"] is None and lo > CHANCE_LEVEL


def _fails(r: Mapping) -> bool:
    _, hi = _interval(r["clean"], r["clean_n"])
    return r["diverged"] is not None or hi < CHANCE_LEVEL


def _std_state(r: Mapping) -> str:
    lo, hi = _interval(r["clean"], r["clean_n"])
    where = ""
    if r["diverged"]:
        d = r["diverged"]
        where = f", diverged at step {d.get('step')} ({d.get('quantity')} in {d.get('layer')})"
    return f"{r['arch']} {r['activation']}: {100 * r['clean']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]{where}"


def exploding_verdicts(res, deep: str = "resnet56", shallow: str = "resnet20"):
    """Section 5.2's claims, one row each (columns as `robustness_verdicts`).

    - "KAF-ResNet-56 fails to train while ReLU-ResNet-56 trains": supported when the KAF network
      diverged or its clean accuracy's 95% interval lies below CHANCE_LEVEL while the ReLU network did
      not diverge and its interval lies above it; contradicted when the KAF network trains by the same
      rule; otherwise not distinguishable (or cannot decide when the ReLU network does not train either).
      The difference shown is ReLU's clean accuracy minus KAF's (Newcombe, z-test).
    - "KAF-ResNet-20 trains" (the failure needs depth): supported / contradicted by the same rules.
    """
    import pandas as pd

    runs = {(r["arch"], r["activation"]): r for r in _std_runs(res)}
    rows = []
    kaf, relu = runs.get((deep, "kaf")), runs.get((deep, "relu"))
    depth = deep.replace("resnet", "ResNet-")
    comparison = f"KAF-{depth} fails to train while ReLU-{depth} trains"
    if kaf and relu:
        est = _newcombe(relu["clean"], relu["clean_n"], kaf["clean"], kaf["clean_n"])
        p = two_proportion_p(relu["clean"], relu["clean_n"], kaf["clean"], kaf["clean_n"])
        if res.profile == "smoke":
            verdict = SMOKE_VERDICT
        elif not _trains(relu):
            verdict = f"cannot decide: ReLU-{depth} does not train either"
        elif _fails(kaf):
            verdict = SUPPORTED
        elif _trains(kaf):
            verdict = CONTRADICTED
        else:
            verdict = UNDECIDED
        detail = f"{_std_state(relu)}; {_std_state(kaf)}"
        n = f"{relu['clean_n']} / {kaf['clean_n']}"
        rows.append(_row(comparison, f"clean relu - kaf ({deep})", est, p, _NEWCOMBE, n, verdict, detail))
    k20 = runs.get((shallow, "kaf"))
    if k20:
        lo, hi = _interval(k20["clean"], k20["clean_n"])
        est = Estimate(k20["clean"] - CHANCE_LEVEL, lo - CHANCE_LEVEL, hi - CHANCE_LEVEL, 100, " pts")
        if res.profile == "smoke":
            verdict = SMOKE_VERDICT
        else:
            verdict = SUPPORTED if _trains(k20) else CONTRADICTED if _fails(k20) else UNDECIDED
        shallow_label = shallow.replace("resnet", "ResNet-")
        measured = f"clean kaf ({shallow}) - {100 * CHANCE_LEVEL:.0f}%"
        rows.append(
            _row(
                f"KAF-{shallow_label} trains",
                measured,
                est,
                math.nan,
                "Wilson interval",
                k20["clean_n"],
                verdict,
                _std_state(k20),
            )
        )
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


# ------------------------------------------------------------------------------------ display
def format_intervals(df, columns: Mapping[str, str], digits: int = 1, percent: bool = True):
    """A display copy of `df`: each `base` of `columns` (with `base_lo`, `base_hi`, optionally `base_n`)
    becomes one column `columns[base]` of strings "v [lo, hi]"; the other columns are kept.

    A constant `base_n` goes into the header ("label, n = 1,000"), a varying one into each cell.
    """
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    used = set()
    for col in df.columns:
        if col in used:
            continue
        if col in columns:
            base, label = col, columns[col]
            lo, hi, ncol = f"{base}_lo", f"{base}_hi", f"{base}_n"
            used.update({base, lo, hi, ncol})
            ns = list(df[ncol]) if ncol in df.columns else []
            const = len({str(v) for v in ns}) == 1
            if ns and const and ns[0] not in (None, "") and not (isinstance(ns[0], float) and math.isnan(ns[0])):
                label = f"{label}, n = {int(ns[0]):,}"
            scale = 100.0 if percent else 1.0
            cells = []
            for i in range(len(df)):
                v = _num(df[base].iloc[i])
                lo_v = _num(df[lo].iloc[i]) if lo in df.columns else math.nan
                hi_v = _num(df[hi].iloc[i]) if hi in df.columns else math.nan
                if math.isnan(v):
                    cells.append("--")
                    continue
                cell = f"{scale * v:.{digits}f}"
                if not math.isnan(lo_v):
                    cell += f" [{scale * lo_v:.{digits}f}, {scale * hi_v:.{digits}f}]"
                if ns and not const:
                    cell += f" (n={ns[i]})"
                cells.append(cell)
            out[label] = cells
        elif not any(col == f"{b}{s}" for b in columns for s in ("_lo", "_hi", "_n")):
            out[col] = df[col]
    return out


def collapsed_activations(table) -> list[str]:
    """The activations of a `robustness_table` whose overfitting watch says they collapsed."""
    if "collapsed" not in getattr(table, "columns", ()):
        return []
    return [a for a, c in table["collapsed"].items() if c is True or c == 1]


def failed_runs(table) -> dict[str, str]:
    """How each failed network of a `robustness_table` failed, by activation: "diverged at step N" when a
    non-finite gradient stopped its training, else "overfitted catastrophically" when its overfitting watch
    collapsed. A comparison with a failed network measures the failure, not the activation."""
    if not len(getattr(table, "columns", ())):
        return {}
    collapsed, out = set(collapsed_activations(table)), {}
    for act in table.index:
        step = _num(table.loc[act, "diverged"]) if "diverged" in table.columns else math.nan
        if not math.isnan(step):
            out[act] = f"diverged at step {int(step)}"
        elif act in collapsed:
            out[act] = "overfitted catastrophically"
    return out


def verdict_lines(verdicts, failed: Mapping[str, str] | None = None) -> list[str]:
    """The verdict table as sentences: "- <comparison>: <measured> = +1.2 pts [-0.5, +2.9], p = 0.21: <verdict>.".

    `failed`: how the failed networks failed (`failed_runs`); a comparison involving one (its row's
    `networks`) says so, since it then measures the failure rather than the activation.
    """
    failed = dict(failed or {})
    lines = []
    for comparison, r in verdicts.iterrows():
        d, lo, hi, p = (r["difference (pts)"], r["lo (pts)"], r["hi (pts)"], r["p-value"])
        num = "not measured" if math.isnan(d) else f"{d:+.1f} pts"
        if not math.isnan(d) and not math.isnan(lo):
            num += f" [{lo:+.1f}, {hi:+.1f}]"
        if not math.isnan(_num(p)):
            num += f", p = {format_p(p)}".replace("= <", "< ")
        hit = [a for a in sorted(failed) if a in set(r.get("networks") or ())]
        how = "; ".join(f"{a} {failed[a]}" for a in hit)
        caveat = f" ({how}: this measures the failed run)" if hit else ""
        lines.append(f"- {comparison}: {r['measured']} = {num}: **{r['verdict']}**{caveat}.")
    return lines


def format_p(p) -> str:
    """A p-value for tables and sentences: 2 significant digits, "<0.0001" below that, "--" when not tested."""
    p = _num(p)
    if math.isnan(p):
        return "--"
    return "<0.0001" if p < 1e-4 else f"{p:.2g}"


def _pct_cell(v, digits: int = 1) -> str:
    v = _num(v)
    return "--" if math.isnan(v) else f"{100 * v:.{digits}f}"


def robustness_display(table, attack: str = "PGD"):
    """`robustness_table` for reading and for LaTeX: accuracies in percent with their 95% intervals, one
    column each, the watch as "best (epoch) / final", times in minutes; constant n in the headers."""
    cols = {
        "clean": "clean, test set (%)",
        "robust": f"{attack} (%)",
        "thesis": "thesis protocol (%)",
        "thesis_minus_ours": "thesis - ours (pts)",
    }
    keep = ["lr_min", "lr_max", "lr_source", *[c for c in table.columns if c.split("_")[0] in ("clean", "robust")]]
    keep += [c for c in table.columns if c.startswith("thesis")]
    out = format_intervals(table[keep], cols)
    for col in ("lr_min", "lr_max"):
        out[col] = ["--" if math.isnan(_num(v)) else f"{v:.3g}" for v in table[col]]
    if "range_test" in table.columns:  # a flat sweep's bounds are poorly determined: say so where they are used
        flat = table["range_test"].astype(str).str.startswith("flat") & (table["lr_source"] == "range_test")
        out.loc[flat, "lr_source"] = "range_test (flat)"
    out = out.rename(columns={"lr_source": "bounds from"})
    watch = []
    for _, r in table.iterrows():
        if math.isnan(_num(r.get("watch_best"))):
            watch.append("--")
            continue
        flag = ", collapsed" if r.get("collapsed") else ""
        epoch = r.get("watch_best_epoch")
        watch.append(f"{_pct_cell(r['watch_best'])} (ep {epoch}) / {_pct_cell(r['watch_final'])}{flag}")
    out["watch: best / final (%)"] = watch
    out["training (min)"] = [round(v, 1) if not math.isnan(v) else math.nan for v in table["train_min"]]
    out["diverged at step"] = table["diverged"].tolist()
    return out


def exploding_display(table):
    """`exploding_table` for reading and for LaTeX: clean accuracy with its 95% interval, where a run
    diverged, and the largest gradient norm at initialisation per layer group (3 significant digits)."""
    base = table[["clean", "clean_lo", "clean_hi", "clean_n"]]
    out = format_intervals(base, {"clean": "clean acc (%)"})
    out["best test acc (%)"] = [_pct_cell(v) for v in table["best_test_acc"]]
    out["epochs"] = table["epochs"].tolist()
    for col, src in (
        ("diverged at step", "diverged_step"),
        ("first non-finite", "diverged_quantity"),
        ("in layer", "diverged_layer"),
    ):
        out[col] = [
            "--" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in table[src]
        ]  # stayed finite
    for g in GROUPS:
        vals = table.get(f"grad_init_{g}")
        if vals is not None and not vals.isna().all():
            out[f"init grad: {g}"] = [f"{v:.3g}" if not math.isnan(_num(v)) else "--" for v in vals]
    if "zero_grad_layers" in table.columns:
        out["zero-grad layers"] = [
            f"{int(z)} of {int(n)}" if n else "--" for z, n in zip(table["zero_grad_layers"], table["layers"])
        ]
    return out


def verdicts_display(verdicts, detail: bool = False):
    """A verdict table for reading and for LaTeX: difference with its 95% interval in one column, p-value
    with 2 significant digits; `detail`: keep the discordant counts / states column."""
    import pandas as pd

    out = pd.DataFrame(index=verdicts.index)
    out["measured"] = verdicts["measured"]
    cells = []
    for _, r in verdicts.iterrows():
        d, lo, hi = _num(r["difference (pts)"]), _num(r["lo (pts)"]), _num(r["hi (pts)"])
        cell = "--" if math.isnan(d) else f"{d:+.1f}"
        if not math.isnan(d) and not math.isnan(lo):
            cell += f" [{lo:+.1f}, {hi:+.1f}]"
        cells.append(cell)
    out["difference, 95% CI (pts)"] = cells
    out["p-value"] = [format_p(p) for p in verdicts["p-value"]]
    out["test"] = verdicts["test"]
    out["n"] = verdicts["n"]
    if detail:
        out["detail"] = verdicts["detail"]
    out["verdict"] = verdicts["verdict"]
    return out


def verdict_counts(verdicts) -> str:
    """One sentence: how many comparisons came out each way (and how many could not decide)."""
    v = list(verdicts["verdict"]) if len(verdicts) else []
    n = {k: sum(1 for x in v if x == k) for k in (SUPPORTED, CONTRADICTED, UNDECIDED)}
    other = len(v) - sum(n.values())
    text = (
        f"{len(v)} comparisons at significance level {ALPHA}: {n[SUPPORTED]} supported, "
        f"{n[CONTRADICTED]} contradicted, {n[UNDECIDED]} not distinguishable at this scale"
    )
    return text + (
        f", {other} undecidable by this run ({sorted(set(x for x in v if x not in n))[0]})." if other else "."
    )


def init_gradient_lines(table) -> list[str]:
    """Per run of `exploding_table`: its largest finite gradient norm at initialisation, the layer group
    holding it, the groups with an infinite norm (a NaN in the table reads as "not stored"), and the
    layers that got only zero gradients after the first update."""
    lines = []
    for (arch, act), r in table.iterrows():
        vals = {g: _num(r.get(f"grad_init_{g}")) for g in GROUPS}
        finite = {g: v for g, v in vals.items() if math.isfinite(v)}
        inf = [g for g, v in vals.items() if math.isinf(v)]
        if not finite and not inf:
            lines.append(f"- {arch} {act}: no gradient norms stored.")
            continue
        parts = []
        if finite:
            top = max(finite, key=finite.get)
            parts.append(f"largest gradient norm at initialisation {finite[top]:.3g} ({top})")
        if inf:
            parts.append("infinite in " + ", ".join(inf))
        if r.get("zero_grad_layers"):
            k, first, last = int(r["zero_grad_layers"]), int(r["zero_grad_first"]), int(r["zero_grad_last"])
            where = f"layers {first}-{last}" if last - first + 1 == k else f"{k} layers between {first} and {last}"
            parts.append(
                f"after the first update, {where} ({k} of {int(r['layers'])}) get exactly zero gradient at "
                "every logged step: they stopped learning"
            )
        lines.append(f"- {arch} {act}: " + "; ".join(parts) + ".")
    return lines


# ------------------------------------------------------------------------- chapter 6: the ResNet-56 fix
def _fix_rows(res_fix, res_std) -> list[dict]:
    """The unfixed KAF ResNet-56 and the ReLU ResNet-56 of `res_std` (section 5.2's runs) and the best fix
    retrained with the same recipe (`res_fix.result["final"]`), as `_std_runs` rows with a `run` label."""
    std = {r["key"]: r for r in _std_runs(res_std)} if res_std is not None else {}
    final = (res_fix.result or {}).get("final")
    rows = []
    if "resnet56_kaf" in std:
        rows.append({**std["resnet56_kaf"], "run": "kaf (no fix)"})
    if final:
        key = final["key"]
        run = _try(lambda: res_fix.run(key), {}) or {}
        div = final.get("diverged", run.get("diverged"))
        rows.append(
            {
                "key": key,
                "run": f"kaf + {final['candidate']}",
                "clean": _num(final.get("clean_acc")),
                "clean_n": final.get("n_test") or run.get("n_test") or TEST_SET,
                "best": _num(final.get("best_test_acc")),
                "epochs": run.get("epochs_done", final.get("epochs")),
                "diverged": div if isinstance(div, Mapping) else None,
                "norms": _try(lambda: res_fix.step(f"norms_{key}")),
            }
        )
    if "resnet56_relu" in std:
        rows.append({**std["resnet56_relu"], "run": "relu"})
    return rows


def fix_table(res_fix, res_std):
    """ResNet-56 under section 5.2's recipe: no fix, the best fix of the ablation, ReLU; index run.

    Columns: clean, clean_lo, clean_hi (Wilson 95%), clean_n, best_test_acc, epochs, diverged_step and
    grad_init_<group> (largest gradient norm of the group's kernels at the first iteration). Empty when the
    profile has no final run.
    """
    import pandas as pd

    if not (res_fix.result or {}).get("final"):
        return pd.DataFrame()
    rows = []
    for r in _fix_rows(res_fix, res_std):
        lo, hi = _interval(r["clean"], r["clean_n"])
        row = {"run": r["run"], "clean": r["clean"], "clean_lo": lo, "clean_hi": hi, "clean_n": r["clean_n"]}
        row.update(best_test_acc=r["best"], epochs=r["epochs"], diverged_step=(r["diverged"] or {}).get("step"))
        row.update({f"grad_init_{g}": v for g, v in init_gradient_norms(r["norms"]).items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def fix_verdicts(res_fix, res_std, margin: float = NONINFERIORITY_MARGIN, alpha: float = ALPHA):
    """Does the best fix train the KAF ResNet-56, and does it reach the ReLU ResNet-56 of the same budget?

    Rows: "the fix trains better than no fix" (Newcombe interval, z-test; the thesis's direction: higher);
    "the fix reaches ReLU-ResNet-56's clean accuracy": non-inferiority with `margin`: supported when the
    95% interval of fix - relu lies above -margin, contradicted when it lies below it, else undecided.
    """
    import pandas as pd

    rows = {r["run"]: r for r in _fix_rows(res_fix, res_std)}
    fixed = next((r for k, r in rows.items() if k.startswith("kaf + ")), None)
    if fixed is None:
        return pd.DataFrame()
    out = []
    if "kaf (no fix)" in rows:
        o = rows["kaf (no fix)"]
        est = _newcombe(fixed["clean"], fixed["clean_n"], o["clean"], o["clean_n"])
        p = two_proportion_p(fixed["clean"], fixed["clean_n"], o["clean"], o["clean_n"])
        verdict = _decide(est.value, p, SMOKE_VERDICT if res_fix.profile == "smoke" else None, alpha)
        comparison = "the fix trains the KAF ResNet-56 better than no fix"
        out.append(_row(comparison, f"clean {fixed['run']} - kaf (no fix)", est, p, _NEWCOMBE, None, verdict))
    if "relu" in rows:
        o = rows["relu"]
        est = _newcombe(fixed["clean"], fixed["clean_n"], o["clean"], o["clean_n"])
        p = two_proportion_p(fixed["clean"], fixed["clean_n"], o["clean"], o["clean_n"])
        blocked = _blocked(res_fix.profile, {"relu": o["clean"]})
        if blocked:
            verdict = blocked
        elif math.isnan(est.lo):
            verdict = "cannot decide: not measured"
        elif est.lo > -margin:
            verdict = SUPPORTED
        elif est.hi < -margin:
            verdict = CONTRADICTED
        else:
            verdict = UNDECIDED
        comparison = f"the fix reaches ReLU-ResNet-56's clean accuracy (within {100 * margin:.0f} pts)"
        test = f"Newcombe interval vs margin -{100 * margin:.0f} pts"
        out.append(_row(comparison, f"clean {fixed['run']} - relu", est, p, test, None, verdict))
    return pd.DataFrame(out).set_index("comparison") if out else pd.DataFrame()
