"""thesis_lib.models.BatchNorm2d: the vector training-mode kernels against PyTorch's BatchNorm in float64."""

import copy

import pytest
import torch
from torch import nn

from thesis_lib.activations import _kaf_native
from thesis_lib.models.batchnorm import BatchNorm2d, native_available

pytestmark = pytest.mark.skipif(not _kaf_native.available(), reason="no C compiler for the CPU kernels")


def test_kernels_build_where_kaf_kernels_build():
    assert native_available(), "the BatchNorm kernels did not compile (see the warning above)"


def _pair(c, momentum=0.1):
    torch.manual_seed(1)
    fast = BatchNorm2d(c, momentum=momentum)
    with torch.no_grad():
        fast.weight.uniform_(0.5, 1.5)
        fast.bias.normal_()
        fast.running_mean.normal_()
        fast.running_var.uniform_(0.5, 2)
    ref = nn.BatchNorm2d(c, momentum=momentum).double()
    ref.load_state_dict(fast.state_dict())
    return fast, ref


# channel counts of the thesis models (16-512) plus ones that leave a partial vector of 16
@pytest.mark.parametrize("c", [3, 16, 37, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["ema", "cumulative"])
def test_training_step_equals_pytorch_in_float64(c, dtype, momentum):
    """Output, input/weight/bias gradients and running statistics vs float64 nn.BatchNorm2d."""
    fast, ref = _pair(c, momentum)
    g = torch.Generator().manual_seed(c)
    # a large mean next to the spread: the shifted sums must not cancel
    x64 = (3.0 + 0.5 * torch.randn(5, c, 6, 7, generator=g, dtype=torch.float64)).contiguous(
        memory_format=torch.channels_last
    )
    gy64 = torch.randn(5, c, 6, 7, generator=g, dtype=torch.float64)
    x = x64.to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x64 = x.detach().double().contiguous(memory_format=torch.channels_last).requires_grad_(True)  # same values
    gy = gy64.to(dtype)
    gy64 = gy.double()
    for _ in range(2):  # two steps: the running statistics update twice
        y = fast(x)
        y64 = ref(x64)
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    gx, gw, gb = torch.autograd.grad(y, [x, fast.weight, fast.bias], gy)
    gx64, gw64, gb64 = torch.autograd.grad(y64, [x64, ref.weight, ref.bias], gy64)
    tol = dict(rtol=0, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=2e-2)
    torch.testing.assert_close(y.double(), y64, **tol)
    torch.testing.assert_close(gx.double(), gx64, **tol)
    torch.testing.assert_close(gw.double(), gw64, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gb.double(), gb64, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fast.running_mean.double(), ref.running_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fast.running_var.double(), ref.running_var, rtol=1e-5, atol=1e-6)
    assert int(fast.num_batches_tracked) == int(ref.num_batches_tracked) == 2


def test_frozen_parameters_still_give_the_input_gradient():
    """The FGSM step of fast AT: train mode, parameters frozen, gradient for the input only."""
    fast, ref = _pair(16)
    ref = ref.float()
    x = torch.randn(4, 16, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for m in (fast, ref):
        m.weight.requires_grad_(False)
        m.bias.requires_grad_(False)
    (gx,) = torch.autograd.grad(fast(x).square().sum(), [x])
    (gx_ref,) = torch.autograd.grad(ref(x).square().sum(), [x])
    torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("act", [None, "relu", "swish"])
def test_same_result_for_any_number_of_threads(act):
    from thesis_lib.activations import make_activation

    fast, _ = _pair(32)
    fast.activation = None if act is None else make_activation(act, 32)
    x = torch.randn(8, 32, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    threads = torch.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3):
            torch.set_num_threads(nt)
            m = copy.deepcopy(fast)
            y = m(x)
            outs.append((y, *torch.autograd.grad(y, [x, m.weight], torch.ones_like(y) * 0.1 + y), m.running_var))
    finally:
        torch.set_num_threads(threads)
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


def test_other_layouts_and_eval_mode_use_pytorch():
    fast, ref = _pair(8)
    ref = ref.float()
    x = torch.randn(4, 8, 5, 5)  # NCHW: PyTorch's kernel, bitwise the same as nn.BatchNorm2d
    assert torch.equal(fast(x), ref(x))
    fast.eval(), ref.eval()
    xc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast(xc), ref(xc))


def test_models_use_it_and_keep_their_state_dict_keys():
    from thesis_lib import build_model

    model = build_model("resnet20", "relu")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(type(m) is BatchNorm2d for m in bns)
    assert "stem.1.running_var" in model.state_dict()


FUSABLE = ["relu", "leaky_relu", "elu", "swish", "gelu", "softplus", "tanh", "sigmoid"]


@pytest.mark.parametrize("act", FUSABLE)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("frozen", [False, True], ids=["train", "attack"])
def test_fused_activation_equals_pytorch_in_float64(act, dtype, frozen):
    """f(BN(x)) fused: output and gradients vs float64 PyTorch BatchNorm then the activation.

    float32: within rounding. bfloat16: at least as close to float64 as the unfused path (PyTorch's
    BatchNorm, then the activation module) on the same bf16 tensors.
    """
    from thesis_lib.activations import make_activation

    fast, ref = _pair(37)
    plain = nn.BatchNorm2d(37)
    plain.load_state_dict(fast.state_dict())
    fast.activation = make_activation(act, 37)
    ref_act = make_activation(act, 37)
    g = torch.Generator().manual_seed(3)
    x = (0.3 + torch.randn(4, 37, 6, 5, generator=g)).to(dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    x64 = x.detach().double().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    gy = torch.randn(4, 37, 6, 5, generator=g).to(dtype)

    def run(bn, inp, act_module=None):
        params = [] if frozen else [bn.weight, bn.bias]
        y = bn(inp) if act_module is None else act_module(bn(inp))
        return [y, *torch.autograd.grad(y, [inp, *params], gy.to(inp.dtype))]

    fused, exact = run(fast, x), run(ref, x64, ref_act)
    if dtype == torch.float32:
        for a, b, tol in zip(fused, exact, [5e-5, 5e-5, 1e-4, 1e-4]):
            torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=tol)
    else:
        unfused = run(plain, x, ref_act)
        for a, b, c in zip(fused, unfused, exact):
            assert (a.double() - c).abs().max() <= 1.25 * (b.double() - c).abs().max() + 1e-3


@pytest.mark.parametrize("arch", ["light_cnn", "vgg", "resnet20"])
@pytest.mark.parametrize("act", ["relu", "swish", "kaf"])
def test_fuse_activations_keeps_the_model_function(arch, act):
    """Fused, a model computes what it did (train and eval mode, folded), with the same state dict."""
    from thesis_lib import build_model
    from thesis_lib.attacks.fold import fold_batchnorm
    from thesis_lib.models.batchnorm import fuse_activations

    torch.manual_seed(0)
    plain = build_model(arch, act).to(memory_format=torch.channels_last)
    fused = copy.deepcopy(plain)
    n = fuse_activations(fused)
    assert n == {"light_cnn": 4, "vgg": 6, "resnet20": 1 + 2 * 9}[arch]
    assert fused.state_dict().keys() == plain.state_dict().keys()
    x = torch.rand(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)  # the same dropout masks
    y_plain = plain.train()(x)
    torch.manual_seed(1)
    y_fused = fused.train()(x)
    torch.testing.assert_close(y_fused, y_plain, rtol=1e-4, atol=1e-4)
    for m in (plain, fused):
        m.eval()
    with torch.no_grad():  # a fused KAF's input is rounded differently: running statistics differ by ~1e-9
        torch.testing.assert_close(fused(x), plain(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fold_batchnorm(fused)(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["kaf", "kaf_elu", "kaf_free"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("frozen", [False, True], ids=["train", "attack"])
def test_fused_kaf_equals_pytorch_in_float64(name, dtype, frozen):
    """KAF(BN(x)) with the BatchNorm fused into the KAF kernels: output and the gradients for x, the
    BatchNorm's and the KAF's parameters vs float64 BatchNorm then the KAF formula (as the fixed ones)."""
    from thesis_lib.activations import kaf_reference, make_activation
    from thesis_lib.models.batchnorm import fuse_activations

    torch.manual_seed(2)
    fast, ref = _pair(37)
    kaf = make_activation(name, 37)
    with torch.no_grad():
        kaf.alpha.normal_(0, 0.7)
        if name == "kaf_free":  # a trained dictionary: no longer evenly spaced
            kaf.dictionary.add_(0.05 * torch.randn_like(kaf.dictionary))
    plain_bn = nn.BatchNorm2d(37)
    plain_bn.load_state_dict(fast.state_dict())
    plain_kaf = copy.deepcopy(kaf)
    assert fuse_activations(nn.Sequential(fast, kaf)) == 1 and kaf.fused_into_batchnorm
    g = torch.Generator().manual_seed(4)
    x = (0.3 + torch.randn(4, 37, 6, 5, generator=g)).to(dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    x64 = x.detach().double().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    gy = torch.randn(4, 37, 6, 5, generator=g).to(dtype)
    kaf_params = [kaf.alpha] + ([kaf.dictionary, kaf.gamma] if name == "kaf_free" else [])
    p64 = [p.detach().double().requires_grad_(True) for p in (kaf.alpha, kaf.dictionary, kaf.gamma)]

    def grads(y, inputs, out_grad):
        return [y, *torch.autograd.grad(y, inputs, out_grad)]

    def run_fused():
        params = [] if frozen else [fast.weight, fast.bias, *kaf_params]
        if frozen:
            for p in (fast.weight, fast.bias, *kaf_params):
                p.requires_grad_(False)
        return grads(kaf(fast(x)), [x, *params], gy)

    def run_exact():
        params = [] if frozen else [ref.weight, ref.bias, *p64[: len(kaf_params)]]
        return grads(kaf_reference(ref(x64), *p64), [x64, *params], gy.double())

    def run_unfused():
        params = [] if frozen else [plain_bn.weight, plain_bn.bias, plain_kaf.alpha]
        params += [plain_kaf.dictionary, plain_kaf.gamma] if (name == "kaf_free" and not frozen) else []
        return grads(plain_kaf(plain_bn(x)), [x, *params], gy)

    exact, fused = run_exact(), run_fused()
    if dtype == torch.float32:
        for a, b in zip(fused, exact):
            torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=2e-4)
    else:
        for a, b, c in zip(fused, run_unfused(), exact):
            assert (a.double() - c).abs().max() <= 1.25 * (b.double() - c).abs().max() + 1e-3


@pytest.mark.parametrize("name", ["kaf", "kaf_free"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("shape", [(4, 37, 6, 5), (1, 16, 4, 4), (8, 16, 16, 16)], ids=["105px", "16px", "2048px"])
def test_kaf_kernel_takes_the_batchnorm_sums_bitwise(name, dtype, shape):
    """The KAF backward's sums for the fused BatchNorm equal the BatchNorm's own pass over dL/dz, bit for bit."""
    from thesis_lib.activations import make_activation
    from thesis_lib.activations.kaf import _as_3d
    from thesis_lib.models.batchnorm import _bn_backward, _bn_forward

    c = shape[1]
    g = torch.Generator().manual_seed(5)
    kaf = make_activation(name, c)
    with torch.no_grad():
        kaf.alpha.normal_(0, 0.7, generator=g)
        if name == "kaf_free":
            kaf.dictionary.add_(0.05 * torch.randn(kaf.dictionary.shape, generator=g))
    x = (1.5 + 2 * torch.randn(shape, generator=g)).to(dtype).contiguous(memory_format=torch.channels_last)
    gy = torch.randn(shape, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
    w, b = 0.5 + torch.rand(c, generator=g), torch.randn(c, generator=g)
    mean, _, invstd = _bn_forward(x, None, None, w, b, 1e-5)
    scale = (w * invstd).contiguous()
    affine = (scale, (b - mean * scale).contiguous())
    x3, restore = _as_3d(x)
    gy3, _ = _as_3d(gy)
    params = (kaf.alpha.detach().contiguous(), kaf.dictionary.detach().contiguous(), kaf.gamma.detach().contiguous())
    free = name == "kaf_free"
    gz3, *_, sums = _kaf_native.backward(x3, gy3, *params, True, free, fast=not free, in_affine=affine, bn_mean=mean)
    assert sums is not None and sums.shape[1:] == (2, c)
    two_pass = _bn_backward(x, restore(gz3), None, w, b, 0, 0.0, mean, invstd, True)
    one_pass = _bn_backward(x, restore(gz3), None, w, b, 0, 0.0, mean, invstd, True, sums)
    for u, v in zip(one_pass, two_pass):
        assert torch.equal(u, v)
