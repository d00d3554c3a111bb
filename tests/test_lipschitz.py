"""Lipschitz bounds (thesis_lib.analysis.lipschitz): exactness on small operators, and bound >= local estimate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from thesis_lib import build_model
from thesis_lib.activations import FIXED_ACTIVATIONS, make_activation
from thesis_lib.analysis import (
    conv_fft_bound,
    conv_matrix,
    conv_operator_norm,
    empirical_lipschitz,
    layer_lipschitz,
    lipschitz_bound,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # many tiny ops: see tests/conftest.py


@pytest.mark.parametrize(
    "cin,cout,k,stride,padding,dilation,groups,hw",
    [
        (2, 3, 3, 1, 1, 1, 1, (5, 6)),
        (2, 3, 3, 2, 1, 1, 1, (6, 5)),  # stride 2: the adjoint needs output_padding
        (3, 2, 3, 2, 0, 1, 1, (7, 7)),
        (2, 4, 2, 1, 1, 2, 2, (5, 5)),  # dilation and groups
        (3, 4, 1, 2, 0, 1, 1, (6, 6)),  # the He block's strided 1x1 shortcut
    ],
)
def test_conv_power_iteration_matches_explicit_matrix(cin, cout, k, stride, padding, dilation, groups, hw):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, groups, bias=True)
    exact = float(torch.linalg.matrix_norm(conv_matrix(conv, hw), ord=2))
    pi = conv_operator_norm(conv, hw, iters=2000, tol=1e-13)
    assert pi == pytest.approx(exact, rel=1e-6)
    assert conv_fft_bound(conv, hw) >= exact * (1 - 1e-9)  # certified: never below the true norm


def test_linear_and_conv_networks_are_tight():
    """For a single linear layer the bound equals the Jacobian's spectral norm at every input."""
    torch.manual_seed(1)
    for model, shape in [
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 10)), (3, 2, 2)),
        (nn.Sequential(nn.Conv2d(3, 2, 3, stride=2, padding=1), nn.Flatten()), (3, 5, 5)),
    ]:
        res = lipschitz_bound(model, shape, iters=3000, tol=1e-13)
        emp = empirical_lipschitz(model, torch.rand(3, *shape))
        assert res["total"] == pytest.approx(emp["max_jacobian_norm"], rel=1e-5)
        assert emp["max_grad_norm"] <= emp["max_jacobian_norm"] * (1 + 1e-9)


@pytest.mark.parametrize(
    "module,shape,expected",
    [
        (nn.AvgPool2d(2), (2, 4, 4), 0.5),
        (nn.AdaptiveAvgPool2d(1), (3, 4, 4), 0.25),
        (nn.MaxPool2d(2), (2, 4, 4), 1.0),
        (nn.MaxPool2d(3, 1, padding=1), (1, 6, 6), 3.0),  # overlapping windows: sqrt(9 windows per input)
        (nn.Dropout(0.3), (5,), 1.0),
    ],
)
def test_pooling_and_identity_rules(module, shape, expected):
    info = layer_lipschitz(module, shape)
    assert info["bound"] == pytest.approx(expected, rel=1e-6)
    assert info["certified"] >= info["bound"] * (1 - 1e-9)


def test_batchnorm_is_a_diagonal_scaling():
    bn = nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.25]))
    expected = max(0.5 / math.sqrt(1 + bn.eps), 2.0 / math.sqrt(4 + bn.eps), 1.0 / math.sqrt(0.25 + bn.eps))
    assert layer_lipschitz(bn, (3, 4, 4))["bound"] == pytest.approx(expected)


@pytest.mark.parametrize("name", FIXED_ACTIVATIONS)
def test_fixed_activation_slope_bounds_are_upper_bounds(name):
    s = torch.linspace(-12, 12, 240_001, dtype=torch.float64, requires_grad=True)
    act = make_activation(name, 1).double()
    (g,) = torch.autograd.grad(act(s).sum(), s)
    assert float(act.slope_bound().double().max()) >= float(g.abs().max()) - 1e-12


def _briefly_train(model, steps=4, seed=0, side=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(32, 3, side, side, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


CASES = [
    ("light_cnn", "relu", dict(width=4)),
    ("light_cnn", "kaf", dict(width=4)),
    ("vgg", "elu", dict(widths=(4, 4, 8), hidden=16)),  # VGG's dense layer needs 32 x 32 inputs
    ("resnet8", "kaf_elu", dict(width=4)),
    ("resnet8", "swish", dict(width=4, block="he")),
]


@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
@pytest.mark.parametrize("arch,act,opts", CASES, ids=[f"{a}-{b}" for a, b, _ in CASES])
def test_network_bound_dominates_empirical_estimate(arch, act, opts, trained):
    torch.manual_seed(0)
    model = build_model(arch, act, **opts)
    if trained:
        _briefly_train(model, side=32 if arch == "vgg" else 16)
    shape = (3, 32, 32) if arch == "vgg" else (3, 16, 16)
    res = lipschitz_bound(model, shape, iters=300)
    emp = empirical_lipschitz(model, torch.rand(24, *shape, generator=torch.Generator().manual_seed(1)))
    assert 0 < emp["max_grad_norm"] <= emp["max_jacobian_norm"]
    assert emp["max_jacobian_norm"] <= res["total"]
    assert res["total_certified"] >= res["total"] * (1 - 1e-9)
    # the table is consistent: the total is the product of the rows marked in_product
    prod = math.prod(r["bound"] for r in res["layers"] if r["in_product"])
    assert prod == pytest.approx(res["total"], rel=1e-9)


def test_residual_rows_combine_branch_and_shortcut():
    model = build_model("resnet8", "relu", width=4)
    rows = lipschitz_bound(model, (3, 16, 16), iters=200)["layers"]
    for blk in [r for r in rows if r["role"] == "block"]:
        parts = [r for r in rows if r["block"] == blk["name"] and r["role"] != "block"]
        prod = lambda role: math.prod(r["bound"] for r in parts if r["role"] == role)  # noqa: E731
        assert blk["bound"] == pytest.approx(prod("post") * (prod("branch") + prod("shortcut")))
    assert sum(r["role"] == "block" for r in rows) == 3
    assert any(r["role"] == "shortcut" and r["type"] == "Conv2d" for r in rows)  # stages 2 and 3 change shape


def test_kwta_network_bound_is_infinite_but_empirical_is_finite():
    model = build_model("light_cnn", "kwta", width=4)
    res = lipschitz_bound(model, (3, 16, 16), iters=100)
    assert res["total"] == math.inf
    assert [r["kind"] for r in res["layers"] if r["bound"] == math.inf] and all(
        r["type"] == "KWTA" for r in res["layers"] if r["bound"] == math.inf
    )
    assert math.isfinite(empirical_lipschitz(model, torch.rand(4, 3, 16, 16))["max_jacobian_norm"])


def test_model_state_untouched():
    model = build_model("light_cnn", "relu", width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lipschitz_bound(model, (3, 16, 16), iters=50)
    empirical_lipschitz(model, torch.rand(4, 3, 16, 16))
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unknown_model_is_rejected():
    class Weird(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="forward pass is not a known sequence"):
        lipschitz_bound(Weird())


def test_a_non_finite_jacobian_is_counted_not_fatal():
    # a diverged network: NaN weights give NaN Jacobians; the SVD must not stop the run
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with torch.no_grad():
        model[1].weight[0, 0] = math.nan
    e = empirical_lipschitz(model, torch.rand(4, 3, 2, 2))
    assert e["non_finite"] == 4 and math.isnan(e["max_jacobian_norm"]) and math.isnan(e["max_grad_norm"])
    with torch.no_grad():
        model[1].weight[0, 0] = 1.0
    e = empirical_lipschitz(model, torch.rand(4, 3, 2, 2))
    assert e["non_finite"] == 0 and math.isfinite(e["max_jacobian_norm"])
