"""How `reproduce` runs the experiments of a profile: in this process, or as tasks of a Ray cluster.

`run_profile(profile, only, executor=...)`: "inprocess" runs them one after another (`runner.run_experiment`),
"ray" hands them to `ray_executor` (training runs, evaluation units and experiments as Ray tasks); both give
the same results.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..utils import ThesisError
from .runner import run_experiment, select_experiments

__all__ = ["run_profile", "EXECUTORS"]

EXECUTORS = ("inprocess", "ray")  # ray: `ray_executor`, an optional dependency


def run_profile(
    profile: str = "smoke",
    only: Iterable[str] | None = None,
    executor: str = "inprocess",
    address: str | None = None,
    **kwargs,
) -> dict[str, dict]:
    """Run every experiment (or those in `only`) in thesis order; returns {name: summary}.

    executor: "inprocess" (one after another in this process) or "ray" (training runs, evaluation units and
    experiments as Ray tasks on the cluster at `address`, see `ray_executor`; the same results). `kwargs`: those
    of `run_experiment` (results_dir, data, device, cache_dir, force, log).
    """
    if executor == "ray":
        from .ray_executor import run_profile_ray

        return run_profile_ray(profile, only, address=address, **kwargs)
    if executor != "inprocess":
        raise ThesisError(f"Unknown executor {executor!r}: use one of {', '.join(EXECUTORS)}.")
    if address is not None:
        raise ThesisError("A Ray address needs the ray executor (--executor ray).")
    seen: set = set()
    return {n: run_experiment(n, profile, _seen=seen, **kwargs) for n in select_experiments(profile, only)}
