"""The thesis figures as a reader sees them: no blank panels, fonts that print, labels that do not
overlap, and a profile stamp on every figure and table the notebooks 01-07 and 10 write.

Fast: the figures are redrawn from the committed results (no training, no attack).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from thesis_lib import plotting as P  # noqa: E402
from thesis_lib.experiments.runner import ExperimentResults, is_complete  # noqa: E402
from thesis_lib.plotting.annotate import texts_overlap  # noqa: E402
from thesis_lib.plotting.checks import blank_axes, small_fonts  # noqa: E402
from thesis_lib.reporting.outputs import save_figure, save_table  # noqa: E402
from thesis_lib.reporting.stamp import profile_stamp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS, FIGURES, NOTEBOOKS = ROOT / "results", ROOT / "figures", ROOT / "notebooks"
STAMPED_NOTEBOOKS = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")
WIDTH_SLACK = 0.35  # inches a saved (tight) figure may exceed TEXT_WIDTH by: labels overhanging the panels


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _best(name: str) -> ExperimentResults:
    for profile in ("full", "cpu", "smoke"):
        if is_complete(name, profile, RESULTS):
            return ExperimentResults(name, profile, RESULTS)
    pytest.skip(f"no committed results of {name}")


# ----------------------------------------------------------------------------- blank panels


def test_blank_axes_detects_a_one_point_line_without_marker():
    """The defect of the one-epoch training curves: a single point drawn as a line is invisible."""
    fig, axes = plt.subplots(1, 4)
    axes[0].plot([1.0], [2.0])  # one point, no marker: blank
    axes[1].plot([1.0], [2.0], marker="o")  # one point with a marker: visible
    axes[2].axvline(0.5)  # a reference line only: blank
    axes[3].plot([0, 1, 2], [np.nan, np.nan, np.nan])  # no finite data: blank
    assert blank_axes(fig) == [axes[0], axes[2], axes[3]]
    fig2, ax = plt.subplots()
    ax.plot([1.0, 2.0], [1.0, 3.0])
    ax.bar([1], [2])
    assert blank_axes(fig2) == []


def _vgg_histories(res):
    return {a: res.run(a)["history"] for a in res.settings["activations"]}


def test_training_curves_of_one_epoch_are_visible():
    res = _best("vgg")
    fig = P.plot_training_curves(_vgg_histories(res))
    assert blank_axes(fig) == []
    panels = [ax for ax in fig.axes if ax.axison]
    legend_slots = [ax for ax in fig.axes if not ax.axison]
    for ax in legend_slots:  # a slot left over by the grid holds the legend: no empty slot
        assert ax.get_legend() is not None
    for ax in panels:  # integer epoch ticks
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    # the old layout (no markers) is what the blank check catches
    old, ax = plt.subplots()
    for hist in _vgg_histories(res).values():
        ax.plot([r["epoch"] for r in hist], [r["train_loss"] for r in hist])
    if max(len(h) for h in _vgg_histories(res).values()) == 1:
        assert blank_axes(old) == [ax]


def _builders():
    """Each figure of notebooks 01-07 and 10 that is drawn from stored data, as that notebook draws it."""

    def curves():
        return P.plot_training_curves(_vgg_histories(_best("vgg")))

    def scatter():
        return P.plot_accuracy_vs_robustness(pd.DataFrame(_best("vgg").result["models"]), title="VGG")

    def iterations():
        res = _best("vgg")
        rows = [
            r | {"activation": a} for a in res.settings["curve_activations"] for r in res.step(f"pgd_iterations_{a}")
        ]
        return P.plot_robust_vs_iterations(pd.DataFrame(rows))

    def range_tests():
        res = _best("vgg_lr_range")
        return P.plot_lr_range_tests({a: res.step(f"lr_find_{a}") for a in res.settings["activations"]})

    def range_test():
        r = _best("vgg_lr_range").step("lr_find_relu")
        return P.plot_lr_range_test(r["lrs"], r["raw_losses"], r["lr_min"], r["lr_max"])

    def kaf_shapes():
        layer = _best("kaf_shapes").step("curves_kaf_elu")["layers"][0]
        s = np.asarray(_best("kaf_shapes").step("curves_kaf_elu")["s"])
        return P.plot_kaf_shapes((s, np.asarray(layer["before"])), (s, np.asarray(layer["after"])), target="elu")

    def light(kind):
        def build():
            res = _best("light_cnn")
            acts = res.settings["activations"]
            if kind == "distances":
                return P.plot_layer_distances(
                    [dict(r, model=a) for a in acts for r in res.step(f"layer_distances_{a}")]
                )
            if kind == "filter_means":
                return P.plot_filter_means({a: res.step(f"filter_means_{a}") for a in acts})
            return P.plot_activation_histograms({a: res.step(f"hist_{kind}_{a}") for a in acts})

        return build

    def line_scan():
        res = _best("kwta_line")
        return P.plot_kwta_line_scan({a: res.step(f"scan_{a}")[0] for a in res.settings["activations"]})

    def adversarial():
        from safetensors.torch import load_file

        res = _best("adversarial_examples")
        ex = load_file(res.dir / res.result["file"])
        return P.plot_adversarial_grid(
            {"clean": ex["x"], "FGSM": ex["x_fgsm"], "PGD": ex["x_pgd"]},
            {"clean": ex["probs_clean"], "FGSM": ex["probs_fgsm"], "PGD": ex["probs_pgd"]},
            ex["labels"],
        )

    def lipschitz():
        return P.plot_lipschitz_bounds(_best("lipschitz").result["models"])

    def ablation():
        return P.plot_fix_ablation(_best("resnet56_fix").result["candidates"])

    return {
        "activation_sigmoid": P.plot_sigmoid,
        "activation_functions": P.plot_activation_functions,
        "activation_derivatives": P.plot_activation_derivatives,
        "adversarial_examples": adversarial,
        "kaf_elu_init_vs_trained": kaf_shapes,
        "kwta_line_scan": line_scan,
        "light_cnn_hist_neuron": light("neuron"),
        "light_cnn_hist_filter": light("filter"),
        "light_cnn_filter_means": light("filter_means"),
        "light_cnn_layer_distances": light("distances"),
        "lr_range_test": range_test,
        "lr_range_tests_vgg": range_tests,
        "vgg_accuracy_vs_robustness": scatter,
        "vgg_robust_vs_iterations": iterations,
        "vgg_training_curves": curves,
        "lipschitz_bounds": lipschitz,
        "resnet56_fix_ablation": ablation,
        "kaf_kernels": P.plot_kaf_kernels,
        "kaf_reach": lambda: P.plot_kaf_reach(
            pd.DataFrame({"deep": [1.0, 1.0, 0.4, 0.0], "shallow": [0.1, 0.0, 0.0, None]}, index=list("abcd"))
        ),
    }


@pytest.mark.parametrize("name", sorted(_builders()))
def test_figures_show_data_fit_a_page_and_print_readably(name):
    fig = _builders()[name]()
    assert blank_axes(fig) == [], f"{name}: a panel shows no data"
    assert fig.get_size_inches()[0] <= P.TEXT_WIDTH + 1e-9, f"{name} is drawn wider than a thesis page"
    assert small_fonts(fig) == [], f"{name}: fonts below {P.MIN_FONT_SIZE} pt"


def _gradient_norm_figures():
    """Notebook 08's per-layer norm figures, drawn as it draws them: {run: (figure, norms frame)}."""
    from thesis_lib.experiments.resnet_standard import norms_frame

    res = _best("resnet_standard")
    out = {}
    for m in res.result["models"]:
        key = f"{m['arch']}_{m['activation']}"
        f = norms_frame(res.step(f"norms_{key}")).rename(
            columns={"layer_index": "layer", "weight": "weight_norm", "grad": "grad_norm"}
        )
        layers = P.pick_layers(sorted(f["layer"].unique()), 3)
        if f["layer"].max() >= 15 and 15 not in layers:
            layers = sorted(layers + [15])
        out[key] = (P.plot_gradient_norms(f, layers=layers, title=key), f)
    return out


def _has_marker(line) -> bool:
    return line.get_marker() not in (None, "", " ", "None", "none")


def test_gradient_norm_figures_show_every_value_and_cover_none():
    """Notebook 08 (section 5.2): panels not blank, a page wide, legends beside or under the panels, and
    every finite norm visible: on a drawn segment, or under a marker of its layer's colour."""
    figures = _gradient_norm_figures()
    for key, (fig, _) in figures.items():
        assert blank_axes(fig) == [], key
        assert fig.get_size_inches()[0] <= P.TEXT_WIDTH + 1e-9 and small_fonts(fig) == [], key
        fig.canvas.draw()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
        for leg in legends:
            assert not any(leg.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes), key
        for ax in fig.axes:
            for ln in ax.get_lines():
                if _has_marker(ln) or ln.get_transform() != ax.transData:
                    continue
                x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
                ok = np.isfinite(y)
                lone = set(x[ok & ~(np.r_[False, ok[:-1]] | np.r_[ok[1:], False])])
                marked = {
                    v
                    for other in ax.get_lines()
                    if _has_marker(other) and other.get_color() == ln.get_color()
                    for v in np.asarray(other.get_xdata(), float)
                }
                assert lone <= marked, f"{key}: lone values at steps {sorted(lone - marked)} are not drawn"
    if "resnet56_kaf" in figures:
        fig, f = figures["resnet56_kaf"]
        if (f.loc[f["layer"] == 0, "grad_norm"].iloc[1:] == 0).all():
            # the finding of section 5.2: the stem's gradient is huge at step 0 and exactly 0 afterwards
            assert any("= 0" in t.get_text() for leg in fig.legends for t in leg.get_texts())


def test_small_fonts_are_found():
    fig, ax = plt.subplots()
    ax.set_title("tiny", fontsize=6)
    assert small_fonts(fig) == ["'tiny' (6 pt)"]


# ----------------------------------------------------------------------------- labels and log axes


def test_scatter_labels_do_not_overlap_even_for_coincident_points():
    rows = [dict(activation=a, clean_acc=0.5, robust_acc=0.2) for a in ("relu", "elu", "kaf", "kaf_elu", "swish")]
    rows += [dict(activation="kaf_swish", clean_acc=0.52, robust_acc=0.21)]
    fig = P.plot_accuracy_vs_robustness(rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [r["activation"] for r in rows]
    assert texts_overlap(ax, ax.texts) == []
    # the naive placement (every label at the same offset) overlaps: the check can fail
    fig2, ax2 = plt.subplots()
    naive = [ax2.annotate(r["activation"], (0.5, 0.2), xytext=(5, 4), textcoords="offset points") for r in rows]
    assert texts_overlap(ax2, naive)


def test_label_points_fallback_is_deterministic_and_separates_labels():
    def draw():
        fig, ax = plt.subplots(figsize=(3, 2))
        xs, ys = [1, 1.01, 1.02, 3], [1, 1.01, 1.0, 2]
        ax.scatter(xs, ys)
        ax.set_xlim(0, 4)
        ax.set_ylim(0, 3)
        texts = P.label_points(ax, xs, ys, ["alpha", "beta", "gamma", "delta"], use_adjusttext=False)
        fig.canvas.draw()
        return ax, texts, [t.get_window_extent().bounds for t in texts]

    ax, texts, boxes = draw()
    assert texts_overlap(ax, texts) == []
    assert draw()[2] == boxes


def test_zeros_and_non_finite_values_are_marked_on_log_axes():
    fig, ax = plt.subplots()
    ax.set_yscale("log")
    marked = P.mark_off_scale(ax, [0, 1, 2, 3], [1.0, 0.0, np.inf, np.nan])
    assert marked == {"low": 1, "high": 2}
    edge_marks = [ln for ln in ax.get_lines() if ln.get_transform() != ax.transData]
    assert sorted(ln.get_marker() for ln in edge_marks) == ["v", "x"]
    rows = [
        dict(layer=li, name=f"l{li}", sample=0, distance=[1.0, 0.0, 2.0][li], relative_distance=0.1, model="relu")
        for li in range(3)
    ]
    fig = P.plot_layer_distances(rows)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("0 or -inf" in t for t in labels)  # the zero distance is shown and explained


def test_range_test_marks_a_diverged_loss():
    lrs = np.logspace(-4, 0, 6)
    fig = P.plot_lr_range_test(lrs, [2.3, 2.0, 1.5, 1.4, 3.0, np.inf], 1e-3, 0.1)
    ax = fig.axes[0]
    marks = [ln for ln in ax.get_lines() if ln.get_transform() != ax.transData and ln.get_marker() == "x"]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == pytest.approx(lrs[-1])
    assert any("NaN or inf" in t.get_text() for t in ax.get_legend().get_texts())


def test_lipschitz_figure_keeps_an_infinite_bound():
    rows = [
        dict(model="CNN", activation="relu", training="standard", bound=100.0, empirical_jacobian=1.0),
        dict(model="CNN", activation="kwta", training="standard", bound=float("inf"), empirical_jacobian=0.5),
    ]
    fig = P.plot_lipschitz_bounds(rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CNN relu (standard)", "CNN kwta (standard)"]
    assert [ln.get_marker() for ln in ax.get_lines() if ln.get_transform() != ax.transData] == ["x"]


def test_lipschitz_figure_labels_two_row_sets_apart():
    rows = [
        dict(model="VGG", activation="relu", key=k, training="fast AT", bound=10.0, empirical_jacobian=1.0)
        for k in ("relu", "relu_thesis_lr")
    ]
    ax = P.plot_lipschitz_bounds(rows).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["VGG relu (fast AT)", "VGG relu (fast AT, thesis lr)"]


# ----------------------------------------------------------------------------- analytic figures


def test_relu_kernel_fit_is_piecewise_linear_in_float64():
    from thesis_lib.plotting.future_work import kaf_kernel_fit

    s = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    f, alpha = kaf_kernel_fit("relu", s)
    assert float(alpha.abs().max()) > 1e4  # huge coefficients that cancel
    second = (f[2:] - 2 * f[1:-1] + f[:-2]).abs()
    away = (s[1:-1].abs() > 0.02).numpy()
    assert float(second[away].max()) < 1e-6  # two straight pieces, no cancellation noise
    assert abs(float(f[s.abs().argmin()])) < 1e-9  # through the origin


def test_slope_bound_parts_add_up():
    from thesis_lib import make_activation
    from thesis_lib.analysis.kaf_shapes import slope_bound_parts

    parts = slope_bound_parts(make_activation("kaf_elu", 1), 801)
    assert parts["bound"] == pytest.approx(min(parts["grid_max"] + parts["error_term"], parts["triangle"]))
    assert parts["max_slope"] <= parts["bound"] and parts["max_slope_dictionary"] <= parts["max_slope"]
    assert parts["max_slope"] == pytest.approx(parts["grid_max"], rel=1e-2)


def test_adversarial_examples_are_correct_and_of_distinct_classes():
    from thesis_lib.experiments.adversarial_examples import pick_examples

    correct = torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    assert pick_examples(correct, labels, 3).tolist() == [0, 3, 4]
    assert pick_examples(correct, labels, 3, pick="first").tolist() == [0, 1, 3]
    assert pick_examples(torch.zeros(6, dtype=torch.bool), labels, 2).tolist() == [0, 1]  # nothing correct
    for profile in ("smoke", "full"):
        if is_complete("adversarial_examples", profile, RESULTS):
            ex = ExperimentResults("adversarial_examples", profile, RESULTS).result["examples"]
            assert all(r["clean_pred"] == r["label"] for r in ex)
            assert len({r["label"] for r in ex}) == len(ex)


# ----------------------------------------------------------------------------- profile stamps


def test_profile_stamp_says_profile_and_scale():
    assert profile_stamp() == P.ANALYTIC and P.is_stamp(P.ANALYTIC)
    res = _best("light_cnn")
    stamp = profile_stamp(res)
    assert P.is_stamp(stamp) and stamp.startswith(f"{res.profile} profile")
    assert f"{res.settings['epochs']} epoch" in stamp and f"attacks on {res.settings['attack_n']} images" in stamp
    if is_complete("vgg", "smoke", RESULTS):
        assert profile_stamp(ExperimentResults("vgg", "smoke", RESULTS)).startswith("smoke profile: not a result")
    assert not P.is_stamp("Predictions of the light ReLU CNN")


def _unstamped(figures_dir: Path, names: dict) -> list[str]:
    """Figure files (PNG and PDF) and tables among `names` ({name: {"figure", "table"}}) without a stamp."""
    problems = []
    for name, kinds in sorted(names.items()):
        paths = [figures_dir / f"{name}.{ext}" for ext in ("png", "pdf")] if "figure" in kinds else []
        paths += [figures_dir / f"{name}.tex"] if "table" in kinds else []
        for path in paths:
            if not path.exists():
                problems.append(f"{path.name}: missing")
                continue
            stamp = P.tex_stamp(path) if path.suffix == ".tex" else P.read_stamp(path)
            if not P.is_stamp(stamp):
                problems.append(f"{path.name}: no profile stamp")
    return problems


def _notebook_outputs() -> dict:
    from thesis_lib.notebook_sources import notebook_entries

    names = {}
    for entry in notebook_entries(NOTEBOOKS):
        if entry.number in STAMPED_NOTEBOOKS:
            names.update(entry.figures)
    # tables written only when other profiles' results exist
    from thesis_lib.notebook_sources import OPTIONAL_OUTPUTS

    return {
        n: k
        for n, k in names.items()
        if n not in OPTIONAL_OUTPUTS or any((FIGURES / f"{n}.{ext}").exists() for ext in ("tex", "pdf"))
    }


def test_every_figure_and_table_of_every_notebook_carries_a_profile_stamp():
    names = _notebook_outputs()
    assert "vgg_training_curves" in names and "activation_properties" in names
    assert _unstamped(FIGURES, names) == []


def test_saved_figures_fit_a_page():
    for name, kinds in _notebook_outputs().items():
        if "figure" in kinds:
            from PIL import Image

            with Image.open(FIGURES / f"{name}.png") as im:
                width_in = im.size[0] / P.DPI
            assert width_in <= P.TEXT_WIDTH + WIDTH_SLACK, f"{name}.png is {width_in:.2f} in wide"


def test_unstamped_files_are_found(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    save_figure(fig, "plain", tmp_path)
    save_figure(fig, "stamped", tmp_path, stamp="smoke profile: not a result (1 epoch)")
    df = pd.DataFrame({"a": [1.0]})
    save_table(df, "plain_table", tmp_path, caption="A table.")
    save_table(df, "stamped_table", tmp_path, caption="A table.", stamp="full profile (protocol, 20 epochs)")
    names = {"plain": {"figure"}, "stamped": {"figure"}, "plain_table": {"table"}, "stamped_table": {"table"}}
    assert _unstamped(tmp_path, names) == [
        "plain.png: no profile stamp",
        "plain.pdf: no profile stamp",
        "plain_table.tex: no profile stamp",
    ]
    assert P.read_stamp(tmp_path / "stamped.pdf") == "smoke profile: not a result (1 epoch)"
    assert P.tex_stamp(tmp_path / "stamped_table.tex") == "full profile (protocol, 20 epochs)"
    assert P.figure_stamp(fig) == "smoke profile: not a result (1 epoch)"  # drawn on the figure too


def test_stamp_does_not_cover_the_figure():
    fig = P.plot_training_curves(_vgg_histories(_best("vgg")))
    text = P.stamp_figure(fig, "smoke profile: not a result (1 epoch)")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = text.get_window_extent(r)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_tightbbox(r))
    for leg in fig.legends:
        assert not box.overlaps(leg.get_window_extent(r))
    P.stamp_figure(fig, "full profile (protocol, 60 epochs)")  # a second stamp replaces the first
    assert [t.get_text() for t in fig.texts if t.get_gid() == P.stamp.STAMP_GID] == [
        "full profile (protocol, 60 epochs)"
    ]
