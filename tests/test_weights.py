"""Committed weights: export with a model card, load back safely, refuse corrupt files."""

import json

import pytest
import torch

from thesis_lib.training import TrainConfig, load_run, train
from thesis_lib.utils import ThesisError
from thesis_lib.weights import export_weights, load_model, record_evaluation


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 10
    x = torch.linspace(20, 235, 10)[y].view(64, 1, 1, 1) + 40 * torch.randn(64, 3, 32, 32, generator=gen)
    data = {"train": (x.clamp(0, 255).to(torch.uint8), y), "test": (x[:32].clamp(0, 255).to(torch.uint8), y[:32])}
    run = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        arch="light_cnn", activation="kaf", epochs=1, batch_size=32, device="cpu", model_options={"width": 8}
    )
    metrics = train(cfg, out_dir=run, data=data, verbose=False)
    return run, metrics


def test_export_and_load_give_the_trained_network(finished_run, tmp_path):
    run, metrics = finished_run
    card_path = export_weights(run, tmp_path / "exp", "kaf", metrics, "smoke", "light_cnn")
    card = json.loads(card_path.read_text())
    assert card["activation"] == "kaf" and card["clean_acc"] == metrics["clean_acc"] and len(card["sha256"]) == 64
    assert card["precision"] == metrics["precision"]
    ours = load_model(card_path)
    ref, _ = load_run(run)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


def test_corrupt_or_missing_weights_give_one_sentence(finished_run, tmp_path):
    run, metrics = finished_run
    card_path = export_weights(run, tmp_path / "exp", "kaf", metrics, "smoke", "light_cnn")
    wfile = card_path.with_suffix(".safetensors")
    data = bytearray(wfile.read_bytes())
    data[-5] ^= 0xFF
    wfile.write_bytes(bytes(data))
    with pytest.raises(ThesisError, match="does not match the SHA-256"):
        load_model(card_path)
    wfile.unlink()
    with pytest.raises(ThesisError, match="missing"):
        load_model(card_path)
    card_path.write_text("{not json")
    with pytest.raises(ThesisError):
        load_model(card_path)
    with pytest.raises(ThesisError, match="no finished model"):
        export_weights(tmp_path / "nothing", tmp_path / "exp", "x", metrics, "smoke", "light_cnn")


def test_record_evaluation_writes_the_card_once(finished_run, tmp_path):
    run, metrics = finished_run
    card_path = export_weights(run, tmp_path / "exp", "kaf", metrics, "smoke", "light_cnn")
    ev = {"attack": "PGD-50x10", "clean_acc": 0.5, "robust_acc": 0.25}
    assert record_evaluation(tmp_path / "exp", "kaf", ev)
    assert json.loads(card_path.read_text())["evaluation"] == ev
    assert not record_evaluation(tmp_path / "exp", "kaf", dict(ev))  # unchanged: not rewritten
    assert record_evaluation(tmp_path / "exp", "kaf", {**ev, "robust_acc": 0.3})
    assert not record_evaluation(tmp_path / "exp", "no_such_run", ev)  # no card: nothing written
    load_model(card_path)  # the card still loads (the hash covers the weights, not the card)


def _fast_at_cards():
    """(profile, experiment, key) of every committed fast-AT model beyond smoke with a PGD step, in an experiment
    that has finished (one being computed writes its cards' evaluations as it evaluates)."""
    from thesis_lib.reporting.pretrained import default_results_dir

    out = []
    for card in sorted(default_results_dir().glob("*/*/weights/*.json")):
        folder = card.parent.parent
        profile, finished = folder.parent.name, (folder / "summary.json").is_file()
        step = folder / f"pgd_{card.stem}.json"
        if (
            profile != "smoke"
            and finished
            and step.is_file()
            and json.loads(card.read_text()).get("method") == "fast_at"
        ):
            out.append((profile, folder.name, card.stem))
    return out


@pytest.mark.parametrize("profile,experiment,key", _fast_at_cards())
def test_fast_at_cards_state_the_robust_accuracy_of_their_pgd_step(profile, experiment, key):
    from thesis_lib.reporting.pretrained import default_results_dir

    folder = default_results_dir() / profile / experiment
    card = json.loads((folder / "weights" / f"{key}.json").read_text())
    step = json.loads((folder / f"pgd_{key}.json").read_text())["result"]
    ev = card.get("evaluation")
    assert ev is not None, f"the card of {experiment}/{key} ({profile}) has no evaluation"
    assert ev["robust_acc"] == step["robust_acc"] and ev["clean_acc"] == step["clean_acc"]
    assert ev["images"].startswith(f"{step['n']} ")


def test_load_pretrained_finds_committed_weights_and_names_what_exists():
    import thesis_lib

    model = thesis_lib.load_pretrained("light_cnn", "kaf", profile="full")
    assert not model.training and type(model).__name__ == "LightCNN"
    with pytest.raises(ThesisError, match="available: kaf, kwta, relu"):
        thesis_lib.load_pretrained("light_cnn", "nope", profile="full")
    from thesis_lib.reporting.pretrained import available_weights

    assert available_weights("light_cnn", "full") == ["kaf", "kwta", "relu"]
    assert available_weights("light_cnn", "nope-profile") == []
    with pytest.raises(ValueError, match="unknown experiment 'nope'; valid: light_cnn"):
        thesis_lib.load_pretrained("nope", "kaf")
    with pytest.raises(ThesisError, match="Unknown profile"):
        thesis_lib.load_pretrained("light_cnn", "kaf", profile="medium")


def _cards_with_clean_outcomes():
    """(profile, experiment, key) of every committed model whose PGD step stored its per-image clean outcomes."""
    from thesis_lib.reporting.pretrained import default_results_dir

    out = []
    for card in sorted(default_results_dir().glob("*/*/weights/*.json")):
        step = card.parent.parent / f"pgd_{card.stem}.json"
        if step.is_file() and "clean_correct" in json.loads(step.read_text()).get("result", {}):
            out.append((card.parent.parent.parent.name, card.parent.parent.name, card.stem))
    return out


@pytest.mark.parametrize("profile,experiment,key", _cards_with_clean_outcomes())
def test_committed_weights_reproduce_their_clean_outcomes(profile, experiment, key, offline_cifar):
    """The loader's network classifies the attacked test images as when its results were computed."""
    import thesis_lib
    from thesis_lib.attacks import predict
    from thesis_lib.data import load_cifar10
    from thesis_lib.reporting.pretrained import default_results_dir

    step = json.loads((default_results_dir() / profile / experiment / f"pgd_{key}.json").read_text())
    s = step["settings"]
    images, labels = load_cifar10(
        "test", root=offline_cifar, subset=s["n"], seed=s.get("subset_seed", s.get("seed", 0))
    )
    model = thesis_lib.load_pretrained(experiment, key, profile=profile)
    correct = predict(model, images).eq(labels).tolist()
    stored = step["result"]["clean_correct"]
    assert len(correct) == len(stored)
    # float32 on another CPU may flip an image whose top two logits tie to rounding: at most 1 in 500
    assert sum(a != b for a, b in zip(correct, stored)) <= len(stored) // 500


def _standard_training_cards():
    """(profile, key, marks) of the committed standard-training ResNets (no attacked-image outcomes stored:
    their clean accuracy on the whole test set is the check); ResNet-56 only in the slow suite."""
    from thesis_lib.reporting.pretrained import default_results_dir

    out = []
    for card in sorted(default_results_dir().glob("*/resnet_standard/weights/*.json")):
        profile = card.parent.parent.parent.name
        if profile == "smoke":
            continue
        marks = [pytest.mark.slow] if card.stem.startswith("resnet56") else []
        out.append(pytest.param(profile, card.stem, id=f"{profile}-{card.stem}", marks=marks))
    return out


@pytest.mark.parametrize("profile,key", _standard_training_cards())
def test_committed_standard_training_weights_reproduce_their_clean_accuracy(profile, key, offline_cifar):
    import thesis_lib
    from thesis_lib.attacks import predict
    from thesis_lib.data import load_cifar10
    from thesis_lib.reporting.pretrained import default_results_dir

    run = json.loads((default_results_dir() / profile / "resnet_standard" / "training" / f"{key}.json").read_text())
    images, labels = load_cifar10("test", root=offline_cifar)
    assert len(labels) == run["n_test"]
    model = thesis_lib.load_pretrained("resnet_standard", key, profile=profile)
    correct = int(predict(model, images).eq(labels).sum())
    # as above: at most 1 image in 500 may flip on another CPU
    assert abs(correct - round(run["clean_acc"] * run["n_test"])) <= run["n_test"] // 500
