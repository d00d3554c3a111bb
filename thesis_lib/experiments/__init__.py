"""The thesis's experiments as code: one registered experiment per row of the table in docs/protocol.md, three profiles.

- `smoke`: CPU, a small stratified CIFAR-10 subset, one or two epochs, attacks on ~100 images with few
  iterations. Proves the whole pipeline in minutes (CI runs it from an empty results folder).
- `cpu`: a stated reduced scale (fewer epochs, attacks on stratified test subsets) for a 2-core CPU, hours.
- `full`: exactly the thesis protocol (GPU hours).

`python -m thesis_lib reproduce --profile P [--only EXP]` runs them (finished ones are skipped,
interrupted ones resumed); the notebooks call `ensure(name, profile, results_dir)` and plot what is
stored under results/<profile>/<name>/ (read back by `thesis_lib.reporting`). `python -m
thesis_lib.reporting.notebooks` re-executes every notebook (all figures and tables).
"""

from .executors import run_profile
from .registry import EXPERIMENTS, PROFILES, Experiment, get_experiment, list_experiments
from .runner import ExperimentResults, ensure, ensure_supplementary, is_complete, run_experiment

__all__ = [
    "Experiment",
    "EXPERIMENTS",
    "PROFILES",
    "get_experiment",
    "list_experiments",
    "run_experiment",
    "run_profile",
    "ensure",
    "ensure_supplementary",
    "is_complete",
    "ExperimentResults",
]
