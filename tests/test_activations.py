"""Activations. KAF forward/backward equal the formula; ridge init; k-WTA keeps exactly k."""

import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from thesis_lib import list_activations, make_activation
from thesis_lib.activations import KAF, KAF_PRESETS, KWTA, KWTAAnnealing, _kaf_native, kaf_reference
from thesis_lib.activations.kaf import _GaussianKAF

ALL = [
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "swish",
    "softplus",
    "sigmoid",
    "tanh",
    "kwta",
    "kaf",
    "kaf_relu",
    "kaf_elu",
    "kaf_swish",
    "kaf_free",
]


def test_registry_lists_every_name():
    assert list_activations() == ALL


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as e:
        make_activation("relu6", 8)
    for name in ALL:
        assert name in str(e.value)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(4, 6, 5, 5), (4, 6)])
def test_same_constructor_and_shape(name, shape):
    act = make_activation(name, 6)
    x = torch.randn(*shape, requires_grad=True)
    y = act(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert act.slope_bound().shape[0] in (1, 6)


def _double_kaf(free: bool, C=5, preset="thesis", exact_grid=True):
    m = make_activation("kaf_free" if free else "kaf", C, preset=preset).double()
    if exact_grid:  # float64 dictionary (the float32 one is rounded by 1e-7)
        p = KAF_PRESETS[preset]
        m.dictionary.data.copy_(
            torch.linspace(-p["boundary"], p["boundary"], p["D"], dtype=torch.float64).expand(C, -1)
        )
    return m


def test_kaf_kernels_compile_where_a_compiler_exists():
    """The fused-kernel tests skip without a C compiler; with one, a kernel that fails to build must fail here."""
    import shutil

    if not any(shutil.which(c) for c in ("gcc", "cc", "clang")) and not os.environ.get("CC"):
        pytest.skip("no C compiler on this machine")
    assert _kaf_native.available(), "the fused KAF kernels did not compile (see the warning above)"


@pytest.mark.parametrize("native", [True, False], ids=["fused", "torch"])
@pytest.mark.parametrize("free", [False, True], ids=["kaf", "kaf_free"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "dense"])
def test_kaf_gradcheck_matches_formula(native, free, layout, monkeypatch):
    """d/dx, d/dalpha (and for kaf_free d/d dictionary, d/d gamma) of the fast KAF are exact."""
    if not native:
        monkeypatch.setattr(_kaf_native, "available", lambda: False)
    elif not _kaf_native.available():
        pytest.skip("no C compiler for the fused kernel")
    m = _double_kaf(free)
    if free:  # a trained dictionary is no longer evenly spaced
        m.dictionary.data += 0.05 * torch.randn_like(m.dictionary)
        m.gamma.data *= 1 + 0.1 * torch.rand_like(m.gamma)
    shape = (3, 5) if layout == "dense" else (2, 5, 3, 4)
    x = 2.5 * torch.randn(*shape, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    fn = lambda x, a, d, g: _GaussianKAF.apply(x, a, d, g, free)  # noqa: E731
    assert gradcheck(fn, (x, m.alpha, m.dictionary, m.gamma), eps=1e-6, atol=1e-7)
    ref = kaf_reference(x, m.alpha, m.dictionary, m.gamma)
    torch.testing.assert_close(m(x), ref, rtol=1e-12, atol=1e-12)
    # and the gradients equal autograd through the formula
    g = torch.randn_like(ref)
    ours = torch.autograd.grad(m(x), [x, *[p for p in m.parameters()]], g)
    theirs = torch.autograd.grad(ref, [x, *[p for p in m.parameters()]], g)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_kaf_float32_close_to_float64_formula_on_wide_inputs():
    m = make_activation("kaf", 8)
    x = torch.cat([torch.randn(4, 8, 6, 6) * 3, torch.full((1, 8, 6, 6), 50.0), torch.full((1, 8, 6, 6), -1e6)])
    y = m(x)
    ref = kaf_reference(x.double(), m.alpha.double(), m.dictionary.double(), m.gamma.double())
    assert (y.double() - ref).abs().max() < 1e-6


def test_kaf_propagates_nan_and_maps_inf_to_zero():
    m = make_activation("kaf", 3)
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.3]).view(1, 1, 4).expand(2, 3, 4).contiguous()
    y = m(x)
    assert torch.isnan(y[..., 0]).all()
    assert (y[..., 1:3] == 0).all()
    assert torch.isfinite(y[..., 3]).all()


def test_kaf_keeps_channels_last_and_saves_only_its_input():
    m = make_activation("kaf", 4)
    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        y = m(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    # nothing of size N*C*H*W*D is kept for backward: only x and the (C, D) parameters
    assert max(saved) == x.numel()


def test_kaf_attributes_and_presets():
    m = make_activation("kaf", 7)
    assert m.alpha.shape == (7, 20) and m.dictionary.shape == (7, 20) and m.gamma.shape == (7,)
    delta = 6 / 19
    assert torch.allclose(m.gamma, torch.full((7,), 1 / (6 * delta**2)))
    assert m.dictionary[0, 0] == -3 and m.dictionary[0, -1] == 3
    assert 0.03 < m.alpha.std() < 0.07  # alpha ~ N(0, 0.05^2)
    p = make_activation("kaf", 7, preset="paper")
    delta = 8 / 19
    assert torch.allclose(p.gamma, torch.full((7,), 1 / (8 * delta**2)))
    assert p.dictionary[0, -1] == 4 and 0.6 < p.alpha.std() < 1.0
    assert not m.dictionary.requires_grad and make_activation("kaf_free", 7).dictionary.requires_grad
    free = make_activation("kaf_free", 7)
    assert sum(p.numel() for p in free.parameters()) >= 2 * m.alpha.numel()


@pytest.mark.parametrize("name,fn", [("kaf_elu", F.elu), ("kaf_swish", F.silu), ("kaf_relu", F.relu)])
def test_ridge_initialised_kaf_follows_its_target(name, fn):
    m = make_activation(name, 3)
    s = torch.linspace(-3, 3, 601)
    err = (m.evaluate(s) - fn(s)).abs().max()
    assert err < 0.1, f"{name} is {err:.3f} away from its target on [-3, 3]"


def test_ridge_init_accepts_any_callable():
    m = KAF(2, init=torch.tanh)
    s = torch.linspace(-3, 3, 101)
    assert (m.evaluate(s) - torch.tanh(s)).abs().max() < 0.05


@pytest.mark.parametrize("name", ["kaf", "kaf_elu", "kaf_free"])
def test_kaf_slope_bound_is_an_upper_bound(name):
    m = make_activation(name, 4)
    with torch.no_grad():
        m.alpha.mul_(5 * torch.rand_like(m.alpha))
    s = torch.linspace(-8, 8, 20001, dtype=torch.float64, requires_grad=True)
    x = s.view(-1, 1).expand(-1, 4)
    y = kaf_reference(x, m.alpha.double(), m.dictionary.double(), m.gamma.double())
    (slopes,) = torch.autograd.grad(y.sum(), s, create_graph=False, retain_graph=True)
    per_channel = torch.stack(
        [torch.autograd.grad(y[:, c].sum(), s, retain_graph=True)[0].abs().max() for c in range(4)]
    )
    bound = m.slope_bound()
    assert (bound >= per_channel - 1e-9).all()
    assert (bound <= per_channel * 1.05 + 1e-6).all(), "bound should be tight"


def test_other_kernels_run_and_differ():
    for kernel in ("relu", "softplus"):
        m = make_activation("kaf", 3, kernel=kernel)
        x = torch.randn(2, 3, 4, 4, requires_grad=True)
        m(x).sum().backward()
        assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="kernel"):
        make_activation("kaf", 3, kernel="laplace")


def test_kaf_under_autocast_cpu_keeps_bfloat16():
    """Under autocast the KAF reads and writes bf16 (no float32 copy) and computes in float32."""
    m = make_activation("kaf", 4)
    x = torch.randn(2, 4, 3, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, m(x.float()).bfloat16(), rtol=8e-3, atol=1e-3)


@pytest.mark.parametrize("shape,ratio", [((3, 8, 5, 5), 0.3), ((4, 50), 0.1), ((2, 3, 4, 4), 0.01)])
def test_kwta_keeps_exactly_k(shape, ratio):
    x = torch.randn(*shape)
    y = KWTA(shape[1], ratio=ratio)(x)
    size = math.prod(shape[1:])
    k = math.ceil(ratio * size)
    flat_x, flat_y = x.reshape(shape[0], -1), y.reshape(shape[0], -1)
    assert ((flat_y != 0).sum(1) == k).all()
    # the survivors are the k largest of each example, over the whole layer
    kth = flat_x.topk(k, 1).values[:, -1:]
    assert ((flat_y != 0) == (flat_x >= kth)).all()


def test_kwta_ties_still_keep_exactly_k():
    y = KWTA(4, ratio=0.25)(torch.zeros(2, 4, 2, 2))
    assert y.shape == (2, 4, 2, 2)
    x = torch.ones(2, 16)
    mask = KWTA(16, ratio=0.25)(x) != 0
    assert (mask.sum(1) == 4).all()


def test_kwta_annealing_schedule():
    sched = KWTAAnnealing(start=0.3, target=0.2, step=0.01, every=2)
    assert [round(sched.ratio_at(e), 2) for e in (0, 1, 2, 3, 4, 20, 30)] == [0.3, 0.3, 0.29, 0.29, 0.28, 0.2, 0.2]
    net = torch.nn.Sequential(KWTA(4), torch.nn.Flatten(), KWTA(4))
    sched.apply(net, 4)
    assert all(m.ratio == pytest.approx(0.28) for m in net if isinstance(m, KWTA))
    with pytest.raises(ValueError):
        KWTA(4, ratio=0)


def test_init_gains_match_the_closed_form():
    """A KAF ridge-fitted to ELU has ELU's gradient gain under N(0, 1): sqrt(1/2 + e^2 Phi(-2)) = 0.818."""
    from thesis_lib.analysis import init_gains

    rows = {r["activation"]: r for r in init_gains(("kaf", "kaf_elu"), channels=8)}
    elu_gain = math.sqrt(0.5 + math.exp(2) * 0.5 * math.erfc(2 / math.sqrt(2)))
    assert rows["kaf_elu"]["gain"] == pytest.approx(elu_gain, abs=0.01)
    assert rows["kaf"]["gain"] < 0.3  # the random initialisation: a low gain
    with pytest.raises(ValueError, match="not a Gaussian KAF"):
        init_gains(("relu",))
