"""Intervals and verdicts behind the notebooks' "does the observation hold" tables."""

import math

import pytest

from thesis_lib.analysis.stats import mcnemar_exact, paired_difference, proportion_difference, welch_difference, wilson
from thesis_lib.reporting.observations import chapter4_observations, compare_profiles


def test_wilson_matches_known_values():
    lo, hi = wilson(50, 100)  # textbook: 0.4038, 0.5962
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson(0, 1000)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.003 < hi < 0.004


def _paired(both, a_only, b_only, neither):
    a = [True] * (both + a_only) + [False] * (b_only + neither)
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return paired_difference(a, b)


def test_paired_difference_is_newcombes_interval():
    # Newcombe (1998) method 10 on a paired 2 x 2 table (59 both, 6 / 16 discordant, 80 neither): the
    # value printed by the R package contingencytables (Fagerland et al.), -0.0621 [-0.1186, -0.0046]
    d = _paired(59, 6, 16, 80)
    assert (d.value, d.lo, d.hi) == pytest.approx((-0.0621, -0.1186, -0.0046), abs=1e-4)
    zero = _paired(0, 0, 0, 1000)  # two networks both at 0 of 1,000: not a point, Wilson's reach of 0/1000
    assert zero.value == 0 and zero.lo == pytest.approx(-wilson(0, 1000)[1]) and zero.hi == -zero.lo > 0.003


def test_paired_difference_uses_the_pairing():
    a = [True] * 60 + [False] * 40
    same = paired_difference(a, a)
    assert same.value == 0 and same.lo < 0 < same.hi and same.hi - same.lo < 0.05
    b = [False] * 10 + [True] * 50 + [False] * 40  # a wins on 10 images, never loses
    d = paired_difference(a, b)
    assert d.value == pytest.approx(0.1) and d.lo > 0
    with pytest.raises(ValueError, match="same examples"):
        paired_difference(a, b[:-1])


def test_proportion_and_welch_intervals_cover_zero_when_equal():
    e = proportion_difference(0.6, 10000, 0.6, 10000)
    assert e.lo < 0 < e.hi and e.hi - e.lo < 0.03
    w = welch_difference([1.0, 1.2, 0.9, 1.1], [0.5, 0.6, 0.4, 0.55])
    assert w.lo > 0 and w.value == pytest.approx(0.5375)
    assert math.isnan(welch_difference([1.0], [2.0, 3.0]).lo)


def _rows(kaf_dist, relu_dist, kaf_robust, relu_robust, flagged=True):
    models = {
        a: {"activation": a, "clean_acc": c, "gradient_masking_flagged": flagged and a == "kwta"}
        for a, c in (("relu", 0.6), ("kwta", 0.58), ("kaf", 0.61))
    }
    pgd = {
        "relu": {"success_step": [-1 if r else 3 for r in relu_robust]},
        "kwta": {"success_step": [-1 if r else 3 for r in relu_robust]},
        "kaf": {"success_step": [-1 if r else 3 for r in kaf_robust]},
    }
    dist = [
        {"activation": a, "sample": i, "distance": 1.0, "relative_distance": v}
        for a, vals in (("kaf", kaf_dist), ("relu", relu_dist))
        for i, v in enumerate(vals)
    ]
    return chapter4_observations(models, pgd, dist)


def test_verdicts_follow_the_data_and_can_change():
    yes = _rows([0.2, 0.25, 0.22], [0.5, 0.55, 0.52], [True] * 30 + [False] * 70, [False] * 100)
    no = _rows([0.6, 0.65, 0.62], [0.5, 0.55, 0.52], [False] * 100, [False] * 100)
    assert yes[0]["holds"] and yes[0]["excludes_0"] and yes[4]["holds"] and yes[4]["excludes_0"]
    assert not no[0]["holds"] and no[0]["excludes_0"] and not no[4]["holds"]
    table = compare_profiles({"a": no, "b": yes})
    assert table[0]["verdict changed"] == "yes" and table[3]["verdict changed"] == "no"
    assert table[0]["b: holds"] == "yes, interval excludes 0"


def test_mcnemar_exact_counts_discordant_pairs_and_matches_the_binomial_tail():
    a = [True] * 5 + [False] * 2
    b = [False] * 5 + [False, True]
    r = mcnemar_exact(a, b)
    assert (r["a_only"], r["b_only"], r["n"]) == (5, 1, 7)
    assert r["p_value"] == pytest.approx(2 * (1 + 6) / 2**6)  # scipy.stats.binomtest(1, 6).pvalue = 0.21875
    assert mcnemar_exact(a, a)["p_value"] == 1.0
    assert mcnemar_exact([True] * 30, [False] * 30)["p_value"] < 1e-8
    with pytest.raises(ValueError, match="same examples"):
        mcnemar_exact([True], [True, False])


def test_percent_ci_is_wilsons_interval_in_percent():
    from thesis_lib.reporting.outputs import percent_ci

    assert percent_ci(0.5, 100) == "50.0 [40.4, 59.6]"  # textbook Wilson: 0.4038, 0.5962
    assert percent_ci(0.0, 10000) == "0.0 [0.00, 0.04]"  # a bound under 0.1% keeps two decimals
    assert percent_ci(None, 100) == percent_ci(0.5, 0) == "--"
