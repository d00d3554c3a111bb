"""The README's result blocks are what the committed results give (thesis_lib.reporting.readme)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from thesis_lib.reporting import readme
from thesis_lib.utils import ThesisError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def test_every_readme_block_is_known_and_current():
    names = [m["name"] for m in readme._blocks(readme.README.read_text())]
    assert set(names) <= set(readme.BLOCKS), names
    assert readme.stale_blocks(readme.README, RESULTS) == [], "run `python -m thesis_lib.reporting.readme`"


def test_a_changed_number_is_stale_and_rewritten(tmp_path):
    text = readme.README.read_text()
    block = next(m for m in readme._blocks(text) if m["name"] == "resnet-standard-cpu")
    if readme.render_block("resnet-standard-cpu", RESULTS) is None:
        pytest.skip("resnet_standard (cpu) is not committed")
    changed = block[0].replace("| resnet20 relu | ", "| resnet20 relu | 1", 1)
    assert changed != block[0]
    copy = tmp_path / "README.md"
    copy.write_text(text.replace(block[0], changed))
    assert readme.stale_blocks(copy, RESULTS) == ["resnet-standard-cpu"]
    assert readme.main(["--readme", str(copy), "--results-dir", str(RESULTS), "--check"]) == 1
    assert readme.update_readme(copy, RESULTS) == ["resnet-standard-cpu"]
    assert copy.read_text() == text


def test_unfinished_experiments_leave_their_block(tmp_path):
    assert readme.render_block("resnet20-cpu", tmp_path) is None
    copy = tmp_path / "README.md"
    shutil.copy(readme.README, copy)
    assert readme.update_readme(copy, tmp_path) == []


def test_unknown_block_is_one_sentence(tmp_path, capsys):
    with pytest.raises(ThesisError, match="Unknown README block .nope.; known: light-cnn-full, "):
        readme.render_block("nope", RESULTS)
    copy = tmp_path / "README.md"
    copy.write_text("<!-- nope: start -->\nx\n<!-- nope: end -->\n")
    assert readme.main(["--readme", str(copy), "--check"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_missing_readme_is_one_sentence(tmp_path, capsys):
    assert readme.main(["--readme", str(tmp_path / "README.md"), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("No README at ") and err.count("\n") == 1


@pytest.mark.parametrize("block", ["_vgg_cpu", "_autoattack_cpu"])
def test_blocks_of_unfinished_experiments_render_on_the_smoke_results(block, monkeypatch):
    """The blocks whose cpu results are still being computed, rendered from the committed smoke results."""
    real = readme.ExperimentResults
    monkeypatch.setattr(readme, "ExperimentResults", lambda name, profile, results: real(name, "smoke", results))
    text = getattr(readme, block)(RESULTS)
    res = real("vgg" if block == "_vgg_cpu" else "autoattack", "smoke", RESULTS)
    for m in res.result["models"]:
        assert f"| {m['activation']} |" in text
    assert "nan" not in text
    if block == "_vgg_cpu":
        assert "thesis's recorded one-cycle bounds" in text  # the second row set


def test_status_block_lists_every_experiment_and_adds_up_its_compute(tmp_path):
    from thesis_lib.experiments.registry import list_experiments
    from thesis_lib.experiments.runner import SUMMARY

    root = tmp_path / "results"
    shutil.copytree(RESULTS / "cpu" / "kwta_line", root / "cpu" / "kwta_line")  # one finished experiment
    shutil.copytree(RESULTS / "cpu" / "light_cnn", root / "cpu" / "light_cnn")  # and what it requires
    (root / "cpu" / "resnet20_at" / "training").mkdir(parents=True)
    (root / "cpu" / "resnet20_at" / "training" / "relu.json").write_text("{}")  # one started
    text = readme.render_block("status", root)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()[3:-2]}
    assert list(rows) == list_experiments()
    assert "started (1 training runs, 0 steps stored)" in rows["resnet20_at"]
    assert "done" in rows["kwta_line"] and "done" not in rows["vgg"]
    hours = sum(
        json.loads((root / "cpu" / e / SUMMARY).read_text())["compute_time_s"] for e in ("kwta_line", "light_cnn")
    )
    assert f"**{hours / 3600:.1f} h**" in text.splitlines()[-2]
    assert readme.render_block("status", tmp_path / "empty") is None  # nothing finished: the block is left alone
