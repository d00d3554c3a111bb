"""What an experiment sees while it runs: its settings, its folders, cached steps, trained models, test images.

Layout (results are data, checkpoints are cache):

    <results_dir>/<profile>/<experiment>/summary.json      written last: the experiment is finished
    <results_dir>/<profile>/<experiment>/training/<key>.json  one training run's metrics (train()'s metrics.json)
    <results_dir>/<profile>/<experiment>/weights/<key>.*    the run's final weights and model card
    <results_dir>/<profile>/<experiment>/<step>.json       one evaluation/analysis step's result
    <runs_cache>/<profile>/<experiment>/<key>-<hash>/      the training run folder (checkpoints; not committed)

Every step file stores the settings it was computed with; a step whose settings changed is
recomputed, an unchanged one is read back, a corrupt one is reported in one line and recomputed.
This is what makes `reproduce` resumable: an interrupted experiment re-runs only its unfinished
steps (and `train(resume=True)` continues an unfinished training run from its last checkpoint).

`RunContext` is a small facade over three parts: `StepCache` (cached steps), `TrainedModels`
(training runs, checkpoints, committed weights) and `ImageCache` (decoded test/train images).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils import ThesisError, atomic_write_json, get_device, provenance, read_json, to_jsonable

__all__ = [
    "RunContext",
    "StepCache",
    "TrainedModels",
    "ImageCache",
    "runs_cache_dir",
    "to_jsonable",
    "stable_hash",
    "damage",
    "checksum",
    "inspect_stored",
]

# Request fields that say where or how fast a run happens, not what it computes: a finished run
# is reused whatever their values (a CPU-trained smoke run is not re-trained on a GPU machine).
_PLACEMENT_KEYS = ("device", "data", "num_workers", "progress")


def runs_cache_dir(results_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder for training-run checkpoints: `cache_dir`, else $THESIS_RUNS_CACHE, else <results_dir>/../.cache/runs.

    Keyed by the results folder by default so that a run from an empty results folder (CI) never
    silently reuses checkpoints that belong to another results folder.
    """
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("THESIS_RUNS_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(results_dir).resolve().parent / ".cache" / "runs"


def stable_hash(obj: Any, n: int = 8) -> str:
    return hashlib.sha256(json.dumps(to_jsonable(obj), sort_keys=True).encode()).hexdigest()[:n]


def _without_placement(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in _PLACEMENT_KEYS}


def _same(a: Any, b: Any) -> bool:
    """Equal after a JSON round trip (tuples vs lists, float formatting)."""
    return json.loads(json.dumps(to_jsonable(a), sort_keys=True)) == json.loads(
        json.dumps(to_jsonable(b), sort_keys=True)
    )


class _Force:
    """What `force` has recomputed in this invocation (each step/run once; later uses reuse it)."""

    def __init__(self, on: bool):
        self.on, self.done = on, set()

    def take(self, what: tuple) -> bool:
        if not self.on or what in self.done:
            return False
        self.done.add(what)
        return True

    def pending(self, what: tuple) -> bool:
        return self.on and what not in self.done


def checksum(entry: dict) -> str:
    """Of what a step file or summary says (its settings and result), not of when or where it was computed."""
    return stable_hash({"settings": entry.get("settings"), "result": entry.get("result")}, 16)


def inspect_stored(path: Path) -> tuple[dict | None, str | None]:
    """(the stored JSON object, None), or (None, why it cannot be used: the end of a sentence naming `path`)."""
    try:
        stored = read_json(path)
    except ThesisError:
        return None, "is corrupt (not valid JSON)"
    if not isinstance(stored, dict):
        return None, "does not hold a result object"
    if "checksum" in stored and stored["checksum"] != checksum(stored):
        return None, "was edited by hand (its settings and result no longer match its checksum)"
    return stored, None


def damage(path: Path) -> str | None:
    """Why the result file `path` cannot be used as it is (None: it can).

    Unreadable JSON (a truncated or partly written file), and a step file or summary whose settings and
    result no longer match its checksum (edited by hand). A file without checksum (written before
    checksums existed) is trusted.
    """
    return inspect_stored(path)[1]


def _read_stored(path: Path, log: Callable[[str], None], label: str) -> dict | None:
    """A stored JSON result, or None (missing; or damaged: said in one line, then recomputed)."""
    if not path.is_file():
        return None
    stored, why = inspect_stored(path)
    if why is not None:
        log(f"[{label}] {path} {why}; recomputing it")
    return stored


class StepCache:
    """Cached, resumable steps of one experiment: <out>/<name>.json with settings, result and provenance."""

    def __init__(self, out: Path, label: str, log: Callable[[str], None], force: _Force, device: str = "auto"):
        self.out, self.label, self.log, self.force, self.device = out, label, log, force, device
        self._provenance: dict | None = None

    def provenance(self) -> dict:
        # git commit + hardware, computed once per experiment run (git status costs tens of ms per call)
        if self._provenance is None:
            self._provenance = provenance(get_device(self.device))
        return self._provenance

    def step(self, name: str, settings: dict, fn: Callable[[], Any], digits: int | None = 6) -> Any:
        """Result of `fn()`, cached in <out>/<name>.json together with `settings` and provenance.

        Recomputed when the file is missing, corrupt, or was computed with other settings. Floats are
        stored with `digits` significant digits (results are data: small, readable files).
        """
        path = self.out / f"{name}.json"
        if not self.force.take(("step", name)):
            stored = _read_stored(path, self.log, self.label)
            if stored is not None and "result" in stored and _same(stored.get("settings"), settings):
                return stored["result"]
            if stored is not None and "result" not in stored:
                self.log(f"[{self.label}] {path} has no result; recomputing it")
        self.log(f"[{self.label}] {name}")
        t0 = time.perf_counter()
        entry = {"settings": to_jsonable(settings), "result": to_jsonable(fn(), digits)}
        atomic_write_json(
            path,
            {
                **entry,
                "checksum": checksum(entry),  # a hand-edited file is recomputed, not used
                "wall_time_s": round(time.perf_counter() - t0, 2),
                **self.provenance(),
            },
        )
        result = entry["result"]
        return json.loads(json.dumps(result))  # what a later run would read back


class TrainedModels:
    """The training runs of one experiment: train or reuse, load (checkpoint or committed weights), export."""

    def __init__(
        self,
        out: Path,
        runs_dir: Path,
        label: str,
        profile: str,
        data: str | None,
        device: str,
        log: Callable[[str], None],
        force: _Force,
    ):
        self.out, self.runs_dir, self.label, self.profile = out, runs_dir, label, profile
        self.data, self.device, self.log, self.force = data, device, log, force
        self._open: dict[str, list] = {}  # key -> [model, users] while inside `with ctx.model(...)`

    def config(self, config) -> Any:
        """A TrainConfig (from a TrainConfig or its dict) placed on this context's device."""
        from ..training import TrainConfig

        cfg = copy.deepcopy(TrainConfig.from_dict(config) if isinstance(config, dict) else config)
        cfg.device = self.device
        return cfg

    def run_folder(self, key: str, config) -> Path:
        cfg = self.config(config)
        return self.runs_dir / f"{key}-{stable_hash(_without_placement(cfg.to_dict()))}"

    def train(self, key: str, config, need_checkpoint: bool = False) -> dict:
        """Train (or resume, or reuse) run `key` with `config`; returns its metrics.

        The metrics (train()'s metrics.json) are copied to <out>/training/<key>.json with the request
        they answer. A finished run whose metrics are in the results folder is not re-trained unless
        `need_checkpoint` and its checkpoint is missing from the cache (fresh clone).
        """
        from ..training import train

        cfg = self.config(config)
        request = _without_placement(cfg.to_dict())
        rpath = self.out / "training" / f"{key}.json"  # not "runs/": git-ignores those (checkpoints)
        folder = self.run_folder(key, cfg)
        if self.force.take(("train", key)):
            shutil.rmtree(folder, ignore_errors=True)  # from scratch: no resuming an old checkpoint
        else:
            stored = _read_stored(rpath, self.log, self.label) or {}
            if _same(stored.get("request"), request) and (not need_checkpoint or _has_checkpoint(folder)):
                self._export_weights(key, folder, stored)
                return stored
        self.log(f"[{self.label}] train {key}")
        metrics = dict(train(cfg, out_dir=folder, resume=True, data=self.data))
        metrics["request"] = request
        atomic_write_json(rpath, metrics)
        self._export_weights(key, folder, metrics)
        return json.loads(json.dumps(to_jsonable(metrics)))

    def _export_weights(self, key: str, folder: Path, metrics: dict) -> None:
        """Committed weights + model card of a finished run (`thesis_lib.weights`), once."""
        from ..weights import export_weights, weights_dir

        card = weights_dir(self.out) / f"{key}.json"
        if not metrics.get("finished") or not (folder / "model.safetensors").is_file():
            return
        stored = _read_stored(card, self.log, self.label)  # a corrupt card is rewritten
        if stored is not None and _same(stored.get("request"), metrics.get("request")):
            return
        export_weights(folder, self.out, key, to_jsonable(metrics), self.profile, self.label)

    def _committed(self, key: str, cfg):
        """The committed weights of run `key` if their card describes this config, else None."""
        from ..weights import load_model, weights_dir

        card = weights_dir(self.out) / f"{key}.json"
        if not card.is_file():
            return None
        try:
            if not _same(read_json(card).get("request"), _without_placement(cfg.to_dict())):
                return None
            return load_model(card, get_device(self.device))
        except ThesisError as e:
            self.log(f"[{self.label}] ignoring committed weights of {key}: {e}")
            return None

    def load(self, key: str, config):
        """The trained model of run `key` (eval mode, on the context's device); trains it if needed."""
        from ..training import load_run

        folder = self.run_folder(key, config)
        if not _has_checkpoint(folder) and not self.force.on:
            committed = self._committed(key, self.config(config))  # a fresh clone: no cache, weights in git
            if committed is not None:
                return committed
        if not _has_checkpoint(folder) or self.force.pending(("train", key)):
            self.train(key, config, need_checkpoint=True)
        try:
            model, _ = load_run(folder, device=get_device(self.device))
        except ThesisError:
            # A corrupt or partial checkpoint is cache: train again (resume picks up what is valid).
            self.train(key, config, need_checkpoint=True)
            model, _ = load_run(folder, device=get_device(self.device))
        return model.eval()

    @contextlib.contextmanager
    def model(self, key: str, config) -> Iterator[Any]:
        """`with models.model(key, cfg) as m:` the loaded model; nested uses of one key share it."""
        entry = self._open.get(key)
        if entry is None:
            entry = self._open[key] = [self.load(key, config), 0]
        entry[1] += 1
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._open[key]  # one model in memory at a time unless the caller nests


def _has_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.safetensors"))


class ImageCache:
    """Decoded CIFAR-10 images, by (split, subset size, seed); shared by an experiment and its siblings."""

    def __init__(self, data: str | None):
        self.data, self._cache = data, {}

    def test_images(self, n: int | None, seed: int = 0):
        """(uint8 images, labels) of `n` stratified test images (None: the whole test set).

        The same images as `load_cifar10("test", subset=n, seed=seed)`, taken from the whole decoded
        test split: decoding it once (about a second) is cheaper than one pass over the archive per
        subset size, and later subsets of any size come from the cache.
        """
        from ..data import load_cifar10, stratified_indices

        key = ("test", n, seed)
        if key not in self._cache:
            if ("test", None, 0) not in self._cache:
                self._cache[("test", None, 0)] = load_cifar10("test", root=self.data)
            images, labels = self._cache[("test", None, 0)]
            if n is not None:
                idx = stratified_indices(labels, n, seed)
                images, labels = images[idx].contiguous(), labels[idx]
            self._cache[key] = (images, labels)
        return self._cache[key]

    def train_images(self, n: int | None, seed: int = 0):
        from ..data import load_cifar10

        key = ("train", n, seed)
        if key not in self._cache:
            self._cache[key] = load_cifar10("train", root=self.data, subset=n, seed=seed)
        return self._cache[key]


@dataclass
class RunContext:
    """Passed to `Experiment.run(ctx)`: settings, folders, and the three parts above."""

    experiment: Any  # the Experiment being run
    profile: str
    settings: Any  # the experiment's settings dataclass for this profile
    results_root: Path  # <results_dir> (all profiles)
    runs_root: Path  # checkpoint cache root (all profiles)
    data: str | None = None  # dataset location (None: $THESIS_DATA, else torchvision download)
    device: str = "auto"
    log: Callable[[str], None] = print
    force: bool = False  # recompute every cached step and retrain every run from scratch (once per run)
    images: ImageCache | None = None  # shared with siblings; created when None
    steps: StepCache = field(init=False)
    models: TrainedModels = field(init=False)

    def __post_init__(self):
        name = self.experiment.name
        forced = _Force(self.force)
        self.images = self.images if self.images is not None else ImageCache(self.data)
        self.steps = StepCache(self.out, name, self.log, forced, self.device)
        self.models = TrainedModels(
            self.out, self.runs_dir, name, self.profile, self.data, self.device, self.log, forced
        )

    @property
    def out(self) -> Path:
        return self.results_root / self.profile / self.experiment.name

    @property
    def runs_dir(self) -> Path:
        return self.runs_root / self.profile / self.experiment.name

    def path(self, name: str) -> Path:
        return self.out / name

    def sibling(self, name: str) -> RunContext:
        """The context of another experiment (same profile and folders), to reuse its trained models."""
        from .registry import get_experiment

        exp = get_experiment(name)
        return RunContext(
            experiment=exp,
            profile=self.profile,
            settings=exp.settings_for(self.profile),
            results_root=self.results_root,
            runs_root=self.runs_root,
            data=self.data,
            device=self.device,
            log=self.log,
            images=self.images,
        )

    def runs_of(self, models) -> list:
        """(sibling context, run) for every trained run that `models` names: pairs (experiment, run keys or
        None for all of its runs), as the analyses of trained models (Lipschitz, AutoAttack) declare them."""
        out = []
        for name, keys in models:
            other = self.sibling(name)
            out += [(other, run) for run in other.trained_runs(keys)]
        return out

    def trained_runs(self, only=None) -> list:
        """The experiment's declared `TrainedRun`s; `only` keeps runs by key (a fast-AT family's main row set is
        keyed by activation: "relu" is the range-test-bounds ReLU model, "relu_thesis_lr" the second row set's)."""
        if self.experiment.runs is None:
            raise ValueError(f"experiment {self.experiment.name!r} trains no models")
        runs = self.experiment.runs(self)
        unknown = sorted(set(only or ()) - {r.key for r in runs})
        if unknown:
            valid = ", ".join(r.key for r in runs)
            raise ValueError(f"experiment {self.experiment.name!r} has no run {unknown[0]!r}; its runs: {valid}")
        return [r for r in runs if only is None or r.key in only]

    # The parts' main operations, for experiment code.
    def step(self, name: str, settings: dict, fn: Callable[[], Any], digits: int | None = 6) -> Any:
        return self.steps.step(name, settings, fn, digits)

    def train(self, key: str, config, need_checkpoint: bool = False) -> dict:
        return self.models.train(key, config, need_checkpoint)

    def model(self, key: str, config):
        """`with ctx.model(key, cfg) as model:` the trained model (trained first if needed)."""
        return self.models.model(key, config)

    def run_folder(self, key: str, config) -> Path:
        return self.models.run_folder(key, config)

    def train_config(self, config):
        return self.models.config(config)

    def test_images(self, n: int | None, seed: int = 0):
        return self.images.test_images(n, seed)

    def train_images(self, n: int | None, seed: int = 0):
        return self.images.train_images(n, seed)
