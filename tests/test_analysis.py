"""Activation capture, chapter-4 distributions, k-WTA line scans and KAF curves (thesis_lib.analysis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesis_lib import build_model
from thesis_lib.analysis import (
    ActivationCapture,
    activation_histograms,
    collect_activations,
    count_discontinuities,
    filter_mean_activations,
    find_jumps,
    inputs_beyond_reach,
    kaf_curves,
    kernel_reach,
    layer_distances,
    line_scan,
    reach_lines,
    reach_table,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: avoid OpenMP contention on shared CPUs
    yield
    torch.set_num_threads(n)


def _model(act, width=4, **kw):
    torch.manual_seed(0)
    return build_model("light_cnn", act, width=width, **kw).eval()


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_capture_records_inputs_and_outputs_and_removes_hooks():
    model = _model("kaf")
    x = torch.rand(6, 3, 16, 16)
    with ActivationCapture(model) as cap:
        assert _hooks(model) == len(model.activation_modules())
        with torch.no_grad():
            model(x[:4])
            model(x[4:])
    assert _hooks(model) == 0
    assert len(cap.inputs) == len(model.activation_modules()) == 5
    for mod, inp, out in zip(cap.modules, cap.inputs, cap.outputs):
        assert inp.shape[0] == 6  # both batches, concatenated
        torch.testing.assert_close(out, mod(inp))  # the output is the activation of the recorded input
    assert cap.inputs[0].shape[1:] == (4, 16, 16) and cap.inputs[-1].shape[1:] == (128,)


def test_capture_removes_hooks_when_the_block_raises():
    model = _model("relu")
    with pytest.raises(RuntimeError, match="boom"):
        with ActivationCapture(model):
            raise RuntimeError("boom")
    assert _hooks(model) == 0


def test_collect_restores_training_mode_and_reduces():
    model = _model("relu").train()
    out = collect_activations(model, torch.rand(5, 3, 16, 16), batch_size=2, reduce=lambda i, t: t[:, :1])
    assert model.training and _hooks(model) == 0
    assert all(t.shape[:2] == (5, 1) for t in out["inputs"])
    assert out["logits"].shape == (5, 10)


def test_histograms_count_every_example_and_overlay_the_activation():
    model = _model("kaf")
    xc, xa = torch.rand(30, 3, 16, 16), torch.rand(30, 3, 16, 16)
    hists = activation_histograms(model, xc, xa, bins=12, seed=3)
    kafs = model.activation_modules()
    assert len(hists) == len(kafs)
    for h, mod in zip(hists, kafs):
        assert h["clean"].sum() == 30 and h["adversarial"].sum() == 30
        assert len(h["edges"]) == 13
        expected = mod.evaluate(torch.as_tensor(h["shape_s"])).double().numpy()[h["channel"]]
        np.testing.assert_allclose(h["shape_f"], expected, rtol=1e-5, atol=1e-7)
    # same seed, same units; the recorded values are the unit's pre-activations
    again = activation_histograms(model, xc, xa, bins=12, seed=3)
    assert [h["unit"] for h in again] == [h["unit"] for h in hists]
    with ActivationCapture(model, outputs=False) as cap, torch.no_grad():
        model(xc)
    u = hists[1]["unit"]
    recorded = cap.inputs[1][(slice(None), *u)].double().numpy()
    np.testing.assert_allclose(np.sort(hists[1]["scatter_in"]), np.sort(recorded), rtol=1e-6)


def test_kwta_has_no_elementwise_shape_and_filter_mode_averages():
    model = _model("kwta")
    x = torch.rand(8, 3, 16, 16)
    hists = activation_histograms(model, x, x, mode="filter", bins=5)
    assert all(h["shape_f"] is None for h in hists)
    assert all(np.array_equal(h["clean"], h["adversarial"]) for h in hists)  # same images, same histogram
    means = filter_mean_activations(model, x, x, which="input")
    with ActivationCapture(model, outputs=False) as cap, torch.no_grad():
        model(x)
    np.testing.assert_allclose(means[0]["clean_means"], cap.inputs[0].double().mean((0, 2, 3)).numpy(), rtol=1e-6)
    assert means[0]["clean"].sum() == 4  # a histogram over the 4 filters


def test_layer_distances():
    model = _model("relu")
    x = torch.rand(4, 3, 16, 16)
    same = layer_distances(model, x, x, samples=3)
    assert len(same) == 3 * (len(model.activation_modules()) + 1)
    assert all(r["distance"] == 0 for r in same)
    xa = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)
    rows = layer_distances(model, x, xa, samples=[0, 2])
    logit = [r for r in rows if r["name"] == "logits"]
    with torch.no_grad():
        diff = (model(x[[0, 2]]) - model(xa[[0, 2]])).double().norm(dim=1)
    np.testing.assert_allclose([r["distance"] for r in logit], diff.numpy(), rtol=1e-5)
    assert all(r["relative_distance"] == pytest.approx(r["distance"] / r["clean_norm"]) for r in rows)


def test_find_jumps_on_known_functions():
    t = np.linspace(-1, 1, 401)
    step = np.where(t > 0.2, 1.0, 0.0) + np.where(t > -0.5, -0.3, 0.0) + 0.5 * t
    found = find_jumps(step)["intervals"]
    assert sorted(found) == sorted([np.flatnonzero(t > 0.2)[0] - 1, np.flatnonzero(t > -0.5)[0] - 1])
    assert count_discontinuities(np.abs(t - 0.1)) == 0  # a kink is not a jump
    assert count_discontinuities(np.stack([np.sin(5 * t), np.exp(t)], 1)) == 0
    assert count_discontinuities(np.full(50, 2.0)) == 0


@pytest.mark.parametrize("act,expect_jumps", [("kwta", True), ("kaf", False), ("relu", False)])
def test_line_scan_finds_kwta_discontinuities_only(act, expect_jumps):
    model = _model(act)
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    scan = line_scan(model, x, t_max=1.0, points=301, seed=0)
    assert scan["logits"].shape == (301, 10) and len(scan["t"]) == 301
    if expect_jumps:
        assert scan["n_jumps"] >= 3
        assert np.all(scan["jump_sizes"] > scan["threshold"] / 2)
    else:
        assert scan["n_jumps"] == 0  # ReLU has kinks, KAF is smooth: neither jumps
    assert not model.training and _hooks(model) == 0


def test_kaf_curves_match_evaluate():
    model = _model("kaf_elu")
    curves = kaf_curves(model, points=51)
    kafs = model.activation_modules()
    assert len(curves) == len(kafs)
    for c, m in zip(curves, kafs):
        assert c["curves"].shape == (m.channels, 51)
        np.testing.assert_allclose(c["curves"], m.evaluate(torch.as_tensor(c["s"])).double().numpy(), rtol=1e-6)
    # ridge init interpolates ELU inside the dictionary
    s = curves[0]["s"]
    inside = np.abs(s) <= 2.5
    np.testing.assert_allclose(curves[0]["curves"][0][inside], np.where(s > 0, s, np.expm1(s))[inside], atol=0.02)
    assert kaf_curves(_model("relu")) == []


def test_kernel_reach_is_where_one_bump_falls_to_the_tolerance():
    r = kernel_reach(1.67, 1e-3)
    assert np.exp(-1.67 * r**2) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="tol must lie in"):
        kernel_reach(1.0, 0.0)


def test_inputs_beyond_reach_counts_what_the_kafs_see_and_finds_dead_layers():
    model = _model("kaf")
    x = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    rows = inputs_beyond_reach(model, x, batch_size=7)
    kafs = model.activation_modules()
    assert [r["layer"] for r in rows] == [n for n, m in model.named_modules() if any(m is k for k in kafs)]
    got = collect_activations(model, x, outputs=False)["inputs"]
    for r, k, t in zip(rows, kafs, got):  # brute force: outside [min d - reach, max d + reach] of its channel
        reach = kernel_reach(k.gamma.double(), 1e-3)
        shape = (1, -1) + (1,) * (t.dim() - 2)
        lo = (k.dictionary.double().min(1).values - reach).view(shape)
        hi = (k.dictionary.double().max(1).values + reach).view(shape)
        assert r["beyond"] == pytest.approx(float(((t < lo) | (t > hi)).double().mean()))
        assert r["abs_max"] == pytest.approx(float(t.abs().max()), rel=1e-6)
    assert [r["beyond"] for r in inputs_beyond_reach(model, x, batch_size=250)] == pytest.approx(
        [r["beyond"] for r in rows]
    )
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.mul_(1e4)  # pre-activations far past the dictionary: the first KAF layer is dead
    blown = inputs_beyond_reach(model, x)[0]
    assert blown["beyond"] > 0.99 and blown["dead_channels"] == 1.0
    table = reach_table({"kaf": model, "relu": _model("relu")}, x)
    assert list(table.columns) == ["kaf"] and list(table.index) == [r["layer"] for r in rows]
    assert inputs_beyond_reach(_model("relu"), x) == []
    table.loc[table.index[0], "kaf"] = 0.999
    table["ok"] = 0.001
    dead, ok = reach_lines(table)
    assert dead.startswith(f"kaf: 1 of {len(rows)} KAF layers has more than 50% of their inputs beyond")
    assert f"(1: {rows[0]['layer']}, 99.9%)" in dead
    table["kaf"] = 0.999
    assert f"(1-{len(rows)}: {rows[0]['layer']} to {rows[-1]['layer']}, 99.9%)" in reach_lines(table)[0]
    assert ok.startswith("ok: every KAF layer keeps at least 99.90% of its inputs within")


def test_line_scan_confirmation_rejects_kinks_even_with_a_tiny_threshold():
    """With factor << 1 almost every kink becomes a candidate; zooming must reject them all, and keep k-WTA's."""
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    relu = line_scan(_model("relu"), x, points=201, factor=0.05)
    assert len(relu["candidates"]) > 0 and relu["n_jumps"] == 0
    kwta = _model("kwta")
    low, default = line_scan(kwta, x, points=201, factor=0.05), line_scan(kwta, x, points=201)
    assert default["n_jumps"] > 0 and set(default["jumps"]) <= set(low["jumps"])  # small jumps only add


def test_committed_reach_reads_the_kaf_models_of_an_experiment(offline_cifar):
    from thesis_lib.reporting.kaf_reach import committed_reach

    table = committed_reach("light_cnn", "full", data=offline_cifar, n_images=100)
    assert list(table.columns) == ["kaf"]  # relu and kwta have no Gaussian KAF: left out
    assert table.notna().all().all() and ((table >= 0) & (table <= 1)).all().all()
    assert committed_reach("light_cnn", "no-such-profile") is None
    assert committed_reach("light_cnn", "smoke") is None  # smoke weights are never committed
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        committed_reach("nope", "cpu")
