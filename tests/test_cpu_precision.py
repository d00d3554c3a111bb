"""The float32/bfloat16 KAF kernels in every layout, and training in bf16 + channels_last on CPU."""

import pytest
import torch

from thesis_lib.activations import _kaf_native, kaf_reference, make_activation
from thesis_lib.precision import cpu_has_bf16, resolve_precision
from thesis_lib.training import TrainConfig, train
from thesis_lib.training.trainer import evaluate

pytestmark = pytest.mark.skipif(not _kaf_native.available(), reason="no C compiler for the fused KAF kernels")

LAYOUTS = {  # name: (shape, memory format)
    "nchw": ((3, 20, 5, 7), torch.contiguous_format),
    "channels_last": ((3, 20, 5, 7), torch.channels_last),
    "dense": ((6, 37), torch.contiguous_format),
}


def _kaf(name, C):
    m = make_activation(name, C)
    with torch.no_grad():
        m.alpha.normal_(0, 0.7)
        if name == "kaf_free":  # a trained dictionary: no longer evenly spaced
            m.dictionary.add_(0.05 * torch.randn_like(m.dictionary))
            m.gamma.mul_(1 + 0.1 * torch.rand_like(m.gamma))
    return m


def _grads(m, x, gy, params):
    y = m(x)
    return y, torch.autograd.grad(y, [x, *params], gy)


@pytest.mark.parametrize("name", ["kaf", "kaf_elu", "kaf_free"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("frozen", [False, True], ids=["train", "attack"])
def test_kernels_equal_the_formula(name, layout, dtype, frozen):
    """Output and gradients (input; alpha, and for kaf_free dictionary and bandwidth) vs float64 autograd."""
    shape, fmt = LAYOUTS[layout]
    m = _kaf(name, shape[1])
    x = (3 * torch.randn(shape)).to(dtype)
    x = x.contiguous(memory_format=fmt) if len(shape) == 4 else x
    x.requires_grad_()
    params = [] if frozen else [p for p in m.parameters()]
    for p in m.parameters():
        p.requires_grad_(not frozen)
    y, ours = _grads(m, x, torch.ones(shape, dtype=dtype), params)
    assert y.dtype == dtype and ours[0].dtype == dtype
    if fmt == torch.channels_last:
        assert y.is_contiguous(memory_format=torch.channels_last) and ours[0].is_contiguous(
            memory_format=torch.channels_last
        )
    xd = x.detach().double().requires_grad_()
    pd = {
        k: v.detach().double().requires_grad_(not frozen)
        for k, v in (("alpha", m.alpha), ("dictionary", m.dictionary), ("gamma", m.gamma))
    }
    ref = kaf_reference(xd, pd["alpha"], pd["dictionary"], pd["gamma"])
    wanted = [xd] + ([] if frozen else [pd[k] for k, _ in m.named_parameters()])
    theirs = torch.autograd.grad(ref, wanted, torch.ones_like(ref))
    # float32: a few ulps of the largest value; bfloat16: the rounding of the stored output (2^-8)
    tol = 2e-5 if dtype == torch.float32 else 8e-3
    scale = ref.abs().max()
    assert (y.double() - ref).abs().max() <= tol * scale
    for o, t in zip(ours, theirs):
        assert (o.double() - t).abs().max() <= tol * t.abs().max() + 1e-6


@pytest.mark.parametrize("name", ["kaf", "kaf_free"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_nchw_and_channels_last_give_the_same_values(name, dtype):
    m = _kaf(name, 48)
    x = (2 * torch.randn(4, 48, 6, 6)).to(dtype)
    gy = torch.randn_like(x)
    a = _grads(m, x.clone().requires_grad_(), gy, list(m.parameters()))
    b = _grads(m, x.contiguous(memory_format=torch.channels_last).requires_grad_(), gy, list(m.parameters()))
    # element-wise results are the same float operations in both layouts: bitwise equal
    assert torch.equal(a[0], b[0]) and torch.equal(a[1][0], b[1][0])
    for ga, gb in zip(a[1][1:], b[1][1:]):  # parameter gradients: the same sum in another order
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["kaf", "kaf_free"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_frozen_kaf_keeps_its_derivative_and_matches_the_training_gradient(name, dtype):
    """Parameters frozen (attacks): one value-and-derivative pass, dy/dx kept instead of x; the input
    gradient equals the one of the training path (which keeps x and recomputes) to rounding."""
    m = _kaf(name, 24)
    x = (2 * torch.randn(4, 24, 6, 6)).to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
    gy = torch.randn_like(x)
    y_train, (gx_train,) = _grads(m, x, gy, [])
    saved = []
    m.requires_grad_(False)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = m(x)
    (gx,) = torch.autograd.grad(y, x, gy)
    assert [t.shape for t in saved] == [x.shape] and not any(t.data_ptr() == x.data_ptr() for t in saved)
    if name == "kaf":
        assert torch.equal(y, y_train)  # the same Horner arithmetic
    else:  # the same sum, possibly fused differently
        torch.testing.assert_close(y, y_train, rtol=1e-5 if dtype == torch.float32 else 8e-3, atol=1e-6)
    assert gx.is_contiguous(memory_format=torch.channels_last)
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    assert (gx.double() - gx_train.double()).abs().max() <= tol * gx_train.double().abs().max()


def test_parameter_gradients_do_not_depend_on_thread_count():
    m = _kaf("kaf", 32)
    x = torch.randn(8, 32, 9, 9).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _grads(m, x, torch.ones_like(x), [m.alpha])[1][1]
        torch.set_num_threads(2)
        two = _grads(m, x, torch.ones_like(x), [m.alpha])[1][1]
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def test_recurrence_is_used_for_fixed_dictionaries_only():
    k = make_activation("kaf", 8)
    assert _kaf_native.uses_recurrence(k.alpha, k.dictionary, k.gamma)
    p = make_activation("kaf", 8, preset="paper")
    assert _kaf_native.uses_recurrence(p.alpha, p.dictionary, p.gamma)
    f = _kaf("kaf_free", 8)
    assert not _kaf_native.uses_recurrence(f.alpha, f.dictionary, f.gamma)


@pytest.mark.parametrize("name", ["kaf", "kaf_free"])
@pytest.mark.parametrize("frozen", [False, True], ids=["train", "attack"])
def test_wide_and_non_finite_inputs_in_both_layouts(name, frozen):
    """NaN stays NaN; +-inf and far inputs give 0 and finite (zero) gradients, never inf * 0 = NaN."""
    m = _kaf(name, 16)
    x = torch.randn(2, 16, 4, 4) * 3
    x[0, :, 0, 0] = float("nan")
    x[0, :, 0, 1] = float("inf")
    x[0, :, 1, 1] = -float("inf")
    x[0, :, 0, 2] = -1e6
    x[0, :, 0, 3] = 50.0
    params = [] if frozen else list(m.parameters())
    for p in m.parameters():
        p.requires_grad_(not frozen)
    for fmt in (torch.contiguous_format, torch.channels_last):
        for dt in (torch.float32, torch.bfloat16):
            xi = x.to(dt).contiguous(memory_format=fmt).requires_grad_()
            y, (gx, *gp) = _grads(m, xi, torch.ones_like(xi), params)
            assert torch.isnan(y[0, :, 0, 0]).all() and torch.isnan(gx[0, :, 0, 0]).all()
            far = torch.stack([y[0, :, 0, 1], y[0, :, 1, 1], y[0, :, 0, 2], y[0, :, 0, 3]])
            gfar = torch.stack([gx[0, :, 0, 1], gx[0, :, 1, 1], gx[0, :, 0, 2], gx[0, :, 0, 3]])
            assert (far == 0).all() and (gfar == 0).all()
            assert torch.isfinite(y[1]).all() and torch.isfinite(gx[1]).all()
            x_ok = xi.detach().clone()
            x_ok[0, :, 0, 0] = 0.0  # the parameter gradients: every input but the NaN one
            if params:
                _, (_, *gp) = _grads(m, x_ok.requires_grad_(), torch.ones_like(xi), params)
                assert all(torch.isfinite(g).all() for g in gp)


# ------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def blobs():
    """Learnable CIFAR-shaped data: the class sets the mean colour of a noisy image."""
    gen = torch.Generator().manual_seed(0)

    def make(n):
        y = torch.arange(n) % 10
        x = torch.linspace(20, 235, 10)[y].view(n, 1, 1, 1) + 60 * torch.randn(n, 3, 32, 32, generator=gen)
        return x.clamp(0, 255).to(torch.uint8), y

    return {"train": make(640), "test": make(500)}


def _cfg(**kw):
    return TrainConfig(
        **{
            **dict(
                arch="light_cnn",
                activation="kaf",
                epochs=2,
                batch_size=64,
                device="cpu",
                model_options={"width": 8},
                lr_max=1e-2,
            ),
            **kw,
        }
    )


def test_cpu_without_bf16_falls_back_to_fp32_with_one_line(blobs, monkeypatch, capsys):
    monkeypatch.setenv("THESIS_CPU_BF16", "0")
    m = train(_cfg(epochs=1), data=blobs, verbose=False)
    assert m["precision"] == "fp32" and m["memory_format"] == "channels_last"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no native bfloat16" in err[0]


def test_amp_off_and_layout_off_are_recorded(blobs):
    m = train(_cfg(epochs=1, amp=False, channels_last=False), data=blobs, verbose=False)
    assert (m["precision"], m["memory_format"]) == ("fp32", "contiguous")


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bfloat16")
def test_bf16_training_matches_fp32_accuracy_and_resumes_bitwise(blobs, tmp_path):
    # One pair of toy runs says nothing: after 8 epochs (80 Adam steps) a run of either precision lands
    # anywhere between about 40% and 80% depending on its seed and on rounding (measured on an AMD EPYC and
    # an Intel Xeon). So three seeds per precision, and bf16 must not be worse than fp32 by more than the
    # seed-to-seed noise measured here: 3 standard errors of the difference of the means (at least 5 points).
    seeds = (0, 1, 2)
    bf = {seed: train(_cfg(epochs=8, seed=seed), data=blobs, verbose=False) for seed in seeds}
    fp = [train(_cfg(epochs=8, seed=seed, amp=False), data=blobs, verbose=False)["clean_acc"] for seed in seeds]
    assert {m["precision"] for m in bf.values()} == {"bf16"}
    acc = [m["clean_acc"] for m in bf.values()]
    mean_bf, mean_fp = sum(acc) / 3, sum(fp) / 3
    var = [sum((a - m) ** 2 for a in xs) / 2 for xs, m in ((acc, mean_bf), (fp, mean_fp))]
    noise = max(3 * ((var[0] + var[1]) / 3) ** 0.5, 0.05)
    assert mean_bf > 0.25 and mean_fp > 0.25, (acc, fp)  # both learn (chance: 10%)
    assert mean_bf > mean_fp - noise, (acc, fp, noise)
    part = train(_cfg(epochs=8), data=blobs, out_dir=tmp_path / "part", stop_after=1, verbose=False)
    assert not part["finished"]
    resumed = train(_cfg(epochs=8), data=blobs, out_dir=tmp_path / "part", resume=True, verbose=False)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in bf[0]["history"]]
    assert resumed["clean_acc"] == bf[0]["clean_acc"]


def test_reported_clean_accuracy_is_float32(blobs, tmp_path):
    from thesis_lib.training import load_run

    m = train(_cfg(epochs=1), data=blobs, out_dir=tmp_path / "r", verbose=False)
    model, _ = load_run(tmp_path / "r")
    assert m["clean_acc"] == evaluate(model, *blobs["test"])[1]  # evaluate runs in float32, NCHW


def test_resolve_precision_on_cpu(monkeypatch):
    lines = []
    p = resolve_precision(True, "auto", True, torch.device("cpu"), lines.append)
    assert p.dtype == ("bf16" if cpu_has_bf16() else "fp32") and p.channels_last
    assert resolve_precision(False, "auto", False, torch.device("cpu"), lines.append).record() == {
        "precision": "fp32",
        "memory_format": "contiguous",
    }
    monkeypatch.setenv("THESIS_CPU_BF16", "0")
    lines.clear()
    assert resolve_precision(True, "auto", True, torch.device("cpu"), lines.append).dtype == "fp32"
    assert len(lines) == 1


def test_evaluate_is_unchanged_by_layout():
    from thesis_lib.models import build_model

    net = build_model("light_cnn", "kaf", width=8).eval()
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(64) % 10
    a = evaluate(net, x, y)
    b = evaluate(net.to(memory_format=torch.channels_last), x, y)
    assert a[1] == b[1] and abs(a[0] - b[0]) < 1e-4


POINTWISE_REFS = {
    "elu": torch.nn.functional.elu,
    "swish": torch.nn.functional.silu,
    "gelu": torch.nn.functional.gelu,
    "softplus": torch.nn.functional.softplus,
    "tanh": torch.tanh,
}


@pytest.mark.parametrize("name", list(POINTWISE_REFS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=["nchw", "cl"])
def test_vector_pointwise_kernels_equal_pytorch(name, dtype, fmt):
    """Values and input gradients of the vector kernels vs PyTorch's functions in float64, over a wide range."""
    ref = POINTWISE_REFS[name]
    m = make_activation(name, 8)
    x = (4 * torch.randn(4, 8, 5, 5)).to(dtype)
    special = [float("nan"), 1e-6, -1e-6, 0.0, 1e-3, -1e-3, 0.3, -0.3, 19.5, 20.5, -30.0, 30.0, -8.0, 1e-30]
    x[0, 0].view(-1)[: len(special)] = torch.tensor(special)
    x[1, :2] = torch.linspace(-12, 12, 50).view(2, 5, 5)
    x = x.contiguous(memory_format=fmt).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = m(x)
    assert y.grad_fn is not None and type(y.grad_fn).__name__ == "_PointwiseBackward"
    assert y.dtype == dtype and y.is_contiguous(memory_format=fmt)
    assert len(saved) == 1 and saved[0].numel() == x.numel()  # the derivative, in place of x
    with torch.no_grad():
        torch.testing.assert_close(m(x), y, rtol=0, atol=0, equal_nan=True)  # the inference kernel: same values
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    xd = x.detach().double().requires_grad_()
    yr = ref(xd)
    (gr,) = torch.autograd.grad(yr, xd, g.double())
    tol = 1e-5 if dtype == torch.float32 else 8e-3
    ok = ~torch.isnan(yr)
    assert torch.isnan(y[0, 0, 0, 0]) and torch.isnan(gx[0, 0, 0, 0])
    assert ((y.double() - yr).abs() <= tol * yr.abs() + 1e-7)[ok].all()
    assert ((gx.double() - gr).abs() <= tol * (gr.abs() + g.double().abs()) + 1e-7)[ok].all()


def test_attacks_stay_float32_on_cpu_unless_asked():
    from contextlib import nullcontext

    from thesis_lib.attacks.context import autocast_for

    cpu = torch.device("cpu")
    assert isinstance(autocast_for(cpu), nullcontext) and isinstance(autocast_for(cpu, False), nullcontext)
    asked = autocast_for(cpu, True)
    assert isinstance(asked, nullcontext) != cpu_has_bf16()
