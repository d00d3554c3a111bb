"""Experiments: registry and profiles, cached/resumable steps, the reproduce CLI, the notebooks.

Fast: one tiny real training run (32 images, one epoch) and two short kernel starts; the smoke
profile itself runs in CI through the notebooks (papermill), not here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import torch

from thesis_lib.cli import main as cli_main
from thesis_lib.experiments import (
    EXPERIMENTS,
    PROFILES,
    ensure,
    get_experiment,
    is_complete,
    list_experiments,
    registry,
    runner,
)
from thesis_lib.experiments.context import RunContext, runs_cache_dir, stable_hash, to_jsonable
from thesis_lib.reporting import notebooks as nbrun
from thesis_lib.utils import ThesisError

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"


# ----------------------------------------------------------------------------------------- registry
def _protocol_table_experiments() -> set[str]:
    """Experiment names in docs/protocol.md's table "Experiments and the figures they produce"."""
    rows = [line for line in (ROOT / "docs" / "protocol.md").read_text().splitlines() if line.startswith("| ")]
    return {name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[2])}


def test_every_protocol_row_is_registered_in_dependency_order():
    names = list_experiments()
    assert set(names) == _protocol_table_experiments()
    for i, n in enumerate(names):
        e = get_experiment(n)
        assert {"smoke", "full"} <= set(e.settings) <= set(PROFILES)
        assert all(names.index(r) < i for r in e.requires), f"{n} is registered before its requirements"
        assert (NB_DIR / f"{e.notebook}.ipynb").is_file(), f"{n}: notebook {e.notebook} missing"


def test_unknown_names_are_one_clear_error():
    with pytest.raises(ValueError, match="valid: light_cnn"):
        get_experiment("nope")
    with pytest.raises(ThesisError, match="Unknown profile 'medium': use one of smoke, cpu, full"):
        get_experiment("vgg").settings_for("medium")
    shapes = get_experiment("kaf_shapes")
    no_cpu = dataclasses.replace(shapes, settings={k: v for k, v in shapes.settings.items() if k != "cpu"})
    with pytest.raises(ThesisError, match="has no 'cpu' profile"):
        no_cpu.settings_for("cpu")


def test_full_profile_is_the_protocol():
    lc = get_experiment("light_cnn").settings_for("full")
    assert (lc.epochs, lc.eps, lc.step, lc.steps, lc.attack_n, lc.restarts_text) == (20, 0.031, 0.003, 40, 1000, 40)
    assert lc.activations == ("relu", "kwta", "kaf") and lc.kwta_ratio == 0.30
    vgg = get_experiment("vgg").settings_for("full")
    assert vgg.activations == ("relu", "elu", "kaf", "kaf_elu", "swish", "kaf_swish", "kaf_free")
    assert (vgg.epochs, vgg.batch_size, vgg.augment, vgg.lr_source) == (60, 128, False, "thesis")
    assert (vgg.pgd.eps, vgg.pgd.step, vgg.pgd.steps, vgg.pgd.restarts, vgg.pgd.n) == (8 / 255, 2 / 255, 50, 10, None)
    assert max(vgg.curve_iterations) == 150
    r20 = get_experiment("resnet20_at").settings_for("full")
    assert (r20.arch, r20.epochs, r20.augment, len(r20.activations)) == ("resnet20", 80, True, 8)
    rs = get_experiment("resnet_standard").settings_for("full")
    assert (rs.archs, rs.activations, rs.epochs, rs.lr) == (("resnet20", "resnet56"), ("relu", "kaf"), 150, 0.1)
    lr = get_experiment("vgg_lr_range").settings_for("full")
    assert (lr.lr_start, lr.lr_end, lr.epochs) == (1e-4, 3.0, 5)


def test_smoke_profile_is_small():
    """CI runs every experiment's smoke profile on 2 CPU cores in a few minutes."""
    for name in list_experiments():
        s = get_experiment(name).settings_dict("smoke")
        for key, value in s.items():
            if key in ("epochs",):
                assert value <= 2, (name, key, value)
            if key.endswith("subset") or key in ("attack_n", "masking_n", "n", "empirical_n", "curve_n"):
                assert value is not None and value <= 1000, (name, key, value)
        if "pgd" in s:
            assert s["pgd"]["n"] <= 100 and s["pgd"]["steps"] * s["pgd"]["restarts"] <= 10


def test_settings_round_trip_through_json():
    """Stored settings are plain JSON and hash the same after a round trip (their key stays valid)."""
    for name in list_experiments():
        owner = {}  # settings key -> the settings it was computed from
        for profile in get_experiment(name).settings:
            d = to_jsonable(get_experiment(name).settings_dict(profile))
            back = json.loads(json.dumps(d, allow_nan=False))  # raises on objects, NaN or infinities
            assert back == d
            assert stable_hash(back) == stable_hash(get_experiment(name).settings_dict(profile)), (name, profile)
            key, text = runner.settings_key(name, profile), json.dumps(back, sort_keys=True)
            # different settings never share a key (a shared key would reuse the other's results)
            assert owner.setdefault(key, text) == text, (name, profile)


# ----------------------------------------------------------------------------------------- steps, resume
@dataclass(frozen=True)
class _ToySettings:
    value: int = 1


def _toy_experiment(monkeypatch, calls: list, name="toy", requires=()):
    def run(ctx):
        calls.append(name)
        a = ctx.step("double", {"v": ctx.settings.value}, lambda: {"x": 2 * ctx.settings.value})
        return {"double": a["x"]}

    exp = registry.Experiment(
        name=name,
        section="0",
        title="toy",
        run=run,
        settings={"smoke": _ToySettings(1), "full": _ToySettings(2)},
        notebook="01_activation_functions",
        requires=requires,
    )
    monkeypatch.setitem(EXPERIMENTS, name, exp)
    return exp


def test_finished_experiments_are_skipped_and_stale_ones_rerun(tmp_path, monkeypatch):
    calls = []
    _toy_experiment(monkeypatch, calls)
    s1 = runner.run_experiment("toy", "smoke", tmp_path, log=lambda m: None)
    assert s1["result"] == {"double": 2} and s1["status"] == "complete" and "git_commit" in s1 and "hardware" in s1
    assert s1["compute_time_s"] >= 0.0
    runner.run_experiment("toy", "smoke", tmp_path, log=lambda m: None)
    assert calls == ["toy"]  # skipped the second time
    assert is_complete("toy", "smoke", tmp_path) and not is_complete("toy", "full", tmp_path)
    runner.run_experiment("toy", "smoke", tmp_path, force=True, log=lambda m: None)
    assert calls == ["toy", "toy"]
    # Settings changed since the results were written: stale, re-run (the cached step is recomputed too).
    monkeypatch.setitem(EXPERIMENTS["toy"].settings, "smoke", _ToySettings(5))
    assert not is_complete("toy", "smoke", tmp_path)
    r = ensure("toy", "smoke", tmp_path, log=lambda m: None)
    assert r.result == {"double": 10} and r.step("double") == {"x": 10}


def test_optional_cpu_profile_and_best_profile_per_notebook(tmp_path, monkeypatch):
    calls = []
    exp = dataclasses.replace(
        _toy_experiment(monkeypatch, calls),
        notebook="99_toy",
        settings={"smoke": _ToySettings(1), "full": _ToySettings(2)},
    )
    monkeypatch.setitem(EXPERIMENTS, "toy", exp)
    with pytest.raises(ThesisError, match="has no 'cpu' profile"):
        runner.run_experiment("toy", "cpu", tmp_path, log=lambda m: None)
    assert nbrun.best_profile("99_toy", tmp_path) == "smoke"  # nothing finished: the smoke run is the fallback
    monkeypatch.setitem(exp.settings, "cpu", _ToySettings(3))
    assert "toy" in registry.experiments_with_profile("cpu")
    runner.run_experiment("toy", "cpu", tmp_path, log=lambda m: None)
    assert nbrun.best_profile("99_toy", tmp_path) == "cpu"
    runner.run_experiment("toy", "full", tmp_path, log=lambda m: None)
    assert nbrun.best_profile("99_toy", tmp_path) == "full"
    assert nbrun.best_profile("01_activation_functions", tmp_path / "none") == "smoke"
    with pytest.raises(ThesisError, match="Unknown profile"):
        nbrun.execute_all("medium", tmp_path, notebooks_dir=NB_DIR, log=lambda m: None)


def test_requirements_run_first_and_once(tmp_path, monkeypatch):
    calls = []
    _toy_experiment(monkeypatch, calls, "toy_a")
    _toy_experiment(monkeypatch, calls, "toy_b", requires=("toy_a",))
    runner.run_experiment("toy_b", "smoke", tmp_path, log=lambda m: None)
    runner.run_experiment("toy_b", "smoke", tmp_path, log=lambda m: None)
    assert calls == ["toy_a", "toy_b"]


def test_step_cache_recomputes_on_change_and_on_corruption(tmp_path):
    exp = registry.Experiment(
        name="t", section="0", title="t", run=lambda c: {}, settings={"smoke": 0, "full": 0}, notebook="x"
    )
    ctx = RunContext(
        experiment=exp,
        profile="smoke",
        settings=None,
        results_root=tmp_path,
        runs_root=tmp_path / "c",
        log=lambda m: None,
    )
    n = []

    def fn():
        n.append(1)
        return {"y": 1 / 3, "arr": __import__("numpy").arange(3)}

    r = ctx.step("s", {"a": 1}, fn)
    assert r == {"y": 0.333333, "arr": [0, 1, 2]}  # 6 significant digits, plain lists
    ctx.step("s", {"a": 1}, fn)
    assert len(n) == 1
    ctx.step("s", {"a": 2}, fn)
    assert len(n) == 2
    (tmp_path / "smoke" / "t" / "s.json").write_text("{not json")
    ctx.step("s", {"a": 2}, fn)
    assert len(n) == 3


def test_run_folders_do_not_depend_on_the_device(tmp_path):
    assert runs_cache_dir(tmp_path / "results") == (tmp_path / ".cache" / "runs").resolve()
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": (1, 2), "a": 1})
    exp = get_experiment("light_cnn")
    cfg = {"arch": "light_cnn", "activation": "relu", "epochs": 1}
    a = RunContext(
        experiment=exp, profile="smoke", settings=None, results_root=tmp_path, runs_root=tmp_path, device="cpu"
    )
    b = RunContext(
        experiment=exp, profile="smoke", settings=None, results_root=tmp_path, runs_root=tmp_path, device="auto"
    )
    assert a.run_folder("relu", cfg) == b.run_folder("relu", cfg)
    assert a.run_folder("relu", cfg) != a.run_folder("relu", {**cfg, "epochs": 2})


@pytest.fixture
def train_calls(monkeypatch) -> list:
    """Counts calls of thesis_lib.training.train (which still runs for real)."""
    import thesis_lib.training as training

    calls = []
    real = training.train

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(training, "train", counting)
    return calls


def test_train_is_reused_not_repeated(tmp_path, train_calls):
    """A real (tiny) training run: metrics copied into the results, not re-trained on the second call."""
    calls = train_calls
    exp = get_experiment("light_cnn")
    ctx = RunContext(
        experiment=exp,
        profile="smoke",
        settings=None,
        results_root=tmp_path / "results",
        runs_root=tmp_path / "cache",
        device="cpu",
        log=lambda m: None,
    )
    cfg = {
        "arch": "light_cnn",
        "activation": "relu",
        "epochs": 1,
        "train_subset": 32,
        "test_subset": 16,
        "batch_size": 16,
    }
    m1 = ctx.train("relu", cfg)
    m2 = ctx.train("relu", cfg)
    assert len(calls) == 1 and m1["clean_acc"] == m2["clean_acc"]
    stored = json.loads((tmp_path / "results" / "smoke" / "light_cnn" / "training" / "relu.json").read_text())
    assert {"config", "seed", "git_commit", "hardware", "wall_time_s", "request"} <= set(stored)
    with ctx.model("relu", cfg) as model:  # checkpoint is in the cache: no training
        assert len(calls) == 1 and not model.training


TINY_RUN = {
    "arch": "light_cnn",
    "activation": "relu",
    "epochs": 1,
    "train_subset": 32,
    "test_subset": 16,
    "batch_size": 16,
}


def _light_cnn_context(tmp_path, cache: str, force: bool = False) -> RunContext:
    return RunContext(
        experiment=get_experiment("light_cnn"),
        profile="smoke",
        settings=None,
        results_root=tmp_path / "results",
        runs_root=tmp_path / cache,
        device="cpu",
        log=lambda m: None,
        force=force,
    )


def test_committed_weights_stand_in_for_a_missing_cache(tmp_path, train_calls):
    """A fresh clone has the results and weights but no checkpoints: analyses load the weights, no re-training."""
    calls = train_calls
    cfg = TINY_RUN

    def context(cache):
        return _light_cnn_context(tmp_path, cache)

    first = context("cache")
    first.train("relu", cfg)
    card = tmp_path / "results" / "smoke" / "light_cnn" / "weights" / "relu.json"
    assert card.is_file() and card.with_suffix(".safetensors").is_file()
    with first.model("relu", cfg) as trained, context("empty-cache").model("relu", cfg) as clone:
        x = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(trained(x), clone(x))
    assert len(calls) == 1
    # a different config is not answered by these weights
    with context("empty-cache").model("relu", {**cfg, "seed": 1}):
        assert len(calls) == 2


def test_force_recomputes_cached_steps_and_retrains_once(tmp_path, train_calls):
    """`reproduce --force` must really recompute: cached steps and finished runs are redone, once per run."""
    calls = train_calls
    cfg = TINY_RUN

    def context(force):
        return _light_cnn_context(tmp_path, "cache", force)

    n = []
    ctx = context(False)
    ctx.train("relu", cfg)
    ctx.step("s", {"a": 1}, lambda: n.append(1) or 1)
    forced = context(True)
    forced.train("relu", cfg)
    with forced.model("relu", cfg):  # the forced run's fresh checkpoint: no third training
        pass
    forced.step("s", {"a": 1}, lambda: n.append(1) or 1)
    forced.step("s", {"a": 1}, lambda: n.append(1) or 1)
    assert len(calls) == 2 and len(n) == 2


# ----------------------------------------------------------------------------------------- CLI
def test_reproduce_cli_list_and_errors(tmp_path, capsys):
    assert cli_main(["reproduce", "--list", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "todo  light_cnn" in out and "resnet56_fix" in out
    started = tmp_path / "smoke" / "vgg"  # an interrupted run: two models trained, one evaluation step
    (started / "training").mkdir(parents=True)
    for f in (started / "training" / "relu.json", started / "training" / "kaf.json", started / "pgd_relu.json"):
        f.write_text("{}")
    assert cli_main(["reproduce", "--list", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "part  vgg" in out and "(2 training run(s), 1 step(s) stored)" in out and "todo  light_cnn" in out
    assert cli_main(["reproduce", "--profile", "medium", "--results-dir", str(tmp_path)]) == 2
    assert "error: Unknown profile 'medium'" in capsys.readouterr().err
    assert cli_main(["reproduce", "--only", "nope", "--results-dir", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- notebooks
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_are_in_thesis_order():
    assert [p.stem[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 12)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "thesis" in first.source.lower() and "figures/" in first.source
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    ns: dict = {}
    exec(params[0].source, ns)  # noqa: S102  (our own notebook's literal assignments)
    assert {k: ns[k] for k in nbrun.DEFAULTS} == nbrun.DEFAULTS
    # The only parameter a committed notebook may carry injected is the profile it shows (`--profile best`).
    for c in [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]:
        injected: dict = {}
        exec(c.source, injected)  # noqa: S102
        assert set(injected) - {"__builtins__"} == {"profile"} and injected["profile"] in PROFILES, c.source
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        assert not re.search(r"/(work|tmp|home|Users)/", c.source), "machine-specific path in a notebook"
        assert c.execution_count is not None or not c.source.strip(), f"{path.name}: a code cell was not executed"
        for o in c.outputs:
            assert o.output_type != "error", f"{path.name}: stored error output"
            if o.output_type == "stream":
                assert o.name == "stdout" or "# NBVAL_IGNORE_OUTPUT" in c.source, f"{path.name}: stderr in outputs"
        assert "papermill" not in c.metadata and "execution" not in c.metadata
    for name in re.findall(r'ensure\("([a-z0-9_]+)"', "\n".join(c.source for c in nb.cells)):
        get_experiment(name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_figures_and_results_exist(path):
    """Every figure/table a notebook lists in its header exists (but `OPTIONAL_OUTPUTS`), and its experiments'
    smoke results are current.

    Current results are what makes `pytest --nbval` re-run the committed notebooks without training.
    """
    nb = nbformat.read(path, as_version=4)
    header = nb.cells[0].source
    from thesis_lib.notebook_sources import OPTIONAL_OUTPUTS

    for stem in set(re.findall(r"`figures/([A-Za-z0-9_.-]+?)\.(?:pdf|tex)`", header)):
        if "<" in stem or stem in OPTIONAL_OUTPUTS:
            continue
        assert any((ROOT / "figures" / f"{stem}.{ext}").is_file() for ext in ("pdf", "tex")), f"figures/{stem} missing"
    for name in re.findall(r'ensure\("([a-z0-9_]+)"', "\n".join(c.source for c in nb.cells)):
        assert is_complete(name, "smoke", ROOT / "results"), f"results/smoke/{name} missing or stale: re-run reproduce"


def test_every_committed_result_is_current():
    """A change of settings types or of how settings are stored must keep every committed result valid."""
    summaries = sorted((ROOT / "results").glob("*/*/summary.json"))
    assert summaries
    for path in summaries:
        name, profile = path.parent.name, path.parent.parent.name
        assert is_complete(name, profile, ROOT / "results"), f"results/{profile}/{name} is stale under the current code"


def test_strip_execution_metadata():
    nb = {
        "metadata": {"papermill": {"duration": 1}},
        "cells": [{"metadata": {"papermill": {"start_time": "x"}, "execution": {"iopub": 1}, "tags": ["a"]}}],
    }
    out = nbrun.strip_execution_metadata(nb)
    assert out == {"metadata": {}, "cells": [{"metadata": {"tags": ["a"]}}]}
    injected = {"cells": [{"id": "3f2a9c1b", "metadata": {"tags": ["injected-parameters"]}}]}
    assert nbrun.strip_execution_metadata(injected)["cells"][0]["id"] == "injected-parameters"  # not random


def _toy_notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('profile = "smoke"\nresults_dir = "../results"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


def test_execute_notebook_injects_only_changes_and_fails_cleanly(tmp_path):
    src = tmp_path / "01_toy.ipynb"
    _toy_notebook(src, "print(profile, results_dir)")
    out = tmp_path / "out" / "01_toy.ipynb"
    with nbrun.current_python_kernel() as kernel:
        nbrun.execute_notebook(src, out, {"profile": "full", "results_dir": "../results"}, kernel)
        nb = nbformat.read(out, as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "full" in injected[0].source and "results_dir" not in injected[0].source
        assert nb.cells[-1].outputs[0]["text"] == "full ../results\n"
        assert "papermill" not in nb.metadata
        _toy_notebook(src, "raise RuntimeError('boom')")
        with pytest.raises(ThesisError, match="01_toy.ipynb failed"):
            nbrun.execute_notebook(src, out, {}, kernel)
    assert nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"] == "full ../results\n"  # untouched
    assert (tmp_path / "out" / "01_toy.failed.ipynb").is_file()


def test_notebook_selection_errors(tmp_path):
    with pytest.raises(ThesisError, match="No notebook matches"):
        nbrun.execute_all("smoke", only=["99"], notebooks_dir=NB_DIR, output_dir=tmp_path, log=lambda m: None)
    with pytest.raises(ThesisError, match="Unknown profile"):
        nbrun.execute_all("medium", notebooks_dir=NB_DIR, output_dir=tmp_path, log=lambda m: None)


def test_full_profile_training_configs_resolve():
    """Every full-profile training run is a valid TrainConfig (caught here, not hours into a GPU job)."""
    from thesis_lib.experiments.light_cnn import light_cnn_config
    from thesis_lib.experiments.resnet56_fix import candidate_config
    from thesis_lib.experiments.resnet_standard import resnet_standard_config
    from thesis_lib.experiments.vgg import at_config
    from thesis_lib.training import TrainConfig

    configs = []
    lc = get_experiment("light_cnn").settings_for("full")
    configs += [light_cnn_config(lc, a) for a in lc.activations]
    for name in ("vgg", "resnet20_at"):
        s = get_experiment(name).settings_for("full")
        configs += [at_config(s, a) for a in s.activations] + [at_config(s, a, 0.01, 0.8) for a in s.activations]
    rs = get_experiment("resnet_standard").settings_for("full")
    configs += [resnet_standard_config(rs, arch, a) for arch in rs.archs for a in rs.activations]
    fx = get_experiment("resnet56_fix").settings_for("full")
    configs += [candidate_config(fx, c) for c in fx.candidates]
    for cfg in configs:
        c = TrainConfig.from_dict(cfg).resolved()
        assert c.train_subset is None and c.test_subset is None
    vgg_relu = TrainConfig.from_dict(at_config(get_experiment("vgg").settings_for("full"), "relu")).resolved()
    assert (vgg_relu.lr_min, vgg_relu.lr_max, vgg_relu.epochs, vgg_relu.method) == (1e-4, 0.08, 60, "fast_at")


def test_two_reproduce_runs_cannot_write_one_results_folder(tmp_path):
    import subprocess
    import sys

    from thesis_lib.experiments.cli import results_lock

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from thesis_lib.experiments.cli import results_lock\n"
                f"with results_lock({str(tmp_path)!r}):\n"
                "    print('locked', flush=True); time.sleep(30)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ThesisError, match="Another process .* is writing to"):
            with results_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with results_lock(tmp_path):  # a killed holder leaves no stale lock
        with results_lock(tmp_path):  # and the holder may take it again (reproduce -> its experiments)
            pass


def test_a_notebook_reads_finished_results_while_another_process_writes(tmp_path, monkeypatch):
    import subprocess
    import sys

    calls = []
    _toy_experiment(monkeypatch, calls)
    runner.run_experiment("toy", "smoke", tmp_path, log=lambda m: None)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom thesis_lib.experiments.runner import results_lock\n"
            f"with results_lock({str(tmp_path)!r}):\n    print('locked', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert ensure("toy", "smoke", tmp_path, log=lambda m: None).result == {"double": 2}  # finished: read
        with pytest.raises(ThesisError, match="is writing to"):  # missing: it would write, so it may not
            ensure("toy", "full", tmp_path, log=lambda m: None)
        assert not (tmp_path / "full").exists() and calls == ["toy"]
    finally:
        holder.kill()
        holder.wait()
