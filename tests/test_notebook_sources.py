"""The notebooks as reviewed source: .py/.ipynb pairs, headers and README table from the registry, the setup call,
and the library functions the notebooks call instead of inline logic (sections 1.1 to 6; nothing is executed).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import matplotlib
import nbformat
import pytest

from thesis_lib import notebook_sources as ns
from thesis_lib.experiments.registry import get_experiment, list_experiments

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob(ns.NOTEBOOK_GLOB))
SETUP_LINE = "plt, np, pd, ensure, percent, provenance_table, save_figure, save_table = setup()"


# ------------------------------------------------------------------------------------------ pairs
def test_every_notebook_has_its_source_and_they_agree():
    assert NOTEBOOKS, "no notebooks found"
    assert ns.check_pairs(NB_DIR) == []


def test_jupytext_pairing_config():
    from jupytext.config import load_jupytext_config

    cfg = load_jupytext_config(str(NB_DIR))
    assert cfg is not None and cfg.formats in ("ipynb,py:percent", ["ipynb,py:percent"])


@pytest.fixture
def pair_copy(tmp_path):
    """A copy of notebook 04's pair (and the pairing config) to tamper with."""
    for name in ("04_kwta_discontinuities.ipynb", "04_kwta_discontinuities.py", "jupytext.toml"):
        shutil.copy(NB_DIR / name, tmp_path / name)
    assert ns.check_pairs(tmp_path) == []
    return tmp_path


def test_tampered_source_is_reported(pair_copy):
    py = pair_copy / "04_kwta_discontinuities.py"
    py.write_text(py.read_text().replace('save_figure(fig, "kwta_line_scan_zoom"', 'save_figure(fig, "zoomed"'))
    problems = ns.check_pairs(pair_copy)
    assert len(problems) == 1 and "source differs" in problems[0] and "zoomed" in problems[0]


def test_changed_cell_type_tags_or_count_are_reported(pair_copy):
    ipynb = pair_copy / "04_kwta_discontinuities.ipynb"
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[1].metadata["tags"] = []  # the parameters cell loses its tag
    nb.cells.append(nbformat.v4.new_markdown_cell("an extra cell"))
    nbformat.write(nb, ipynb)
    problems = "\n".join(ns.compare_pair(ipynb))
    assert "tags [] vs ['parameters']" in problems  # (ipynb vs py)
    assert "04_kwta_discontinuities.ipynb has 11 cells, 04_kwta_discontinuities.py 10" in problems

    nb.cells = nb.cells[:-1]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells[3].cell_type = "markdown"
    nb.cells[3].pop("outputs")
    nb.cells[3].pop("execution_count")
    nbformat.write(nb, ipynb)
    assert any("type markdown vs code" in p for p in ns.compare_pair(ipynb))


def test_missing_pair_and_missing_config_are_reported(pair_copy):
    (pair_copy / "04_kwta_discontinuities.py").unlink()
    assert any("no paired source 04_kwta_discontinuities.py" in p for p in ns.check_pairs(pair_copy))
    shutil.copy(NB_DIR / "04_kwta_discontinuities.py", pair_copy / "05_orphan.py")
    (pair_copy / "jupytext.toml").unlink()
    problems = "\n".join(ns.check_pairs(pair_copy))
    assert "no paired notebook 05_orphan.ipynb" in problems and "jupytext.toml missing" in problems


def test_read_pair_takes_cells_from_the_source_and_outputs_from_the_notebook(pair_copy):
    py = pair_copy / "04_kwta_discontinuities.py"
    py.write_text(py.read_text().replace("provenance_table([res])", "provenance_table([res])  # edited"))
    nb = ns.read_pair(pair_copy / "04_kwta_discontinuities.ipynb")
    original = nbformat.read(pair_copy / "04_kwta_discontinuities.ipynb", as_version=4)
    edited = [i for i, c in enumerate(nb.cells) if "# edited" in c.source]
    assert len(edited) == 1
    i = edited[0]
    assert nb.cells[i].outputs == original.cells[i].outputs and nb.cells[i].id == original.cells[i].id
    assert nb.metadata == original.metadata
    # writing the source back gives the same text jupytext would
    assert ns.write_source(nb, pair_copy / "again.py") == py.read_text()


def test_injected_parameters_round_trip():
    """A papermill-injected cell (trailing newline stripped by the runner) survives .py -> .ipynb unchanged."""
    from thesis_lib.reporting.notebooks import strip_execution_metadata

    cell = {"id": "x", "cell_type": "code", "source": '# Parameters\nprofile = "full"\n'}
    cell["metadata"] = {"tags": ["injected-parameters"]}
    out = strip_execution_metadata({"cells": [cell]})["cells"][0]
    assert out["source"] == '# Parameters\nprofile = "full"' and out["id"] == "injected-parameters"


# ---------------------------------------------------------------------------- registry and headers
def test_section_phrase():
    assert ns.section_phrase(["2.4"]) == "section 2.4"
    assert ns.section_phrase(["2.2", "1.1"]) == "sections 1.1 and 2.2"
    assert ns.section_phrase(["4"]) == "chapter 4"
    assert ns.section_phrase(["6", "4.1", "6"]) == "section 4.1 and chapter 6"
    assert ns.section_phrase(["5.1", "4.2", "10.1"]) == "sections 4.2, 5.1 and 10.1"


def test_headers_and_readme_agree_with_the_registry():
    assert ns.check_headers(NB_DIR) == []
    assert ns.check_readme(NB_DIR / "README.md", NB_DIR) == []


def test_every_registered_notebook_is_indexed():
    entries = {e.stem: e for e in ns.notebook_entries(NB_DIR)}
    for name in list_experiments():
        exp = get_experiment(name)
        assert name in entries[exp.notebook].experiments
        assert set(exp.figures) <= set(entries[exp.notebook].figures)


def _entries_with_header(stem: str, header: str):
    entries = ns.notebook_entries(NB_DIR)
    for i, e in enumerate(entries):
        if e.stem == stem:
            m = ns.HEADER.match(header.splitlines()[0])
            entries[i] = ns.NotebookEntry(
                **{
                    **e.__dict__,
                    "header": header,
                    "title": m["title"] if m else "",
                    "header_sections": m["sections"] if m else "",
                }
            )
    return entries


def test_drifted_header_is_reported():
    e = next(e for e in ns.notebook_entries(NB_DIR) if e.stem == "07_vgg_results")
    wrong_section = e.header.replace("(thesis section 5.1)", "(thesis section 5.2)", 1)
    assert wrong_section != e.header
    problems = ns.check_headers(NB_DIR, _entries_with_header(e.stem, wrong_section))
    assert problems == ["07_vgg_results: header says 'thesis section 5.2', the registry 'thesis section 5.1'"]
    no_figure = e.header.replace("figures/vgg_training_curves.pdf", "figures/curves.pdf")
    problems = ns.check_headers(NB_DIR, _entries_with_header(e.stem, no_figure))
    assert problems == ["07_vgg_results: header table lacks the registry's figures ['vgg_training_curves']"]
    problems = ns.check_headers(NB_DIR, _entries_with_header(e.stem, "# VGG results\n" + e.header))
    assert "first cell must start with '# 07 · Title (thesis section ...)'" in problems[0]


def test_drifted_readme_is_reported(tmp_path):
    readme = tmp_path / "README.md"
    text = (NB_DIR / "README.md").read_text()
    readme.write_text(text.replace("| 5.1 VGG results |", "| 5.2 VGG results |"))
    problems = ns.check_readme(readme, NB_DIR)
    assert problems and "differs from the registry" in problems[0]
    assert any(p.strip().startswith("-| 5.2 VGG results |") for p in problems[1:])
    assert any(p.strip().startswith("+| 5.1 VGG results |") for p in problems[1:])
    assert ns.write_readme(readme, NB_DIR) and readme.read_text() == text
    assert not ns.write_readme(readme, NB_DIR)
    readme.write_text("no table here\n")
    assert "no generated notebook table" in ns.check_readme(readme, NB_DIR)[0]


def test_cli_check(capsys):
    assert ns.main(["--notebooks-dir", str(NB_DIR)]) == 0
    assert "agree with the registry" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ setup cell
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_start_with_the_setup_call(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and not c.metadata.get("tags")]
    lines = code[0].source.splitlines()
    assert lines[:3] == ["from thesis_lib.notebook import setup", "", SETUP_LINE], code[0].source
    assert all(ln.startswith(("import ", "from ")) or not ln for ln in lines[3:]), "only imports after setup()"
    assert "%matplotlib" not in "".join(c.source for c in nb.cells)


def test_setup_returns_what_the_notebooks_use():
    import warnings

    import numpy as np
    import pandas as pd

    from thesis_lib.experiments import ensure
    from thesis_lib.notebook import Prelude, setup
    from thesis_lib.plotting import STYLE
    from thesis_lib.reporting.outputs import save_table

    with warnings.catch_warnings(), pd.option_context("display.precision", 6), matplotlib.rc_context():
        prelude = setup()
        assert isinstance(prelude, Prelude) and len(prelude) == 8
        plt, np_, pd_, ensure_, *_ = prelude
        assert np_ is np and pd_ is pd and ensure_ is ensure and prelude.save_table is save_table
        assert plt.rcParams["font.size"] == STYLE["font.size"]
        assert pd.get_option("display.precision") == 3
        assert any(f[0] == "ignore" and f[2] is UserWarning for f in warnings.filters)
    assert SETUP_LINE.split(" = ")[0].split(", ") == list(Prelude._fields)


def test_setup_cell_prints_nothing_in_a_fresh_kernel():
    """The first cell's stored output is empty, so anything it prints in a new kernel (a library's
    import-time warning, e.g. tqdm's without ipywidgets) fails every notebook under nbval."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(NB_DIR))
    try:
        msg_id = kc.execute(f"from thesis_lib.notebook import setup\n{SETUP_LINE}")
        streams = []
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] in ("stream", "error", "display_data", "execute_result"):
                streams.append((msg["msg_type"], msg["content"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert streams == [], streams


# ------------------------------------------------------------ library functions instead of cell logic
def test_observations_across_profiles():
    from thesis_lib.experiments import ExperimentResults, is_complete
    from thesis_lib.reporting.observations import observations_across_profiles, observations_table

    if not is_complete("light_cnn", "full", ROOT / "results"):
        pytest.skip("no current full-profile light_cnn results")
    results = ROOT / "results"
    full = ExperimentResults("light_cnn", "full", results)
    cpu = [ExperimentResults("light_cnn", "cpu", results)] if is_complete("light_cnn", "cpu", results) else []
    assert observations_across_profiles(full).equals(observations_table(cpu + [full]))
    smoke = ExperimentResults("light_cnn", "smoke", results)
    assert list(observations_across_profiles(smoke).columns) == list(observations_table([smoke]).columns)


def _lipschitz_rows():
    return [
        {"model": "light CNN", "training": "standard", "activation": "relu", "bound": 120.0, "empirical_jacobian": 9.0},
        {
            "model": "light CNN",
            "training": "standard",
            "activation": "kwta",
            "bound": float("inf"),
            "empirical_jacobian": 3.0,
        },
        {"model": "VGG", "training": "fast AT", "activation": "kaf", "bound": 1e6, "empirical_jacobian": 0.0},
    ]


def test_plot_lipschitz_bounds_marks_what_the_log_axis_can_not_show():
    import matplotlib.pyplot as plt

    from thesis_lib.plotting import PALETTE, TEXT_WIDTH, plot_lipschitz_bounds

    fig = plot_lipschitz_bounds(_lipschitz_rows())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "light CNN relu (standard)",
        "light CNN kwta (standard)",
        "VGG kaf (fast AT)",
    ]
    bars = ax.patches  # finite bounds only
    assert [round(b.get_width(), 6) for b in bars] == [round(math.log10(120.0), 6), 6.0]
    assert matplotlib.colors.to_hex(bars[0].get_facecolor()) == PALETTE[0].lower()
    # k-WTA's infinite bound: a cross on the right edge; the zero local estimate (log10 = -inf): the left edge
    edge = {ln.get_marker(): ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_transform() != ax.transData}
    assert edge == {"x": 1.0, "<": 0.0}
    assert tuple(fig.get_size_inches()) == (TEXT_WIDTH, 0.25 * 3 + 1.4)
    plt.close(fig)


def test_plot_fix_ablation_colours_diverged_runs():
    import matplotlib.pyplot as plt

    from thesis_lib.plotting import PALETTE, plot_fix_ablation

    rows = [
        {"candidate": "baseline", "clean_acc": 0.1, "diverged": {"step": 3, "quantity": "grad"}},
        {"candidate": "ridge_relu", "clean_acc": 0.42, "diverged": None},
    ]
    fig = plot_fix_ablation(rows)
    bars = fig.axes[0].patches
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars] == [PALETTE[3].lower(), PALETTE[0].lower()]
    assert [round(b.get_height(), 6) for b in bars] == [10.0, 42.0]
    assert fig.legends[0].get_texts()[0].get_text() == "chance (10%)"  # outside the panel: bars hide nothing
    plt.close(fig)


def test_plot_kaf_kernels_one_curve_per_kernel():
    import matplotlib.pyplot as plt

    from thesis_lib.plotting import plot_kaf_kernels

    fig = plot_kaf_kernels(("gaussian", "relu"), points=51)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels == ["gaussian kernel", "relu kernel", "ELU (target)"]
    plt.close(fig)


def test_notebook_10_draws_no_figure_by_hand():
    src = "\n".join(c.source for c in nbformat.read(NB_DIR / "10_future_work.ipynb", as_version=4).cells)
    assert "plt.subplots" not in src and "#4C72B0" not in src and "#C44E52" not in src
    for name in ("plot_lipschitz_bounds(", "plot_fix_ablation(", "plot_kaf_kernels("):
        assert name in src


# ------------------------------------------------------------------------------------------ runner
def test_no_compute_refuses_a_notebook_whose_results_are_missing(tmp_path):
    from thesis_lib.reporting import notebooks as nbrun
    from thesis_lib.utils import ThesisError

    assert nbrun.missing_results("07_vgg_results", "smoke", tmp_path) == ["vgg", "vgg_lr_range"]
    assert nbrun.missing_results("01_activation_functions", "smoke", tmp_path) == []
    with pytest.raises(ThesisError, match="07_vgg_results would compute vgg, vgg_lr_range"):
        nbrun.execute_all(
            "smoke",
            tmp_path,
            tmp_path / "figures",
            tmp_path / "out",
            only=["07"],
            notebooks_dir=NB_DIR,
            log=lambda m: None,
            no_compute=True,
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "figures").exists()
