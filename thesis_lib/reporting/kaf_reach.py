"""The KAF reach of the committed networks: which KAF layers of a trained model get their inputs where the
kernels have vanished (thesis section 2.4, shown for the networks of sections 5.1 to 5.3 and chapter 6).

`committed_reach(experiment, profile)` loads every committed model of an experiment whose model card
names a KAF activation and measures, per KAF layer, the share of its inputs beyond the dictionary's
reach on stratified CIFAR-10 test images (`thesis_lib.analysis.kaf_reach.reach_table`, which explains
the measure; `reach_lines` there says what a table shows).
"""

from __future__ import annotations

from pathlib import Path

from ..analysis.kaf_reach import REACH_TOL, reach_table

__all__ = ["committed_reach"]


def committed_reach(
    experiment: str, profile: str, results_dir=None, data=None, n_images: int = 500, tol: float = REACH_TOL
):
    """`reach_table` of every committed model of `experiment` at `profile` whose model card names a KAF
    activation ("kaf*"), on `n_images` stratified CIFAR-10 test images (`data`: a location as in
    `load_cifar10`); None without such weights, and always None at the smoke profile, whose weights are
    never committed (networks at chance that retrain in seconds), so that a fresh checkout shows the same."""
    from ..data import load_cifar10
    from ..experiments.registry import get_experiment
    from ..utils import read_json
    from ..weights import weights_dir
    from .pretrained import available_weights, default_results_dir, load_pretrained

    get_experiment(experiment)  # an unknown name is one sentence listing the valid ones, not "no weights"
    if profile == "smoke":
        return None
    root = default_results_dir() if results_dir is None else results_dir
    folder = weights_dir(Path(root) / profile / experiment)
    keys = [
        k
        for k in available_weights(experiment, profile, root)
        if str(read_json(folder / f"{k}.json").get("activation", "")).startswith("kaf")
    ]
    if not keys:
        return None
    images, _ = load_cifar10("test", data, subset=n_images)
    models = {k: load_pretrained(experiment, k, profile, root) for k in keys}
    return reach_table(models, images, tol=tol)
