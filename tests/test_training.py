"""Training: schedule shape, FGSM-RS, NaN guard, checkpoints and exact resume, lr range test, load_run."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from thesis_lib.training import (
    FLAT_DROP,
    TrainConfig,
    fgsm_rs_perturb,
    find_nonfinite,
    load_run,
    loss_drop,
    lr_find,
    one_cycle_lr,
    suggest_lr_bounds,
    train,
)
from thesis_lib.utils import ThesisError


@pytest.fixture(scope="module")
def tiny_data():
    """Learnable synthetic CIFAR-shaped data: the class sets the mean colour of a noisy image."""
    gen = torch.Generator().manual_seed(0)

    def make(n):
        y = torch.arange(n) % 10
        colours = torch.linspace(20, 235, 10)
        x = colours[y].view(n, 1, 1, 1) + 40 * torch.randn(n, 3, 32, 32, generator=gen)
        return x.clamp(0, 255).to(torch.uint8), y

    return {"train": make(128), "test": make(50)}


def tiny(**kw) -> TrainConfig:
    base = dict(arch="light_cnn", activation="relu", epochs=2, batch_size=32, device="cpu")
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------------------------------ schedule
def test_one_cycle_shape():
    total, lo, hi = 100, 0.01, 1.0
    lrs = [one_cycle_lr(s, total, lo, hi, decay_steps=20) for s in range(130)]
    assert lrs[0] == pytest.approx(lo) and lrs[50] == pytest.approx(hi) and lrs[100] == pytest.approx(lo)
    assert all(a < b for a, b in zip(lrs[:50], lrs[1:51]))  # rises to the peak at half the run
    assert all(a > b for a, b in zip(lrs[50:100], lrs[51:101]))  # falls back to lr_min at the end
    second = [lrs[i + 1] - 2 * lrs[i] + lrs[i - 1] for i in range(1, 100) if i != 50]
    assert max(abs(d) for d in second) < 1e-12  # piecewise linear (triangular)
    assert lrs[120] == pytest.approx(lo / 10) and lrs[129] == pytest.approx(lo / 10)  # decay tail: a further 10x
    assert all(a >= b for a, b in zip(lrs[100:120], lrs[101:121]))
    with pytest.raises(ValueError):
        one_cycle_lr(0, 0, lo, hi)


# ------------------------------------------------------------------------------------------ FGSM-RS
def test_fgsm_rs_stays_in_eps_ball_and_image_box_and_raises_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    x = torch.rand(64, 3, 32, 32)
    x[:8] = 0.0  # pixels at the box edges must stay inside [0, 1]
    x[8:16] = 1.0
    y = torch.randint(0, 10, (64,))
    eps = 8 / 255
    x_adv = fgsm_rs_perturb(model, x, y, eps)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > eps / 2  # a real perturbation
    assert all(p.grad is None for p in model.parameters())  # the attack leaves parameter grads alone
    loss = nn.functional.cross_entropy
    assert loss(model(x_adv), y) > loss(model(x), y)
    assert torch.equal(fgsm_rs_perturb(model, x, y, 0.0), x)


# ------------------------------------------------------------------------------------------ config
def test_config_defaults_and_validation():
    c = TrainConfig(arch="light_cnn").resolved()
    assert (c.optimizer, c.schedule, c.lr_max, c.epochs, c.augment) == ("adam", "constant", 1e-3, 20, False)
    v = TrainConfig(arch="vgg", activation="kaf").resolved()
    assert (v.optimizer, v.schedule, v.lr_min, v.lr_max, v.epochs) == ("sgd", "one_cycle", 0.01, 1.0, 60)
    r = TrainConfig(arch="resnet20").resolved()
    assert r.augment and r.epochs == 80 and r.optimizer == "sgd"
    assert TrainConfig.from_dict(v.to_dict()) == v
    for bad in (dict(arch="alexnet"), dict(activation="mish"), dict(method="free_at"), dict(optimizer="rmsprop")):
        with pytest.raises(ValueError):
            TrainConfig(**bad).resolved()
    with pytest.raises(ThesisError, match="eps"):
        TrainConfig(eps=-0.1).resolved()
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"arch": "vgg", "lr": 0.1})


# ------------------------------------------------------------------------------------------ NaN guard
def test_find_nonfinite_names_first_layer():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    loss = model(torch.randn(3, 4)).sum()
    loss.backward()
    assert find_nonfinite(model, loss, 7) is None
    model[2].weight.grad[0, 0] = float("inf")
    model[1].weight.grad[1, 1] = float("nan")
    assert find_nonfinite(model, loss, 7) == {"step": 7, "layer": "1.weight", "quantity": "grad"}
    assert find_nonfinite(model, torch.tensor(float("nan")), 7)["quantity"] == "loss"


def test_injected_nan_gradient_stops_run_cleanly(tiny_data, tmp_path, monkeypatch):
    real_build = TrainConfig.build_model
    calls = {"n": 0}

    def build_with_nan(self):
        model = real_build(self)

        def poison(grad):  # the third backward pass (step 2) produces a NaN gradient here
            calls["n"] += 1
            return grad * float("nan") if calls["n"] == 3 else grad

        model.features[3].weight.register_hook(poison)
        return model

    monkeypatch.setattr(TrainConfig, "build_model", build_with_nan)
    out = tmp_path / "run"
    m = train(tiny(epochs=1, log_norms_every=1000, log_norms_first=2), out_dir=out, data=tiny_data, verbose=False)
    assert m["diverged"] == {"step": 2, "layer": "features.3.weight", "quantity": "grad"}
    assert m["finished"] and m["steps"] == 2 and m["history"][0]["partial"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["diverged"] == m["diverged"]
    weights = load_file(out / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())  # the poisoned update was not applied
    norms = [json.loads(line) for line in (out / "norms.jsonl").read_text().splitlines()]
    assert [r["step"] for r in norms] == [0, 1, 2]  # first steps + the diverging one
    assert math.isnan(norms[-1]["grad"]["features.3.weight"]) and math.isfinite(norms[-1]["grad"]["features.0.weight"])
    assert list(norms[0]["weight"])[:2] == ["features.0.weight", "features.0.bias"]  # forward (layer) order
    again = train(
        tiny(epochs=1, log_norms_every=1000, log_norms_first=2), out_dir=out, data=tiny_data, resume=True, verbose=False
    )
    assert again["diverged"] == m["diverged"]  # a diverged run is finished: resume returns it


# ------------------------------------------------------------------------------------------ resume
def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_resume_is_bitwise_identical_to_uninterrupted_run(tiny_data, tmp_path):
    # SGD + momentum, one-cycle, augmentation and dropout: every piece of state must be restored.
    cfg = tiny(optimizer="sgd", schedule="one_cycle", lr_min=0.01, lr_max=0.2, augment=True)
    full = train(cfg, out_dir=tmp_path / "full", data=tiny_data, verbose=False)
    part = train(cfg, out_dir=tmp_path / "part", data=tiny_data, stop_after=1, verbose=False)
    assert not part["finished"] and part["epochs_done"] == 1
    assert (tmp_path / "part" / "checkpoint-0001.safetensors").is_file()
    resumed = train(cfg, out_dir=tmp_path / "part", data=tiny_data, resume=True, verbose=False)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _strip(full["history"]) == _strip(resumed["history"])
    assert resumed["clean_acc"] == full["clean_acc"] and resumed["finished"]
    assert list((tmp_path / "part").glob("checkpoint-*.safetensors")) == [
        tmp_path / "part" / "checkpoint-0002.safetensors"
    ]
    lines = (tmp_path / "part" / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    # Finished: resuming again does nothing; a run folder is never silently overwritten.
    assert (
        train(cfg, out_dir=tmp_path / "part", data=tiny_data, resume=True, verbose=False)["wall_time_s"]
        == resumed["wall_time_s"]
    )
    with pytest.raises(ThesisError, match="already holds a run"):
        train(cfg, out_dir=tmp_path / "part", data=tiny_data, verbose=False)
    with pytest.raises(ThesisError, match="lr_max"):
        train(
            tiny(optimizer="sgd", schedule="one_cycle", lr_min=0.01, lr_max=0.3, augment=True, epochs=3),
            out_dir=tmp_path / "part",
            data=tiny_data,
            resume=True,
            verbose=False,
        )


def test_corrupt_checkpoint_and_load_run(tiny_data, tmp_path):
    out = tmp_path / "run"
    m = train(tiny(epochs=1), out_dir=out, data=tiny_data, verbose=False)
    model, info = load_run(out)
    assert not model.training and info["clean_acc"] == m["clean_acc"]
    x, y = tiny_data["test"]
    with torch.no_grad():
        acc = (model(x.float() / 255).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(m["clean_acc"])
    ck = out / "checkpoint-0001.safetensors"
    ck.write_bytes(ck.read_bytes()[:1000])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ThesisError, match="corrupt") as err:
        train(tiny(epochs=2), out_dir=out, data=tiny_data, resume=True, verbose=False)
    assert "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written
    (out / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ThesisError, match="corrupt"):
        load_run(out)
    with pytest.raises(ThesisError, match="No training run"):
        load_run(tmp_path / "nothing")


# ------------------------------------------------------------------------------------------ lr range test
def test_suggest_lr_bounds_reads_fall_and_plateau():
    lrs = [1e-4 * (3 / 1e-4) ** (i / 199) for i in range(200)]

    def loss(lr):  # flat, falls between 1e-3 and 1e-1 (log-linearly), plateau, then blows up past 1
        t = min(max((math.log10(lr) + 3) / 2, 0), 1)
        return 2.3 - 1.3 * t + (10 * (lr - 1) if lr > 1 else 0)

    lo, hi = suggest_lr_bounds(lrs, [loss(v) for v in lrs])
    assert 1e-3 < lo < 1.5e-3 and 0.07 < hi <= 0.1  # 5% / 95% of the fall: 10^-2.9, 10^-1.1
    with pytest.raises(ThesisError):
        suggest_lr_bounds(lrs, [2.3 + i * 1e-3 for i in range(200)])


def test_loss_drop_tells_a_flat_sweep_from_one_that_trained():
    lrs = [1e-4 * (3 / 1e-4) ** (i / 199) for i in range(200)]
    falls = [2.3 - 1.3 * min(max((math.log10(v) + 3) / 2, 0), 1) for v in lrs]
    assert loss_drop(falls) == pytest.approx(1.3 / 2.3)
    nearly_flat = [2.3 - 0.03 * i / 199 for i in range(200)]  # satisfies the rule, but barely trains
    suggest_lr_bounds(lrs, nearly_flat)
    assert loss_drop(nearly_flat) < FLAT_DROP < loss_drop(falls)
    with pytest.raises(ThesisError, match="too few finite losses"):
        loss_drop([float("nan")] * 5)


def test_lr_find_runs_and_writes_curve(tiny_data, tmp_path, capsys):
    res = lr_find(
        tiny(batch_size=16), out_dir=tmp_path, lr_start=1e-4, lr_end=1.0, epochs=1, data=tiny_data, verbose=True
    )
    said = capsys.readouterr().out
    assert said.startswith("suggested lr_min ")
    assert ("a flat sweep" in said) == (loss_drop(res["losses"]) < FLAT_DROP)
    n = len(res["lrs"])
    assert 2 < n <= 8 and len(res["losses"]) == n == len(res["raw_losses"])
    ratios = [b / a for a, b in zip(res["lrs"], res["lrs"][1:])]
    assert max(ratios) == pytest.approx(min(ratios))  # exponential sweep
    assert 1e-4 <= res["lr_min"] <= res["lr_max"] <= 1.0
    assert json.loads((tmp_path / "lr_find.json").read_text())["lr_max"] == res["lr_max"]
