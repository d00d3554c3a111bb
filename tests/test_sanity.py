"""Gradient-masking report (Carlini et al. 2019 checklist): passes for an adversarially trained ReLU network,
flags a k-WTA network (discontinuous: "shattered gradients") and an input-quantisation "defence" (zero
gradients). The models are tiny light CNNs (width 8) trained inside the test with fast adversarial
training (FGSM-RS, Wong et al. 2020) on 500 CIFAR-10 images for a few seconds: small, but real models,
and the checks are computed in full (only the attack budgets are smaller than the report's defaults).
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from thesis_lib import build_model
from thesis_lib.attacks import SanityConfig, first_order_error, gradient_masking_report, zero_gradient_fraction

EPS = 8 / 255
# Smaller attack budgets than the defaults so that the whole file stays fast; every check still runs.
CFG = SanityConfig(steps=5, restarts=2, eps_factors=(0.0, 0.5, 1.0, 2.0), iteration_grid=(1, 5, 10), noise_samples=4)


def fast_at(model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, epochs: int = 8, seed: int = 0) -> nn.Module:
    """FGSM-RS adversarial training (random start in the eps-ball, one step of 1.25 eps), Adam."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = x_u8.float() / 255
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(epochs):
        model.train()
        for b in torch.randperm(len(x), generator=g).split(64):
            xb, yb = x[b], y[b]
            delta = ((torch.rand(xb.shape, generator=g) * 2 - 1) * EPS).requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model((xb + delta).clamp(0, 1)), yb), delta)
            delta = (delta + 1.25 * EPS * grad.sign()).clamp(-EPS, EPS).detach()
            loss = F.cross_entropy(model((xb + delta).clamp(0, 1)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def data(offline_cifar):
    from thesis_lib.data import load_cifar10

    xtr, ytr = load_cifar10("train", subset=500)
    xte, yte = load_cifar10("test", subset=100)
    return xtr, ytr, xte, yte


@pytest.fixture(scope="module")
def models(data):
    xtr, ytr, _, _ = data
    out = {}
    for act in ("relu", "kwta"):
        torch.manual_seed(0)
        out[act] = fast_at(build_model("light_cnn", act, width=8), xtr, ytr)
    return out


def by_name(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"]}


def test_report_passes_for_adversarially_trained_relu(models, data):
    _, _, x, y = data
    rep = gradient_masking_report(models["relu"], x, y, EPS, surrogate=models["kwta"], config=CFG)
    checks = by_name(rep)
    assert all(c["passed"] is True for c in rep["checks"]), rep["summary"]
    assert not rep["flagged"] and "no sign of gradient masking" in rep["summary"]
    assert len(checks) == 9 and checks["pgd_not_weaker_than_transfer"]["values"]["transfer"] >= rep["accuracies"]["pgd"]
    acc = rep["accuracies"]
    # the model is robust to some extent but PGD does real work: a meaningful, non-degenerate report
    assert acc["clean"] > 0.12 and acc["pgd"] < acc["clean"] and acc["large_eps"] <= 0.02
    assert checks["gradients_predict_loss_changes"]["values"]["median_small_h"] < 0.02


def test_report_flags_kwta(models, data):
    _, _, x, y = data
    rep = gradient_masking_report(models["kwta"], x, y, EPS, surrogate=models["relu"], config=CFG)
    checks = by_name(rep)
    assert rep["flagged"] and "GRADIENT MASKING SUSPECTED" in rep["summary"]
    # k-WTA's discontinuities: the gradient does not predict the effect of even a tiny step
    assert checks["gradients_predict_loss_changes"]["passed"] is False, rep["summary"]
    assert checks["gradients_predict_loss_changes"]["values"]["median_small_h"] > 0.2


class Quantise(nn.Module):
    """Input quantisation to 4 grey levels: a classic gradient-masking 'defence' (zero gradient a.e.)."""

    def forward(self, x):
        return torch.round(x * 3) / 3


def test_report_flags_zero_gradients(models, data):
    _, _, x, y = data
    masked = nn.Sequential(Quantise(), models["relu"])
    z = zero_gradient_fraction(masked, x, y)
    assert z["examples"] == 1.0 and z["entries"] == 1.0
    rep = gradient_masking_report(masked, x, y, EPS, config=CFG)
    checks = by_name(rep)
    assert rep["flagged"]
    assert checks["few_zero_gradients"]["passed"] is False
    assert checks["pgd_not_weaker_than_transfer"]["passed"] is None  # no surrogate: skipped, not failed


def test_first_order_error_separates_continuous_from_kwta_at_init(data):
    # Structural, independent of training: at initialisation already, ReLU / smooth networks are locally
    # linear at small scales while k-WTA networks are not; and the error shrinks with h only for the former.
    _, _, x, y = data
    errs = {}
    for act in ("relu", "swish", "kaf", "kwta"):
        torch.manual_seed(1)
        m = build_model("light_cnn", act, width=8).eval()
        errs[act] = [first_order_error(m, x[:50], y[:50], EPS / d)["median"] for d in (32, 256)]
    for act in ("relu", "swish", "kaf"):
        assert errs[act][0] < 0.1 and errs[act][1] < errs[act][0] / 4, errs
    assert errs["kwta"][1] > 0.2 and errs["kwta"][1] > errs["kwta"][0] / 4, errs


def test_bad_report_options(models, data):
    _, _, x, y = data
    with pytest.raises(ValueError, match="eps must be > 0"):
        gradient_masking_report(models["relu"], x, y, 0.0)
    with pytest.raises(ValueError, match="Unknown gradient_masking_report option"):
        gradient_masking_report(models["relu"], x, y, EPS, stepz=3)
