"""Profile stamps from stored results: which profile (scale) produced a figure or table.

A smoke-profile figure looks like a result but is not one (networks at chance accuracy after one
epoch on a few hundred images), so every figure and table the notebooks save for the thesis carries
a stamp built from the results it shows, never typed by hand:

    from thesis_lib.reporting.stamp import profile_stamp
    save_figure(fig, "vgg_training_curves", figures_dir, stamp=profile_stamp(res))
    # "smoke profile: not a result (1 epoch, attacks on 32 images)"
    # "full profile (protocol, 20 epochs, attacks on 1000 images)"

`profile_stamp()` without results gives the stamp of analytic figures (nothing trained). The epochs
come from the stored training runs of the results (or of the experiments they required), so this
module reads results; drawing the stamp on a figure and reading it back from saved files is
`thesis_lib.plotting.stamp`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..plotting.stamp import ANALYTIC

__all__ = ["profile_stamp"]

# What each profile is (docs/protocol.md, "Profiles"): (stamp head, first word of the details).
_PROFILE_TEXT = {
    "smoke": ("smoke profile: not a result", None),
    "cpu": ("cpu profile", "reduced scale"),
    "full": ("full profile", "protocol"),
}

# Settings that give the number of attacked images, in order of preference ("pgd.n": settings["pgd"]["n"]).
_ATTACK_IMAGE_KEYS = ("attack_n", "n", "pgd.n", "images")


def _as_list(results) -> list:
    if results is None:
        return []
    if isinstance(results, (list, tuple)) or (isinstance(results, Iterable) and not hasattr(results, "summary")):
        return list(results)
    return [results]


def _lookup(settings: dict, key: str):
    value = settings
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def _required(res) -> list:
    """The ExperimentResults of the experiments `res` required, where they are stored beside it."""
    from ..experiments.runner import ExperimentResults, summary_path

    root = Path(res.dir).parent.parent
    out = []
    for name in res.summary.get("requires") or ():
        if summary_path(name, res.profile, root).exists():
            out.append(ExperimentResults(name, res.profile, root))
    return out


def _epochs(res, seen: set | None = None) -> set[int]:
    """Training epochs of the models behind `res`: its training runs, else its settings, else its requirements."""
    from ..utils import read_json

    seen = set() if seen is None else seen
    if res.name in seen:
        return set()
    seen.add(res.name)
    runs = sorted((Path(res.dir) / "training").glob("*.json"))
    epochs = set()
    for path in runs:
        config = read_json(path).get("config") or {}
        if isinstance(config.get("epochs"), int):
            epochs.add(int(config["epochs"]))
    if epochs:
        return epochs
    if isinstance(res.settings.get("epochs"), int):
        return {int(res.settings["epochs"])}
    for req in _required(res):
        epochs |= _epochs(req, seen)
    return epochs


def _attack_images(res) -> set:
    """Images attacked (None: the whole test set), when the experiment attacks anything; else empty."""
    s = res.settings
    if "eps" not in s and "pgd" not in s:
        return set()
    for key in _ATTACK_IMAGE_KEYS:
        try:
            value = _lookup(s, key)
        except KeyError:
            continue
        if value is None or isinstance(value, int):
            return {value}
    return set()


def _span(values: set, one: str, many: str) -> str:
    vals = sorted(values)
    if len(vals) == 1:
        return f"{vals[0]} {one if vals[0] == 1 else many}"
    return f"{vals[0]}-{vals[-1]} {many}"


def profile_stamp(results=None) -> str:
    """The stamp of a figure or table showing `results` (an ExperimentResults or several; None: analytic).

    Says the profile (smoke: "not a result"; cpu: reduced scale; full: the protocol), the training
    epochs of the models behind the results (their training runs, or those of the experiments they
    required) and the number of attacked images when the experiment attacks. ASCII only.
    """
    items = _as_list(results)
    if not items:
        return ANALYTIC
    parts = []
    for profile in dict.fromkeys(r.profile for r in items):
        group = [r for r in items if r.profile == profile]
        epochs = set().union(*(_epochs(r) for r in group))
        images = set().union(*(_attack_images(r) for r in group))
        details = []
        if epochs:
            details.append(_span(epochs, "epoch", "epochs"))
        if images == {None}:
            details.append("attacks on the whole test set")
        elif images:
            known = {i for i in images if i is not None}
            details.append("attacks on " + _span(known, "image", "images") + (" or all" if None in images else ""))
        head, word = _PROFILE_TEXT.get(profile, (f"{profile} profile", None))
        details = ([word] if word else []) + details
        parts.append(head + (f" ({', '.join(details)})" if details else ""))
    return "; ".join(parts)
