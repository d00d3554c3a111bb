"""Trained weights as committed data: a safetensors file and a model card per training run.

Layout, beside the run's metrics (RobustBench-style: weights with a card and a loader; loading by
experiment name, `load_pretrained`, is `thesis_lib.reporting.pretrained`):

    results/<profile>/<experiment>/weights/<key>.safetensors   the final weights (float32, state_dict)
    results/<profile>/<experiment>/weights/<key>.json          the model card: what the network is, how it
                                                               was trained, what it scored, on what machine,
                                                               and the SHA-256 of the weights file

`load_model(card_path)` rebuilds the network from the card's training config and loads the weights
with safetensors (no pickle), after checking the file's hash; anything missing or corrupt is one
clear ThesisError. `export_weights` writes the pair from a finished training-run folder;
`record_evaluation` adds what the network scored under attack once its experiment has evaluated it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from .utils import ThesisError, atomic_write_json, read_json

__all__ = [
    "export_weights",
    "load_model",
    "model_card",
    "record_evaluation",
    "weights_dir",
]

CARD_FIELDS = (
    "arch",
    "activation",
    "method",
    "seed",
    "clean_acc",
    "epochs_done",
    "n_train",
    "n_test",
    "diverged",
    "early_stopped",
    "precision",
    "memory_format",
    "wall_time_s",
    "git_commit",
    "hardware",
    "data_source",
)


def weights_dir(experiment_dir: str | os.PathLike) -> Path:
    return Path(experiment_dir) / "weights"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_card(metrics: dict, key: str, profile: str, experiment: str, weights_file: Path) -> dict:
    """The card of one trained network, from train()'s metrics."""
    card = {k: metrics.get(k) for k in CARD_FIELDS}
    card.update(
        {
            "key": key,
            "profile": profile,
            "experiment": experiment,
            "config": metrics["config"],
            "request": metrics.get("request"),  # the experiment's (unresolved) training request it answers
            "weights": weights_file.name,
            "sha256": _sha256(weights_file),
            "bytes": weights_file.stat().st_size,
            "load": f"thesis_lib.weights.load_model('results/{profile}/{experiment}/weights/{key}.json')",
            "inputs": "CIFAR-10 images, N x 3 x 32 x 32, float in [0, 1], no normalisation; outputs: 10 logits",
        }
    )
    return card


def export_weights(
    run_folder: str | os.PathLike,
    experiment_dir: str | os.PathLike,
    key: str,
    metrics: dict,
    profile: str,
    experiment: str,
) -> Path:
    """Copy a finished run's `model.safetensors` to `experiment_dir`/weights/<key>.safetensors and write its card."""
    src = Path(run_folder) / "model.safetensors"
    if not src.is_file():
        raise ThesisError(f"{run_folder} holds no finished model (model.safetensors is missing); train it first.")
    out = weights_dir(experiment_dir)
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{key}.safetensors"
    tmp = dst.with_suffix(".safetensors.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    card = model_card(metrics, key, profile, experiment, dst)
    atomic_write_json(out / f"{key}.json", card)
    return out / f"{key}.json"


def record_evaluation(experiment_dir: str | os.PathLike, key: str, evaluation: dict) -> bool:
    """Store `evaluation` (the attack, the images, clean and robust accuracy) in the card of run `key`.

    The card is rewritten (atomically) only when its evaluation differs, so re-reading cached evaluation
    steps leaves committed cards untouched. Returns whether the card changed; a run without a card (its
    weights not exported) is left alone.
    """
    path = weights_dir(experiment_dir) / f"{key}.json"
    if not path.is_file():
        return False
    card = read_json(path)
    if card.get("evaluation") == evaluation:
        return False
    card["evaluation"] = evaluation
    atomic_write_json(path, card)
    return True


def load_model(card_path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network a model card describes, with its weights, in eval mode on `device`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .training import TrainConfig
    from .training.trainer import model_with_weights

    card_path = Path(card_path)
    card = read_json(card_path)
    try:
        cfg = TrainConfig.from_dict(card["config"])
        wfile = card_path.parent / card["weights"]
        want = card["sha256"]
    except (KeyError, TypeError, ValueError) as e:
        raise ThesisError(f"{card_path} is not a model card ({e}); regenerate it with export_weights.") from None
    if not wfile.is_file():
        raise ThesisError(f"The weights {wfile} named by {card_path} are missing.")
    if _sha256(wfile) != want:
        raise ThesisError(
            f"{wfile} does not match the SHA-256 in its card {card_path}: the file is corrupt or was "
            f"replaced; re-export it."
        )
    try:
        state = load_file(wfile)
    except (SafetensorError, OSError) as e:
        raise ThesisError(f"{wfile} is not a readable safetensors file ({str(e)[:80]}).") from None
    return model_with_weights(cfg, state, wfile).to(device).eval()
