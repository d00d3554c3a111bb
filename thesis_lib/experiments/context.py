"""What an experiment sees while it runs: its settings, its folders, and cached, resumable steps.

Layout (results are data, checkpoints are cache):

    <results_dir>/<profile>/<experiment>/summary.json      written last: the experiment is finished
    <results_dir>/<profile>/<experiment>/training/<key>.json  one training run's metrics (train()'s metrics.json)
    <results_dir>/<profile>/<experiment>/<step>.json       one evaluation/analysis step's result
    <runs_cache>/<profile>/<experiment>/<key>-<hash>/      the training run folder (checkpoints; not committed)

Every step file stores the settings it was computed with; a step whose settings changed is
recomputed, an unchanged one is read back. This is what makes `reproduce` resumable: an
interrupted experiment re-runs only its unfinished steps (and `train(resume=True)` continues an
unfinished training run from its last checkpoint).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import ThesisError, atomic_write_json, provenance, read_json

__all__ = ["RunContext", "runs_cache_dir", "to_jsonable", "stable_hash"]

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


def to_jsonable(obj: Any, digits: int | None = None) -> Any:
    """numpy/torch containers -> plain lists and floats; floats rounded to `digits` significant digits."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, digits) for v in obj]
    if torch is not None and isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), digits)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            return obj  # json writes NaN / Infinity; read back by Python's json
        return float(f"{obj:.{digits}g}") if digits else obj
    if isinstance(obj, Path):
        return str(obj)
    return obj


def stable_hash(obj: Any, n: int = 8) -> str:
    return hashlib.sha256(json.dumps(to_jsonable(obj), sort_keys=True).encode()).hexdigest()[:n]


def _without_placement(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in _PLACEMENT_KEYS}


def _same(a: Any, b: Any) -> bool:
    """Equal after a JSON round trip (tuples vs lists, float formatting)."""
    return json.loads(json.dumps(to_jsonable(a), sort_keys=True)) == json.loads(
        json.dumps(to_jsonable(b), sort_keys=True)
    )


@dataclass
class RunContext:
    """Passed to `Experiment.run(ctx)`. Holds the folders and offers cached steps and training runs."""

    experiment: Any  # the Experiment being run
    profile: str
    settings: Any  # the experiment's settings dataclass for this profile
    results_root: Path  # <results_dir> (all profiles)
    runs_root: Path  # checkpoint cache root (all profiles)
    data: str | None = None  # dataset location (None: $THESIS_DATA, else torchvision download)
    device: str = "auto"
    log: Callable[[str], None] = print
    force: bool = False  # recompute every cached step and retrain every run from scratch (once per run)
    _loaded: dict = field(default_factory=dict)
    _forced: set = field(default_factory=set)  # what `force` has already recomputed in this run

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
        )

    # ---------------------------------------------------------------- cached steps
    def step(self, name: str, settings: dict, fn: Callable[[], Any], digits: int | None = 6) -> Any:
        """Result of `fn()`, cached in <out>/<name>.json together with `settings` and provenance.

        Recomputed when the file is missing or was computed with other settings. Floats are
        stored with `digits` significant digits (results are data: small, readable files).
        """
        path = self.out / f"{name}.json"
        if path.is_file() and not self._take_force(("step", name)):
            try:
                stored = read_json(path)
                if _same(stored.get("settings"), settings):
                    return stored["result"]
            except ThesisError:
                pass  # corrupt: recompute
        self.log(f"[{self.experiment.name}] {name}")
        t0 = time.perf_counter()
        result = to_jsonable(fn(), digits)
        atomic_write_json(
            path,
            {
                "settings": to_jsonable(settings),
                "result": result,
                "wall_time_s": round(time.perf_counter() - t0, 2),
                **self._provenance(),
            },
        )
        return json.loads(json.dumps(result))  # what a later run would read back

    def _device_obj(self):
        from ..utils import get_device

        return get_device(self.device)

    def _provenance(self) -> dict:
        # git commit + hardware, computed once per experiment run (git status costs tens of ms per call)
        if "_provenance" not in self._loaded:
            self._loaded["_provenance"] = provenance(self._device_obj())
        return self._loaded["_provenance"]

    # ---------------------------------------------------------------- training runs
    def _config(self, config) -> Any:
        from ..training import TrainConfig

        if isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        cfg = copy.deepcopy(config)
        if hasattr(cfg, "device"):
            cfg.device = self.device
        return cfg

    def run_folder(self, key: str, config) -> Path:
        cfg = self._config(config)
        return self.runs_dir / f"{key}-{stable_hash(_without_placement(cfg.to_dict()))}"

    def train(self, key: str, config, need_checkpoint: bool = False) -> dict:
        """Train (or resume, or reuse) run `key` with `config` (a TrainConfig or its dict); returns its metrics.

        The metrics (train()'s metrics.json) are copied to <out>/training/<key>.json with the request
        they answer. A finished run whose metrics are in the results folder is not re-trained unless
        `need_checkpoint` and its checkpoint is missing from the cache (fresh clone).
        """
        from ..training import train

        cfg = self._config(config)
        request = _without_placement(cfg.to_dict())
        rpath = self.out / "training" / f"{key}.json"  # not "runs/": git-ignores those (checkpoints)
        folder = self.run_folder(key, cfg)
        if self._take_force(("train", key)):
            shutil.rmtree(folder, ignore_errors=True)  # from scratch: no resuming an old checkpoint
        elif rpath.is_file():
            try:
                stored = read_json(rpath)
            except ThesisError:
                stored = {}
            if _same(stored.get("request"), request) and (not need_checkpoint or self._has_checkpoint(folder)):
                self._export_weights(key, folder, stored)
                return stored
        self.log(f"[{self.experiment.name}] train {key}")
        metrics = train(cfg, out_dir=folder, resume=True, data=self.data)
        metrics = dict(metrics)
        metrics["request"] = request
        atomic_write_json(rpath, to_jsonable(metrics))
        self._export_weights(key, folder, metrics)
        return json.loads(json.dumps(to_jsonable(metrics)))

    def _export_weights(self, key: str, folder: Path, metrics: dict) -> None:
        """Committed weights + model card of a finished run (`thesis_lib.weights`), once."""
        from ..weights import export_weights, weights_dir

        card = weights_dir(self.out) / f"{key}.json"
        if not metrics.get("finished") or not (folder / "model.safetensors").is_file():
            return
        if card.is_file():
            try:
                if _same(read_json(card).get("request"), metrics.get("request")):
                    return
            except ThesisError:
                pass  # a corrupt card is rewritten
        export_weights(folder, self.out, key, to_jsonable(metrics), self.profile, self.experiment.name)

    def _committed_model(self, key: str, cfg):
        """The committed weights of run `key` if their card describes this config, else None."""
        from ..utils import get_device
        from ..weights import load_model, weights_dir

        card = weights_dir(self.out) / f"{key}.json"
        if not card.is_file():
            return None
        try:
            if not _same(read_json(card).get("request"), _without_placement(cfg.to_dict())):
                return None
            return load_model(card, get_device(self.device))
        except ThesisError as e:
            self.log(f"[{self.experiment.name}] ignoring committed weights of {key}: {e}")
            return None

    def _take_force(self, what: tuple) -> bool:
        """True the first time `what` is asked for under `force` (later calls reuse what was recomputed)."""
        if not self.force or what in self._forced:
            return False
        self._forced.add(what)
        return True

    @staticmethod
    def _has_checkpoint(folder: Path) -> bool:
        return folder.is_dir() and any(folder.glob("*.safetensors"))

    def model(self, key: str, config):
        """The trained model of run `key` (eval mode, on the context's device); trains it if needed."""
        from ..training import load_run
        from ..utils import get_device

        folder = self.run_folder(key, config)
        if key in self._loaded:
            return self._loaded[key]
        if not self._has_checkpoint(folder) and not self.force:
            committed = self._committed_model(key, self._config(config))  # a fresh clone: no cache, weights in git
            if committed is not None:
                self._loaded[key] = committed
                return committed
        if not self._has_checkpoint(folder) or (self.force and ("train", key) not in self._forced):
            self.train(key, config, need_checkpoint=True)
        try:
            model, _ = load_run(folder, device=get_device(self.device))
        except ThesisError:
            # A corrupt or partial checkpoint is cache: train again (resume picks up what is valid).
            self.train(key, config, need_checkpoint=True)
            model, _ = load_run(folder, device=get_device(self.device))
        model.eval()
        self._loaded[key] = model
        return model

    def lr_find(self, key: str, config, **options) -> dict:
        """Learning-rate range test for `config` (cached as <out>/lr_find_<key>.json)."""
        from ..training import lr_find

        cfg = self._config(config)
        settings = {"config": _without_placement(cfg.to_dict()), **options}
        return self.step(
            f"lr_find_{key}",
            settings,
            lambda: lr_find(cfg, out_dir=self.runs_dir / f"lr_find_{key}", data=self.data, **options),
        )

    # ---------------------------------------------------------------- data
    def test_images(self, n: int | None, seed: int = 0):
        """(uint8 images, labels) of `n` stratified test images (None: the whole test set).

        The same images as `load_cifar10("test", subset=n, seed=seed)`, taken from the whole decoded
        test split: decoding it once (about a second) is cheaper than one pass over the archive per
        subset size, and later subsets of any size come from the cache.
        """
        from ..data import load_cifar10, stratified_indices

        key = ("test", n, seed)
        if key not in self._loaded:
            images, labels = load_cifar10("test", root=self.data)
            if n is not None:
                idx = stratified_indices(labels, n, seed)
                images, labels = images[idx].contiguous(), labels[idx]
            self._loaded[key] = (images, labels)
        return self._loaded[key]

    def train_images(self, n: int | None, seed: int = 0):
        from ..data import load_cifar10

        key = ("train", n, seed)
        if key not in self._loaded:
            self._loaded[key] = load_cifar10("train", root=self.data, subset=n, seed=seed)
        return self._loaded[key]
