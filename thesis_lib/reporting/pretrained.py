"""Committed trained networks by experiment name: `load_pretrained("resnet20_at", "kaf", profile="cpu")`.

The weights of every finished training run are committed beside the results that quote them
(`results/<profile>/<experiment>/weights/<key>.safetensors` with its model card, written by
`thesis_lib.weights`), so the networks behind the tables of chapters 4 to 6 can be loaded without
retraining. This module finds them by experiment, run key and profile: `available_weights` lists the
run keys with committed weights, `load_pretrained` loads one (through `thesis_lib.weights.load_model`,
which checks the file against its card), and `default_results_dir` is where it looks by default.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..utils import ThesisError
from ..weights import load_model, weights_dir

__all__ = ["default_results_dir", "available_weights", "load_pretrained"]


def default_results_dir() -> Path:
    """The repository's results/ (an editable install), else ./results."""
    repo = Path(__file__).resolve().parents[2] / "results"
    return repo if repo.is_dir() else Path("results")


def available_weights(experiment: str, profile: str = "cpu", results_dir: str | os.PathLike | None = None) -> list[str]:
    """The run keys of `experiment` at `profile` with committed weights (model cards), sorted."""
    root = Path(results_dir) if results_dir is not None else default_results_dir()
    folder = weights_dir(root / profile / experiment)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_pretrained(
    experiment: str,
    key: str,
    profile: str = "cpu",
    results_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """The committed weights of run `key` of `experiment` at `profile`, in eval mode.

    E.g. `load_pretrained("resnet20_at", "kaf", profile="cpu")`. Unknown names give one sentence
    listing what exists; the weights are checked against their card's SHA-256 (see `weights.load_model`).
    """
    from ..experiments.registry import check_profile, get_experiment

    get_experiment(experiment)  # ValueError listing the valid experiment names
    check_profile(profile)
    root = Path(results_dir) if results_dir is not None else default_results_dir()
    folder = weights_dir(root / profile / experiment)
    card = folder / f"{key}.json"
    if not card.is_file():
        have = available_weights(experiment, profile, root)
        if have:
            raise ThesisError(
                f"No committed weights for run {key!r} of {experiment!r} at profile {profile!r}; "
                f"available: {', '.join(have)}."
            )
        profiles = sorted(p.parent.parent.parent.name for p in root.glob(f"*/{experiment}/weights/*.json"))
        hint = f" (weights exist for profile(s): {', '.join(sorted(set(profiles)))})" if profiles else ""
        raise ThesisError(f"No committed weights for {experiment!r} at profile {profile!r} in {root}{hint}.")
    return load_model(card, device)
