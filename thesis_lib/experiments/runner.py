"""Run experiments by name and profile, skipping finished ones and resuming interrupted ones.

`run_experiment(name, profile)` runs the experiment's requirements first, then the experiment;
when <results_dir>/<profile>/<name>/summary.json exists and was produced with the current settings,
nothing runs and the stored summary is returned. Notebooks call `ensure(...)`, which is the same
thing returning an `ExperimentResults` object to read the stored data from.

CPU denormals: experiments run with `torch.set_flush_denormal(True)` (values below 1.2e-38 become
0 on the CPU). Kernel activations and k-WTA networks at large learning rates produce such values
in bulk, and x86 arithmetic on them is up to two orders of magnitude slower (a smoke range test
took 4x, a k-WTA gradient-masking report 14x longer without it); results are unaffected at any
printed precision, and CUDA runs are untouched.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..utils import ThesisError, atomic_write_json, get_device, provenance, read_json, short_commit
from .context import RunContext, checksum, damage, inspect_stored, runs_cache_dir, stable_hash, to_jsonable
from .registry import check_profile, experiments_with_profile, get_experiment

__all__ = [
    "run_experiment",
    "select_experiments",
    "ensure",
    "ensure_supplementary",
    "largest_profile",
    "ExperimentResults",
    "is_complete",
    "stored_progress",
    "summary_path",
    "settings_key",
    "results_lock",
    "DEFAULT_RESULTS_DIR",
]

DEFAULT_RESULTS_DIR = "results"
SUMMARY = "summary.json"


@contextlib.contextmanager
def flush_denormals():
    """CPU denormals flushed to zero for the duration (see the module docstring); restored afterwards."""
    import torch

    enabled = torch.set_flush_denormal(True)
    try:
        yield enabled
    finally:
        if enabled:
            torch.set_flush_denormal(False)


def summary_path(name: str, profile: str, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> Path:
    return Path(results_dir) / profile / name / SUMMARY


def settings_key(name: str, profile: str) -> str:
    """Hash of the experiment's settings and, recursively, of those of its requirements.

    An experiment whose requirement changed (e.g. new range-test settings, hence new lr bounds) is
    stale even though its own settings did not change.
    """
    exp = get_experiment(name)
    return stable_hash(
        {
            "settings": exp.settings_dict(profile),
            "requires": {r: settings_key(r, profile) for r in exp.requirements(profile)},
        },
        16,
    )


def is_complete(name: str, profile: str, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> bool:
    """True when the experiment's summary exists and matches the current settings of `profile` (and requirements')."""
    path = summary_path(name, profile, results_dir)
    if not path.is_file():
        return False
    summary, why = inspect_stored(path)  # read once; truncated or edited by hand: not finished
    if why is not None:
        return False
    return summary.get("status") == "complete" and summary.get("settings_key") == settings_key(name, profile)


def stored_progress(name: str, profile: str, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> tuple[int, int]:
    """(training runs, steps) stored in the experiment's results folder; a resumed run reuses those whose
    settings still match and recomputes the others."""
    folder = Path(results_dir) / profile / name
    runs = len(list((folder / "training").glob("*.json")))
    steps = len([p for p in folder.glob("*.json") if p.name != SUMMARY])
    return runs, steps


def run_experiment(
    name: str,
    profile: str = "smoke",
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    data: str | None = None,
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    _seen: set | None = None,
    locked_by_caller: bool = False,
) -> dict:
    """Run experiment `name` (and, first, what it requires) under `profile`; returns its summary dict.

    Finished experiments (summary present, same settings) are skipped unless `force`, which recomputes
    every cached step and retrains every training run of `name` from scratch (not its requirements).
    Writing takes the lock of `results_dir` (`results_lock`) unless `locked_by_caller`: a Ray task of a
    `reproduce` that holds it for all its tasks.
    """
    check_profile(profile)
    exp = get_experiment(name)
    if not exp.has_profile(profile):
        exp.settings_for(profile)  # raises: names the profiles it has
    seen = _seen if _seen is not None else set()
    for req in exp.requirements(profile):
        if req not in seen:
            run_experiment(req, profile, results_dir, data, device, cache_dir, False, log, seen, locked_by_caller)
    seen.add(name)
    path = summary_path(name, profile, results_dir)
    damaged = _damaged_files(path.parent) if not force and is_complete(name, profile, results_dir) else None
    if damaged == []:
        return read_json(path)  # finished and intact: read, no lock needed
    with contextlib.nullcontext() if locked_by_caller else results_lock(results_dir):  # from here on: writes
        for f, why in damaged or ():
            log(f"[{name}] {f} {why}; re-running {name} to recompute it")
            f.unlink()  # then recomputed like a missing file; every intact step is reused
        if damaged is None and not force and path.is_file() and (why := damage(path)) is not None:
            log(f"[{name}] {path} {why}; re-running {name} (its finished steps are reused)")
        return _run(exp, name, profile, path, results_dir, data, device, cache_dir, force, log)


def _run(exp, name, profile, path, results_dir, data, device, cache_dir, force, log) -> dict:
    """Run one experiment whose results are missing, stale or damaged, and write its summary."""
    get_device(device)  # fail early on a bad device string
    ctx = RunContext(
        experiment=exp,
        profile=profile,
        settings=exp.settings_for(profile),
        results_root=Path(results_dir),
        runs_root=runs_cache_dir(results_dir, cache_dir),
        data=data,
        device=device,
        log=log,
        force=force,
    )
    log(f"[{name}] running ({profile} profile; thesis section {exp.section}: {exp.title})")
    t0 = time.perf_counter()
    with flush_denormals():
        payload = exp.run(ctx)
    wall = time.perf_counter() - t0
    summary = {
        "experiment": name,
        "section": exp.section,
        "title": exp.title,
        "notebook": exp.notebook,
        "profile": profile,
        "status": "complete",
        "settings": exp.settings_dict(profile),
        "settings_key": settings_key(name, profile),
        "requires": list(exp.requirements(profile)),
        "result": to_jsonable(payload, 6),
        "wall_time_s": round(wall, 1),
        "compute_time_s": round(max(wall, _stored_compute_time(ctx.out)), 1),
        **provenance(get_device(device)),
    }
    summary = to_jsonable(summary)
    summary["checksum"] = checksum(summary)  # of settings and result: a summary edited by hand is recomputed
    atomic_write_json(path, summary)
    log(f"[{name}] done in {wall:.1f} s")
    return read_json(path)


_HELD: dict[str, int] = {}  # results folders this process holds the lock of -> nesting depth


@contextlib.contextmanager
def results_lock(results_dir: str | os.PathLike):
    """Hold an exclusive lock on `results_dir` while writing into it (two writers would race on the same files).

    An OS-level lock (flock) on `<results_dir>/.reproduce.lock`, released when the process ends, however it
    ends, so a killed run never leaves a stale lock behind. Re-entrant within a process (`reproduce` holds it
    while the experiments it runs take it again); another process gets one sentence.
    """
    root = Path(results_dir)
    root.mkdir(parents=True, exist_ok=True)
    key = str(root.resolve())
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    f = open(root / ".reproduce.lock", "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ThesisError(
                f"Another process (a `reproduce` or a notebook) is writing to {root}: wait for it to finish, "
                "or use another results folder."
            ) from None
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
    finally:
        f.close()


def _damaged_files(out: Path) -> list[tuple[Path, str]]:
    """(file, why) for each result file of a finished experiment (steps, training metrics, model cards) that
    cannot be used as it is: truncated, or edited by hand (see `context.damage`)."""
    files = [f for f in sorted(out.glob("*.json")) if f.name != SUMMARY]
    files += sorted(out.glob("training/*.json")) + sorted(out.glob("weights/*.json"))
    found = []
    for f in files:
        why = damage(f)
        if why is not None:
            found.append((f, why))
    return found


def _stored_compute_time(out: Path) -> float:
    """Seconds recorded by the experiment's cached steps and training runs (however many invocations made them)."""
    total = 0.0
    for f in list(out.glob("*.json")) + list(out.glob("training/*.json")):
        if f.name == SUMMARY:
            continue
        try:
            total += float(read_json(f).get("wall_time_s") or 0.0)
        except (ThesisError, AttributeError, TypeError, ValueError):
            pass
    return total


def select_experiments(profile: str, only: Iterable[str] | None = None) -> list[str]:
    """The experiments of `profile` (or those in `only`), in run order; one sentence for a bad name."""
    names = experiments_with_profile(profile)
    if only:
        wanted = list(only)
        for n in wanted:
            get_experiment(n).settings_for(profile)  # unknown experiment (lists valid names), or no such profile
        names = [n for n in names if n in wanted]
    return names


class ExperimentResults:
    """Read access to one finished experiment's stored results (what the notebooks plot)."""

    def __init__(self, name: str, profile: str, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR):
        self.name, self.profile = name, profile
        self.dir = Path(results_dir) / profile / name
        self.summary = read_json(self.dir / SUMMARY)

    @property
    def result(self) -> dict:
        return self.summary["result"]

    @property
    def settings(self) -> dict:
        return self.summary["settings"]

    def step(self, name: str) -> dict:
        """The stored result of step `name` (<dir>/<name>.json)."""
        return read_json(self.dir / f"{name}.json")["result"]

    def run(self, key: str) -> dict:
        """The metrics of training run `key` (<dir>/training/<key>.json)."""
        return read_json(self.dir / "training" / f"{key}.json")

    def provenance(self) -> str:
        """One line: profile, hardware, commit and wall time of the run that produced these results."""
        hw = self.summary.get("hardware", {})
        where = hw.get("gpu") or f"CPU ({hw.get('cpu', '?')}, {hw.get('torch_threads', '?')} threads)"
        commit = short_commit(self.summary.get("git_commit"))
        return (
            f"{self.name}: profile {self.profile}, {where}, torch {hw.get('torch', '?')}, "
            f"commit {commit}, {self.summary.get('wall_time_s', '?')} s"
        )


def ensure(
    name: str,
    profile: str = "smoke",
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    data: str | None = None,
    device: str = "auto",
    **kwargs,
) -> ExperimentResults:
    """Run `name` if its results are missing or stale (else nothing), then return its stored results."""
    run_experiment(name, profile, results_dir, data, device, **kwargs)
    return ExperimentResults(name, profile, results_dir)


def ensure_supplementary(
    name: str,
    profile: str = "smoke",
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    data: str | None = None,
    device: str = "auto",
    **kwargs,
) -> ExperimentResults | None:
    """A supplementary experiment's results where they exist (None otherwise); computed only at smoke.

    Beyond smoke such an experiment takes hours and the notebook does without it, so a notebook run
    never starts it: `python -m thesis_lib reproduce --only NAME` does.
    """
    if profile == "smoke":
        return ensure(name, profile, results_dir, data, device, **kwargs)
    get_experiment(name).settings_for(profile)  # one sentence for an unknown name or profile
    return ExperimentResults(name, profile, results_dir) if is_complete(name, profile, results_dir) else None


def largest_profile(name: str, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR, at_least: str = "smoke") -> str:
    """The largest profile (full, then cpu) at which `name`'s results are finished, if larger than `at_least`;
    else `at_least` (a notebook shows a cheap experiment at the scale it already has)."""
    from .experiment import PROFILES

    check_profile(at_least)
    exp = get_experiment(name)
    for profile in reversed(PROFILES[PROFILES.index(at_least) + 1 :]):
        if exp.has_profile(profile) and is_complete(name, profile, results_dir):
            return profile
    return at_least
