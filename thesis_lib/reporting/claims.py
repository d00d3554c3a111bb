"""Every claim of the thesis (its text and docs/protocol.md), each with a verdict computed from the stored results.

A `Claim` names its thesis section, its wording, the experiment(s) it rests on and where the evidence
is shown (a notebook and the figures / tables it saves). `evaluate_claims(results_dir)` loads, per
experiment, the largest profile with complete results (smoke < cpu < full, `select_results`) and
judges each claim with the project's existing statistics:

- chapter 4 (light CNNs): `observations.from_results` (95% intervals of the chapter's observations),
  the gradient-masking reports (`gradient_masking_<act>` steps of `light_cnn`);
- section 3.1: the k-WTA line scans (`kwta_line`: confirmed jumps per line);
- sections 5.1 and 5.3 (fast AT): `chapter5.robustness_verdicts` and, for comparisons it does not make
  (smooth fixed activations against ReLU, the best KAF against the best fixed activation), the same
  paired McNemar rows (`chapter5._mcnemar_row`) with the same blocking rules;
- section 5.2: `chapter5.exploding_verdicts` and `chapter5.exploding_table`;
- chapter 6: AutoAttack against PGD on the same images (`autoattack`, `autoattack_light_cnn`: McNemar on
  the images only one of them breaks), the KAF-ResNet-56 fixes (`resnet56_fix`), the Lipschitz bounds
  (`lipschitz`, `lipschitz_light_cnn`).

Verdicts: "supported", "refuted" (the measured difference goes the other way with p < ALPHA, or the
stated rule fails), "cannot decide at this scale" (the interval includes no difference, a network is at
chance, evidence is mixed) and "not tested yet" with the reason: "(smoke only)" when one of the claim's
experiments has only smoke results (networks near chance: never a result), "(no results)", "(not
measured)" when the stored results lack what the claim needs. Claims that combine several comparisons
say how (`combine`). Literature values are kept apart (`LITERATURE`, `robustness_comparison`) and
marked as such: they are never one of our runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..analysis.stats import mcnemar_exact, percent_ci, wilson
from . import chapter5 as c5
from .observations import from_results

__all__ = [
    "SUPPORTED",
    "REFUTED",
    "UNDECIDED",
    "SMOKE_ONLY",
    "NO_RESULTS",
    "NOT_MEASURED",
    "VERDICTS",
    "LITERATURE",
    "LITERATURE_CITATION",
    "Claim",
    "Finding",
    "CLAIMS",
    "combine",
    "claim_experiments",
    "select_results",
    "evaluate_claims",
    "claims_by_id",
    "evidence_links",
    "verdict_lines",
    "verdict_counts",
    "results_used",
    "robustness_comparison",
    "claims_stamp",
    "claim_sections",
]

SUPPORTED = "supported"
REFUTED = "refuted"
UNDECIDED = "cannot decide at this scale"
SMOKE_ONLY = "not tested yet (smoke only)"
NO_RESULTS = "not tested yet (no results)"
NOT_MEASURED = "not tested yet (not measured)"
VERDICTS = (SUPPORTED, REFUTED, UNDECIDED, SMOKE_ONLY, NO_RESULTS, NOT_MEASURED)
_NOT_TESTED = (SMOKE_ONLY, NO_RESULTS, NOT_MEASURED)

# Ratios of the stated rules (not statistics: the quantities are deterministic or a single run's).
LIPSCHITZ_GAP_ORDERS = 1.0  # KAF's bound / local estimate must exceed ReLU's by this many orders of magnitude
EXPLODING_ORDERS = 2.0  # initial gradient norms this many orders of magnitude above ReLU's count as exploding

# A literature value shown beside our fast-AT runs; it is not a run of this project.
LITERATURE_CITATION = (
    "Wong, Rice, Kolter 2020, 'Fast is better than free: Revisiting adversarial training', ICLR 2020 "
    "(arXiv:2001.03994); the same numbers in the authors' repository github.com/locuslab/fast_adversarial"
)
LITERATURE = {
    "source": "literature, not our run: Wong, Rice, Kolter 2020 (ICLR)",
    "model": "PreActResNet-18",
    "activation": "relu",
    "training": "fast AT (FGSM-RS), 15 epochs",
    "clean (%)": 86.1,
    "robust (%)": 46.1,
    "attack": "PGD-50x10, eps 8/255",
    "images": "10,000",
}


@dataclass(frozen=True)
class Finding:
    """A claim's verdict (one of VERDICTS) and what was measured, in words."""

    verdict: str
    measured: str


@dataclass(frozen=True)
class Claim:
    """One claim of the thesis and where its evidence lies.

    section: thesis section(s), "1.2 / 2.1.3"; experiments: the registry experiments it rests on (in the
    order `judge` takes their results, then those of `supplementary`); notebook and evidence: the notebook
    showing the evidence and the names of the figures / tables it saves there (a table as "name.tex");
    judge: results -> Finding;
    components: for a claim judged from other claims' verdicts (ids), instead of a judge.
    """

    id: str
    section: str
    text: str
    experiments: tuple[str, ...]
    notebook: str
    evidence: tuple[str, ...]
    judge: Callable[..., Finding] | None = None
    components: tuple[str, ...] = ()
    # experiments the judge also uses where their results exist at the same profile (else it gets None),
    # e.g. the seed repeats of the ResNet-20 models
    supplementary: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------ helpers
def _num(v) -> float:
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _pct(v) -> str:
    v = _num(v)
    return "--" if math.isnan(v) else f"{100 * v:.1f}%"


def _from_c5(verdict: str) -> str:
    """A chapter-5 verdict in this module's words."""
    if verdict == c5.SUPPORTED:
        return SUPPORTED
    if verdict == c5.CONTRADICTED:
        return REFUTED
    if verdict == c5.SMOKE_VERDICT:
        return SMOKE_ONLY
    if verdict.startswith("cannot decide: not measured") or verdict.startswith("cannot decide: different images"):
        return NOT_MEASURED
    return UNDECIDED  # not distinguishable, a network at chance, a baseline that does not train


def _row_text(r: Mapping) -> str:
    """A chapter-5 verdict row in one phrase: "robust kaf - relu +1.2 pts [-0.5, +2.9], p = 0.21"."""
    d, lo, hi = _num(r["difference (pts)"]), _num(r["lo (pts)"]), _num(r["hi (pts)"])
    text = str(r["measured"])
    if math.isnan(d):
        text += " not measured"
    else:
        text += f" {d:+.1f} pts" + ("" if math.isnan(lo) else f" [{lo:+.1f}, {hi:+.1f}]")
    p = _num(r["p-value"])
    if not math.isnan(p):
        text += f", p = {c5.format_p(p)}".replace("= <", "< ")
    v = str(r["verdict"])
    if v.startswith("cannot decide:"):
        text += f" ({v.removeprefix('cannot decide: ')})"
    return text


def combine(verdicts: Sequence[str], mode: str = "all") -> str:
    """One verdict from several comparisons.

    "all" (every comparison must hold): refuted when any is refuted, supported when all are, else
    not tested (the first reason) when any is, else cannot decide. "any" (one is enough): supported when
    any is, refuted when all are, else as "all". "evidence" (a body of evidence): comparisons not tested
    are left out; supported when some support and none refute, refuted when some refute and none
    support, cannot decide when they are mixed or none decides.
    """
    if not verdicts:
        return NOT_MEASURED
    v = list(verdicts)
    untested = [x for x in v if x in _NOT_TESTED]
    if mode == "evidence":
        decided = [x for x in v if x not in _NOT_TESTED]
        if not decided:
            return untested[0]
        sup, ref = SUPPORTED in decided, REFUTED in decided
        return SUPPORTED if sup and not ref else REFUTED if ref and not sup else UNDECIDED
    if mode == "any":
        if SUPPORTED in v:
            return SUPPORTED
        if all(x == REFUTED for x in v):
            return REFUTED
    elif mode == "all":
        if REFUTED in v:
            return REFUTED
        if all(x == SUPPORTED for x in v):
            return SUPPORTED
    else:
        raise ValueError(f"unknown mode {mode!r}: all, any or evidence")
    return untested[0] if untested else UNDECIDED


def _from_rows(rows: Iterable[Mapping], mode: str = "all") -> Finding:
    rows = list(rows)
    if not rows:
        return Finding(NOT_MEASURED, "no comparison in the stored results")
    verdicts = [_from_c5(str(r["verdict"])) for r in rows]
    return Finding(combine(verdicts, mode), "; ".join(_row_text(r) for r in rows))


def _rows(df, wanted: Callable[[str], bool]) -> list[dict]:
    if df is None or not len(df):
        return []
    return [dict(r, comparison=idx) for idx, r in df.iterrows() if wanted(str(idx))]


def _counts_pairs(a_only: int, b_only: int, both: int = 0) -> tuple[list[bool], list[bool]]:
    """Paired outcomes with the given discordant counts (all McNemar's exact test looks at)."""
    a = [True] * a_only + [False] * b_only + [True] * both
    b = [False] * a_only + [True] * b_only + [True] * both
    return a, b


# ------------------------------------------------------------------------ chapter 4 (light CNNs)
OBS_DISTANCE = "KAF: smaller clean-vs-adversarial activation gaps than ReLU"
OBS_CLEAN = "KAF: clean accuracy at least ReLU's"
OBS_KWTA_PGD = "k-WTA: more robust than ReLU under plain PGD"
OBS_KAF_PGD = "KAF: more robust than ReLU under plain PGD"


def _accuracies(res, key: str) -> str:
    """ "relu 67.7%, kwta 70.8%" of the light CNNs: key "clean" (test set) or "pgd" (robust, attacked images)."""
    models = res.result["models"]
    if key == "clean":
        return ", ".join(f"{m['activation']} {_pct(m['clean_acc'])}" for m in models)
    n = models[0]["pgd"].get("n") if models else None
    return ", ".join(f"{m['activation']} {_pct(m['pgd']['robust_acc'])}" for m in models) + f" of {n} images"


def _observation(name: str, show: str | None = None) -> Callable[..., Finding]:
    """A judge reading observation `name` of `observations.from_results`: its interval decides.

    show: "clean" or "pgd", the light CNNs' accuracies added to the measured text.
    """

    def judge(res) -> Finding:
        row = next(r for r in from_results(res) if r["observation"] == name)
        if row["excludes_0"] is None:  # no interval: the observation is a yes / no
            verdict = SUPPORTED if row["holds"] else REFUTED
        elif row["excludes_0"]:
            verdict = SUPPORTED if row["holds"] else REFUTED
        else:
            verdict = UNDECIDED
        text = str(row["measured"]) + ("" if row["excludes_0"] is not False else " (includes 0)")
        if show:
            text += f"; {'clean' if show == 'clean' else 'PGD robust'}: {_accuracies(res, show)}"
        return Finding(verdict, text)

    return judge


def _masking(res) -> Finding:
    """k-WTA flagged by the gradient-masking checks while ReLU and KAF are not."""
    acts = list(res.settings["activations"])
    reports = {a: res.step(f"gradient_masking_{a}") for a in acts}
    if "kwta" not in reports:
        return Finding(NOT_MEASURED, "no k-WTA network in the stored results")

    def state(a):
        rep = reports[a]
        failed = [c["name"] for c in rep.get("checks", []) if c.get("passed") is False]
        return f"{a}: " + (f"masking suspected (failed: {', '.join(failed)})" if rep["flagged"] else "no sign")

    controls = [a for a in acts if a != "kwta"]
    if not reports["kwta"]["flagged"]:
        verdict = REFUTED
    elif any(reports[a]["flagged"] for a in controls):
        verdict = UNDECIDED  # the checks flag the smooth networks too: they do not single k-WTA out
    else:
        verdict = SUPPORTED
    n = reports["kwta"].get("n")
    text = "; ".join(state(a) for a in acts) + f" (checks on {n} images); PGD robust: {_accuracies(res, 'pgd')}"
    return Finding(verdict, text)


def _kwta_discontinuous(res) -> Finding:
    """k-WTA's logits jump along the scanned lines while the ReLU and KAF networks' do not."""
    per: dict[str, list[int]] = {}
    for r in res.result["jumps"]:
        per.setdefault(r["activation"], []).append(int(r["n_jumps"]))
    if "kwta" not in per:
        return Finding(NOT_MEASURED, "no k-WTA line scan in the stored results")

    def state(a):
        v = per[a]
        return f"{a}: jumps on {sum(1 for x in v if x > 0)} of {len(v)} lines (mean {sum(v) / len(v):.1f})"

    controls = [a for a in per if a != "kwta"]
    if not any(per["kwta"]):
        verdict = REFUTED
    elif any(any(per[a]) for a in controls):
        verdict = UNDECIDED  # the detector also fires on a continuous network: it cannot tell
    else:
        verdict = SUPPORTED
    return Finding(verdict, "; ".join(state(a) for a in per))


def _lipschitz(res) -> Finding:
    """Per model family: log10(bound / local estimate) of the KAF network minus the ReLU network's."""
    groups: dict[tuple, dict[str, Mapping]] = {}
    for m in res.result["models"]:
        if m.get("key", m["activation"]) != m["activation"]:
            continue  # a second row set (other lr bounds, other seeds) of the same activation
        groups.setdefault((m.get("model"), m.get("training")), {})[m["activation"]] = m
    verdicts, parts = [], []
    for (model, training), acts in groups.items():
        if "kaf" not in acts or "relu" not in acts:
            continue

        def gap(m):
            b, e = _num(m["bound"]), _num(m["empirical_jacobian"])
            return math.log10(b / e) if b > 0 and e > 0 and math.isfinite(b) else math.nan

        g_kaf, g_relu = gap(acts["kaf"]), gap(acts["relu"])
        d = g_kaf - g_relu
        if math.isnan(d):
            verdicts.append(NOT_MEASURED)
        else:
            verdicts.append(SUPPORTED if d > LIPSCHITZ_GAP_ORDERS else REFUTED if d <= 0 else UNDECIDED)
        parts.append(
            f"{model} ({training}): log10(bound / local) kaf {g_kaf:.2f}, relu {g_relu:.2f}, difference {d:+.2f}"
        )
    if not parts:
        return Finding(NOT_MEASURED, "no KAF / ReLU pair in the stored bounds")
    return Finding(combine(verdicts, "all"), "; ".join(parts))


# -------------------------------------------------------------------- sections 5.1 and 5.3 (AT)
def _noting_collapses(res, finding: Finding, rows) -> Finding:
    """`finding` with a note naming the networks its verdict rows compare whose training failed (diverged,
    or fast adversarial training overfitted catastrophically): a robustness comparison with such a network
    measures the failure, not the activation."""
    compared = {a for r in rows for a in (r.get("networks") or ())}
    failed = c5.failed_runs(c5.robustness_table(res))
    hit = [f"{a} {how}" for a, how in failed.items() if a in compared]
    if not hit:
        return finding
    note = f"; failed runs (their comparisons measure the failure): {', '.join(hit)}"
    return Finding(finding.verdict, finding.measured + note)


def _smooth_vs_relu(res, res_seeds=None) -> Finding:
    """ELU and Swish against ReLU, paired on the attacked images (chapter 5's rows and rules; over the
    training seeds where both have repeats)."""
    o = c5.at_outcomes(res)
    if "relu" not in o:
        return Finding(NOT_MEASURED, "no ReLU network in the stored results")
    rows = [
        c5.robust_comparison(res, f"{act} more robust than relu", act, "relu", res_seeds)
        for act in ("elu", "swish")
        if act in o
    ]
    return _noting_collapses(res, _from_rows(rows, "all"), rows)


def _kaf_vs_fixed(res, res_seeds=None) -> Finding:
    wanted = {f"{k} more robust than {f}" for k, f in c5.KAF_COUNTERPARTS.items()}
    rows = _rows(c5.robustness_verdicts(res, res_seeds=res_seeds), lambda c: c in wanted)
    return _noting_collapses(res, _from_rows(rows, "all"), rows)


def _kaf_most_robust(res, res_seeds=None) -> Finding:
    """The best KAF against the best fixed activation (by PGD robust accuracy), paired."""
    o = {a: v for a, v in c5.at_outcomes(res).items() if not math.isnan(v["robust"])}
    kafs = [a for a in o if a.startswith("kaf")]
    fixed = [a for a in o if not a.startswith("kaf")]
    if not kafs or not fixed:
        return Finding(NOT_MEASURED, "needs a KAF and a fixed activation with robust accuracies")
    best_kaf = max(kafs, key=lambda a: o[a]["robust"])  # ties: the first in training order
    best_fixed = max(fixed, key=lambda a: o[a]["robust"])
    top = max(o, key=lambda a: o[a]["robust"])
    row = c5.robust_comparison(res, "best KAF more robust than best fixed", best_kaf, best_fixed, res_seeds)
    f = _from_rows([row])
    found = Finding(f.verdict, f"most robust: {top} ({_pct(o[top]['robust'])}); " + f.measured)
    return _noting_collapses(res, found, [row])


def _kaf_clean(res, res_seeds=None) -> Finding:
    rows = _rows(
        c5.robustness_verdicts(res, res_seeds=res_seeds), lambda c: c.endswith("raises clean accuracy over relu")
    )
    return _from_rows(rows, "all")


def _evaluation_choice(res) -> Finding:
    return _from_rows(_rows(c5.robustness_verdicts(res), lambda c: c.startswith("the evaluation choice")), "any")


def _converged(res) -> Finding:
    """No image broken between the evaluation's PGD iterations and the most iterations measured."""
    table = c5.convergence_table(res)
    if not len(table):
        return Finding(NOT_MEASURED, "no robust-accuracy-vs-iterations curve in the stored results")
    verdicts, parts = [], []
    for act, r in table.iterrows():
        k = int(r["images broken later"] or 0)
        p = mcnemar_exact(*_counts_pairs(k, 0))["p_value"]
        verdicts.append(SUPPORTED if k == 0 else REFUTED if p < c5.ALPHA else UNDECIDED)
        cols = [c for c in table.columns if c.startswith("robust at")]
        parts.append(
            f"{act}: {cols[0].removesuffix(' (%)')} {r[cols[0]]:.1f}%, {cols[-1].removesuffix(' (%)')} "
            f"{r[cols[-1]]:.1f}%, {k} of {int(r['n'])} images broken later, p = {c5.format_p(p)}"
        )
    return Finding(combine(verdicts, "all"), "; ".join(parts))


# ----------------------------------------------------------------------------- section 5.2
def _exploding_row(which: str) -> Callable[..., Finding]:
    def judge(res) -> Finding:
        rows = _rows(c5.exploding_verdicts(res), lambda c: which in c)
        f = _from_rows(rows)
        detail = "; ".join(str(r["detail"]) for r in rows if r.get("detail"))
        return Finding(f.verdict, f.measured + (f" ({detail})" if detail else ""))

    return judge


def _exploding_cause(res) -> Finding:
    """KAF-ResNet-56 turns non-finite, or its initial gradient norms are EXPLODING_ORDERS above ReLU-56's."""
    table = c5.exploding_table(res)
    if ("resnet56", "kaf") not in table.index or ("resnet56", "relu") not in table.index:
        return Finding(NOT_MEASURED, "no ResNet-56 pair in the stored results")
    kaf, relu = table.loc[("resnet56", "kaf")], table.loc[("resnet56", "relu")]
    groups = [c for c in table.columns if c.startswith("grad_init_")]
    g_kaf = max((_num(kaf[c]) for c in groups), default=math.nan)
    g_relu = max((_num(relu[c]) for c in groups), default=math.nan)
    orders = math.log10(g_kaf / g_relu) if g_kaf > 0 and g_relu > 0 else math.nan
    diverged = kaf["diverged_step"] is not None and not (
        isinstance(kaf["diverged_step"], float) and math.isnan(kaf["diverged_step"])
    )
    fails = _from_c5(str(c5.exploding_verdicts(res).iloc[0]["verdict"]))
    if diverged or (not math.isnan(orders) and orders >= EXPLODING_ORDERS):
        verdict = SUPPORTED
    elif fails == REFUTED:  # KAF-ResNet-56 trains, and its gradients stay close to ReLU's
        verdict = REFUTED
    elif math.isnan(orders):
        verdict = NOT_MEASURED
    else:
        verdict = UNDECIDED
    where = (
        f"diverged at step {kaf['diverged_step']} ({kaf['diverged_quantity']} in {kaf['diverged_layer']})"
        if diverged
        else "stayed finite"
    )
    text = f"resnet56 kaf {where}; largest gradient norm at initialisation kaf {g_kaf:.3g} vs relu {g_relu:.3g}"
    if not math.isnan(orders):
        text += f" ({orders:+.1f} orders of magnitude)"
    return Finding(verdict, text)


# ------------------------------------------------------------------------------------- chapter 6
def _resnet56_fix(res) -> Finding:
    """Some candidate with a KAF trains: no divergence and clean accuracy's Wilson interval above chance."""
    n = (res.settings or {}).get("test_subset") or c5.TEST_SET
    trains, parts = [], []
    for c in res.result["candidates"]:
        acc = _num(c.get("clean_acc"))
        lo, hi = wilson(round(acc * n), n) if not math.isnan(acc) else (math.nan, math.nan)
        ok = c.get("diverged") is None and lo > c5.CHANCE_LEVEL
        if c["activation"].startswith("kaf"):
            trains.append(ok)
            parts.append(f"{c['candidate']}: {_pct(acc)}" + (", diverged" if c.get("diverged") else ""))
        elif c["activation"] == "relu":
            parts.append(f"relu reference: {_pct(acc)}")
    if not trains:
        return Finding(NOT_MEASURED, "no KAF candidate in the stored results")
    verdict = SUPPORTED if any(trains) else UNDECIDED  # untried fixes may still work: failures refute nothing
    head = f"{sum(trains)} of {len(trains)} KAF candidates train (clean accuracy above {c5.CHANCE_LEVEL:.0%}, n = {n})"
    return Finding(verdict, head + ": " + ", ".join(parts))


def _autoattack(res) -> Finding:
    """Per model: AutoAttack breaks images PGD does not (McNemar on the images only one of them breaks)."""
    steps = sorted(p.stem for p in res.dir.glob("autoattack_*.json"))
    verdicts, parts = [], []
    for name in steps:
        r = res.step(name)
        only_aa, only_pgd = int(r["only_autoattack"]), int(r["only_pgd"])
        p = mcnemar_exact(*_counts_pairs(only_aa, only_pgd))["p_value"]
        verdicts.append(
            UNDECIDED if p >= c5.ALPHA else SUPPORTED if only_aa > only_pgd else REFUTED  # refuted: PGD is stronger
        )
        parts.append(
            f"{name.removeprefix('autoattack_')}: PGD {_pct(r['pgd_acc'])}, AutoAttack {_pct(r['autoattack_acc'])}, "
            f"only AutoAttack {only_aa}, only PGD {only_pgd} of {r['n']}, p = {c5.format_p(p)}"
        )
    if not parts:
        return Finding(NOT_MEASURED, "no AutoAttack comparison in the stored results")
    measured = "; ".join(parts)
    if all(res.step(name)["pgd_acc"] == 0 for name in steps):
        measured += " (PGD already breaks every image: no PGD robustness is left for AutoAttack to unmask)"
    return Finding(combine(verdicts, "any"), measured)


# -------------------------------------------------------------------------------------- the claims
_N05, _N04, _N07, _N08, _N09, _N10 = (
    "05_activation_distributions",
    "04_kwta_discontinuities",
    "07_vgg_results",
    "08_exploding_gradients",
    "09_resnet20_results",
    "10_future_work",
)


def _at_claims(arch: str, exp: str, section: str, notebook: str, evidence: dict, seeds: tuple = ()) -> list[Claim]:
    """The fast-AT claims of one architecture; `seeds`: the experiment repeating some of its models with other
    training seeds (then the comparisons use every seed where both networks have repeats)."""
    name = {"vgg": "VGG", "resnet20": "ResNet-20"}[arch]
    return [
        Claim(
            f"smooth-{arch}",
            f"1.2 / 2.1.3 / {section}",
            f"Smooth activations raise robustness (Smooth Adversarial Training): the {name} with ELU and with "
            "Swish is more robust than with ReLU under fast adversarial training",
            (exp,),
            notebook,
            evidence["table"],
            _smooth_vs_relu,
            supplementary=seeds,
        ),
        Claim(
            f"kaf-vs-fixed-{arch}",
            section,
            f"Under fast adversarial training every KAF {name} is more robust than its fixed counterpart "
            "(kaf and kaf_relu vs relu, kaf_elu vs elu, kaf_swish vs swish)",
            (exp,),
            notebook,
            evidence["table"],
            _kaf_vs_fixed,
            supplementary=seeds,
        ),
        Claim(
            f"kaf-most-robust-{arch}",
            section,
            f"The most robust {name} activation is a KAF: the best KAF is more robust than the best fixed activation",
            (exp,),
            notebook,
            evidence["table"],
            _kaf_most_robust,
            supplementary=seeds,
        ),
        Claim(
            f"kaf-clean-{arch}",
            section,
            f"KAFs raise the clean accuracy of the adversarially trained {name} over ReLU",
            (exp,),
            notebook,
            evidence["table"],
            _kaf_clean,
            supplementary=seeds,
        ),
        Claim(
            f"evaluation-{arch}",
            f"{section} (evaluation choice)",
            "The thesis's evaluation (IBM ART's PGD without labels, one restart kept for the whole set) and the "
            f"protocol's worst-case PGD (labels, robust only under every restart) give different robust accuracies "
            f"for the same {name} models and images",
            (exp,),
            evidence.get("evaluation_notebook", notebook),
            evidence["evaluation"],
            _evaluation_choice,
        ),
        Claim(
            f"pgd-converged-{arch}",
            f"{section} (protocol)",
            f"PGD-50 has converged on the {name} models: more iterations (up to 150) break no further image",
            (exp,),
            notebook,
            evidence["iterations"],
            _converged,
        ),
    ]


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "kwta-discontinuous",
        "3.1",
        "k-WTA networks are discontinuous in their input: their logits jump along input lines, the ReLU and "
        "KAF networks' do not",
        ("kwta_line",),
        _N04,
        ("kwta_line_scan", "kwta_line_scan_zoom", "kwta_jumps.tex"),
        _kwta_discontinuous,
    ),
    Claim(
        "kwta-pgd",
        "3.1 / 4",
        "k-WTA looks more robust than ReLU under plain PGD (light CNNs, standard training)",
        ("light_cnn",),
        _N05,
        ("light_cnn_accuracy.tex",),
        _observation(OBS_KWTA_PGD, "pgd"),
    ),
    Claim(
        "kwta-masking",
        "3.1 / 4",
        "k-WTA's apparent robustness is gradient masking: the gradient-masking checks (Carlini et al. 2019) "
        "flag k-WTA and not ReLU or KAF",
        ("light_cnn",),
        _N05,
        ("light_cnn_gradient_masking.tex",),
        _masking,
    ),
    Claim(
        "kaf-distances",
        "4",
        "KAFs keep clean and adversarial activations closer than ReLU (the activation distributions 'suggest "
        "KAFs might be good candidates to improve model robustness')",
        ("light_cnn",),
        _N05,
        ("light_cnn_layer_distances", "light_cnn_hist_neuron", "light_cnn_filter_means"),
        _observation(OBS_DISTANCE),
    ),
    Claim(
        "kaf-clean-light",
        "4",
        "A KAF light CNN matches or raises the clean accuracy of the ReLU one (decided only when it raises it)",
        ("light_cnn",),
        _N05,
        ("light_cnn_accuracy.tex",),
        _observation(OBS_CLEAN, "clean"),
    ),
    Claim(
        "kaf-robust-light",
        "4",
        "A KAF light CNN is more robust than a ReLU one under plain PGD (standard training)",
        ("light_cnn",),
        _N05,
        ("light_cnn_accuracy.tex",),
        _observation(OBS_KAF_PGD, "pgd"),
    ),
    Claim(
        "lipschitz-kaf",
        "4.1",
        "Lipschitz-constant approaches are limited, especially with KAFs: a KAF network's product bound lies "
        "more than an order of magnitude further above its local Lipschitz estimate than a ReLU network's "
        "(the chapter-4 light CNNs)",
        ("lipschitz_light_cnn",),
        _N10,
        ("lipschitz_bounds_light_cnn.tex",),
        _lipschitz,
    ),
    Claim(
        "lipschitz-kaf-chapter5",
        "4.1",
        "The same for the chapter-5 networks: per architecture and training, the KAF network's product bound "
        "lies more than an order of magnitude further above its local estimate than the ReLU network's",
        ("lipschitz",),
        _N10,
        ("lipschitz_bounds.tex", "lipschitz_bounds"),
        _lipschitz,
    ),
    *_at_claims(
        "vgg",
        "vgg",
        "5.1",
        _N07,
        {
            "table": ("vgg_results.tex", "vgg_verdicts.tex", "vgg_accuracy_vs_robustness"),
            "evaluation": ("vgg_evaluation.tex",),
            "iterations": ("vgg_robust_vs_iterations",),
        },
    ),
    Claim(
        "resnet56-kaf-fails",
        "5.2",
        "KAF-ResNet-56 does not train under standard training while ReLU-ResNet-56 does",
        ("resnet_standard",),
        _N08,
        ("resnet_standard.tex", "resnet_standard_verdicts.tex", "resnet_standard_accuracy"),
        _exploding_row("KAF-ResNet-56 fails to train"),
    ),
    Claim(
        "resnet56-exploding",
        "5.2",
        "The cause is exploding gradients: the KAF-ResNet-56 run turns non-finite, or its gradient norms at "
        "initialisation are two orders of magnitude above ReLU-ResNet-56's",
        ("resnet_standard",),
        _N08,
        ("resnet_standard.tex", "resnet_gradient_norms_resnet56_kaf", "resnet_gradient_norms_resnet56_relu"),
        _exploding_cause,
    ),
    Claim(
        "resnet20-kaf-trains",
        "5.2 / 5.3",
        "The failure needs depth: KAF-ResNet-20 trains",
        ("resnet_standard",),
        _N08,
        ("resnet_standard_verdicts.tex", "resnet_gradient_norms_resnet20_kaf"),
        _exploding_row("KAF-ResNet-20 trains"),
    ),
    *_at_claims(
        "resnet20",
        "resnet20_at",
        "5.3",
        _N09,
        {
            "table": (
                "resnet20_results.tex",
                "resnet20_verdicts.tex",
                "resnet20_accuracy_vs_robustness",
                "resnet20_seeds.tex",
            ),
            "evaluation": ("resnet20_evaluation.tex", "resnet20_art_crosscheck.tex"),
            "iterations": ("resnet20_robust_vs_iterations",),
        },
        seeds=("resnet20_seeds",),
    ),
    Claim(
        "resnet56-fix",
        "6",
        "The exploding gradients of KAF-ResNet-56 can be resolved: at least one candidate fix trains it",
        ("resnet56_fix",),
        _N10,
        ("resnet56_fix_ablation.tex", "resnet56_fix_ablation"),
        _resnet56_fix,
    ),
    Claim(
        "adaptive-attacks-kwta",
        "4 / 6",
        "k-WTA's PGD robustness is gradient masking (Tramer et al. 2020): on the chapter-4 light CNNs, AutoAttack "
        "breaks images that PGD does not",
        ("autoattack_light_cnn",),
        _N10,
        ("autoattack_vs_pgd_light_cnn.tex",),
        _autoattack,
    ),
    Claim(
        "adaptive-attacks",
        "6",
        "PGD may overestimate robustness, so adaptive attacks are needed (Carlini et al.): AutoAttack breaks "
        "images that PGD does not (the fast-adversarially trained VGGs and ResNet-20s)",
        ("autoattack",),
        _N10,
        ("autoattack_vs_pgd.tex",),
        _autoattack,
    ),
    Claim(
        "conclusion",
        "7",
        "Smoother architectures might benefit adversarial resiliency (the conclusion): the smooth-vs-ReLU and "
        "KAF-vs-fixed robustness claims above, taken together",
        (),
        "11_claims",
        ("claims.tex",),
        components=("kaf-robust-light", "smooth-vgg", "kaf-vs-fixed-vgg", "smooth-resnet20", "kaf-vs-fixed-resnet20"),
    ),
)


def claim_sections(claims: Sequence[Claim] = CLAIMS) -> list[str]:
    """The thesis sections the claims cite (ids such as "5.3", "4"), without repeats."""
    import re

    found = [s for c in claims for s in re.findall(r"\d+(?:\.\d+)*", c.section)]
    return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------------- evaluation
def claim_experiments(claims: Sequence[Claim] = CLAIMS) -> list[str]:
    """The experiments the claims rest on, in the order the claims name them."""
    return list(dict.fromkeys(n for c in claims for n in (*c.experiments, *c.supplementary)))


def select_results(results_dir: str | os.PathLike, names: Iterable[str] | None = None) -> dict[str, Any]:
    """experiment -> its ExperimentResults at the largest profile with complete results (None: none complete).

    names: the experiments (default: those the claims rest on, `claim_experiments`).
    """
    from ..experiments import PROFILES, ExperimentResults, get_experiment, is_complete

    out: dict[str, Any] = {}
    for name in names if names is not None else claim_experiments():
        exp = get_experiment(name)
        done = [p for p in PROFILES if exp.has_profile(p) and is_complete(name, p, results_dir)]
        out[name] = ExperimentResults(name, done[-1], results_dir) if done else None
    return out


def _scale(results: Sequence) -> str:
    """The profile stamp of `results` (their profile alone when a stamp cannot be built)."""
    from .stamp import profile_stamp

    try:
        return profile_stamp(list(results))
    except (AttributeError, KeyError, TypeError, OSError, ValueError):
        return "; ".join(dict.fromkeys(f"{r.profile} profile" for r in results))


def _judge(claim: Claim, results: Mapping[str, Any]) -> tuple[Finding, list]:
    from ..utils import ThesisError

    used = [results.get(n) for n in claim.experiments]
    missing = [n for n, r in zip(claim.experiments, used) if r is None]
    if missing:
        return Finding(NO_RESULTS, "no complete results of " + ", ".join(missing)), []
    extra = [results.get(n) for n in claim.supplementary]
    extra = [r if r is not None and r.profile == used[0].profile else None for r in extra]
    try:
        finding = claim.judge(*used, *extra)
    except (ThesisError, OSError, KeyError, StopIteration) as e:  # a stored file or field the claim needs
        finding = Finding(NOT_MEASURED, f"missing in the stored results: {e}")
    smoke = [n for n, r in zip(claim.experiments, used) if r.profile == "smoke"]
    if smoke:
        finding = Finding(SMOKE_ONLY, finding.measured)
    return finding, used + [r for r in extra if r is not None]


def evaluate_claims(
    results_dir: str | os.PathLike = "results",
    claims: Sequence[Claim] = CLAIMS,
    results: Mapping[str, Any] | None = None,
):
    """One row per claim (index: id), in thesis order.

    Columns: section, claim, verdict (one of VERDICTS), measured (what decided it, in words), rests on
    ("experiment (profile)"), scale (the profile stamp of those results), notebook, evidence (the
    notebook's figures and tables). results: experiment -> results (or None) instead of reading
    `results_dir` (`select_results`).
    """
    import pandas as pd

    if results is None:
        results = select_results(results_dir, claim_experiments(claims))
    rows: dict[str, dict] = {}
    used_by: dict[str, list] = {}
    for claim in claims:
        if claim.components:
            continue
        finding, used = _judge(claim, results)
        used_by[claim.id] = used
        rows[claim.id] = {
            "verdict": finding.verdict,
            "measured": finding.measured,
            "rests on": ", ".join(f"{r.name} ({r.profile})" for r in used) or "--",
            "scale": _scale(used) if used else "--",
        }
    for claim in claims:
        if not claim.components:
            continue
        parts = [c for c in claim.components if c in rows]
        verdicts = [rows[c]["verdict"] for c in parts]
        used = list({id(r): r for c in parts for r in used_by[c]}.values())
        tally = {v: [c for c in parts if rows[c]["verdict"] == v] for v in dict.fromkeys(verdicts)}
        rows[claim.id] = {
            "verdict": combine(verdicts, "evidence"),
            "measured": "; ".join(f"{v}: {', '.join(ids)}" for v, ids in tally.items()),
            "rests on": ", ".join(dict.fromkeys(f"{r.name} ({r.profile})" for r in used)) or "--",
            "scale": _scale(used) if used else "--",
        }
    out = []
    for claim in claims:
        r = rows[claim.id]
        out.append(
            {
                "id": claim.id,
                "section": claim.section,
                "claim": claim.text,
                "verdict": r["verdict"],
                "measured": r["measured"],
                "rests on": r["rests on"],
                "scale": r["scale"],
                "notebook": claim.notebook,
                "evidence": f"{claim.notebook}: " + ", ".join(claim.evidence),
            }
        )
    return pd.DataFrame(out).set_index("id")


def claims_by_id(*ids: str) -> list[Claim]:
    """The claims with these ids, in the order given; an unknown id is one sentence listing the valid ones."""
    known = {c.id: c for c in CLAIMS}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown claim {unknown[0]!r}; valid: {', '.join(known)}")
    return [known[i] for i in ids]


def evidence_links(evidence: str) -> str:
    """ "07_vgg_results: vgg_results.tex, vgg_accuracy" as Markdown links from a notebook in notebooks/: the
    notebook, each table (figures/NAME.tex) and each figure (figures/NAME.png)."""
    notebook, _, files = evidence.partition(": ")
    links = [f"[{notebook}]({notebook}.ipynb)"]
    for name in filter(None, (f.strip() for f in files.split(","))):
        links.append(f"[{name}](../figures/{name if name.endswith('.tex') else name + '.png'})")
    return ", ".join(links)


def verdict_lines(table) -> str:
    """Markdown, one bullet per row of `evaluate_claims`: the claim's verdict, what decided it, and links to
    the notebook and the figures and tables holding the evidence."""
    return "\n".join(
        f"- **{i}**, section {r['section']}: *{r['verdict']}*. {r['measured']}. "
        f"Evidence: {evidence_links(r['evidence'])}."
        for i, r in table.iterrows()
    )


def verdict_counts(table) -> str:
    """One sentence: how many claims got each verdict."""
    counts = {v: int((table["verdict"] == v).sum()) for v in VERDICTS}
    return f"{len(table)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + "."


def results_used(results: Mapping[str, Any], claims: Sequence[Claim] = CLAIMS):
    """Per experiment the claims rest on: the profile used and its scale (the profile stamp)."""
    import pandas as pd

    rows = []
    for name in claim_experiments(claims):
        r = results.get(name)
        rows.append(
            {
                "experiment": name,
                "profile used": r.profile if r is not None else "--",
                "scale": _scale([r]) if r is not None else "no complete results",
                "claims": ", ".join(c.id for c in claims if name in c.experiments),
            }
        )
    return pd.DataFrame(rows).set_index("experiment")


def claims_stamp(results: Mapping[str, Any]) -> str:
    """The profile stamp of every result the claims rest on (for the saved tables)."""
    used = [r for r in results.values() if r is not None]
    return _scale(used) if used else "no results: nothing tested yet"


def robustness_comparison(results: Mapping[str, Any], experiments: Sequence[str] = ("vgg", "resnet20_at")):
    """Clean and PGD robust accuracy of our fast-AT networks (each at its selected profile), then LITERATURE.

    Accuracies in percent with 95% Wilson intervals; the source column says which profile a row comes from, and the
    literature row says that it is not our run (its source: LITERATURE_CITATION).
    """
    import pandas as pd

    names = {"vgg": "VGG", "resnet20_at": "ResNet-20"}
    rows = []
    for exp in experiments:
        res = results.get(exp)
        if res is None:
            continue
        s = res.settings or {}
        attack = c5.attack_label(s.get("pgd"))
        source = f"this project, {res.profile} profile" + (": not a result" if res.profile == "smoke" else "")
        for act, o in c5.at_outcomes(res).items():
            rows.append(
                {
                    "source": source,
                    "model": names.get(exp, exp),
                    "activation": act,
                    "training": f"fast AT (FGSM-RS), {s.get('epochs')} epoch" + ("" if s.get("epochs") == 1 else "s"),
                    "clean (%) [95% CI]": percent_ci(o["clean"], o["clean_n"]),
                    "robust (%) [95% CI]": percent_ci(o["robust"], o["robust_n"]),
                    "attack": f"{attack}, eps 8/255",
                    "images": f"{int(o['robust_n']):,}" if o["robust_n"] else "--",
                }
            )
    lit = dict(LITERATURE)  # its interval: the binomial sampling of the 10,000 test images, as for ours
    n = int(lit.pop("images").replace(",", ""))
    lit["clean (%) [95% CI]"] = percent_ci(lit.pop("clean (%)") / 100, n)
    lit["robust (%) [95% CI]"] = percent_ci(lit.pop("robust (%)") / 100, n)
    rows.append({**lit, "attack": LITERATURE["attack"], "images": LITERATURE["images"]})
    return pd.DataFrame(rows)
