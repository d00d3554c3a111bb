"""The cpu-profile extensions of chapter 5 and 6: the VGG second row set (the thesis's bounds), the training-seed
repeats and their verdicts, the ResNet-56 fix's final run, model lists of AutoAttack and Lipschitz."""

from __future__ import annotations

import json
import math

import pytest
import torch

from thesis_lib.data.subset import stratified_indices
from thesis_lib.experiments import ExperimentResults, get_experiment
from thesis_lib.experiments.resnet56_fix import best_candidate
from thesis_lib.experiments.runner import ensure_supplementary
from thesis_lib.experiments.vgg import THESIS_LR_SUFFIX
from thesis_lib.reporting import chapter5 as c5
from thesis_lib.reporting.notebooks import best_profile, missing_results

N = 100


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _pe(k: int, start: int = 0) -> list[bool]:
    return [start <= i < start + k for i in range(N)]


def _family(d, key: str, act: str, clean: float, robust: int, extra: dict | None = None) -> dict:
    _write(d / "training" / f"{key}.json", {"clean_acc": clean, "n_test": 10000, "history": []})
    _write(d / f"pgd_{key}.json", {"result": {"per_example": _pe(robust), "robust_acc": robust / N, "n": N}})
    row = {"activation": act, "clean_acc_train_eval": clean, "lr_min": 1e-4, "lr_max": 0.1, "n_eval": N}
    if key != act:
        row["key"] = key
    return row | (extra or {})


def _summary(d, result: dict, settings: dict) -> None:
    _write(d / "summary.json", {"result": result, "settings": settings})


def test_cpu_profiles_exist_and_leave_the_committed_keys_alone():
    for name in (
        "vgg_lr_range",
        "vgg",
        "kaf_shapes",
        "resnet20_seeds",
        "resnet56_fix",
        "autoattack",
        "lipschitz",
        "lipschitz_light_cnn",
    ):
        assert get_experiment(name).has_profile("cpu")
    vgg = get_experiment("vgg").settings_for("cpu")
    assert (vgg.epochs, vgg.lr_source, vgg.thesis_lr_rows, vgg.pgd.n) == (15, "range_test", True, 1000)
    # fields added at their default stay out of the stored settings (the full profile's key is unchanged)
    assert "thesis_lr_rows" not in get_experiment("vgg").settings_dict("full")
    assert "final" not in get_experiment("resnet56_fix").settings_dict("full")
    # the seed repeats are their own experiment: resnet20_at's cpu key does not move when they are added
    assert "seeds" not in get_experiment("resnet20_at").settings_dict("cpu")
    assert get_experiment("resnet20_seeds").requirements("cpu") == ("resnet20_at",)


def test_autoattack_rows_are_500_of_the_1000_pgd_images():
    at = get_experiment("autoattack").settings_for("cpu")
    assert at.n == 500 and at.models == (("resnet20_at", None), ("vgg", ("relu", "kaf", "swish")))
    assert get_experiment("autoattack").settings_for("cpu").pgd.n is None  # PGD on the AutoAttack images
    assert get_experiment("resnet20_at").settings_for("cpu").pgd.n == 1000
    # a balanced label set (the CIFAR-10 test set: 1,000 per class): the 500-image subset lies in the 1,000-image one
    labels = torch.arange(10).repeat_interleave(1000)
    small, large = set(stratified_indices(labels, 500, 0).tolist()), set(stratified_indices(labels, 1000, 0).tolist())
    assert small <= large and len(small) == 500


def test_light_cnn_rows_are_their_own_experiments_with_the_committed_settings():
    # the chapter-4 rows need only the light CNNs, at every profile (their full profile needs no GPU)
    for name in ("autoattack_light_cnn", "lipschitz_light_cnn"):
        e = get_experiment(name)
        assert all(e.requirements(p) == ("light_cnn",) for p in ("smoke", "cpu", "full"))
        assert all(exp == "light_cnn" for exp, _ in e.settings_for("full").models)
    assert "light_cnn" not in {exp for exp, _ in get_experiment("autoattack").settings_for("full").models}


def test_thesis_lr_rows_read_as_results_of_their_own(tmp_path):
    d = tmp_path / "cpu" / "vgg"
    main = [_family(d, a, a, 0.6, r) for a, r in (("relu", 20), ("kaf", 40))]
    second = [_family(d, a + THESIS_LR_SUFFIX, a, 0.5, r) for a, r in (("relu", 10), ("kaf", 12))]
    settings = {"activations": ["relu", "kaf"], "curve_activations": ["relu", "kaf"], "epochs": 15}
    _summary(d, {"models": main, "thesis_lr_models": second, "pgd": {"steps": 50, "restarts": 10, "n": N}}, settings)
    res = ExperimentResults("vgg", "cpu", tmp_path)
    first = c5.robustness_table(res)
    assert list(first.index) == ["relu", "kaf"] and first.loc["kaf", "robust"] == pytest.approx(0.40)
    view = c5.thesis_lr_rows(res)
    table = c5.robustness_table(view)
    assert table.loc["relu", "robust"] == pytest.approx(0.10) and table.loc["kaf", "clean"] == pytest.approx(0.5)
    assert c5.iterations_table(view).empty  # the second row set has no iterations curve
    assert "kaf more robust than relu" in c5.robustness_verdicts(view).index
    _summary(d, {"models": main, "pgd": {}}, settings)
    assert c5.thesis_lr_rows(ExperimentResults("vgg", "cpu", tmp_path)) is None


def _seeds_folder(tmp_path, clean: dict, robust: dict):
    """resnet20_at (seed 0) and resnet20_seeds (seeds 1, 2): clean[act] / robust[act] are per-seed lists."""
    d = tmp_path / "cpu" / "resnet20_at"
    rows = [_family(d, a, a, clean[a][0], robust[a][0]) for a in clean]
    _summary(d, {"models": rows, "pgd": {}}, {"activations": list(clean), "seed": 0, "curve_activations": []})
    s = tmp_path / "cpu" / "resnet20_seeds"
    rows = [_family(s, f"{a}_seed{k}", a, clean[a][k], robust[a][k], {"seed": k}) for a in clean for k in range(1, 3)]
    _summary(s, {"models": rows, "base": "resnet20_at"}, {"activations": list(clean), "seeds": [1, 2]})
    return ExperimentResults("resnet20_at", "cpu", tmp_path), ExperimentResults("resnet20_seeds", "cpu", tmp_path)


def test_seed_table_and_the_verdict_over_seeds(tmp_path):
    # kaf beats relu in every seed by 10, 12, 14 images of 100: mean 12 points, sd 2
    res, seeds = _seeds_folder(
        tmp_path,
        clean={"relu": [0.6, 0.62, 0.58], "kaf": [0.55, 0.56, 0.54]},
        robust={"relu": [30, 31, 32], "kaf": [40, 43, 46]},
    )
    table = c5.seed_table(res, seeds)
    assert table.loc["kaf", "runs"] == 3 and table.loc["kaf", "robust_mean"] == pytest.approx(0.43)
    assert table.loc["kaf", "robust_sd"] == pytest.approx(0.03)
    assert table.loc["relu", "clean_per_seed"] == "60.0 / 62.0 / 58.0"
    v = c5.robustness_verdicts(res, res_seeds=seeds)
    row = v.loc["kaf more robust than relu"]
    assert row["test"] == "t-test over training seeds" and row["n"] == "3 seeds"
    assert row["difference (pts)"] == pytest.approx(12.0)
    # t interval over 3 seeds: mean +- t(0.975, 2) * sd / sqrt(3), t = 4.303
    assert row["hi (pts)"] - 12.0 == pytest.approx(4.303 * 2 / math.sqrt(3), rel=1e-3)
    assert row["verdict"] == c5.SUPPORTED  # t = 12 / (2 / sqrt 3) = 10.4, p = 0.009
    clean = v.loc["kaf raises clean accuracy over relu"]
    assert clean["test"] == "t-test over training seeds" and clean["verdict"] == c5.CONTRADICTED
    # without the repeats the same comparison is McNemar's on seed 0's images
    assert c5.robustness_verdicts(res).loc["kaf more robust than relu", "test"] == "McNemar exact, paired"


def test_a_seed_difference_that_flips_sign_is_not_distinguishable(tmp_path):
    res, seeds = _seeds_folder(
        tmp_path, clean={"relu": [0.6] * 3, "kaf": [0.6] * 3}, robust={"relu": [30, 40, 35], "kaf": [40, 30, 36]}
    )
    assert c5.robustness_verdicts(res, res_seeds=seeds).loc["kaf more robust than relu", "verdict"] == c5.UNDECIDED


def test_supplementary_results_are_optional_beyond_smoke(tmp_path):
    assert get_experiment("resnet20_seeds").supplementary
    assert ensure_supplementary("resnet20_seeds", "cpu", tmp_path) is None  # nothing computed, no error
    assert "resnet20_seeds" not in missing_results("09_resnet20_results", "cpu", tmp_path)
    assert best_profile("09_resnet20_results", tmp_path) == "smoke"
    with pytest.raises(Exception, match="unknown experiment"):
        ensure_supplementary("no_such_experiment", "cpu", tmp_path)


def test_best_fix_is_the_most_accurate_non_diverged_candidate():
    rows = [
        {"candidate": "baseline", "best_test_acc": 0.9},
        {"candidate": "relu", "best_test_acc": 0.95},
        {"candidate": "small_alpha", "best_test_acc": 0.7, "diverged": {"step": 3}},
        {"candidate": "ridge_relu", "best_test_acc": 0.5},
        {"candidate": "he_block", "best_test_acc": 0.6},
    ]
    assert best_candidate(rows)["candidate"] == "he_block"
    assert best_candidate(rows[:3]) is None


def test_trained_runs_select_by_key_and_name_a_wrong_one(tmp_path):
    from thesis_lib.experiments.context import RunContext

    exp = get_experiment("resnet_standard")
    ctx = RunContext(exp, "smoke", exp.settings_for("smoke"), tmp_path, tmp_path / "runs")
    assert [r.key for r in ctx.trained_runs(("resnet20_relu",))] == ["resnet20_relu"]
    with pytest.raises(ValueError, match="has no run 'relu'; its runs: resnet20_relu"):
        ctx.trained_runs(("relu",))


def test_fix_against_relu_is_a_non_inferiority_verdict(tmp_path):
    std = tmp_path / "cpu" / "resnet_standard"
    models = [{"arch": "resnet56", "activation": a, "clean_acc": c} for a, c in (("kaf", 0.10), ("relu", 0.80))]
    _summary(std, {"models": models}, {"test_subset": None})

    def verdicts(fixed_acc):
        fix = tmp_path / "cpu" / "resnet56_fix"
        final = {"candidate": "he_block", "key": "final_he_block", "clean_acc": fixed_acc, "n_test": 10000}
        _summary(fix, {"candidates": [], "final": final}, {})
        res_fix = ExperimentResults("resnet56_fix", "cpu", tmp_path)
        return c5.fix_verdicts(res_fix, ExperimentResults("resnet_standard", "cpu", tmp_path))["verdict"].tolist()

    # n = 10,000 each: the difference's 95% interval is about +-1.1 points
    assert verdicts(0.80) == [c5.SUPPORTED, c5.SUPPORTED]  # at ReLU's accuracy: within the 2-point margin
    assert verdicts(0.75) == [c5.SUPPORTED, c5.CONTRADICTED]  # trains, but 5 points below ReLU
    assert verdicts(0.785) == [c5.SUPPORTED, c5.UNDECIDED]  # the interval straddles -2 points
