"""`thesis_protocol_pgd`: the thesis's 2020 evaluation (ART PGD without labels), checked against ART itself.

Tiny random CNNs on 8 x 8 images with random labels (most images misclassified, as for the label-free
effect). The installed ART (1.20.1) gives the single-restart attack and the ART >= 1.5 per-image rule
directly; the ART <= 1.4 rule (one restart kept for the whole `generate` input) is rebuilt from ART's own
single-restart passes and `compute_success_array`, in the order ART 1.4.3 ran them.
"""

import numpy as np
import pytest
import torch
from torch import nn

from thesis_lib.attacks import robust_accuracy, thesis_protocol_pgd

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny ops: see tests/conftest.py

N, SIDE, CLASSES, BATCH = 32, 8, 3, 8
# Observed: 0.0 (the same float32 operations in the same order). Allowed: 1e-6 per pixel.
ATOL = 1e-6


def tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * SIDE * SIDE, CLASSES)
    ).eval()


def data(seed: int):
    g = torch.Generator().manual_seed(seed + 10)
    return torch.rand(N, 3, SIDE, SIDE, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def art_attack(model, eps, step, steps, num_random_init):
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(
        model, nn.CrossEntropyLoss(), input_shape=(3, SIDE, SIDE), nb_classes=CLASSES, clip_values=(0.0, 1.0)
    )
    atk = ProjectedGradientDescent(
        clf,
        norm=np.inf,
        eps=eps,
        eps_step=step,
        max_iter=steps,
        num_random_init=num_random_init,
        batch_size=BATCH,
        verbose=False,
    )
    return clf, atk


def assert_same_images(ours: torch.Tensor, theirs: np.ndarray):
    diff = (ours - torch.from_numpy(theirs)).abs().max().item()
    assert diff <= ATOL, f"x_adv differs from ART's by {diff:.3g}"


# ---------------------------------------------------------------- (i) one restart: ART without labels
@pytest.mark.parametrize("num_random_init", [0, 1])
def test_one_restart_matches_art_without_labels(num_random_init):
    model = tiny(0)
    x, y = data(0)
    eps, step, steps = 0.03, 0.01, 5
    clf, atk = art_attack(model, eps, step, steps, num_random_init)
    np.random.seed(7)
    theirs = atk.generate(x.numpy())  # no y: ART attacks the model's own predictions
    res = thesis_protocol_pgd(
        model, x, y, eps, step, steps, 1, random_init=num_random_init > 0, batch_size=BATCH, seed=7,
        return_adversarials=True,
    )  # fmt: skip
    assert_same_images(res["x_adv"], theirs)
    thesis_number = (clf.predict(theirs).argmax(1) == y.numpy()).mean()  # what the thesis computed
    assert res["robust_acc"] == pytest.approx(thesis_number)
    assert res["per_example"] == (clf.predict(theirs).argmax(1) == y.numpy()).tolist()
    # with the true labels ART attacks something else: the comparison above can fail
    np.random.seed(7)
    with_labels = atk.generate(x.numpy(), y=y.numpy())
    assert (torch.from_numpy(with_labels) - res["x_adv"]).abs().max().item() > 1e-3


def test_per_example_rule_matches_installed_art():
    """ART >= 1.5 (1.20.1 here): per chunk of batch_size, the last restart that changed the prediction."""
    model = tiny(1)
    x, y = data(1)
    _, atk = art_attack(model, 0.04, 0.01, 3, 4)
    np.random.seed(3)
    theirs = atk.generate(x.numpy())
    res = thesis_protocol_pgd(
        model, x, y, 0.04, 0.01, 3, 4, batch_size=BATCH, selection="per_example", seed=3, return_adversarials=True
    )
    assert_same_images(res["x_adv"], theirs)
    assert len(res["kept_restart"]) == N


# ---------------------------------------------------------------- (ii) ART <= 1.4: one restart per input
@pytest.mark.parametrize("reduction_size", [None, 16])
def test_keeps_the_restart_with_the_best_success_rate_over_the_input(reduction_size):
    from art.utils import compute_success_array

    eps, step, steps, restarts = 0.04, 0.01, 3, 6
    differs = []
    for seed in range(6):
        model = tiny(seed)
        x, y = data(seed)
        clf, one_pass = art_attack(model, eps, step, steps, 1)
        group = reduction_size or N
        np.random.seed(3)
        expected, kept, rates = [], [], []
        for g0 in range(0, N, group):  # ART 1.4.3 generate(x[g0:g0+group]): restarts outer, batches inner
            xg = x[g0 : g0 + group].numpy()
            passes = [one_pass.generate(xg) for _ in range(restarts)]
            success = np.stack([compute_success_array(clf, xg, None, p, batch_size=BATCH) for p in passes])
            best = int(np.argmax(success.sum(1)))  # `rate > rate_best`: the first of equal rates
            expected.append(passes[best])
            kept.append(best)
            rates.append(success.mean(1).tolist())
            # per image, some restart broke more images than the kept one did
            differs.append(success.any(0).sum() > success[best].sum())
        res = thesis_protocol_pgd(
            model, x, y, eps, step, steps, restarts, batch_size=BATCH, reduction_size=reduction_size, seed=3,
            return_adversarials=True,
        )  # fmt: skip
        assert_same_images(res["x_adv"], np.concatenate(expected))
        assert res["kept_restart"] == kept
        assert len(res["restart_success_rates"]) == len(rates)
        for got, want in zip(res["restart_success_rates"], rates):
            assert got == pytest.approx(want)
    assert any(differs), "no case where the per-image worst case and the best restart differ: the test would not tell"


def test_best_rate_and_per_example_rules_differ():
    model = tiny(0)
    x, y = data(0)
    kw = dict(batch_size=BATCH, seed=3, return_adversarials=True)
    a = thesis_protocol_pgd(model, x, y, 0.02, 0.005, 3, 4, selection="best_rate", **kw)
    b = thesis_protocol_pgd(model, x, y, 0.02, 0.005, 3, 4, selection="per_example", **kw)
    assert not torch.equal(a["x_adv"], b["x_adv"])
    assert a["per_example"] != b["per_example"]


# ---------------------------------------------------------------- (iii) never below the worst-case protocol
@pytest.mark.parametrize("seed", range(4))
def test_thesis_number_not_below_worst_case_robust_accuracy(seed):
    model = tiny(seed)
    x, y = data(seed)
    eps, step, steps, restarts = 0.04, 0.01, 3, 4
    res = thesis_protocol_pgd(model, x, y, eps, step, steps, restarts, batch_size=BATCH, seed=seed)
    std = robust_accuracy(model, x, y, eps=eps, step=step, steps=steps, restarts=restarts, batch_size=BATCH, seed=seed)
    assert res["robust_acc"] >= std["robust_acc"]
    # the label-free effect: misclassified images pushed onto their true class count as robust
    assert res["robust_acc_clean_and_adv"] <= res["robust_acc"]
    assert res["robust_acc"] * N == pytest.approx(res["robust_acc_clean_and_adv"] * N + res["flipped_to_correct"])
    assert res["clean_acc"] == std["clean_acc"]


def test_model_state_is_restored():
    model = tiny(0).train()
    x, y = data(0)
    thesis_protocol_pgd(model, x, y, 0.03, 0.01, 2, 2, batch_size=BATCH)
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- (iv) bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eps=-0.1), "eps must be a finite number > 0"),
        (dict(eps=0.0), "eps must be a finite number > 0"),
        (dict(eps="big"), "eps must be a number"),
        (dict(step=0.0), "step must be a finite number > 0"),
        (dict(eps=0.01, step=0.02), "step must not exceed eps"),
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(steps=2.5), "steps must be an integer >= 1"),
        (dict(restarts=0), "restarts must be an integer >= 1"),
        (dict(restarts=2, random_init=False), "restarts > 1 needs random_init=True"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
        (dict(reduction_size=0), "reduction_size must be an integer >= 1"),
        (dict(selection="worst"), "selection must be 'best_rate'"),
    ],
)
def test_bad_arguments_raise_one_sentence_errors(kwargs, message):
    x, y = data(0)
    with pytest.raises(ValueError, match=message):
        thesis_protocol_pgd(tiny(0), x, y, **{"steps": 1, "restarts": 1, **kwargs})


def test_bad_images_or_labels_raise():
    model, (x, y) = tiny(0), data(0)
    with pytest.raises(ValueError, match="one class per image"):
        thesis_protocol_pgd(model, x, y[:-1], steps=1, restarts=1)
    with pytest.raises(ValueError, match="N x C x H x W"):
        thesis_protocol_pgd(model, x[0], y[:1], steps=1, restarts=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        thesis_protocol_pgd(model, x * 255, y, steps=1, restarts=1)
