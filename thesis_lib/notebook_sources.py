"""The notebooks as reviewed source (sections 1.1 to 7): jupytext pairs, and headers and index from the registry.

Each thesis notebook is a pair in `notebooks/`: `NN_topic.py` (jupytext percent format: the source
that is reviewed and edited) and `NN_topic.ipynb` (the same cells with their stored outputs, what
nbval checks). `notebooks/jupytext.toml` pairs them, so Jupyter with jupytext keeps both in step;
`jupytext --sync notebooks/NN_topic.py` does it by hand, and the notebook runner
(`thesis_lib.reporting.notebooks`) executes the `.py` cells and writes both files.

What a notebook shows is read from the experiment registry (`thesis_lib.experiments.registry`):
its header's first line names the thesis sections of its experiments, `# NN · Title (thesis
section 5.1)`, and its header table lists every figure the registry names for them. The table of
`notebooks/README.md` is generated from the registry and the notebooks (`readme_table`).

    python -m thesis_lib.notebook_sources            # check pairs, headers, README table; exit 1 on a mismatch
    python -m thesis_lib.notebook_sources --write    # regenerate the README table from the registry

The test `tests/test_notebook_sources.py` runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FORMAT",
    "NOTEBOOKS_DIR",
    "OPTIONAL_OUTPUTS",
    "paired_source",
    "read_source",
    "write_source",
    "read_pair",
    "compare_pair",
    "check_pairs",
    "NotebookEntry",
    "section_phrase",
    "notebook_entries",
    "check_headers",
    "readme_table",
    "check_readme",
    "write_readme",
    "check_all",
    "main",
]

FORMAT = "py:percent"  # jupytext format of the reviewed sources
# The repository's notebooks/ (editable install), else ./notebooks.
NOTEBOOKS_DIR = next(
    (p for p in (Path(__file__).resolve().parents[1] / "notebooks", Path("notebooks")) if p.is_dir()), Path("notebooks")
)
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
SOURCE_GLOB = "[0-9][0-9]_*.py"
INJECTED = "injected-parameters"  # papermill's tag for the parameters it injected
# Outputs a notebook writes only from results beyond the smoke profile (a fresh checkout may lack them):
# the light CNNs' cpu-profile rows, and the KAF-reach analyses of committed (never smoke) weights.
OPTIONAL_OUTPUTS = frozenset(
    {"lipschitz_bounds_light_cnn_cpu", "autoattack_vs_pgd_light_cnn_cpu", "vgg_kaf_reach", "resnet56_fix_kaf_reach"}
)

# --------------------------------------------------------------------------------------------- pairs


def paired_source(notebook: str | os.PathLike) -> Path:
    """The `.py` of `NN_topic.ipynb` (whether or not it exists)."""
    return Path(notebook).with_suffix(".py")


def read_source(path: str | os.PathLike):
    """The cells of a percent-format `.py` as an nbformat notebook (no outputs, no notebook metadata)."""
    import jupytext

    return jupytext.read(path, fmt=FORMAT)


def write_source(nb, path: str | os.PathLike) -> str:
    """Write the cells of notebook `nb` as the percent-format `.py` at `path` (atomically); returns the text.

    Uses the `jupytext.toml` of the file's folder, so the text is what `jupytext --sync` writes.
    """
    import jupytext
    from jupytext.config import load_jupytext_config

    from .utils import atomic_write_text

    path = Path(path)
    config = load_jupytext_config(str(path.parent.resolve()))
    text = jupytext.writes(nb, FORMAT, config=config)
    atomic_write_text(path, text)
    return text


def read_pair(notebook: str | os.PathLike):
    """Notebook `NN_topic.ipynb` with its cells' text from `NN_topic.py` when that exists (the reviewed source).

    Outputs, cell ids and notebook metadata come from the `.ipynb` for every cell whose text is
    unchanged or edited in place (jupytext's matching, as `jupytext --sync` does); new cells have none.
    """
    import nbformat

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    source = paired_source(notebook)
    if not source.is_file():
        return nb
    from jupytext.combine import combine_inputs_with_outputs

    combined = combine_inputs_with_outputs(read_source(source), nb, FORMAT)
    combined.metadata = nb.metadata
    return combined


def _cell_key(cell) -> tuple[str, str, tuple[str, ...]]:
    return cell.cell_type, cell.source, tuple(cell.get("metadata", {}).get("tags", ()))


def _describe(cell) -> str:
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    return f"{cell.cell_type} cell {first[:60]!r}"


def compare_pair(notebook: str | os.PathLike, source: str | os.PathLike | None = None) -> list[str]:
    """How a `.ipynb` and its `.py` disagree: cell types, sources and tags, cell by cell ([] when they agree)."""
    import nbformat

    notebook = Path(notebook)
    source = Path(source) if source is not None else paired_source(notebook)
    if not source.is_file():
        return [f"{notebook.name}: no paired source {source.name} (run: jupytext --sync {notebook})"]
    if not notebook.is_file():
        return [f"{source.name}: no paired notebook {notebook.name} (run: jupytext --sync {source})"]
    cells = nbformat.read(notebook, as_version=4).cells
    text_cells = read_source(source).cells
    problems = []
    for i, (a, b) in enumerate(zip(cells, text_cells)):
        if _cell_key(a) == _cell_key(b):
            continue
        what = []
        if a.cell_type != b.cell_type:
            what.append(f"type {a.cell_type} vs {b.cell_type}")
        if a.source != b.source:
            diff = difflib.unified_diff(a.source.splitlines(), b.source.splitlines(), "ipynb", "py", n=0, lineterm="")
            lines = [ln for ln in list(diff)[2:] if not ln.startswith("@@")]
            what.append("source differs: " + (" | ".join(lines[:4]) or "in whitespace at the end"))
        if _cell_key(a)[2] != _cell_key(b)[2]:
            what.append(f"tags {list(_cell_key(a)[2])} vs {list(_cell_key(b)[2])}")
        problems.append(f"{notebook.name} / {source.name}, cell {i} ({_describe(a)}): " + "; ".join(what))
    if len(cells) != len(text_cells):
        problems.append(f"{notebook.name} has {len(cells)} cells, {source.name} {len(text_cells)}")
    return problems


def check_pairs(notebooks_dir: str | os.PathLike) -> list[str]:
    """Every `NN_topic.ipynb` has its `.py` and vice versa, and each pair agrees (see `compare_pair`)."""
    d = Path(notebooks_dir)
    problems = []
    if not (d / "jupytext.toml").is_file():
        problems.append(f"{d}/jupytext.toml missing: it pairs the notebooks with their .py sources")
    names = sorted({p.stem for p in d.glob(NOTEBOOK_GLOB)} | {p.stem for p in d.glob(SOURCE_GLOB)})
    if not names:
        problems.append(f"no notebooks {NOTEBOOK_GLOB} in {d}")
    for stem in names:
        problems += compare_pair(d / f"{stem}.ipynb", d / f"{stem}.py")
    return problems


# ------------------------------------------------------------------------------- headers and README

HEADER = re.compile(r"^# (?P<number>\d\d) · (?P<title>.+) \(thesis (?P<sections>.+)\)$")
SECTION_ID = re.compile(r"\d+(?:\.\d+)*")
HEADER_FIGURE = re.compile(r"figures/([A-Za-z0-9_.-]+?)\.(?:pdf|png|tex)\b")
TABLE_BEGIN = "<!-- notebook table: generated by `python -m thesis_lib.notebook_sources --write` -->"
TABLE_END = "<!-- end of notebook table -->"


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(p) for p in section.split("."))


def section_phrase(sections) -> str:
    """Thesis sections in words: ["2.4"] -> "section 2.4", ["1.1", "2.2"] -> "sections 1.1 and 2.2",
    ["4"] -> "chapter 4", ["4.1", "6"] -> "section 4.1 and chapter 6"."""
    ids = sorted(set(sections), key=_section_key)
    if not ids:
        raise ValueError("no thesis sections")

    def join(words: list[str]) -> str:
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    chapters = ["." not in s for s in ids]
    if all(chapters) or not any(chapters):
        kind = "chapter" if all(chapters) else "section"
        return f"{kind}{'s' if len(ids) > 1 else ''} {join(ids)}"
    return join([f"{'chapter' if c else 'section'} {s}" for s, c in zip(ids, chapters)])


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook as the registry and its sources describe it."""

    stem: str  # e.g. "07_vgg_results"
    number: str  # "07"
    title: str  # from the header's first line
    header_sections: str  # the header's "(thesis ...)" words
    sections: tuple[str, ...]  # from the registry (for a notebook without experiments: from the header)
    experiments: tuple[str, ...]  # registry experiments shown by the notebook, in the order it ensures them
    requires: dict  # experiment -> requirements shown by other notebooks
    figures: dict  # figure/table name -> {"figure", "table"}: what the notebook saves, then the registry's
    registry_figures: tuple[str, ...]
    ensured: tuple[str, ...]  # names passed to ensure("...") or ensure_supplementary("...") in the notebook
    header: str  # the whole first markdown cell
    reads_results: bool = False  # runs no experiment but reads stored results (uses `results_dir`)


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _reads_results(nb) -> bool:
    """Whether a code cell other than the parameters cells uses `results_dir` (the notebook reads stored results)."""
    cells = [
        c for c in nb.cells if c.cell_type == "code" and not set(c.metadata.get("tags", [])) & {"parameters", INJECTED}
    ]
    return any(re.search(r"\bresults_dir\b", c.source) for c in cells)


def _saved_names(sources: list[str]) -> dict:
    """Names passed as string literals to save_figure / save_table, in order of appearance."""
    found: dict = {}
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:  # a cell with IPython magics: nothing of ours to find in it
            continue
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
            kind = {"save_figure": "figure", "save_table": "table"}.get(call.func.id)
            if kind and len(call.args) > 1 and isinstance(call.args[1], ast.Constant):
                found.setdefault(str(call.args[1].value), set()).add(kind)
    return found


def notebook_entries(notebooks_dir: str | os.PathLike) -> list[NotebookEntry]:
    """Every notebook of `notebooks_dir` (thesis order) with what the registry says about it."""
    import nbformat

    from .experiments.registry import get_experiment, list_experiments

    registry = [get_experiment(n) for n in list_experiments()]
    entries = []
    for path in sorted(Path(notebooks_dir).glob(NOTEBOOK_GLOB)):
        nb = nbformat.read(path, as_version=4)
        header = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
        m = HEADER.match(header.splitlines()[0] if header else "")
        ensured = tuple(dict.fromkeys(re.findall(r'\bensure(?:_supplementary)?\("([a-z0-9_]+)"', "\n".join(_code(nb)))))
        shown = [e for e in registry if e.notebook == path.stem]
        order = {name: i for i, name in enumerate(ensured)}
        shown.sort(key=lambda e: order.get(e.name, len(order)))
        names = [e.name for e in shown]
        sections = [s for e in shown for s in e.section.split("/")]
        if not sections and m:
            sections = SECTION_ID.findall(m["sections"])
        figures = _saved_names(_code(nb))
        registry_figures = tuple(f for e in shown for f in e.figures)
        for f in registry_figures:
            figures.setdefault(f, {"figure"})
        entries.append(
            NotebookEntry(
                stem=path.stem,
                number=path.stem[:2],
                title=m["title"] if m else "",
                header_sections=m["sections"] if m else "",
                sections=tuple(sorted(set(sections), key=_section_key)),
                experiments=tuple(names),
                requires={e.name: tuple(r for r in e.requires if r not in names) for e in shown},
                figures=figures,
                registry_figures=registry_figures,
                ensured=ensured,
                header=header,
                reads_results=not names and _reads_results(nb),
            )
        )
    return entries


def check_headers(notebooks_dir: str | os.PathLike, entries: list[NotebookEntry] | None = None) -> list[str]:
    """Each notebook's header agrees with the registry: its sections, its figures, the experiments it ensures."""
    from .experiments.registry import get_experiment

    problems = []
    for e in entries if entries is not None else notebook_entries(notebooks_dir):
        if not e.title:
            problems.append(f"{e.stem}: the first cell must start with '# {e.number} · Title (thesis section ...)'")
            continue
        if e.experiments and e.header_sections != section_phrase(e.sections):
            want = section_phrase(e.sections)
            problems.append(f"{e.stem}: header says 'thesis {e.header_sections}', the registry 'thesis {want}'")
        listed = set(HEADER_FIGURE.findall(e.header))
        missing = [f for f in e.registry_figures if f not in listed]
        if missing:
            problems.append(f"{e.stem}: header table lacks the registry's figures {missing}")
        for name in e.ensured:
            try:
                owner = get_experiment(name).notebook
            except ValueError:
                problems.append(f"{e.stem}: ensures unknown experiment {name!r}")
                continue
            if owner != e.stem:
                problems.append(f"{e.stem}: ensures {name!r}, which the registry shows in {owner}")
        not_shown = [n for n in e.experiments if n not in e.ensured]
        if not_shown:
            problems.append(f"{e.stem}: the registry's experiments {not_shown} are never ensured here")
    return problems


def _figures_cell(figures: dict) -> str:
    out = []
    for name, kinds in figures.items():
        if kinds == {"table"}:
            out.append(f"`{name}.tex`")
        elif "table" in kinds:
            out.append(f"`{name}` (+ `.tex`)")
        else:
            out.append(f"`{name}`")
    return ", ".join(out)


def readme_table(entries: list[NotebookEntry]) -> str:
    """The README's table (markdown): thesis sections, notebook, experiments and requirements, figures and tables."""
    lines = [
        "| thesis | notebook | experiments (`results/<profile>/...`) | figures / tables (`figures/...`) |",
        "| --- | --- | --- | --- |",
    ]
    for e in entries:
        exps = ", ".join(
            f"`{n}`" + (f" (needs {', '.join(f'`{r}`' for r in e.requires[n])})" if e.requires[n] else "")
            for n in e.experiments
        )
        thesis = f"{' / '.join(e.sections)} {e.title}".strip()
        if not exps:
            exps = "none run (reads the stored results)" if e.reads_results else "none (analytic)"
        lines.append(f"| {thesis} | `{e.stem}` | {exps} | {_figures_cell(e.figures)} |")
    return "\n".join(lines)


def _block(text: str) -> tuple[int, int] | None:
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < start:
        return None
    return start + len(TABLE_BEGIN), end


def check_readme(readme: str | os.PathLike, notebooks_dir: str | os.PathLike, entries=None) -> list[str]:
    """The README's generated table is what `readme_table` gives for the current registry and notebooks."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    span = _block(text)
    if span is None:
        return [f"{readme}: no generated notebook table (markers {TABLE_BEGIN!r} ... {TABLE_END!r})"]
    want = readme_table(entries if entries is not None else notebook_entries(notebooks_dir))
    have = text[span[0] : span[1]].strip()
    if have == want:
        return []
    diff = list(difflib.unified_diff(have.splitlines(), want.splitlines(), "README", "registry", lineterm="", n=0))
    head = f"{readme.name}: notebook table differs from the registry (python -m thesis_lib.notebook_sources --write):"
    return [head] + ["    " + ln for ln in diff[2:] if not ln.startswith("@@")]


def write_readme(readme: str | os.PathLike, notebooks_dir: str | os.PathLike) -> bool:
    """Regenerate the README's table between its markers; returns whether the file changed."""
    from .utils import atomic_write_text

    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    span = _block(text)
    if span is None:
        raise ValueError(f"{readme}: no markers {TABLE_BEGIN!r} ... {TABLE_END!r} to write the table between")
    new = text[: span[0]] + "\n" + readme_table(notebook_entries(notebooks_dir)) + "\n" + text[span[1] :]
    if new == text:
        return False
    atomic_write_text(readme, new)
    return True


def check_all(notebooks_dir: str | os.PathLike, readme: str | os.PathLike | None = None) -> list[str]:
    """Pairs, headers and the README table (`notebooks_dir/README.md` unless given); [] when all agree."""
    d = Path(notebooks_dir)
    problems = check_pairs(d)
    entries = notebook_entries(d)
    problems += check_headers(d, entries)
    problems += check_readme(readme if readme is not None else d / "README.md", d, entries)
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m thesis_lib.notebook_sources",
        description="Check that the notebooks' .py sources, headers and README table agree with the registry.",
    )
    p.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help="default: the repository's notebooks/")
    p.add_argument("--write", action="store_true", help="regenerate the README table, then check")
    args = p.parse_args(argv)
    d = Path(args.notebooks_dir)
    if args.write:
        changed = write_readme(d / "README.md", d)
        print(f"{d / 'README.md'}: {'table regenerated' if changed else 'table already current'}")
    problems = check_all(d)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(f"{d}: every notebook has its .py, and headers and README agree with the registry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
