"""Regenerate every figure and table: execute the thesis notebooks with papermill, in thesis order.

    python -m thesis_lib.reporting.notebooks --profile best|smoke|cpu|full [--results-dir D]
        [--figures-dir F] [--output-dir O] [--data PATH] [--device D] [--only NN[,NN...]]

`--profile best` (the default of `make figures`) executes each notebook with the largest profile
whose results for all of that notebook's experiments exist (full, then cpu), else smoke: the
committed notebooks then show the largest-scale results there are.

Each notebook `notebooks/NN_topic.ipynb` runs the experiments it shows when their results are
missing (a finished experiment is only read back), then draws its figures into --figures-dir.
Without --output-dir the notebooks are executed in place, so the committed notebooks show the
fresh outputs; with it, the executed copies go there and the committed notebooks stay untouched.

Sources: each notebook is a jupytext pair, `NN_topic.py` (the reviewed source, percent format) and
`NN_topic.ipynb` (with outputs). The cells executed are those of the `.py`; the executed notebook
and its `.py` are written together, so the pair stays in step (`thesis_lib.notebook_sources`).
`--no-compute` refuses to execute a notebook whose experiments (or their requirements) would have to
run first, instead of running them.

Reproducibility details: only parameters that differ from a notebook's defaults are injected
(paths relative to the notebook when it is executed in place, so a committed notebook never holds
a machine-specific path); papermill's timing metadata is stripped so that an unchanged result
gives an unchanged notebook file; the kernel is always the Python running this module (a
temporary `python3` kernelspec pointing at sys.executable is put first on JUPYTER_PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..notebook_sources import NOTEBOOKS_DIR
from ..utils import ThesisError, atomic_write_text

__all__ = [
    "NOTEBOOKS_DIR",
    "list_notebooks",
    "execute_notebook",
    "execute_all",
    "main",
    "current_python_kernel",
    "strip_execution_metadata",
    "best_profile",
    "missing_results",
]

KERNEL_NAME = "python3"
# The defaults of every notebook's `parameters` cell (relative to the notebook's folder).
DEFAULTS = {
    "profile": "smoke",
    "results_dir": "../results",
    "figures_dir": "../figures",
    "data": None,
    "device": "auto",
}


def list_notebooks(notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR) -> list[Path]:
    """The thesis notebooks NN_topic.ipynb, in thesis order."""
    nbs = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not nbs:
        raise ThesisError(f"No notebooks NN_topic.ipynb found in {notebooks_dir}.")
    return nbs


def _select(nbs: list[Path], only: Sequence[str] | None) -> list[Path]:
    if not only:
        return nbs
    picked = []
    for want in only:
        match = [p for p in nbs if p.stem == want or p.stem.split("_", 1)[0] == want.zfill(2)]
        if not match:
            raise ThesisError(f"No notebook matches {want!r}; valid: {', '.join(p.stem for p in nbs)}.")
        picked += [p for p in match if p not in picked]
    return [p for p in nbs if p in picked]


@contextlib.contextmanager
def current_python_kernel() -> Iterator[str]:
    """A `python3` kernelspec that runs this very interpreter, first on JUPYTER_PATH while the block runs."""
    with tempfile.TemporaryDirectory(prefix="thesis-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                }
            )
        )
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + old if old else "")
        try:
            yield KERNEL_NAME
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def strip_execution_metadata(nb: dict) -> dict:
    """Remove papermill's timestamps, durations and paths so that re-runs do not change the file.

    Papermill gives its injected-parameters cell a random id; it gets a fixed one here, and its
    source loses the trailing newline (which the percent-format `.py` cannot represent).
    """
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb.get("cells", []):
        md = cell.get("metadata", {})
        md.pop("papermill", None)
        md.pop("execution", None)
        if "injected-parameters" in md.get("tags", []):
            if "id" in cell:
                cell["id"] = "injected-parameters"
            if isinstance(cell.get("source"), str):
                cell["source"] = cell["source"].rstrip()
    return nb


def _drop_injected(nb: dict) -> dict:
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    return nb


def _param_path(path: str | os.PathLike | None, nb_dir: Path, relative: bool) -> str | None:
    if path is None:
        return None
    p = Path(path).resolve()
    if relative:
        try:
            return os.path.relpath(p, nb_dir)
        except ValueError:  # another drive (Windows)
            return str(p)
    return str(p)


def execute_notebook(
    path: Path, output: Path, parameters: dict, kernel_name: str = KERNEL_NAME, timeout: float | None = None
) -> float:
    """Execute one notebook with papermill into `output` (atomically: a failed run leaves `output` alone).

    The cells come from the notebook's paired `.py` when it has one (`notebook_sources.read_pair`),
    and the executed notebook's `.py` is written beside `output`.
    Returns the wall time in seconds. A failed notebook is kept next to the output as
    `<name>.failed.ipynb` and raises ThesisError naming it.
    """
    import nbformat
    import papermill as pm

    from ..notebook_sources import paired_source, read_pair, write_source

    nb = read_pair(path)
    _drop_injected(nb)
    params = {k: v for k, v in parameters.items() if DEFAULTS.get(k, object()) != v}
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="thesis-nb-") as tmp:
        src = Path(tmp) / path.name
        dst = Path(tmp) / f"out_{path.name}"
        nbformat.write(nb, src)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(src),
                str(dst),
                parameters=params or None,
                kernel_name=kernel_name,
                cwd=str(path.parent),
                progress_bar=False,
                log_output=False,
                execution_timeout=timeout,
            )
        except Exception as e:  # papermill's PapermillExecutionError, kernel death, ...
            failed = output.with_name(output.stem + ".failed.ipynb")
            if dst.is_file():
                atomic_write_text(failed, dst.read_text())
            first = str(e).strip().splitlines()
            detail = next((ln for ln in reversed(first) if ln.strip()), type(e).__name__) if first else type(e).__name__
            raise ThesisError(f"Notebook {path.name} failed ({detail}); the partial run is in {failed}.") from e
        wall = time.perf_counter() - t0
        out_nb = strip_execution_metadata(nbformat.read(dst, as_version=4))
        atomic_write_text(output, nbformat.writes(out_nb) + "\n")
        if paired_source(path).is_file():
            write_source(out_nb, paired_source(output))
    return wall


def best_profile(notebook: str, results_dir: str | os.PathLike) -> str:
    """The largest profile (full, then cpu) with finished results for every experiment `notebook` shows; else smoke."""
    from ..experiments.registry import EXPERIMENTS
    from ..experiments.runner import is_complete

    shown = [e for e in EXPERIMENTS.values() if e.notebook == notebook and not e.supplementary]
    for profile in ("full", "cpu"):
        if shown and all(e.has_profile(profile) and is_complete(e.name, profile, results_dir) for e in shown):
            return profile
    return "smoke"


def missing_results(notebook: str, profile: str, results_dir: str | os.PathLike) -> list[str]:
    """The experiments `notebook` shows, and their requirements, whose `profile` results are missing or stale
    (beyond smoke, not its supplementary experiments: the notebook shows those only where they exist)."""
    from ..experiments.registry import get_experiment, list_experiments
    from ..experiments.runner import is_complete

    todo = [n for n in list_experiments() if get_experiment(n).notebook == notebook]
    if profile != "smoke":  # a supplementary experiment is shown where it exists, computed only at smoke
        todo = [n for n in todo if not get_experiment(n).supplementary]
    seen: list[str] = []
    while todo:
        name = todo.pop(0)
        if name not in seen and get_experiment(name).has_profile(profile):
            seen.append(name)
            todo += list(get_experiment(name).requirements(profile))
    return [n for n in seen if not is_complete(n, profile, results_dir)]


def execute_all(
    profile: str = "smoke",
    results_dir: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    data: str | None = None,
    device: str = "auto",
    only: Sequence[str] | None = None,
    notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
    log=print,
    no_compute: bool = False,
) -> dict[str, float]:
    """Execute the notebooks (all, or `only`) in thesis order; returns {notebook: seconds}.

    `profile="best"`: each notebook with `best_profile` (the largest profile whose results exist).
    `no_compute`: raise ThesisError, before executing it, for a notebook whose results would have to be
    computed (`missing_results`) instead of letting it run the experiments.
    """
    from ..experiments.registry import check_profile

    check_profile(profile, extra=("best",))
    nb_dir = Path(notebooks_dir).resolve()
    nbs = _select(list_notebooks(nb_dir), only)
    in_place = output_dir is None
    out_dir = nb_dir if in_place else Path(output_dir).resolve()
    params = {
        "profile": profile,
        "results_dir": _param_path(results_dir, nb_dir, in_place)
        if results_dir is not None
        else DEFAULTS["results_dir"],
        "figures_dir": _param_path(figures_dir, nb_dir, in_place)
        if figures_dir is not None
        else DEFAULTS["figures_dir"],
        "data": str(Path(data).resolve()) if data is not None and Path(data).exists() else data,
        "device": device,
    }
    if not in_place:  # a copy elsewhere: absolute paths (the defaults are relative to the notebooks folder)
        for key in ("results_dir", "figures_dir"):
            if params[key] is not None and not os.path.isabs(params[key]):
                params[key] = str((nb_dir / params[key]).resolve())
    os.environ.setdefault("THESIS_NO_PROGRESS", "1")  # no progress bars in stored outputs
    times = {}
    with current_python_kernel() as kernel:
        for nb in nbs:
            nb_params = dict(params)
            if profile == "best":
                nb_params["profile"] = best_profile(nb.stem, nb_dir / params["results_dir"])
            if no_compute:
                missing = missing_results(nb.stem, nb_params["profile"], nb_dir / nb_params["results_dir"])
                if missing:
                    raise ThesisError(
                        f"{nb.stem} would compute {', '.join(missing)} ({nb_params['profile']} profile) "
                        "and --no-compute is set: run `python -m thesis_lib reproduce` for them first."
                    )
            log(f"[notebooks] {nb.stem} ({nb_params['profile']})")
            times[nb.stem] = execute_notebook(nb, out_dir / nb.name, nb_params, kernel)
            log(f"[notebooks] {nb.stem} done in {times[nb.stem]:.1f} s")
    log(f"[notebooks] all {len(times)} notebooks done in {sum(times.values()):.1f} s")
    return times


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m thesis_lib.reporting.notebooks",
        description="Execute the thesis notebooks with papermill (regenerates figures and tables).",
    )
    p.add_argument(
        "--profile",
        default="best",
        help="best (per notebook, the largest profile whose results exist; default), smoke (CPU, "
        "minutes), cpu (larger CPU runs, some experiments) or full (the thesis protocol, GPU)",
    )
    p.add_argument("--results-dir", default=None, help="results folder (default: results/ of the repository)")
    p.add_argument("--figures-dir", default=None, help="figures folder (default: figures/ of the repository)")
    p.add_argument(
        "--output-dir", default=None, help="write executed notebooks here instead of updating notebooks/ in place"
    )
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: $THESIS_DATA, else torchvision download)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--only", default=None, help="comma-separated notebook numbers or names, e.g. 01,07")
    p.add_argument(
        "--no-compute",
        action="store_true",
        help="fail instead of running experiments whose results are missing or stale (only re-draw)",
    )
    p.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    try:
        execute_all(
            args.profile,
            args.results_dir,
            args.figures_dir,
            args.output_dir,
            args.data,
            args.device,
            only,
            args.notebooks_dir,
            no_compute=args.no_compute,
        )
    except (ThesisError, ValueError) as e:
        print(f"error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
