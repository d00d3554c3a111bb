"""Figures (thesis_lib.plotting): reproducible files, and every plot function draws its data cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from thesis_lib import plotting as P  # noqa: E402
from thesis_lib.activations import make_activation  # noqa: E402
from thesis_lib.plotting.checks import blank_axes  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _figure():
    fig = P.plot_activation_derivatives()
    fig.axes[0].text(0, 0.5, "µ α ∞")  # non-ASCII glyphs go through font subsetting
    return fig


def test_savefig_is_byte_identical_and_has_no_metadata(tmp_path):
    p1 = P.savefig(_figure(), "fig", tmp_path / "a")
    p2 = P.savefig(_figure(), "fig", tmp_path / "b")  # a fresh figure, as on a notebook re-run
    assert [p.name for p in p1] == ["fig.pdf", "fig.png"]
    for a, b in zip(p1, p2):
        assert a.read_bytes() == b.read_bytes()
    pdf, png = p1[0].read_bytes(), p1[1].read_bytes()
    for key in (b"CreationDate", b"ModDate", b"Producer", b"Creator"):
        assert key not in pdf
    assert b"Software" not in png and b"matplotlib" not in png.lower()
    assert sorted(os.listdir(tmp_path / "a")) == ["fig.pdf", "fig.png"]  # no temporary files left


def test_savefig_is_identical_across_processes(tmp_path):
    """A re-run in a new interpreter (other hash seed) writes the same bytes."""
    code = (
        "import sys, matplotlib; matplotlib.use('Agg'); from thesis_lib import plotting as P; "
        "fig = P.plot_activation_derivatives(); fig.axes[0].text(0, 0.5, 'µ α ∞'); "
        "P.savefig(fig, 'fig', sys.argv[1])"
    )
    env = dict(os.environ, PYTHONHASHSEED="123")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "sub")], check=True, env=env, timeout=120)
    here = P.savefig(_figure(), "fig", tmp_path / "here")
    for p in here:
        assert (tmp_path / "sub" / p.name).read_bytes() == p.read_bytes()


def test_savefig_rejects_bad_names(tmp_path):
    fig = plt.figure()
    for bad in ("", "../x", "a/b", "x y"):
        with pytest.raises(ValueError):
            P.savefig(fig, bad, tmp_path)
    with pytest.raises(ValueError):
        P.savefig(fig, "ok", tmp_path, formats=("svg",))


def test_use_style_is_idempotent():
    with matplotlib.rc_context():  # restore the global style for the other tests
        P.use_style()
        snapshot = dict(matplotlib.rcParams)
        P.use_style()
        assert dict(matplotlib.rcParams) == snapshot
        assert matplotlib.rcParams["font.family"] == ["DejaVu Sans"]


def test_relu_derivative_is_drawn_with_a_break():
    fig = P.plot_activation_derivatives(("relu", "elu"))
    relu_ax, elu_ax = fig.axes  # one panel each: ReLU's jump is not hidden under ELU's line
    relu, elu = relu_ax.get_lines()[0], elu_ax.get_lines()[0]
    assert np.isnan(relu.get_ydata()).sum() == 1  # the jump at 0 is not drawn as a steep segment
    assert not np.isnan(elu.get_ydata()).any()
    # filled dot at the value at 0 (0), open circle at the right limit (1)
    dots = [ln for ln in relu_ax.get_lines() if ln.get_marker() == "o"]
    assert sorted(float(ln.get_ydata()[0]) for ln in dots) == [0.0, 1.0]
    assert {ln.get_markerfacecolor() == "white" for ln in dots} == {True, False}
    assert not [ln for ln in elu_ax.get_lines() if ln.get_marker() == "o"]  # ELU's derivative has no jump


def test_accuracy_vs_robustness_markers_and_labels():
    rows = [
        dict(activation=a, clean_acc=0.8 - 0.01 * i, robust_acc=0.4 + 0.01 * i)
        for i, a in enumerate(["relu", "elu", "kaf", "kaf_elu"])
    ]
    fig = P.plot_accuracy_vs_robustness(rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["relu", "elu", "kaf", "kaf_elu"]
    assert len(ax.collections) == 4
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(offsets[:, 0], [80, 79, 78, 77])  # drawn in percent
    assert P.activation_marker("kaf_elu") == "X" and P.activation_marker("elu") == "D"


def _legends(fig):
    return [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)


def _marks_at(fig, x):
    """Display positions and colours of the markers drawn at data x = `x` (all panels, legends excluded)."""
    fig.canvas.draw()
    found = []
    for ax in fig.axes:
        for ln in ax.get_lines():
            if ln.get_marker() in (None, "", " ", "None", "none") or not ln.get_visible():
                continue
            xs, ys = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
            at = (xs == x) & np.isfinite(ys)
            for px, py in ln.get_transform().transform(np.column_stack([xs[at], ys[at]])):
                if np.isfinite(px) and np.isfinite(py):
                    found.append(((px, py), matplotlib.colors.to_hex(ln.get_color())))
    return found


def _layer_colors(fig):
    return {
        t.get_text(): matplotlib.colors.to_hex(h.get_color())
        for leg in _legends(fig)
        for t, h in zip(leg.get_texts(), leg.legend_handles)
    }


def test_gradient_norms_mark_nan():
    rows = [
        dict(step=s, layer=f"l{k}", weight_norm=1.0 + s, grad_norm=float("nan") if (k == 0 and s >= 3) else 2.0)
        for s in range(6)
        for k in range(5)
    ]
    fig = P.plot_gradient_norms(rows)
    marks = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [3, 4, 5]
    assert matplotlib.colors.to_hex(marks[0].get_color()) == _layer_colors(fig)["l0"]  # in the layer's colour
    texts = [t.get_text() for leg in _legends(fig) for t in leg.get_texts()]
    assert texts[:3] == ["l0", "l2", "l4"] and any("NaN or inf" in t for t in texts)
    # an exactly-zero norm (vanished gradient) is marked under the panel, not dropped
    rows[2]["grad_norm"] = 0.0  # step 0 of layer l2, one of the layers drawn
    fig = P.plot_gradient_norms(rows)
    assert [
        (ln.get_xdata()[0], matplotlib.colors.to_hex(ln.get_color()))
        for ax in fig.axes
        for ln in ax.get_lines()
        if ln.get_marker() == "|"
    ] == [(0, _layer_colors(fig)["l2"])]
    assert any("= 0" in t.get_text() for leg in _legends(fig) for t in leg.get_texts())


def test_gradient_norms_show_a_lone_finite_point():
    """A KAF-ResNet-56 stem: one huge gradient at step 0, exactly 0 afterwards; a line alone would not show it."""
    n = 50  # more steps than get a marker on every point
    grad = {0: [1e10] + [0.0] * (n - 1), 1: [7e3, 8e3] + [0.0] * (n - 2), 2: [0.05] * n}
    rows = [dict(step=s, layer=k, weight_norm=1.0, grad_norm=g[s]) for k, g in grad.items() for s in range(n)]
    fig = P.plot_gradient_norms(rows, layers=[0, 1, 2])
    for step, value in ((0, 1e10), (0, 7e3), (1, 8e3)):
        drawn = [
            ln
            for ax in fig.axes
            for ln in ax.get_lines()
            if ln.get_marker() not in (None, "", " ", "None", "none")
            and ln.get_transform() == ax.transData
            and any(x == step and y == value for x, y in zip(ln.get_xdata(), ln.get_ydata()))
        ]
        assert drawn, f"the norm {value:g} at step {step} has no marker"
    assert blank_axes(P.plot_gradient_norms(rows, layers=[0])) == []  # the stem alone: its panel is not blank
    # runs long enough to show as a line get no markers
    assert not [m for m in _marks_at(fig, 25) if m[1] == _layer_colors(fig)["layer 2"]]


def test_gradient_norms_keep_zeros_of_layers_apart():
    """Zeros of two layers at the same step: two places, each in its layer's colour, as the legend shows."""
    rows = [
        dict(step=s, layer=f"l{k}", weight_norm=1.0 + k, grad_norm=0.0 if s >= 10 else 1.0 + k)
        for s in range(30)
        for k in range(2)
    ]
    fig = P.plot_gradient_norms(rows)
    colors = _layer_colors(fig)
    marks = _marks_at(fig, 15)  # both layers are 0 at step 15
    by_color = {c: xy for xy, c in marks}
    assert set(by_color) == {colors["l0"], colors["l1"]}
    (x0, y0), (x1, y1) = by_color[colors["l0"]], by_color[colors["l1"]]
    assert np.hypot(x0 - x1, y0 - y1) > 3  # pixels: one is not drawn over the other
    # the legend's key for the zeros uses the layers' colours, as the marks do
    from matplotlib.lines import Line2D

    keys = {
        matplotlib.colors.to_hex(ln.get_color())
        for leg in _legends(fig)
        for ln in leg.findobj(Line2D)
        if ln.get_linestyle() in ("None", "", " ") and ln.get_marker() not in (None, "", "None", "none")
    }
    assert {colors["l0"], colors["l1"]} <= keys


def test_gradient_norms_legends_cover_no_data():
    rows = [dict(step=s, layer=k, weight_norm=1.0 + s, grad_norm=1.0 / (1 + s)) for s in range(40) for k in range(4)]
    fig = P.plot_gradient_norms(rows, layers=[0, 1, 2, 3])
    fig.canvas.draw()
    legends = _legends(fig)
    assert legends
    for leg in legends:
        box = leg.get_window_extent()
        assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)
    assert fig.get_size_inches()[0] == pytest.approx(P.TEXT_WIDTH)


def test_fix_ablation_title_says_red_only_with_a_red_bar():
    def title(diverged):
        rows = [
            {"candidate": "baseline", "clean_acc": 0.1, "diverged": diverged},
            {"candidate": "ridge_relu", "clean_acc": 0.42, "diverged": None},
        ]
        return P.plot_fix_ablation(rows).axes[0].get_title()

    assert "diverged" in title({"step": 3, "quantity": "grad"})
    assert "diverged" not in title(None) and "red" not in title(None)
    assert "diverged" not in title(float("nan"))  # a missing cell of a DataFrame: not diverged


def _scan(jumps):
    t = np.linspace(-1, 1, 101)
    y = np.stack([np.sin(3 * t) + k for k in range(10)], 1)
    return dict(
        t=t,
        logits=y,
        jumps=np.array(jumps, dtype=int),
        jump_t=t[jumps] if jumps else np.array([]),
        n_jumps=len(jumps),
        direction_norm=1.0,
    )


def _hist(layer, shape=True):
    edges = np.linspace(-1, 1, 6)
    s = np.linspace(-1, 1, 20)
    return dict(
        layer=layer,
        name=f"layer{layer}",
        activation="relu",
        mode="neuron",
        unit=(0, 1, 1),
        channel=0,
        edges=edges,
        clean=np.array([1, 2, 3, 2, 1]),
        adversarial=np.array([2, 2, 2, 2, 1]),
        shape_s=s,
        shape_f=np.maximum(s, 0) if shape else None,
        scatter_in=s,
        scatter_out=np.maximum(s, 0),
        clean_means=np.arange(4.0),
        adv_means=np.arange(4.0) + 0.5,
    )


FIGURES = {
    "sigmoid": lambda: P.plot_sigmoid(),
    "activations": lambda: P.plot_activation_functions(),
    "kaf_shapes": lambda: P.plot_kaf_shapes(make_activation("kaf_elu", 3), make_activation("kaf", 3), target="elu"),
    "adversarial": lambda: P.plot_adversarial_example(
        torch.rand(3, 8, 8), None, torch.rand(3, 8, 8), (1, 2), (0.9, 0.6), class_names=[str(i) for i in range(10)]
    ),
    "adversarial_grid": lambda: P.plot_adversarial_grid(
        {"clean": torch.rand(2, 3, 8, 8), "FGSM": torch.rand(2, 3, 8, 8)},
        {"clean": torch.softmax(torch.randn(2, 10), 1), "FGSM": torch.softmax(torch.randn(2, 10), 1)},
        [1, 2],
        class_names=[str(i) for i in range(10)],
    ),
    "lr_range_grid": lambda: P.plot_lr_range_tests(
        {
            a: dict(lrs=np.logspace(-4, 0, 8), losses=np.r_[np.linspace(2.3, 1.0, 7), np.inf], lr_min=1e-3, lr_max=0.1)
            for a in ("relu", "kaf", "elu", "kaf_elu")
        }
    ),
    "lipschitz": lambda: P.plot_lipschitz_bounds(
        [
            dict(model="m", activation="relu", training="standard", bound=10.0, empirical_jacobian=1.0),
            dict(model="m", activation="kwta", training="standard", bound=float("inf"), empirical_jacobian=0.0),
        ]
    ),
    "kaf_kernels": lambda: P.plot_kaf_kernels(),
    "lr_range": lambda: P.plot_lr_range_test(np.logspace(-4, 0, 50), np.linspace(2.3, 1.0, 50), 1e-3, 0.1),
    "one_cycle": lambda: P.plot_one_cycle(np.r_[np.linspace(0.01, 1, 50), np.linspace(1, 0.01, 50)], 10),
    "robust_iters": lambda: P.plot_robust_vs_iterations(
        [dict(activation=a, iterations=i, robust_acc=0.5 - i / 1000) for a in ("relu", "kaf") for i in (1, 10, 50)]
    ),
    "curves": lambda: P.plot_training_curves(
        {"relu": [dict(epoch=e, train_loss=1 / e, test_acc=0.5 + e / 100) for e in range(1, 4)]}
    ),
    "histograms": lambda: P.plot_activation_histograms({"relu": [_hist(0), _hist(1)], "kwta": [_hist(0, False)]}),
    "filter_means": lambda: P.plot_filter_means([_hist(0), _hist(1)]),
    "distances": lambda: P.plot_layer_distances(
        [
            dict(layer=li, name=n, sample=s, distance=1 + li + s, relative_distance=0.1 * (li + 1), model=m)
            for m in ("relu", "kaf")
            for li, n in enumerate(["a", "b", "logits"])
            for s in range(2)
        ]
    ),
    "kwta_scan": lambda: P.plot_kwta_line_scan({"kwta": _scan([10, 40]), "kaf": _scan([])}),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_draws_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a collapsed constrained layout
        fig = FIGURES[name]()
        assert isinstance(fig, matplotlib.figure.Figure)
        fig.canvas.draw()


def test_activation_curves_that_coincide_stay_visible():
    """ELU and LeakyReLU are both the identity for s > 0: the later one is dashed, the others solid."""
    ax = P.plot_activation_functions(("elu", "leaky_relu", "swish")).axes[0]
    styles = {ln.get_label(): ln.get_linestyle() for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert list(styles.values()) == ["-", "--", "-"], styles


def test_kaf_shapes_get_their_own_scales_when_amplitudes_differ_tenfold():
    s = np.linspace(-4, 4, 50)
    small, large = (s, 0.05 * np.sin(s)[None].repeat(2, 0)), (s, 80 * np.sin(s)[None].repeat(2, 0))
    a, b = P.plot_kaf_shapes(small, large, channels=2).axes[:2]
    assert a.get_ylim()[1] < 1 < 50 < b.get_ylim()[1]  # the init panel is not flattened on the trained scale
    a, b = P.plot_kaf_shapes(large, large, channels=2).axes[:2]
    assert a.get_ylim() == b.get_ylim()


def test_lr_range_step_draws_the_curve_or_says_why_there_is_none():
    lrs = np.logspace(-4, 0, 50)
    ok = {"lrs": lrs, "raw_losses": 2.3 - np.linspace(0, 1, 50), "lr_min": 1e-3, "lr_max": 1e-1}
    assert P.plot_lr_range_step(ok).axes[0].get_xscale() == "log"
    ax = P.plot_lr_range_step({"error": "the loss never fell"}).axes[0]
    assert "the loss never fell" in ax.texts[0].get_text() and not ax.axison


def test_training_curves_mark_a_run_that_stopped_early():
    full = [{"epoch": e, "test_acc": 0.1 * e} for e in range(1, 16)]
    fig = P.plot_training_curves({"relu": full, "kaf_free": full[:7]}, keys=["test_acc"])
    crosses = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "X"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [7]
    fig = P.plot_training_curves({"relu": full, "kaf": full}, keys=["test_acc"])
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "X"]
