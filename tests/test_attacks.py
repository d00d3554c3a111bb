"""FGSM / PGD / robust accuracy / curves / AutoAttack / `attack` command.

A tiny light CNN (width 8) is trained for a few seconds on 500 CIFAR-10 images so that attacks have
something to break; correctness against torchattacks is checked on deterministic settings where the two
implementations must follow the same trajectory.
"""

import json

import pytest
import torch
import torch.nn.functional as F

from thesis_lib import build_model
from thesis_lib.attacks import (
    accuracy_vs_eps,
    accuracy_vs_iterations,
    accuracy_vs_restarts,
    autoattack_eval,
    fgsm,
    pgd,
    predict,
    robust_accuracy,
    run_pgd,
)
from thesis_lib.cli import main


@pytest.fixture(scope="module")
def data(offline_cifar):
    from thesis_lib.data import load_cifar10

    xtr, ytr = load_cifar10("train", subset=500)
    xte, yte = load_cifar10("test", subset=64)
    return xtr, ytr, xte, yte


@pytest.fixture(scope="module")
def model(data):
    """Standard training, Adam, 4 epochs of 500 images (about 25-30% test accuracy; a few seconds)."""
    xtr, ytr, _, _ = data
    torch.manual_seed(0)
    m = build_model("light_cnn", "relu", width=8)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    x = xtr.float() / 255
    for _ in range(4):
        m.train()
        for b in torch.randperm(len(x), generator=g).split(50):
            loss = F.cross_entropy(m(x[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def correct(data, model):
    """Test images the model classifies correctly, as float, with their labels."""
    _, _, xte, yte = data
    x = xte.float() / 255
    ok = predict(model, x).eq(yte)
    assert ok.sum() >= 10, "the fixture model should classify some test images correctly"
    return x[ok], yte[ok]


# ---------------------------------------------------------------- input checks and model state
def test_bad_arguments_raise_one_sentence_errors(model):
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        pgd(model, x, y, -0.1, 0.01, 3)
    with pytest.raises(ValueError, match="eps must be"):
        fgsm(model, x, y, -1)
    with pytest.raises(ValueError, match="Unknown norm 'l3'"):
        pgd(model, x, y, 0.1, 0.01, 3, norm="l3")
    with pytest.raises(ValueError, match="restarts must be an integer >= 1"):
        pgd(model, x, y, 0.1, 0.01, 3, restarts=0)
    with pytest.raises(ValueError, match="random_start"):
        pgd(model, x, y, 0.1, 0.01, 3, restarts=2, random_start=False)
    with pytest.raises(ValueError, match="one class index per image"):
        pgd(model, x, torch.tensor([0]), 0.1, 0.01, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd(model, x * 255, y, 0.1, 0.01, 3)
    with pytest.raises(ValueError, match="Unknown attack 'cw'"):
        robust_accuracy(model, x, y, attack="cw")
    with pytest.raises(ValueError, match="Unknown AutoAttack version"):
        autoattack_eval(model, x, y, version="plus")


def test_model_state_is_restored_and_no_parameter_gradients():
    torch.manual_seed(0)
    m = build_model("light_cnn", "relu", width=8).train()
    m.features[1].eval()  # a deliberately frozen BatchNorm must stay frozen, the rest stays in training mode
    m.classifier[0].weight.requires_grad_(False)
    modes = [mod.training for mod in m.modules()]
    flags = [p.requires_grad for p in m.parameters()]
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    pgd(m, x, y, 8 / 255, 2 / 255, 2, restarts=2)
    fgsm(m, x, y, 8 / 255)
    robust_accuracy(m, x, y, steps=2, restarts=1)
    assert [mod.training for mod in m.modules()] == modes
    assert [p.requires_grad for p in m.parameters()] == flags
    assert all(p.grad is None for p in m.parameters())


# ---------------------------------------------------------------- agreement with torchattacks
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_same_trajectory_as_torchattacks_without_random_start(model, correct, norm):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = correct
    if norm == "linf":
        eps, step = 4 / 255, 1 / 255
        ta = torchattacks.PGD(model, eps=eps, alpha=step, steps=5, random_start=False)
    else:
        eps, step = 0.5, 0.1
        ta = torchattacks.PGDL2(model, eps=eps, alpha=step, steps=5, random_start=False)
    theirs = ta(x, y)
    # classic PGD (every step, final iterate) from the clean image: the same algorithm step by step
    ours = run_pgd(model, x, y, eps, step, 5, norm=norm, random_start=False, stop="none").x_adv
    # float rounding (oneDNN's convolution kernels differ by CPU) moves a few pixels by one ulp-sized step
    differ = ((ours - theirs).abs() > 1e-4).float().mean().item()
    assert differ < 0.01, f"{differ:.2%} of the pixels differ"
    assert torch.equal(predict(model, ours), predict(model, theirs))


def test_early_stopping_never_weaker_than_torchattacks(model, correct):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = correct
    theirs = torchattacks.PGD(model, eps=2 / 255, alpha=0.5 / 255, steps=10, random_start=False)(x, y)
    they_broke = predict(model, theirs).ne(y)
    res = run_pgd(model, x, y, 2 / 255, 0.5 / 255, 10, random_start=False)
    # the same trajectory, stopped at the first misclassified iterate: every example torchattacks breaks
    # at the final iterate was broken by some iterate of ours
    assert they_broke.any() and not they_broke.all()
    assert (res.success | ~they_broke).all()
    assert predict(model, res.x_adv).ne(y).eq(res.success).all()


def test_random_restarts_not_weaker_than_torchattacks(model, data):
    torchattacks = pytest.importorskip("torchattacks")
    _, _, xte, yte = data
    x = xte.float() / 255
    atk = torchattacks.MultiAttack([torchattacks.PGD(model, eps=2 / 255, alpha=0.5 / 255, steps=10) for _ in range(3)])
    theirs = (predict(model, x).eq(yte) & predict(model, atk(x, yte)).eq(yte)).float().mean().item()
    ours = robust_accuracy(model, xte, yte, eps=2 / 255, step=0.5 / 255, steps=10, restarts=3)["robust_acc"]
    assert ours <= theirs + 2 / len(x)  # random starts differ: allow two images of noise


def test_early_stopping_spends_less(model, data):
    _, _, xte, yte = data
    n, steps, restarts = len(xte), 10, 3
    lazy = run_pgd(model, xte, yte, 8 / 255, 2 / 255, steps, restarts, return_adv=False)
    full = run_pgd(model, xte, yte, 8 / 255, 2 / 255, steps, restarts, stop="none", return_adv=False)
    assert full.gradient_evaluations == n * steps * restarts  # the last iterate needs no gradient
    assert lazy.gradient_evaluations < full.gradient_evaluations / 3
    assert lazy.success.sum() >= full.success.sum() - 2  # same attack strength up to random starts


def test_targeted_pgd_reaches_targets(model, correct):
    x, y = correct
    target = (y + 1) % 10
    res = run_pgd(model, x, y, 32 / 255, 4 / 255, 20, target=target)
    assert torch.equal(predict(model, res.x_adv).eq(target), res.success)
    assert res.success.float().mean() > 0.5


# ---------------------------------------------------------------- robust accuracy and curves
def test_robust_accuracy_report(model, data):
    _, _, xte, yte = data
    r8 = robust_accuracy(model, xte, yte, steps=5, restarts=2, return_adversarials=True)
    rf = robust_accuracy(model, xte.float() / 255, yte, steps=5, restarts=2)
    assert r8["robust_acc"] == rf["robust_acc"] and r8["per_example"] == rf["per_example"]
    assert r8["n"] == len(yte) and len(r8["per_example"]) == len(yte)
    assert 0 <= r8["robust_acc"] < r8["clean_acc"]
    assert r8["robust_acc"] == pytest.approx(sum(r8["per_example"]) / len(yte))
    assert all(c or not p for c, p in zip(r8["clean_correct"], r8["per_example"]))
    assert r8["settings"] == {
        "attack": "pgd",
        "eps": 8 / 255,
        "step": 2 / 255,
        "steps": 5,
        "restarts": 2,
        "norm": "linf",
        "random_start": True,
        "seed": 0,
        "batch_size": 256,
    }
    assert (r8["x_adv"] - xte.float() / 255).abs().max() <= 8 / 255 + 1e-6
    # an example is robust iff it was never broken
    assert [s == -1 for s in r8["success_step"]] == r8["per_example"]
    fg = robust_accuracy(model, xte, yte, "fgsm")
    noise = robust_accuracy(model, xte, yte, "noise")
    assert r8["robust_acc"] <= fg["robust_acc"] <= noise["robust_acc"] <= noise["clean_acc"]


def test_iterations_curve_equals_independent_runs(model, data):
    _, _, xte, yte = data
    rows = accuracy_vs_iterations(model, xte, yte, iterations=[0, 1, 3, 8], eps=4 / 255, step=1 / 255)
    assert [r["iterations"] for r in rows] == [0, 1, 3, 8]
    accs = [r["robust_acc"] for r in rows]
    assert accs == sorted(accs, reverse=True) and accs[-1] < rows[0]["clean_acc"]
    for r in rows[1:]:  # PGD-k is a prefix of PGD-8 with the same random starts
        alone = robust_accuracy(model, xte, yte, eps=4 / 255, step=1 / 255, steps=r["iterations"], restarts=1)
        assert alone["robust_acc"] == pytest.approx(r["robust_acc"], abs=1.01 / len(yte))


def test_restarts_and_eps_curves(model, data):
    _, _, xte, yte = data
    rows = accuracy_vs_restarts(model, xte, yte, restarts=[1, 2, 4], eps=2 / 255, step=0.5 / 255, steps=5)
    accs = [r["robust_acc"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    same = robust_accuracy(model, xte, yte, eps=2 / 255, step=0.5 / 255, steps=5, restarts=4)
    assert same["robust_acc"] == pytest.approx(accs[-1], abs=1.01 / len(yte))
    rows = accuracy_vs_eps(model, xte, yte, eps_values=[4 / 255, 0, 1 / 255], steps=5)
    assert [r["eps_255"] for r in rows] == pytest.approx([0, 1, 4])
    assert rows[0]["robust_acc"] == rows[0]["clean_acc"]
    assert rows[2]["robust_acc"] <= rows[1]["robust_acc"] <= rows[0]["robust_acc"]


# ---------------------------------------------------------------- AutoAttack
def test_autoattack_apgd_report(model, data):
    _, _, xte, yte = data
    res = autoattack_eval(model, xte[:24], yte[:24], eps=8 / 255, version="apgd", n_iter=5)
    assert res["attacks"] == ["apgd-ce", "apgd-t"] and [p["attack"] for p in res["per_attack"]] == res["attacks"]
    assert res["robust_acc"] <= res["per_attack"][0]["robust_acc"] <= res["clean_acc"]
    assert res["robust_acc"] == pytest.approx(sum(res["per_example"]) / 24)
    assert res["max_perturbation"] <= 8 / 255 + 1e-6
    assert "after apgd-t" in res["summary"] and "robust accuracy" in res["summary"]


def test_autoattack_standard_runs_every_attack(model, correct):
    x, y = correct
    res = autoattack_eval(model, x[:6], y[:6], eps=2 / 255, version="standard", n_iter=2, n_queries=10)
    assert [p["attack"] for p in res["per_attack"]] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert res["clean_acc"] == 1.0 and res["robust_acc"] <= 1.0


# ---------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data):
    training = pytest.importorskip("thesis_lib.training")
    out = tmp_path_factory.mktemp("attack") / "run"
    cfg = training.TrainConfig(
        arch="light_cnn",
        activation="relu",
        epochs=1,
        train_subset=100,
        test_subset=50,
        batch_size=50,
        device="cpu",
        model_options={"width": 8},
    )
    training.train(cfg, out_dir=out)
    return out


def test_attack_command_writes_json(run_dir, capsys):
    args = ["attack", "--run", str(run_dir), "--steps", "3", "--restarts", "2", "--n-examples", "20", "--device", "cpu"]
    assert main(args) == 0
    res = json.loads((run_dir / "attack_pgd.json").read_text())
    assert res["settings"]["steps"] == 3 and res["settings"]["eps"] == pytest.approx(8 / 255)
    assert res["n"] == 20 and len(res["per_example"]) == 20
    assert res["robust_acc"] == pytest.approx(sum(res["per_example"]) / 20)
    assert {"git_commit", "hardware", "run", "data", "clean_acc", "seconds"} <= set(res)
    assert "robust_acc" in capsys.readouterr().out
    assert main(args) == 0 and "up to date" in capsys.readouterr().out  # same settings: skipped
    assert (
        main(
            [
                "attack",
                "--run",
                str(run_dir),
                "--attack",
                "fgsm",
                "--eps",
                "0.031",
                "--n-examples",
                "20",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert json.loads((run_dir / "attack_fgsm.json").read_text())["settings"]["eps"] == pytest.approx(0.031)
    assert (
        main(
            [
                "attack",
                "--run",
                str(run_dir),
                "--attack",
                "autoattack",
                "--version",
                "apgd",
                "--aa-iters",
                "2",
                "--n-examples",
                "10",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    aa = json.loads((run_dir / "attack_autoattack_apgd.json").read_text())
    assert [p["attack"] for p in aa["per_attack"]] == ["apgd-ce", "apgd-t"]


def test_attack_command_user_errors(tmp_path, capsys):
    assert main(["attack", "--run", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["attack", "--run", str(tmp_path), "--eps", "8/x"]) == 2
    assert "Could not read '8/x'" in capsys.readouterr().err
    assert main(["attack", "--run", str(tmp_path), "--restarts", "0"]) == 2
    assert main(["attack", "--run", str(tmp_path), "--device", "cpu"]) == 2  # no run in an empty folder
    assert "config.json" in capsys.readouterr().err


def test_batchnorm_folding_keeps_the_function():
    from thesis_lib.attacks import fold_batchnorm
    from thesis_lib.attacks.fold import foldable_pairs

    torch.manual_seed(0)
    for arch, pairs in (("light_cnn", 4), ("vgg", 6), ("resnet20", 1)):
        m = build_model(arch, "relu", width=8) if arch == "light_cnn" else build_model(arch, "relu")
        for mod in m.modules():  # non-trivial running statistics and affine parameters
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.2, 3)
                mod.weight.data.uniform_(0.5, 2)
                mod.bias.data.uniform_(-1, 1)
        m.train()
        assert len(foldable_pairs(m)) == pairs
        f = fold_batchnorm(m)
        assert f is not m and m.training  # a copy; the original is untouched
        x = torch.rand(8, 3, 32, 32)
        with torch.no_grad():
            assert torch.allclose(f(x), m.eval()(x), atol=1e-4, rtol=1e-4)
        assert (
            sum(isinstance(mod, torch.nn.BatchNorm2d) for mod in f.modules())
            == sum(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules()) - pairs
        )
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    assert fold_batchnorm(plain) is plain
