"""Chapter-5 tables, verdicts and figures (thesis sections 5.2 and 5.3) on small synthetic results folders."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from thesis_lib import plotting as P  # noqa: E402
from thesis_lib.analysis.stats import wilson  # noqa: E402
from thesis_lib.experiments import ExperimentResults  # noqa: E402
from thesis_lib.reporting import chapter5 as c5  # noqa: E402

N = 200  # attacked images of the synthetic runs


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _outcomes(k: int, n: int = N, start: int = 0) -> list[bool]:
    """n per-image outcomes, True on images start .. start + k - 1."""
    return [start <= i < start + k for i in range(n)]


def at_results(tmp_path, models: dict, profile: str = "cpu", n_test: int = 10000, old: bool = False):
    """A resnet20_at results folder: models = {act: {"clean", "robust" (k), "thesis" (k, optional), "watch"}}.

    old=True writes what older results hold: no clean_acc_train_eval, overfitting, thesis step or
    training file, per-image outcomes only as success_step.
    """
    d = tmp_path / profile / "resnet20_at"
    rows = []
    for act, m in models.items():
        pe = _outcomes(m["robust"])
        row = {"activation": act, "lr_min": 1e-4, "lr_max": 0.2, "clean_acc": 0.5, "robust_acc": sum(pe) / N}
        row["n_eval"] = N
        if not old:
            row.update(lr_source="range_test", clean_acc_train_eval=m["clean"], train_wall_time_s=120.0)
            row["overfitting"] = c5._overfitting({}, {"history": m.get("watch", [])}) if m.get("watch") else None
            history = m.get("watch") or [{"epoch": 1, "test_acc": m["clean"]}]
            _write(d / "training" / f"{act}.json", {"clean_acc": m["clean"], "n_test": n_test, "history": history})
            _write(d / f"pgd_{act}.json", {"result": {"per_example": pe, "robust_acc": sum(pe) / N, "n": N}})
        else:
            _write(d / f"pgd_{act}.json", {"result": {"success_step": [-1 if v else 3 for v in pe]}})
        if "thesis" in m and not old:
            tpe = _outcomes(m["thesis"])
            th = {"per_example": tpe, "robust_acc": sum(tpe) / N, "n": N, "flipped_to_correct": 1}
            _write(d / f"thesis_pgd_{act}.json", {"result": th})
        rows.append(row)
    settings = {
        "activations": list(models),
        "epochs": 15,
        "pgd": {"eps": 8 / 255, "step": 2 / 255, "steps": 50, "restarts": 10, "n": N},
        "curve_activations": [],
    }
    _write(d / "summary.json", {"result": {"models": rows, "pgd": settings["pgd"]}, "settings": settings})
    return ExperimentResults("resnet20_at", profile, tmp_path)


def _verdict(v, comparison):
    return v.loc[comparison, "verdict"]


# ------------------------------------------------------------------------------------ 5.3 table
def test_robustness_table_wilson_columns_and_paired_difference(tmp_path):
    res = at_results(
        tmp_path, {"relu": {"clean": 0.58, "robust": 60, "thesis": 70}, "kaf": {"clean": 0.6, "robust": 50}}
    )
    t = c5.robustness_table(res)
    assert list(t.index) == ["relu", "kaf"]
    assert t.loc["relu", "clean_n"] == 10000 and t.loc["relu", "robust_n"] == N
    assert (t.loc["relu", "clean_lo"], t.loc["relu", "clean_hi"]) == pytest.approx(wilson(5800, 10000))
    assert (t.loc["relu", "robust_lo"], t.loc["relu", "robust_hi"]) == pytest.approx(wilson(60, N))
    assert t.loc["relu", "thesis"] == pytest.approx(0.35) and t.loc["relu", "thesis_minus_ours"] == pytest.approx(0.05)
    assert t.loc["relu", "thesis_minus_ours_lo"] > 0  # 10 images flipped, none the other way
    assert math.isnan(t.loc["kaf", "thesis"]) and math.isnan(t.loc["kaf", "thesis_minus_ours"])  # not measured
    assert t.loc["kaf", "train_min"] == pytest.approx(2.0)
    shown = c5.format_intervals(t, {"clean": "clean (%)", "robust": "PGD (%)"})
    assert list(shown.columns[:3]) == ["lr_min", "lr_max", "lr_source"]
    assert shown.loc["relu", "clean (%), n = 10,000"] == "58.0 [57.0, 59.0]"
    assert shown.loc["relu", "PGD (%), n = 200"].startswith("30.0 [")
    assert "clean_lo" not in shown.columns and "robust_n" not in shown.columns


def test_a_flat_range_test_is_named_in_the_table_and_its_figure(tmp_path):
    res = at_results(tmp_path, {"relu": {"clean": 0.58, "robust": 60}, "kaf": {"clean": 0.6, "robust": 50}})
    lrs = [1e-4 * 3e4 ** (i / 99) for i in range(100)]
    sweeps = {
        "relu": [2.3 - 1.0 * i / 99 for i in range(100)],  # fell 43%
        "kaf": [2.3 - 0.05 * i / 99 for i in range(100)],  # fell 2%: satisfies the rule, bounds poorly determined
    }
    d = tmp_path / "cpu" / "resnet20_lr_range"
    for act, losses in sweeps.items():
        rec = {"activation": act, "lrs": lrs, "losses": losses, "lr_min": 1e-4, "lr_max": 0.2}
        _write(d / f"lr_find_{act}.json", {"result": rec})
    _write(d / "summary.json", {"result": {"bounds": []}, "settings": {"activations": list(sweeps)}})
    res_lr = ExperimentResults("resnet20_lr_range", "cpu", tmp_path)
    t = c5.robustness_table(res, res_lr)
    assert t.loc["relu", "range_test"] == "ok" and t.loc["kaf", "range_test"].startswith("flat: loss fell 2.")
    shown = c5.robustness_display(t)
    assert list(shown["bounds from"]) == ["range_test", "range_test (flat)"]
    fig = P.plot_lr_range_tests(c5.range_tests(res_lr))
    assert [ax.get_title() for ax in fig.axes[:2]] == ["relu", "kaf (flat: fell 2.1%)"]


def test_older_results_without_the_newer_fields(tmp_path):
    res = at_results(tmp_path, {"relu": {"clean": 0.58, "robust": 60}, "kaf": {"clean": 0.6, "robust": 50}}, old=True)
    t = c5.robustness_table(res)
    assert t.loc["relu", "robust"] == pytest.approx(0.3)  # read from success_step
    for col in ("clean", "clean_lo", "thesis", "watch_best", "train_min"):
        assert math.isnan(t.loc["relu", col]), col
    assert t.loc["relu", "lr_source"] is None and t.loc["relu", "collapsed"] is None
    v = c5.robustness_verdicts(res)
    assert _verdict(v, "kaf more robust than relu").startswith("cannot decide: no clean accuracy")
    assert _verdict(v, "the evaluation choice moves robust accuracy (relu)") == "cannot decide: not measured"
    assert c5.evaluation_table(res).loc["relu", "flipped_to_correct"] is None
    assert c5.art_crosscheck_table(res).empty and c5.iterations_table(res).empty


def test_overfitting_columns_from_the_watch(tmp_path):
    watch = [{"epoch": e, "test_acc": 0.5, "watch_pgd_acc": a} for e, a in ((1, 0.3), (2, 0.45), (3, 0.02))]
    res = at_results(tmp_path, {"relu": {"clean": 0.58, "robust": 60, "watch": watch}})
    t = c5.robustness_table(res)
    assert bool(t.loc["relu", "collapsed"]) is True
    assert t.loc["relu", "watch_best"] == 0.45 and t.loc["relu", "watch_best_epoch"] == 2
    assert t.loc["relu", "watch_final"] == 0.02


# --------------------------------------------------------------------------------- 5.3 verdicts
@pytest.mark.parametrize(
    ("kaf_robust", "kaf_clean", "robust_verdict", "clean_verdict"),
    [
        (90, 0.62, c5.SUPPORTED, c5.SUPPORTED),  # kaf wins on 30 images, loses on none; +4 pts on 10,000
        (30, 0.55, c5.CONTRADICTED, c5.CONTRADICTED),
        (62, 0.581, c5.UNDECIDED, c5.UNDECIDED),  # 2 discordant images; +0.1 pts
    ],
)
def test_verdicts_come_out_each_way(tmp_path, kaf_robust, kaf_clean, robust_verdict, clean_verdict):
    models = {"relu": {"clean": 0.58, "robust": 60}, "kaf": {"clean": kaf_clean, "robust": kaf_robust}}
    v = c5.robustness_verdicts(at_results(tmp_path, models))
    row = v.loc["kaf more robust than relu"]
    assert row["verdict"] == robust_verdict
    assert row["difference (pts)"] == pytest.approx(100 * (kaf_robust - 60) / N)
    assert row["lo (pts)"] <= row["difference (pts)"] <= row["hi (pts)"]
    assert (row["p-value"] < c5.ALPHA) == (robust_verdict != c5.UNDECIDED)
    assert _verdict(v, "kaf raises clean accuracy over relu") == clean_verdict
    best = [c for c in v.index if c.startswith("most robust activation")]
    assert len(best) == 1
    winner = "kaf" if kaf_robust > 60 else "relu"
    assert best[0] == f"most robust activation: {winner}"
    assert v.loc[best[0], "verdict"] == (c5.SUPPORTED if robust_verdict != c5.UNDECIDED else c5.UNDECIDED)


def test_variants_against_their_fixed_counterparts_and_the_thesis_pick(tmp_path):
    models = {
        "relu": {"clean": 0.58, "robust": 60},
        "elu": {"clean": 0.57, "robust": 40},
        "kaf_relu": {"clean": 0.59, "robust": 61},
        "kaf_elu": {"clean": 0.58, "robust": 80},
        "swish": {"clean": 0.6, "robust": 100},
    }
    v = c5.robustness_verdicts(at_results(tmp_path, models), claimed_best="kaf_elu")
    assert _verdict(v, "kaf_relu more robust than relu") == c5.UNDECIDED
    assert _verdict(v, "kaf_elu more robust than elu") == c5.SUPPORTED
    assert "kaf more robust than relu" not in v.index and "kaf_swish more robust than swish" not in v.index
    # swish is significantly more robust than the claimed kaf_elu: the claim is contradicted
    assert _verdict(v, "most robust activation: kaf_elu (the thesis's pick)") == c5.CONTRADICTED


def test_smoke_and_chance_level_networks_decide_nothing(tmp_path):
    models = {"relu": {"clean": 0.58, "robust": 60, "thesis": 80}, "kaf": {"clean": 0.62, "robust": 90, "thesis": 90}}
    smoke = c5.robustness_verdicts(at_results(tmp_path / "a", models, profile="smoke"))
    assert set(smoke["verdict"]) == {c5.SMOKE_VERDICT}
    assert not math.isnan(smoke.loc["kaf more robust than relu", "p-value"])  # measured, just not a result
    models["kaf"]["clean"] = 0.1
    v = c5.robustness_verdicts(at_results(tmp_path / "b", models))
    assert _verdict(v, "kaf more robust than relu") == "cannot decide: at chance: kaf (10.0% clean)"
    # the evaluation choice is a property of the evaluation: decided even for a network at chance
    assert _verdict(v, "the evaluation choice moves robust accuracy (relu)") == c5.SUPPORTED
    assert _verdict(v, "the evaluation choice moves robust accuracy (kaf)") == c5.UNDECIDED
    lines = c5.verdict_lines(v)
    assert lines[0].startswith("- most robust activation: kaf: robust kaf - relu (runner-up) = +15.0 pts [")
    marked = c5.verdict_lines(v, failed={"relu": "diverged at step 7"})
    assert marked[0].endswith("(relu diverged at step 7: this measures the failed run).")
    assert "diverged" not in c5.verdict_lines(v, failed={"re": "diverged at step 7"})[0]  # whole names only


def test_failed_runs_say_how_each_network_failed():
    import pandas as pd

    t = pd.DataFrame(
        {"collapsed": [True, True, None, False], "diverged": [None, 1118, None, 40.0]},
        index=["relu", "kaf", "elu", "swish"],
    )
    assert c5.failed_runs(t) == {
        "relu": "overfitted catastrophically",
        "kaf": "diverged at step 1118",
        "swish": "diverged at step 40",  # a non-finite gradient stops training whatever the watch said
    }
    assert c5.failed_runs(pd.DataFrame()) == {}


def test_profile_stamp_and_note_come_from_the_settings(tmp_path):
    res = at_results(tmp_path, {"relu": {"clean": 0.58, "robust": 60}})
    assert c5.chapter5_stamp(res) == "cpu profile: 15 of 80 epochs, PGD-50x10 on 200 images"  # 80: the registry
    assert "not the protocol's results" in c5.profile_note(res, [0.58])
    smoke = at_results(tmp_path / "s", {"relu": {"clean": 0.1, "robust": 6}}, profile="smoke")
    assert c5.chapter5_stamp(smoke).startswith("smoke profile: not a result (15 epochs; PGD-50x10 on 200 images")
    assert "None of these numbers is a result" in c5.profile_note(smoke, [0.1])


def test_two_proportion_p():
    assert c5.two_proportion_p(0.5, 100, 0.5, 100) == pytest.approx(1.0)
    assert c5.two_proportion_p(0.62, 10000, 0.58, 10000) < 1e-6
    assert math.isnan(c5.two_proportion_p(math.nan, 100, 0.5, 100))


# ------------------------------------------------------------------------------------------- 5.2
def std_results(tmp_path, runs: dict, profile: str = "cpu", n_test: int = 10000):
    """A resnet_standard folder: runs = {(arch, act): (clean, diverged or None)}, norms for a ResNet-20 layout."""
    d = tmp_path / profile / "resnet_standard"
    params = ["stem.0.weight"] + [f"blocks.{i}.conv{j}.weight" for i in range(9) for j in (1, 2)] + ["fc.weight"]
    rows = []
    for (arch, act), (clean, div) in runs.items():
        key = f"{arch}_{act}"
        rows.append({"arch": arch, "activation": act, "clean_acc": clean, "best_test_acc": clean, "diverged": div})
        _write(d / "training" / f"{key}.json", {"clean_acc": clean, "n_test": n_test, "history": []})
        grads = [float(len(params) - i) for i in range(len(params))]
        if act == "kaf":
            grads[3] = math.inf
        _write(
            d / f"norms_{key}.json", {"result": {"params": params, "steps": [0], "grad": [grads], "weight": [grads]}}
        )
    settings = {"archs": ["resnet20", "resnet56"], "activations": ["relu", "kaf"], "epochs": 15}
    _write(d / "summary.json", {"result": {"models": rows}, "settings": settings})
    return ExperimentResults("resnet_standard", profile, tmp_path)


DIVERGED = {"step": 7, "layer": "blocks.2.conv1.weight", "quantity": "grad"}


@pytest.mark.parametrize(
    ("kaf56", "relu56", "n_test", "verdict"),
    [
        ((0.1, DIVERGED), (0.85, None), 10000, c5.SUPPORTED),
        ((0.12, None), (0.85, None), 10000, c5.SUPPORTED),  # at chance without diverging
        ((0.8, None), (0.85, None), 10000, c5.CONTRADICTED),
        ((0.2, None), (0.85, None), 100, c5.UNDECIDED),  # its interval straddles the chance level
        ((0.1, DIVERGED), (0.12, None), 10000, "cannot decide: ReLU-ResNet-56 does not train either"),
    ],
)
def test_exploding_verdict_each_way(tmp_path, kaf56, relu56, n_test, verdict):
    runs = {("resnet20", "relu"): (0.8, None), ("resnet20", "kaf"): (0.78, None)}
    runs |= {("resnet56", "relu"): relu56, ("resnet56", "kaf"): kaf56}
    v = c5.exploding_verdicts(std_results(tmp_path, runs, n_test=n_test))
    assert v.loc["KAF-ResNet-56 fails to train while ReLU-ResNet-56 trains", "verdict"] == verdict
    assert v.loc["KAF-ResNet-20 trains", "verdict"] == c5.SUPPORTED


def test_exploding_table_groups_and_smoke(tmp_path):
    runs = {("resnet56", "relu"): (0.85, None), ("resnet56", "kaf"): (0.1, DIVERGED)}
    res = std_results(tmp_path, runs)
    t = c5.exploding_table(res)
    assert t.loc[("resnet56", "kaf"), "diverged_step"] == 7 and pd.isna(t.loc[("resnet56", "relu"), "diverged_step"])
    assert (t.loc[("resnet56", "relu"), "clean_lo"], t.loc[("resnet56", "relu"), "clean_hi"]) == pytest.approx(
        wilson(8500, 10000)
    )
    assert t.loc[("resnet56", "relu"), "grad_init_stem"] == 20.0  # params count down from 20
    assert t.loc[("resnet56", "relu"), "grad_init_stage 1"] == 19.0
    assert t.loc[("resnet56", "kaf"), "grad_init_stage 1"] == math.inf  # a non-finite norm wins its group
    assert t.loc[("resnet56", "relu"), "grad_init_dense"] == 1.0
    shown = c5.exploding_display(t)
    assert shown.loc[("resnet56", "relu"), "diverged at step"] == "--"  # stayed finite: no Python None shown
    assert shown.loc[("resnet56", "kaf"), "diverged at step"] == 7
    assert [c5.layer_group(p, 27) for p in ("blocks.8.conv2.weight", "blocks.9.act1", "blocks.26.conv1")] == [
        "stage 1",
        "stage 2",
        "stage 3",
    ]
    assert "KAF-ResNet-20 trains" not in c5.exploding_verdicts(res).index
    smoke = c5.exploding_verdicts(std_results(tmp_path / "s", runs, profile="smoke"))
    assert set(smoke["verdict"]) == {c5.SMOKE_VERDICT}
    assert c5.chapter5_stamp(std_results(tmp_path / "c", runs)) == (
        "cpu profile: 15 of 150 epochs, clean accuracy on 10,000 test images"
    )


def test_zero_gradient_layers_are_found_and_reported():
    norms = {
        "params": ["stem", "a", "b", "dense"],
        "steps": [0, 1, 2],
        "grad": [[9.0, 1, 1, 1], [0.0, 0.0, 1, 0.0], [0.0, 0.0, 2, 0.0]],
    }
    assert c5.zero_gradient_layers(norms) == [0, 1, 3]  # zero after the first step only counts
    assert c5.zero_gradient_layers({**norms, "grad": norms["grad"][:1]}) == []  # one step: nothing to say
    assert c5.zero_gradient_layers(None) == []
    row = {f"grad_init_{g}": math.nan for g in c5.GROUPS} | {"grad_init_stem": 9.0}
    table = pd.DataFrame([row | {"zero_grad_layers": 3, "zero_grad_first": 0, "zero_grad_last": 3, "layers": 4}])
    table.index = pd.MultiIndex.from_tuples([("resnet56", "kaf")])
    line = c5.init_gradient_lines(table)[0]
    assert "3 layers between 0 and 3 (3 of 4) get exactly zero gradient" in line
    table["zero_grad_last"] = 2
    assert "layers 0-2 (3 of 4)" in c5.init_gradient_lines(table)[0]


# ---------------------------------------------------------------------------------------- figures
def test_figures_draw_stamps_and_placeholders(tmp_path):
    models = {a: {"clean": 0.5 + 0.01 * i, "robust": 40 + i} for i, a in enumerate(("relu", "elu", "kaf", "kaf_elu"))}
    res = at_results(tmp_path, models)
    t = c5.robustness_table(res)
    stamp = c5.chapter5_stamp(res)
    fig = P.plot_accuracy_vs_robustness_ci(t, stamp=stamp, use_adjusttext=False)
    assert P.figure_stamp(fig) == stamp and P.is_stamp(stamp)
    ax = fig.axes[0]
    labels = [x for x in ax.texts if x.get_text() in models]
    assert sorted(x.get_text() for x in labels) == sorted(models)
    assert P.annotate.texts_overlap(ax, labels) == []
    bars = [c for c in ax.containers if hasattr(c, "has_xerr")]
    assert len(bars) == 4 and all(b.has_xerr and b.has_yerr for b in bars)
    empty = P.plot_robust_vs_iterations_ci(c5.iterations_table(res), stamp=stamp)
    assert any("no robust-accuracy-vs-iterations curve" in x.get_text() for x in empty.axes[0].texts)
    assert P.figure_stamp(empty) == stamp
    hist = [{"epoch": 1, "watch_pgd_acc": 0.3}, {"epoch": 2, "watch_pgd_acc": 0.4}]
    watch = P.plot_overfitting_watch({"relu": hist, "kaf": [{"epoch": 1}]})
    assert [ln.get_label() for ln in watch.axes[0].get_lines()] == ["relu"]  # kaf has no watch: left out
    curve = [
        {"activation": "relu", "iterations": i, "robust_acc": a, "lo": a - 0.05, "hi": a + 0.05}
        for i, a in ((1, 0.5), (50, 0.4))
    ]
    fig = P.plot_robust_vs_iterations_ci(curve)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].collections) == 1  # the Wilson band


def test_p_values_and_range_test_stamps(tmp_path):
    assert [c5.format_p(p) for p in (0.0312, 4e-20, math.nan)] == ["0.031", "<0.0001", "--"]
    d = tmp_path / "cpu" / "resnet20_lr_range"
    _write(d / "summary.json", {"result": {"bounds": []}, "settings": {"epochs": 1, "lr_end": 3.0, "activations": []}})
    assert (
        c5.chapter5_stamp(ExperimentResults("resnet20_lr_range", "cpu", tmp_path)) == "cpu profile: 1 of 5 sweep epochs"
    )
    watch = [{"epoch": 1, "watch_pgd_acc": 0.3}]
    res = at_results(tmp_path / "w", {"relu": {"clean": 0.58, "robust": 60, "watch": watch}})
    assert c5.watch_label(res) == "PGD accuracy on the watch images"  # the synthetic run records no n_watch


def test_one_seed_comparison_within_a_seed_spread_is_not_distinguishable():
    """A difference measured on one training seed, smaller than the spread of one side's repeats, decides nothing."""
    from thesis_lib.reporting.chapter5 import SUPPORTED, UNDECIDED, _within_seed_spread

    def row(diff):
        return {"difference (pts)": diff, "verdict": SUPPORTED, "measured": "robust a - b", "networks": ("a", "b")}

    by_seed = {"b": {0: {"robust": 0.0}, 1: {"robust": 0.398}, 2: {"robust": 0.396}}}
    wide = _within_seed_spread(row(39.3), by_seed, "robust")
    assert wide["verdict"] == UNDECIDED
    assert wide["measured"] == "robust a - b (one seed; b: 0.0-39.8% over 3 seeds)"
    assert _within_seed_spread(row(45.0), by_seed, "robust")["verdict"] == SUPPORTED  # wider than the spread
    assert _within_seed_spread(row(39.3), {"b": {0: {"robust": 0.0}}}, "robust")["verdict"] == SUPPORTED  # one seed
