"""The Ray executor of `reproduce`: training runs and experiments as Ray tasks, on one machine or a cluster.

`python -m thesis_lib reproduce --executor ray [--address ADDR]` (or `run_profile(..., executor="ray")`)
runs the same experiments as the in-process executor, with the same results, spread over the GPUs and
CPUs of a Ray cluster (`pip install '.[ray]'`):

- one *training task* per training run an experiment declares (`Experiment.runs`): `ctx.train(key,
  config)` in that experiment's context, which leaves exactly what the experiment's own `run(ctx)` later
  finds (training/<key>.json, the exported weights, the checkpoint folder in the runs cache), so nothing
  is trained twice. The training runs of one experiment are independent and run side by side;
- one *evaluation task* per evaluation unit an experiment declares (`Experiment.evaluations`: one per
  activation for the range tests; one per model for the fast-AT families, the light CNNs, AutoAttack and
  Lipschitz), once the experiment's training tasks have finished: it computes and stores that unit's
  steps (attacks, analyses), so the models of one experiment are evaluated side by side;
- one *experiment task* per experiment, `run_experiment(name, ...)`, once its training and evaluation
  tasks have finished: it evaluates what no unit covers (every step of the units is read back) and
  writes the summary;
- order: an experiment's tasks are submitted once its requirements' experiment tasks have finished
  (its declared runs may depend on them: the fast-AT runs read their range tests' lr bounds). Finished
  experiments (summary present, same settings, no damaged file) are skipped without any task.

Who writes: the workers, each task its own files, with the atomic writes of the in-process executor
(`atomic_write_json`, checkpoints); the driver only schedules, reads the stored results, and holds the
results-folder lock. So the results folder, the runs cache and the data must be at the same paths on
every node, on a filesystem all of them share (one machine: nothing to do); the driver passes absolute
paths, and every node needs this project installed (same commit).

Resources per task: one CPU (`CPUS_PER_TASK`; Ray then also sets the task's torch threads to one). When
the cluster has GPUs (and the device is not "cpu"): a training task of the `full` profile takes one GPU,
except the small models (`SMALL_ARCHS`: light CNN, VGG, ResNet-20), which take a quarter of one
(`SMALL_GPU_SHARE`), as does every task of the smaller profiles (`smoke`, `cpu`); an evaluation or
experiment task takes one GPU in `full`, a quarter otherwise. Without GPUs every task runs on CPU.

Retries: a task whose worker process or node dies is re-run by Ray (`MAX_RETRIES` times). A re-run
resumes like an interrupted `reproduce` (finished steps read back, training continued from its last
checkpoint, both bitwise), so the final results equal an uninterrupted run's. An exception raised by the
code itself (a bad setting, a missing file) is not retried: the driver shows it as the in-process executor
would, without cancelling the other tasks (Ray's cancel of a task that is finishing at that moment can
abort the driver process, a race in Ray's task manager); they finish or fail on their own, and stop with
the local Ray this run started. An interrupt or a failure of Ray itself cancels the unfinished tasks.

`--force`: a forced experiment retrains and recomputes inside its own experiment task (as in-process,
without separate training tasks: a training task would retrain once, the experiment a second time).
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ..utils import ThesisError, read_json
from .context import RunContext, runs_cache_dir
from .registry import get_experiment
from .runner import (
    _damaged_files,
    flush_denormals,
    is_complete,
    run_experiment,
    select_experiments,
    summary_path,
)

__all__ = [
    "run_profile_ray",
    "import_ray",
    "training_resources",
    "experiment_resources",
    "CPUS_PER_TASK",
    "SMALL_ARCHS",
    "SMALL_GPU_SHARE",
    "MAX_RETRIES",
    "KILL_ONCE_ENV",
    "RUN_OPTIONS",
]

CPUS_PER_TASK = 1
# Under 50 M multiply-accumulates per image (light CNN 24.5 M, VGG 38.9 M, ResNet-20 42.9 M; ResNet-56: 128 M,
# benchmarks/README.md): one such run leaves most of a GPU idle, so four share one.
SMALL_ARCHS = ("light_cnn", "vgg", "resnet20")
SMALL_GPU_SHARE = 0.25
MAX_RETRIES = 3  # re-runs of a task whose worker or node died
RUN_OPTIONS = ("results_dir", "data", "device", "cache_dir", "force", "log")  # run_experiment's, taken as they are
TASK_ERRORS = (ThesisError, ValueError, FileNotFoundError)  # the code's own errors: shown as in-process
# Test hook: a file path. The first experiment task that has stored a step while the file does not exist
# creates it and kills its own worker (SIGKILL), as a crashed node would; Ray then retries the task.
KILL_ONCE_ENV = "THESIS_RAY_KILL_ONCE"


def import_ray():
    """The `ray` module, or one ThesisError sentence saying how to install it."""
    # Identical log lines of two workers (a task and its re-run) would be merged and shown out of order.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise ThesisError(
            "The ray executor needs Ray, an optional dependency: pip install '.[ray]' (or pip install ray)."
        ) from None
    return ray


def training_resources(profile: str, config: dict, gpus: bool) -> dict:
    """Ray resources of one training task (see the module docstring)."""
    if not gpus:
        return {"num_cpus": CPUS_PER_TASK, "num_gpus": 0}
    small = profile != "full" or config.get("arch") in SMALL_ARCHS
    return {"num_cpus": CPUS_PER_TASK, "num_gpus": SMALL_GPU_SHARE if small else 1}


def experiment_resources(profile: str, gpus: bool) -> dict:
    """Ray resources of one experiment task (its evaluations; see the module docstring)."""
    if not gpus:
        return {"num_cpus": CPUS_PER_TASK, "num_gpus": 0}
    return {"num_cpus": CPUS_PER_TASK, "num_gpus": 1 if profile == "full" else SMALL_GPU_SHARE}


# ------------------------------------------------------------------------------------------ the tasks
def _context(name: str, profile: str, results: str, data, device: str, cache: str, log=print) -> RunContext:
    exp = get_experiment(name)
    return RunContext(
        experiment=exp,
        profile=profile,
        settings=exp.settings_for(profile),
        results_root=Path(results),
        runs_root=Path(cache),
        data=data,
        device=device,
        log=log,
    )


def _train_task(name: str, profile: str, key: str, config: dict, results: str, data, device: str, cache: str):
    """Train (or resume, or reuse) run `key` of experiment `name`, where the experiment will look for it."""
    ctx = _context(name, profile, results, data, device, cache)
    with flush_denormals():  # as inside run_experiment: the weights must be the in-process ones, bit for bit
        ctx.train(key, config)
    return key


def _evaluation_task(name: str, profile: str, unit: str, results: str, data, device: str, cache: str, kill_once, *_):
    """Evaluation unit `unit` of experiment `name` once its training tasks (the ignored arguments) finished."""
    log = print if kill_once is None else _killing_log(kill_once, summary_path(name, profile, results).parent)
    ctx = _context(name, profile, results, data, device, cache, log)
    with flush_denormals():  # as inside run_experiment: the same numbers as the in-process executor
        get_experiment(name).evaluations(ctx)[unit]()
    return unit


def _experiment_task(name: str, profile: str, results: str, data, device: str, cache: str, force: bool, kill_once, *_):
    """`run_experiment(name)` once its training tasks (the ignored arguments: Ray waits for them) finished."""
    log = print if kill_once is None else _killing_log(kill_once, summary_path(name, profile, results).parent)
    requirements = set(get_experiment(name).requirements(profile))  # finished before this task was submitted
    # the driver (`reproduce`) holds the results folder's lock for every task it runs
    return run_experiment(name, profile, results, data, device, cache, force, log, requirements, True)


def _killing_log(marker: str, out: Path) -> Callable[[str], None]:
    """`print`, which kills this worker once (`KILL_ONCE_ENV`) as soon as a step of `out` is stored."""

    def log(msg: str) -> None:
        print(msg)
        if not any(f.name != "summary.json" for f in out.glob("*.json")):
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # one kill, whichever worker gets here
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    return log


# ----------------------------------------------------------------------------------------- the driver
def _with_requirements(names: Iterable[str], profile: str) -> list[str]:
    """`names` and, before each, what it requires under `profile` (recursively), each once."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for r in get_experiment(name).requirements(profile):
            visit(r)
        order.append(name)

    for n in names:
        visit(n)
    return order


def _finished(name: str, profile: str, results: str) -> dict | None:
    """The stored summary of a finished experiment with no damaged file (nothing to run), else None."""
    path = summary_path(name, profile, results)
    if is_complete(name, profile, results) and not _damaged_files(path.parent):
        return read_json(path)
    return None


def _data_location(data: str | None) -> str | None:
    """`data` (else the driver's $THESIS_DATA) as an absolute path when it is a local file or folder:
    workers start elsewhere, and on other nodes, with their own environment. Symbolic links are kept: the
    results record the data's path as the in-process executor does."""
    where = data if data is not None else os.environ.get("THESIS_DATA")
    if where and Path(where).expanduser().exists():
        return os.path.abspath(os.path.expanduser(where))
    return data


class _Cluster:
    """The Ray side of the driver: started (or joined) at the first task, so that a run with nothing left
    to do starts no Ray at all; submits the two kinds of task with their resources."""

    def __init__(self, address: str | None, device: str, profile: str):
        self.address, self.device, self.profile = address, device, profile
        self.ray = import_ray()
        self.started = False
        self.submitted: list = []  # every task, to cancel what is left when one fails
        self._train = self._evaluate = self._experiment = None

    def _connect(self) -> None:
        if self._train is not None:
            return
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address)
            self.started = True
        self.gpus = self.device != "cpu" and ray.cluster_resources().get("GPU", 0) > 0
        self._train = ray.remote(max_retries=MAX_RETRIES)(_train_task)
        self._evaluate = ray.remote(max_retries=MAX_RETRIES)(_evaluation_task)
        self._experiment = ray.remote(max_retries=MAX_RETRIES)(_experiment_task)

    def train(self, name: str, run, *args):
        self._connect()
        opts = training_resources(self.profile, run.config, self.gpus)
        ref = self._train.options(name=f"train {name}/{run.key}", **opts).remote(
            name, self.profile, run.key, run.config, *args
        )
        self.submitted.append(ref)
        return ref

    def evaluate(self, name: str, unit: str, *args):
        self._connect()
        opts = experiment_resources(self.profile, self.gpus)
        ref = self._evaluate.options(name=f"evaluate {name}/{unit}", **opts).remote(name, self.profile, unit, *args)
        self.submitted.append(ref)
        return ref

    def experiment(self, name: str, *args):
        self._connect()
        opts = experiment_resources(self.profile, self.gpus)
        ref = self._experiment.options(name=f"experiment {name}", **opts).remote(name, self.profile, *args)
        self.submitted.append(ref)
        return ref

    def cancel(self) -> None:
        """Cancel the tasks that have not finished (cancelling a finished one only adds to Ray's race)."""
        if not self.submitted:
            return
        _, unfinished = self.ray.wait(self.submitted, num_returns=len(self.submitted), timeout=0)
        for ref in unfinished:
            self.ray.cancel(ref)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def run_profile_ray(
    profile: str = "smoke", only: Iterable[str] | None = None, address: str | None = None, **options
) -> dict[str, dict]:
    """`run_profile` through Ray; returns {name: summary} of the selected experiments.

    address: the Ray cluster ("auto": the one `ray start` runs on this machine; "HOST:PORT"); None starts a
    local Ray for this run. A process already connected to Ray (`ray.init` called before) uses that one.
    options: those of `run_experiment` (`RUN_OPTIONS`), with its defaults; log: the driver's messages (the
    tasks print theirs, which Ray shows prefixed with the task's name).
    """
    results_dir, data, device, cache_dir, force, log = _run_options(options)
    cluster = _Cluster(address, device, profile)  # raises first when Ray is missing
    names = select_experiments(profile, only)
    results = str(Path(results_dir).resolve())
    cache = str(runs_cache_dir(results_dir, cache_dir).resolve())
    data = _data_location(data)
    where = (results, data, device, cache)
    forced = set(names) if force else set()
    kill_once = os.environ.get(KILL_ONCE_ENV) or None
    summaries: dict[str, dict] = {}
    running: dict = {}  # experiment task -> experiment name
    waiting = _with_requirements(names, profile)
    try:
        while waiting or running:
            startable = [n for n in waiting if all(r in summaries for r in get_experiment(n).requirements(profile))]
            for name in startable:
                waiting.remove(name)
                if name not in forced and (stored := _finished(name, profile, results)) is not None:
                    summaries[name] = stored  # nothing to run; its dependents may start in the next round
                    continue
                runs, units = ([], []) if name in forced else _declared_work(name, profile, *where, log)
                trained = [cluster.train(name, run, *where) for run in runs]
                evaluated = [cluster.evaluate(name, unit, *where, kill_once, *trained) for unit in units]
                ref = cluster.experiment(name, *where, name in forced, kill_once, *trained, *evaluated)
                running[ref] = name
            if not running:
                if not startable:  # cannot happen with the registry's acyclic requirements
                    raise RuntimeError(f"no experiment of {waiting} can start")
                continue
            ready, _ = cluster.ray.wait(list(running), num_returns=1)
            for ref in ready:
                name = running.pop(ref)
                summaries[name] = _get(cluster.ray, ref, name)
    except BaseException as e:
        # The code's own error: the other tasks are left to finish (see the module docstring).
        if not isinstance(e, TASK_ERRORS) or isinstance(e.__cause__, cluster.ray.exceptions.RayError):
            cluster.cancel()
        raise
    finally:
        cluster.close()
    return {n: summaries[n] for n in names}


def _run_options(options: dict) -> tuple:
    """The values of `RUN_OPTIONS`: `options`, else `run_experiment`'s defaults; an unknown one is a TypeError."""
    unknown = sorted(set(options) - set(RUN_OPTIONS))
    if unknown:
        raise TypeError(f"run_profile_ray() got unexpected keyword argument(s): {', '.join(unknown)}")
    defaults = inspect.signature(run_experiment).parameters
    return tuple(options.get(k, defaults[k].default) for k in RUN_OPTIONS)


def _declared_work(name: str, profile: str, results: str, data, device: str, cache: str, log) -> tuple[list, list]:
    """The training runs and the evaluation units experiment `name` declares (empty: it has none, or does
    them inside its run).

    Read here, once the requirements have finished: a run's config may come from their results (range-test
    bounds), which are then read back, not computed."""
    exp = get_experiment(name)
    if exp.runs is None and exp.evaluations is None:
        return [], []
    ctx = _context(name, profile, results, data, device, cache, log)
    runs = [] if exp.runs is None else exp.runs(ctx)
    return runs, [] if exp.evaluations is None else list(exp.evaluations(ctx))


def _get(ray, ref, name: str) -> dict:
    """The summary an experiment task returned; its own error as in-process, Ray's failures in one sentence."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, TASK_ERRORS):
            raise cause from None  # a user error: one line from the CLI, as with the in-process executor
        raise
    except ray.exceptions.RayError as e:
        raise ThesisError(
            f"Ray could not finish experiment {name} ({type(e).__name__}, after {MAX_RETRIES} retries); "
            f"run the same command again to resume it."
        ) from e
