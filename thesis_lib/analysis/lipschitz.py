"""Lipschitz bounds of the thesis's networks in the L2 norm (thesis section 2.3.3, eqs. 2.35-2.36; chapter 6).

A network f = f_L o ... o f_1 is L-Lipschitz with L <= prod_i L_i (eq. 2.36), L_i the constant of
layer i (eq. 2.35). Per layer, in the L2 norm on the layer's actual input size:

- convolution: its operator norm, by power iteration on the convolution itself (conv2d forward,
  conv_transpose2d with the same stride/padding as its adjoint), as in Miyato et al. (2018) and
  Gouk et al. (2021). Power iteration approaches the norm from below, so every convolution also
  gets a certified upper bound: the largest singular value of the kernel's Fourier transform on a
  torus large enough to hold the full linear convolution (Sedghi, Gupta, Long 2019; zero padding,
  cropping and striding can only lower the norm);
- dense layer: the spectral norm of its weight (exact, SVD);
- BatchNorm in eval mode: a diagonal scaling, max_c |gamma_c| / sqrt(var_c + eps);
- activation: `module.slope_bound().max()` (max |f'|; a KAF has one bound per channel; k-WTA is
  discontinuous and reports inf, which makes the network bound inf, honestly);
- max-pool: sqrt(max number of windows an input lies in), 1 for 2x2 stride-2 pooling
  (|max a - max b| <= ||a - b||_2 on each window); average pools: linear, exact operator norm by
  power iteration, certified by the Schur test sqrt(max row sum * max column sum);
- dropout (identity in eval), flatten, identity: 1;
- residual block out = post(branch(x) + shortcut(x)): L_post * (L_branch + L_shortcut), with the
  thesis block's post-add BN and activation (and the He block's post-add activation) in `post`.

`empirical_lipschitz` gives the matching local lower estimate: the largest ||d logit_j / dx||_2
and the largest Jacobian spectral norm over the given inputs, which can never exceed the bound.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "lipschitz_bound",
    "layer_lipschitz",
    "empirical_lipschitz",
    "power_iteration",
    "conv_operator_norm",
    "conv_fft_bound",
    "conv_matrix",
    "network_units",
]


# --------------------------------------------------------------------------- linear-operator norms


def power_iteration(
    forward: Callable[[torch.Tensor], torch.Tensor],
    adjoint: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    iters: int = 500,
    tol: float = 1e-10,
) -> float:
    """Largest singular value of a linear map A (given A and its adjoint A^T), from below.

    Iterates x <- A^T A x / ||A^T A x||; returns max ||A x|| over the unit iterates (each one is a
    valid lower bound) once it changes by less than `tol` (relative).
    """
    x = x0 / x0.norm()
    best = 0.0
    prev = -1.0
    for _ in range(int(iters)):
        y = forward(x)
        sigma = float(y.norm())
        best = max(best, sigma)
        z = adjoint(y)
        zn = z.norm()
        if zn == 0 or not torch.isfinite(zn):
            break
        x = z / zn
        if abs(sigma - prev) <= tol * max(sigma, 1e-300):
            break
        prev = sigma
    return best


def _conv_args(conv: nn.Conv2d):
    if conv.padding_mode != "zeros":
        raise ValueError(f"only zero-padded convolutions are supported, got padding_mode={conv.padding_mode!r}")
    if isinstance(conv.padding, str):
        raise ValueError(f"string padding {conv.padding!r} is not supported; give explicit integer padding")
    return conv.stride, conv.padding, conv.dilation, conv.groups


def _out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_operator_norm(
    conv: nn.Conv2d, input_hw: Sequence[int], iters: int = 500, tol: float = 1e-10, seed: int = 0
) -> float:
    """||conv||_2 on inputs of spatial size input_hw (bias ignored), by power iteration.

    Forward: conv2d with the layer's stride/padding/dilation/groups; adjoint: conv_transpose2d with
    the same arguments and the output_padding that restores input_hw. Computed in float64.
    """
    stride, padding, dilation, groups = _conv_args(conv)
    w = conv.weight.detach().double()
    h, wd = (int(v) for v in input_hw)
    k = w.shape[-2:]
    out = [_out_size(n, k[i], stride[i], padding[i], dilation[i]) for i, n in enumerate((h, wd))]
    if min(out) < 1:
        raise ValueError(f"input {h}x{wd} is too small for {conv}")
    # conv_transpose2d maps o -> (o - 1) s - 2p + d (k - 1) + 1 + output_padding; restore the input size.
    opad = tuple(
        n - ((o - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + 1)
        for i, (n, o) in enumerate(zip((h, wd), out))
    )
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = torch.randn(1, conv.in_channels, h, wd, generator=g, dtype=torch.float64).to(w.device)
    fwd = lambda x: F.conv2d(x, w, None, stride, padding, dilation, groups)  # noqa: E731
    adj = lambda y: F.conv_transpose2d(y, w, None, stride, padding, opad, groups, dilation)  # noqa: E731
    return power_iteration(fwd, adj, x0, iters, tol)


def conv_fft_bound(conv: nn.Conv2d, input_hw: Sequence[int]) -> float:
    """Certified upper bound on ||conv||_2 for inputs of spatial size input_hw (bias ignored).

    The zero-padded convolution is a crop (and, with stride, a subsampling) of the full linear
    convolution, which equals a circular convolution on an n x n torus, n >= H + k_eff - 1. Its
    singular values are those of the C_out x C_in matrices W_hat(f) at the n^2 frequencies
    (Sedghi et al. 2019), so max_f ||W_hat(f)||_2 bounds the layer's norm from above.
    """
    _, _, dilation, groups = _conv_args(conv)
    w = conv.weight.detach().double()
    if dilation != (1, 1):  # insert the holes explicitly
        kh, kw = w.shape[-2:]
        wd = w.new_zeros(*w.shape[:2], dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        wd[..., :: dilation[0], :: dilation[1]] = w
        w = wd
    n = [int(input_hw[i]) + w.shape[-2 + i] - 1 for i in range(2)]
    cout, cin_g = w.shape[:2]
    per = cout // groups
    best = 0.0
    for gi in range(groups):
        wg = w[gi * per : (gi + 1) * per]
        fw = torch.fft.fft2(wg, s=n).permute(2, 3, 0, 1)  # (n_h, n_w, C_out/g, C_in/g)
        best = max(best, float(torch.linalg.matrix_norm(fw, ord=2).max()))
    return best


def conv_matrix(conv: nn.Conv2d, input_hw: Sequence[int]) -> torch.Tensor:
    """The explicit matrix of a (small) convolution on inputs of size input_hw, float64 (for tests)."""
    h, w = (int(v) for v in input_hw)
    n = conv.in_channels * h * w
    basis = torch.eye(n, dtype=torch.float64).view(n, conv.in_channels, h, w)
    stride, padding, dilation, groups = _conv_args(conv)
    out = F.conv2d(basis.to(conv.weight.device), conv.weight.detach().double(), None, stride, padding, dilation, groups)
    return out.reshape(n, -1).T.cpu()


def _linear_norm(module: nn.Module, in_shape, iters, tol, seed) -> float:
    """Operator norm of a linear, bias-free module (average pools) by power iteration, autograd adjoint."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = torch.randn(1, *in_shape, generator=g, dtype=torch.float64)

    def adj(y):
        x = torch.zeros(1, *in_shape, dtype=torch.float64, requires_grad=True)
        with torch.enable_grad():
            (gx,) = torch.autograd.grad(module(x), x, y)
        return gx

    return power_iteration(module, adj, x0, iters, tol)


def _schur_bound(module: nn.Module, in_shape) -> float:
    """sqrt(max row sum * max column sum): an upper bound on ||A||_2 for a linear map with A >= 0 entrywise."""
    ones = torch.ones(1, *in_shape, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        y = module(ones)
        (col,) = torch.autograd.grad(y, ones, torch.ones_like(y))
    return math.sqrt(float(y.detach().max()) * float(col.max()))


def _window_count(pool: nn.MaxPool2d, in_shape) -> int:
    """Max number of pooling windows any input position lies in (F.unfold's adjoint counts them)."""
    k, s, p, d = (
        nn.modules.utils._pair(v)
        for v in (pool.kernel_size, pool.stride or pool.kernel_size, pool.padding, pool.dilation)
    )
    h, w = in_shape[-2:]
    x = torch.ones(1, 1, h, w, dtype=torch.float64, requires_grad=True)
    xin = F.pad(x, (0, s[1] - 1, 0, s[0] - 1)) if pool.ceil_mode else x  # ceil_mode: partial windows at the end
    with torch.enable_grad():
        (cnt,) = torch.autograd.grad(F.unfold(xin, k, d, p, s).sum(), x)
    return int(round(float(cnt.max())))


# --------------------------------------------------------------------------- per-layer bounds

_TORCH_ACTS = {
    nn.ReLU: 1.0,
    nn.LeakyReLU: None,
    nn.ELU: None,
    nn.Tanh: 1.0,
    nn.Sigmoid: 0.25,
    nn.Hardtanh: 1.0,
    nn.Softplus: 1.0,
}


def layer_lipschitz(
    module: nn.Module, in_shape: Sequence[int], iters: int = 500, tol: float = 1e-10, seed: int = 0
) -> dict:
    """L2 Lipschitz constant of one (non-residual) layer on inputs of shape in_shape (no batch dim).

    Returns dict(kind, bound, certified, method): `bound` is the layer's constant as computed
    (power iteration for convolutions and average pools), `certified` a guaranteed upper bound
    (equal to `bound` where that is exact or already an upper bound).
    """
    from ..activations import KAF

    in_shape = tuple(int(v) for v in in_shape)
    if isinstance(module, nn.Conv2d):
        b = conv_operator_norm(module, in_shape[-2:], iters, tol, seed)
        return dict(
            kind="conv", bound=b, certified=max(b, conv_fft_bound(module, in_shape[-2:])), method="power_iteration"
        )
    if isinstance(module, nn.Linear):
        b = float(torch.linalg.matrix_norm(module.weight.detach().double(), ord=2))
        return dict(kind="dense", bound=b, certified=b, method="spectral_norm")
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.running_var is None:
            raise ValueError(f"{module} has no running statistics: it is not a fixed function in eval mode")
        scale = 1.0 / torch.sqrt(module.running_var.double() + module.eps)
        if module.weight is not None:
            scale = scale * module.weight.detach().double().abs()
        b = float(scale.max())
        return dict(kind="batchnorm", bound=b, certified=b, method="max |gamma| / sqrt(var + eps)")
    if hasattr(module, "slope_bound"):
        b = float(module.slope_bound().double().max())
        kind = "kaf" if isinstance(module, KAF) else "activation"
        return dict(
            kind=kind,
            bound=b,
            certified=b,
            method="slope_bound" if math.isfinite(b) else "discontinuous (no finite constant)",
        )
    if type(module) in _TORCH_ACTS:
        b = _TORCH_ACTS[type(module)]
        if b is None:
            b = max(1.0, abs(getattr(module, "negative_slope", getattr(module, "alpha", 1.0))))
        return dict(kind="activation", bound=float(b), certified=float(b), method="analytic")
    if isinstance(module, nn.MaxPool2d):
        b = math.sqrt(_window_count(module, in_shape))
        return dict(kind="maxpool", bound=b, certified=b, method="sqrt(windows per input)")
    if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        b = _linear_norm(module, in_shape, iters, tol, seed)  # pools have no parameters: float64 passes through
        return dict(kind="avgpool", bound=b, certified=max(b, _schur_bound(module, in_shape)), method="power_iteration")
    if isinstance(module, (nn.Dropout, nn.Dropout2d, nn.Identity, nn.Flatten)):
        return dict(kind="identity", bound=1.0, certified=1.0, method="identity in eval mode")
    raise ValueError(f"no Lipschitz rule for layer type {type(module).__name__}")


# --------------------------------------------------------------------------- network structure


def _flatten(prefix: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _flatten(f"{prefix}.{name}" if prefix else name, child)
        return out
    return [(prefix, module)]


def network_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model as an ordered list of (name, unit): layers, or residual blocks, in forward order.

    Knows LightCNN and VGG (features then classifier), ResNet (stem, blocks, pool, fc) and plain
    nn.Sequential models; anything else raises ValueError (its forward is unknown).
    """
    from ..models import VGG, LightCNN, ResNet

    if isinstance(model, (LightCNN, VGG)):
        return _flatten("features", model.features) + _flatten("classifier", model.classifier)
    if isinstance(model, ResNet):
        return (
            _flatten("stem", model.stem)
            + _flatten("blocks", model.blocks)
            + _flatten("pool", model.pool)
            + [("fc", model.fc)]
        )
    if isinstance(model, nn.Sequential):
        return _flatten("", model)
    raise ValueError(f"cannot bound {type(model).__name__}: its forward pass is not a known sequence of layers")


def _block_parts(block: nn.Module):
    """(branch, shortcut, post) lists of (name, module) for the two residual blocks of thesis_lib.models.resnet."""
    from ..models.resnet import HeBlock, ThesisBlock

    if isinstance(block, ThesisBlock):  # act2(bn2(conv2(act1(bn1(conv1 x))) + shortcut x))
        branch = [("conv1", block.conv1), ("bn1", block.bn1), ("act1", block.act1), ("conv2", block.conv2)]
        post = [("bn2", block.bn2), ("act2", block.act2)]
    elif isinstance(block, HeBlock):  # act2(bn2(conv2(act1(bn1(conv1 x)))) + shortcut x)
        branch = [
            ("conv1", block.conv1),
            ("bn1", block.bn1),
            ("act1", block.act1),
            ("conv2", block.conv2),
            ("bn2", block.bn2),
        ]
        post = [("act2", block.act2)]
    else:
        return None
    return branch, _flatten("shortcut", block.shortcut), post


@torch.no_grad()
def _out_shape(module: nn.Module, in_shape) -> tuple[int, ...]:
    p = next(module.parameters(), None)
    x = torch.zeros(
        1, *in_shape, dtype=p.dtype if p is not None else torch.float32, device=p.device if p is not None else "cpu"
    )
    return tuple(module(x).shape[1:])


def _chain(parts, shape, block: str, role: str, rows: list, opts) -> tuple[float, float, tuple]:
    """Bound a chain of layers; appends one row per layer; returns (product, certified product, out shape)."""
    prod, cert = 1.0, 1.0
    for name, mod in parts:
        info = layer_lipschitz(mod, shape, **opts)
        out = _out_shape(mod, shape)
        rows.append(
            dict(
                name=f"{block}.{name}" if block else name,
                type=type(mod).__name__,
                block=block or None,
                role=role,
                in_shape=shape,
                out_shape=out,
                in_product=role == "sequence",
                **info,
            )
        )
        prod, cert = prod * info["bound"], cert * info["certified"]
        shape = out
    return prod, cert, shape


def lipschitz_bound(
    model: nn.Module, input_shape: Sequence[int] = (3, 32, 32), iters: int = 500, tol: float = 1e-10, seed: int = 0
) -> dict:
    """Per-layer L2 Lipschitz bounds of `model` (eval mode) and their product, the network bound (eq. 2.36).

    Returns dict(layers=[rows], total, total_certified, input_shape, norm="l2"). Each row: name,
    type, block (residual block name or None), role ("sequence"; inside blocks "branch",
    "shortcut", "post"; the block's own row "block"), in_shape, out_shape, kind, bound, certified,
    method, in_product (True for the rows whose product is the total), cumulative (running
    product along the sequence). `total` multiplies the computed per-layer constants (power
    iteration for convolutions); `total_certified` multiplies guaranteed upper bounds only.
    A k-WTA layer makes both inf. `pandas.DataFrame(result["layers"])` gives the table.
    """
    opts = dict(iters=iters, tol=tol, seed=seed)
    # A CPU copy in eval mode: BN uses running statistics, dropout is the identity; the operators are
    # small, and float64 on the CPU is exact enough and device-independent.
    model = copy.deepcopy(model).cpu().eval()
    rows: list[dict] = []
    shape = tuple(int(v) for v in input_shape)
    total, total_cert = 1.0, 1.0
    for name, unit in network_units(model):
        parts = _block_parts(unit)
        if parts is None:
            p, c, shape = _chain([(name, unit)], shape, "", "sequence", rows, opts)
        else:
            branch, shortcut, post = parts
            start = len(rows)
            pb, cb, mid = _chain(branch, shape, name, "branch", rows, opts)
            ps, cs, mid_s = _chain(shortcut, shape, name, "shortcut", rows, opts)
            if mid != mid_s:
                raise ValueError(f"{name}: branch output {mid} and shortcut output {mid_s} differ")
            pp, cp, out = _chain(post, mid, name, "post", rows, opts)
            p, c = pp * (pb + ps), cp * (cb + cs)
            rows.insert(
                start,
                dict(
                    name=name,
                    type=type(unit).__name__,
                    block=name,
                    role="block",
                    in_shape=shape,
                    out_shape=out,
                    in_product=True,
                    kind="residual",
                    bound=p,
                    certified=c,
                    method="L(post) * (L(branch) + L(shortcut))",
                ),
            )
            shape = out
        total, total_cert = total * p, total_cert * c
        rows[[i for i, r in enumerate(rows) if r["in_product"]][-1]]["cumulative"] = total
    for r in rows:
        r.setdefault("cumulative", None)
    return dict(layers=rows, total=total, total_certified=total_cert, input_shape=tuple(input_shape), norm="l2")


# --------------------------------------------------------------------------- empirical (local) estimate


def empirical_lipschitz(model: nn.Module, images: torch.Tensor, batch_size: int = 64, device=None) -> dict:
    """Local lower estimates of the model's L2 Lipschitz constant on the given inputs (eval mode).

    For every example x, the full Jacobian J(x) of the K logits is built from K backward passes;
    returns max_grad_norm = max_{x, j} ||d logit_j / dx||_2 (the thesis's input-gradient norm),
    max_jacobian_norm = max_x ||J(x)||_2 (exact spectral norm of the K x D Jacobian, >= the former),
    the arg-max example indices, and per-example arrays grad_norms (N x K) and jacobian_norms (N,).
    Both are lower bounds on the Lipschitz constant, so neither may exceed `lipschitz_bound`.
    An example whose Jacobian is not finite (a network whose training diverged) gets NaN norms and is
    counted in non_finite; the maxima are over the finite ones (NaN when there are none).
    The model's train/eval state is restored and parameter gradients are left untouched.
    """
    from ..utils import check_model_device

    dev = check_model_device(model, device)
    was_training = model.training
    model.eval()
    grads, jacs = [], []
    try:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(dev)
            x = (x.float() / 255 if x.dtype == torch.uint8 else x.float()).detach().clone().requires_grad_(True)
            with torch.enable_grad():
                logits = model(x)
                k = logits.shape[1]
                rows = [
                    torch.autograd.grad(logits[:, j].sum(), x, retain_graph=j < k - 1)[0].reshape(len(x), -1)
                    for j in range(k)
                ]  # examples are independent in eval mode: sum gives per-example grads
            jac = torch.stack(rows, 1).double()  # (B, K, D)
            finite = jac.isfinite().flatten(1).all(1).cpu()
            # the SVD fails on non-finite input: those examples get NaN instead of stopping the run
            norms = torch.full((len(jac),), math.nan, dtype=jac.dtype)
            if finite.any():
                norms[finite] = torch.linalg.matrix_norm(jac[finite.to(jac.device)], ord=2).cpu()
            grads.append(jac.norm(dim=2).cpu().masked_fill(~finite[:, None], math.nan))
            jacs.append(norms)
    finally:
        model.train(was_training)
    g = torch.cat(grads)
    j = torch.cat(jacs)
    ok = j.isfinite()
    g_max, j_ok = g.nan_to_num(nan=-math.inf).max(1).values, j.nan_to_num(nan=-math.inf)  # NaN never wins
    return dict(
        max_grad_norm=float(g_max.max()) if ok.any() else math.nan,
        max_jacobian_norm=float(j_ok.max()) if ok.any() else math.nan,
        argmax_grad=int(g_max.argmax()) if ok.any() else -1,
        argmax_jacobian=int(j_ok.argmax()) if ok.any() else -1,
        grad_norms=g.numpy(),
        jacobian_norms=j.numpy(),
        n=len(j),
        non_finite=int((~ok).sum()),
    )
