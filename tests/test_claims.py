"""The thesis's claims and their verdicts (`thesis_lib.reporting.claims`, notebook 11): each verdict can come out
each way on made-up results, smoke-only claims are "not tested yet", and the evidence pointers name real outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from thesis_lib.reporting import claims as cl

ROOT = Path(__file__).resolve().parents[1]
N = 200  # attacked images of the made-up results


class Fake:
    """Stands in for an ExperimentResults: summary fields, steps and training runs from dicts."""

    def __init__(self, name, profile="cpu", settings=None, result=None, steps=None, runs=None, directory=None):
        self.name, self.profile = name, profile
        self.settings, self.result = settings or {}, result or {}
        self._steps, self._runs = steps or {}, runs or {}
        self.dir = directory or Path("/nonexistent")
        self.summary = {"settings": self.settings, "result": self.result, "requires": []}

    def step(self, name):
        return self._steps[name]

    def run(self, key):
        return self._runs[key]


def outcomes(k: int, n: int = N) -> list[bool]:
    """k robust images first, then n - k broken ones."""
    return [True] * k + [False] * (n - k)


def judge(claim_id: str, **results) -> tuple[str, str]:
    claim = next(c for c in cl.CLAIMS if c.id == claim_id)
    row = cl.evaluate_claims(claims=[claim], results=results).loc[claim_id]
    return row["verdict"], row["measured"]


# ------------------------------------------------------------------------------------ made-up results
def light_cnn(robust=None, clean=None, flagged=None, rel=None, profile="full"):
    acts = ["relu", "kwta", "kaf"]
    robust = {"relu": 20, "kwta": 20, "kaf": 20, **(robust or {})}
    clean = {"relu": 0.70, "kwta": 0.70, "kaf": 0.70, **(clean or {})}
    flagged = {"relu": False, "kwta": True, "kaf": False, **(flagged or {})}
    rel = {"relu": 1.0, "kwta": 1.0, "kaf": 1.0, **(rel or {})}
    steps = {}
    for a in acts:
        steps[f"pgd_{a}"] = {"success_step": [-1] * robust[a] + [3] * (N - robust[a])}
        spread = [0.9, 1.0, 1.1, 0.95, 1.05]
        steps[f"layer_distances_{a}"] = [
            {"activation": a, "sample": i, "distance": 1.0, "relative_distance": rel[a] * s}
            for i, s in enumerate(spread)
        ]
        checks = [{"name": "gradients_predict_loss_changes", "passed": not flagged[a]}]
        steps[f"gradient_masking_{a}"] = {"flagged": flagged[a], "checks": checks, "n": N}
    models = [
        {
            "activation": a,
            "clean_acc": clean[a],
            "gradient_masking_flagged": flagged[a],
            "pgd": {"robust_acc": robust[a] / N, "n": N},
        }
        for a in acts
    ]
    settings = {"activations": acts, "test_subset": None, "epochs": 20}
    return Fake("light_cnn", profile, settings, {"models": models}, steps)


def at_results(
    name="vgg", robust=None, clean=None, thesis=None, later=None, profile="cpu", collapsed=(), diverged=None
):
    acts = ["relu", "elu", "kaf", "kaf_elu", "swish", "kaf_swish"]
    robust = {a: 60 for a in acts} | (robust or {})
    clean = {a: 0.75 for a in acts} | (clean or {})
    thesis = thesis or {}
    later = later or {}
    steps, runs = {}, {}
    for a in acts:
        steps[f"pgd_{a}"] = {"per_example": outcomes(robust[a])}
        steps[f"thesis_pgd_{a}"] = {"per_example": outcomes(thesis.get(a, robust[a]))}
        runs[a] = {"clean_acc": clean[a], "n_test": 10000}
    for a in ("relu", "kaf"):
        r0 = robust[a] / N
        steps[f"pgd_iterations_{a}"] = [
            {"iterations": 50, "robust_acc": r0, "n": N},
            {"iterations": 150, "robust_acc": r0 - later.get(a, 0) / N, "n": N},
        ]
    settings = {
        "activations": acts,
        "curve_activations": ["relu", "kaf"],
        "pgd": {"steps": 50, "restarts": 10, "n": N},
        "epochs": 60,
    }
    models = [{"activation": a} for a in acts]
    for m in models:
        if m["activation"] in collapsed:
            m["overfitting"] = {"best": 0.05, "best_epoch": 1, "final": 0.0, "collapsed": True}
        if m["activation"] in (diverged or {}):
            m["diverged"] = {"step": diverged[m["activation"]], "layer": "stem", "quantity": "grad"}
    return Fake(name, profile, settings, {"models": models}, steps, runs)


def resnet_standard(kaf56_clean=0.1, kaf56_diverged=None, kaf56_grad=1e6, kaf20_clean=0.8, profile="full"):
    models, steps, runs = [], {}, {}
    spec = {
        ("resnet20", "relu"): (0.85, None, 1.0),
        ("resnet20", "kaf"): (kaf20_clean, None, 2.0),
        ("resnet56", "relu"): (0.85, None, 3.0),
        ("resnet56", "kaf"): (kaf56_clean, kaf56_diverged, kaf56_grad),
    }
    for (arch, act), (acc, div, grad) in spec.items():
        key = f"{arch}_{act}"
        models.append({"arch": arch, "activation": act, "clean_acc": acc, "diverged": div})
        runs[key] = {"clean_acc": acc, "n_test": 10000, "diverged": div}
        steps[f"norms_{key}"] = {"params": ["stem.conv.weight", "fc.weight"], "steps": [0], "grad": [[grad, 0.5]]}
    return Fake("resnet_standard", profile, {"test_subset": None}, {"models": models}, steps, runs)


# --------------------------------------------------------------------------------------- the rules
def test_combine():
    S, R, U, smoke = cl.SUPPORTED, cl.REFUTED, cl.UNDECIDED, cl.SMOKE_ONLY
    assert cl.combine([S, S]) == S and cl.combine([S, U]) == U and cl.combine([S, R]) == R
    assert cl.combine([S, smoke]) == smoke and cl.combine([]) == cl.NOT_MEASURED
    assert cl.combine([U, S], "any") == S and cl.combine([R, R], "any") == R and cl.combine([R, U], "any") == U
    assert cl.combine([S, U, smoke], "evidence") == S and cl.combine([R, U], "evidence") == R
    assert cl.combine([S, R], "evidence") == U and cl.combine([smoke, smoke], "evidence") == smoke
    with pytest.raises(ValueError):
        cl.combine([S], "most")


@pytest.mark.parametrize(
    "robust, verdict",
    [({"kaf": 60}, cl.SUPPORTED), ({"relu": 60}, cl.REFUTED), ({"kaf": 21}, cl.UNDECIDED)],
)
def test_kaf_robust_light(robust, verdict):
    assert judge("kaf-robust-light", light_cnn=light_cnn(robust=robust))[0] == verdict


@pytest.mark.parametrize(
    "clean, verdict",
    [({"kaf": 0.75}, cl.SUPPORTED), ({"kaf": 0.65}, cl.REFUTED), ({"kaf": 0.701}, cl.UNDECIDED)],
)
def test_kaf_clean_light(clean, verdict):
    v, measured = judge("kaf-clean-light", light_cnn=light_cnn(clean=clean))
    assert v == verdict and "clean: relu 70.0%" in measured


@pytest.mark.parametrize(
    "rel, verdict", [({"kaf": 0.5}, cl.SUPPORTED), ({"kaf": 2.0}, cl.REFUTED), ({"kaf": 1.001}, cl.UNDECIDED)]
)
def test_kaf_distances(rel, verdict):
    assert judge("kaf-distances", light_cnn=light_cnn(rel=rel))[0] == verdict


@pytest.mark.parametrize(
    "flagged, verdict",
    [({}, cl.SUPPORTED), ({"kwta": False}, cl.REFUTED), ({"relu": True}, cl.UNDECIDED)],
)
def test_kwta_masking(flagged, verdict):
    v, measured = judge("kwta-masking", light_cnn=light_cnn(flagged=flagged))
    assert v == verdict and "PGD robust" in measured


def test_kwta_pgd():
    assert judge("kwta-pgd", light_cnn=light_cnn(robust={"kwta": 80}))[0] == cl.SUPPORTED
    assert judge("kwta-pgd", light_cnn=light_cnn())[0] == cl.UNDECIDED  # the same robust images: no difference


@pytest.mark.parametrize(
    "jumps, verdict",
    [({"kwta": 4}, cl.SUPPORTED), ({}, cl.REFUTED), ({"kwta": 4, "relu": 1}, cl.UNDECIDED)],
)
def test_kwta_discontinuous(jumps, verdict):
    rows = [
        {"activation": a, "image": i, "n_jumps": jumps.get(a, 0)} for a in ("kwta", "kaf", "relu") for i in range(3)
    ]
    assert judge("kwta-discontinuous", kwta_line=Fake("kwta_line", "full", result={"jumps": rows}))[0] == verdict


@pytest.mark.parametrize(
    "robust, clean, verdict",
    [
        ({"kaf": 100, "kaf_elu": 100, "kaf_swish": 100}, None, cl.SUPPORTED),
        ({"kaf": 100, "kaf_elu": 100, "kaf_swish": 30}, None, cl.REFUTED),
        ({"kaf": 100, "kaf_elu": 61, "kaf_swish": 100}, None, cl.UNDECIDED),
        ({"kaf": 100, "kaf_elu": 100, "kaf_swish": 100}, {"relu": 0.1}, cl.UNDECIDED),  # relu at chance
    ],
)
def test_kaf_vs_fixed(robust, clean, verdict):
    v, measured = judge("kaf-vs-fixed-vgg", vgg=at_results(robust=robust, clean=clean))
    assert v == verdict
    assert ("at chance" in measured) == (clean is not None)


def test_kaf_most_robust_and_smooth_activations():
    assert judge("kaf-most-robust-resnet20", resnet20_at=at_results("resnet20_at", {"kaf_elu": 120}))[0] == cl.SUPPORTED
    v, measured = judge("kaf-most-robust-resnet20", resnet20_at=at_results("resnet20_at", {"swish": 120}))
    assert v == cl.REFUTED and measured.startswith("most robust: swish (60.0%)")
    assert judge("smooth-vgg", vgg=at_results(robust={"elu": 100, "swish": 100}))[0] == cl.SUPPORTED
    assert judge("smooth-vgg", vgg=at_results(robust={"elu": 100, "swish": 10}))[0] == cl.REFUTED
    assert judge("kaf-clean-vgg", vgg=at_results(clean={"relu": 0.6}))[0] == cl.SUPPORTED
    assert judge("kaf-clean-vgg", vgg=at_results(clean={"relu": 0.9}))[0] == cl.REFUTED


def test_comparisons_with_a_failed_network_say_how_it_failed():
    note = "failed runs (their comparisons measure the failure): swish overfitted catastrophically"
    for claim in ("kaf-vs-fixed-vgg", "smooth-vgg"):
        v, measured = judge(claim, vgg=at_results(robust={"swish": 0}, collapsed=["swish"]))
        assert measured.endswith(note), measured
        assert note not in judge(claim, vgg=at_results(robust={"swish": 0}))[1]
    # the best KAF and the best fixed network did not collapse: nothing to note
    v, measured = judge("kaf-most-robust-vgg", vgg=at_results(robust={"kaf_elu": 120}, collapsed=["swish"]))
    assert "overfitted" not in measured
    # a run stopped by a non-finite gradient diverged: that, not overfitting, is what its comparisons measure
    failed = at_results(robust={"swish": 0}, collapsed=["swish"], diverged={"swish": 1118})
    v, measured = judge("smooth-vgg", vgg=failed)
    assert measured.endswith("failed runs (their comparisons measure the failure): swish diverged at step 1118")


def test_evaluation_choice_and_convergence():
    assert judge("evaluation-resnet20", resnet20_at=at_results("resnet20_at", thesis={"relu": 100}))[0] == cl.SUPPORTED
    assert judge("evaluation-resnet20", resnet20_at=at_results("resnet20_at"))[0] == cl.UNDECIDED
    assert judge("pgd-converged-vgg", vgg=at_results())[0] == cl.SUPPORTED
    assert judge("pgd-converged-vgg", vgg=at_results(later={"kaf": 10}))[0] == cl.REFUTED
    assert judge("pgd-converged-vgg", vgg=at_results(later={"kaf": 2}))[0] == cl.UNDECIDED
    no_curve = at_results()
    no_curve.settings["curve_activations"] = []
    assert judge("pgd-converged-vgg", vgg=no_curve)[0] == cl.NOT_MEASURED


def test_section_5_2():
    fails = {"kaf56_clean": 0.1, "kaf56_diverged": {"step": 7, "layer": "blocks.3", "quantity": "grad"}}
    assert judge("resnet56-kaf-fails", resnet_standard=resnet_standard(**fails))[0] == cl.SUPPORTED
    assert judge("resnet56-kaf-fails", resnet_standard=resnet_standard(kaf56_clean=0.8))[0] == cl.REFUTED
    v, measured = judge("resnet56-exploding", resnet_standard=resnet_standard(**fails))
    assert v == cl.SUPPORTED and "diverged at step 7" in measured
    assert judge("resnet56-exploding", resnet_standard=resnet_standard(kaf56_clean=0.8, kaf56_grad=5.0))[0] == (
        cl.REFUTED
    )
    assert judge("resnet56-exploding", resnet_standard=resnet_standard(kaf56_grad=5.0))[0] == cl.UNDECIDED
    assert judge("resnet20-kaf-trains", resnet_standard=resnet_standard())[0] == cl.SUPPORTED
    assert judge("resnet20-kaf-trains", resnet_standard=resnet_standard(kaf20_clean=0.1))[0] == cl.REFUTED


def test_chapter_6(tmp_path):
    def fix(acc):
        cands = [{"candidate": "baseline", "activation": "kaf", "clean_acc": acc, "diverged": None}]
        cands.append({"candidate": "relu", "activation": "relu", "clean_acc": 0.8, "diverged": None})
        return Fake("resnet56_fix", "full", {"test_subset": None}, {"candidates": cands})

    assert judge("resnet56-fix", resnet56_fix=fix(0.7))[0] == cl.SUPPORTED
    assert judge("resnet56-fix", resnet56_fix=fix(0.1))[0] == cl.UNDECIDED  # failed fixes refute nothing

    def autoattack(only_aa, only_pgd, pgd_acc=0.5):
        d = tmp_path / f"aa_{only_aa}_{only_pgd}_{pgd_acc}"
        d.mkdir(exist_ok=True)
        step = {"only_autoattack": only_aa, "only_pgd": only_pgd, "pgd_acc": pgd_acc, "autoattack_acc": 0.4, "n": N}
        (d / "autoattack_vgg_relu.json").write_text(json.dumps({"result": step}))
        return Fake("autoattack", "cpu", steps={"autoattack_vgg_relu": step}, directory=d)

    assert judge("adaptive-attacks", autoattack=autoattack(20, 0))[0] == cl.SUPPORTED
    assert judge("adaptive-attacks", autoattack=autoattack(0, 20))[0] == cl.REFUTED
    assert judge("adaptive-attacks", autoattack=autoattack(1, 0))[0] == cl.UNDECIDED

    def lipschitz(kaf_bound):
        models = [
            {"model": "VGG", "training": "fast AT", "activation": "relu", "bound": 100.0, "empirical_jacobian": 1.0},
            {"model": "VGG", "training": "fast AT", "activation": "kaf", "bound": kaf_bound, "empirical_jacobian": 1.0},
            {"model": "VGG", "training": "fast AT", "activation": "kwta", "bound": math.inf, "empirical_jacobian": 1.0},
        ]
        return Fake("lipschitz", "cpu", result={"models": models})

    assert judge("lipschitz-kaf-chapter5", lipschitz=lipschitz(1e5))[0] == cl.SUPPORTED
    assert judge("lipschitz-kaf-chapter5", lipschitz=lipschitz(10.0))[0] == cl.REFUTED
    assert judge("lipschitz-kaf-chapter5", lipschitz=lipschitz(300.0))[0] == cl.UNDECIDED
    # the light CNNs are their own experiment; a second row set of an activation does not replace its main model
    light = lipschitz(1e5)
    light.result["models"].append({**light.result["models"][1], "key": "kaf_thesis_lr", "bound": 10.0})
    assert judge("lipschitz-kaf", lipschitz_light_cnn=light)[0] == cl.SUPPORTED
    assert judge("adaptive-attacks-kwta", autoattack_light_cnn=autoattack(19, 0))[0] == cl.SUPPORTED
    # nothing survives PGD: nothing for AutoAttack to unmask, and the evidence says so
    v, measured = judge("adaptive-attacks-kwta", autoattack_light_cnn=autoattack(0, 0, pgd_acc=0.0))
    assert v == cl.UNDECIDED and "PGD already breaks every image" in measured
    assert "PGD already breaks" not in judge("adaptive-attacks", autoattack=autoattack(1, 0))[1]


def test_conclusion_gathers_the_robustness_claims():
    better = {"kaf": 100, "kaf_relu": 100, "kaf_elu": 100, "kaf_swish": 100, "elu": 100, "swish": 100}
    results = {"light_cnn": light_cnn(robust={"kaf": 60}), "vgg": at_results(robust=better)}
    results["resnet20_at"] = at_results("resnet20_at", robust=better, profile="smoke")
    table = cl.evaluate_claims(results=results)
    assert table.loc["conclusion", "verdict"] == cl.SUPPORTED  # the smoke claims are left out
    assert "not tested yet (smoke only): smooth-resnet20, kaf-vs-fixed-resnet20" in table.loc["conclusion", "measured"]
    results["vgg"] = at_results(robust={"elu": 10, "swish": 10, "kaf": 10, "kaf_elu": 10, "kaf_swish": 10})
    assert cl.evaluate_claims(results=results).loc["conclusion", "verdict"] == cl.UNDECIDED  # mixed evidence


def test_smoke_only_and_missing_results_are_not_tested():
    smoke = {
        "light_cnn": light_cnn(robust={"kaf": 60}, profile="smoke"),
        "vgg": at_results(profile="smoke"),
        "resnet20_at": at_results("resnet20_at", profile="smoke"),
        "resnet_standard": resnet_standard(profile="smoke"),
    }
    table = cl.evaluate_claims(results=smoke)
    for exp in smoke:
        ids = [c.id for c in cl.CLAIMS if exp in c.experiments]
        assert set(table.loc[ids, "verdict"]) == {cl.SMOKE_ONLY}, exp
        assert all(f"{exp} (smoke)" in r for r in table.loc[ids, "rests on"])
    assert table.loc["kaf-robust-light", "measured"].startswith("robust kaf - relu +20.0")  # measured, not decided
    assert table.loc["conclusion", "verdict"] == cl.SMOKE_ONLY
    for cid in ("kwta-discontinuous", "lipschitz-kaf", "adaptive-attacks", "resnet56-fix"):
        assert table.loc[cid, "verdict"] == cl.NO_RESULTS
    assert set(table["verdict"]) <= set(cl.VERDICTS)


# ------------------------------------------------------------------------------ results on disk
def _write_summary(results_dir: Path, name: str, profile: str, result: dict, key: str | None = None):
    from thesis_lib.experiments import get_experiment
    from thesis_lib.experiments.runner import settings_key

    d = results_dir / profile / name
    d.mkdir(parents=True)
    summary = {
        "status": "complete",
        "settings_key": key or settings_key(name, profile),
        "settings": get_experiment(name).settings_dict(profile),
        "result": result,
        "requires": [],
    }
    (d / "summary.json").write_text(json.dumps(summary))


def test_select_results_takes_the_largest_complete_profile(tmp_path):
    jumps = {
        "jumps": [{"activation": "kwta", "image": 0, "n_jumps": 3}, {"activation": "relu", "image": 0, "n_jumps": 0}]
    }
    _write_summary(tmp_path, "kwta_line", "smoke", jumps)
    _write_summary(tmp_path, "kwta_line", "cpu", jumps)
    _write_summary(tmp_path, "kwta_line", "full", jumps, key="stale")  # other settings: not complete
    picked = cl.select_results(tmp_path)
    assert picked["kwta_line"].profile == "cpu" and picked["light_cnn"] is None
    assert set(picked) == set(cl.claim_experiments())
    table = cl.evaluate_claims(tmp_path)
    assert table.loc["kwta-discontinuous", "verdict"] == cl.SUPPORTED
    assert table.loc["kwta-discontinuous", "rests on"] == "kwta_line (cpu)"
    assert table.loc["kwta-discontinuous", "scale"].startswith("cpu profile")
    assert table.loc["kaf-robust-light", "verdict"] == cl.NO_RESULTS
    used = cl.results_used(picked)
    assert used.loc["kwta_line", "profile used"] == "cpu" and used.loc["vgg", "profile used"] == "--"


def test_robustness_comparison_marks_the_literature_row():
    table = cl.robustness_comparison({"vgg": at_results(), "resnet20_at": None})
    assert list(table["model"]) == ["VGG"] * 6 + ["PreActResNet-18"]
    last = table.iloc[-1]
    assert "not our run" in last["source"] and "Wong, Rice, Kolter 2020" in last["source"]
    assert (last["clean (%) [95% CI]"], last["robust (%) [95% CI]"], last["attack"]) == (
        "86.1 [85.4, 86.8]",  # Wilson on 10,000 test images
        "46.1 [45.1, 47.1]",
        "PGD-50x10, eps 8/255",
    )
    assert all(" [" in v for v in table["robust (%) [95% CI]"][:-1])  # ours with their intervals too
    assert "Fast is better than free" in cl.LITERATURE_CITATION and "ICLR 2020" in cl.LITERATURE_CITATION
    assert set(table["source"][:-1]) == {"this project, cpu profile"}


# ------------------------------------------------------------------------------ pointers and header
def test_claims_point_at_outputs_their_notebooks_save():
    from thesis_lib.experiments import get_experiment
    from thesis_lib.notebook_sources import notebook_entries

    saved = {e.stem: e.figures for e in notebook_entries(ROOT / "notebooks")}
    ids = [c.id for c in cl.CLAIMS]
    assert len(ids) == len(set(ids))
    for c in cl.CLAIMS:
        assert c.notebook in saved, c.id
        for name in c.evidence:
            kind = "table" if name.endswith(".tex") else "figure"
            assert kind in saved[c.notebook].get(name.removesuffix(".tex"), set()), (c.id, name)
        for exp in c.experiments:
            get_experiment(exp)
        assert (c.judge is None) == bool(c.components), c.id
        assert all(x in ids for x in c.components)


def test_notebook_11_header_names_the_claims_sections():
    import nbformat

    from thesis_lib.notebook_sources import HEADER, section_phrase

    nb = nbformat.read(ROOT / "notebooks" / "11_claims.ipynb", as_version=4)
    m = HEADER.match(nb.cells[0].source.splitlines()[0])
    assert m and m["sections"] == section_phrase(cl.claim_sections())
    assert "evaluate_claims(" in "\n".join(c.source for c in nb.cells)


def test_committed_results_give_a_verdict_for_every_claim():
    table = cl.evaluate_claims(ROOT / "results")
    assert list(table.index) == [c.id for c in cl.CLAIMS]
    assert set(table["verdict"]) <= set(cl.VERDICTS)
    assert cl.verdict_counts(table).startswith(f"{len(cl.CLAIMS)} claims: ")


def test_evidence_links_point_at_files_that_exist():
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for claim in cl.CLAIMS:
        text = cl.evidence_links(f"{claim.notebook}: " + ", ".join(claim.evidence))
        targets = [part.split("](", 1)[1].rstrip(")") for part in text.split(", ")]
        assert targets[0] == f"{claim.notebook}.ipynb"
        missing = [t for t in targets if not (notebooks / t).exists()]
        assert not missing, (claim.id, missing)
