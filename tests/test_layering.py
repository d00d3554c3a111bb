"""The layers of thesis_lib: no import cycle between packages or modules, and no lower layer importing a higher one.

Imports are read from the source with `ast`, those inside functions included: a lazy import is still a
dependency a reader has to follow. `from . import x` counts as an import of the package (its `__init__`)
as well as of `x`, since that is how the line reads. The layers, lowest first (see
`thesis_lib/reporting/__init__.py`):

1. building blocks: utils, precision, allocator, activations, models, data, training, attacks;
2. analysis (computations and statistics), plotting (draws given data) and weights (safetensors + model cards);
3. experiments (the registry, the runner and one module per experiment);
4. reporting (everything that reads stored results back) and notebook_sources;
5. entry points: the package itself, `__main__`, `cli` and `notebook`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "thesis_lib"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

LAYER_NAMES = {
    1: "building blocks",
    2: "analysis, plotting and weights",
    3: "experiments",
    4: "reporting",
    5: "entry points",
}
LAYERS = {
    "thesis_lib.utils": 1,
    "thesis_lib.precision": 1,
    "thesis_lib.allocator": 1,
    "thesis_lib.activations": 1,
    "thesis_lib.models": 1,
    "thesis_lib.data": 1,
    "thesis_lib.training": 1,
    "thesis_lib.attacks": 1,
    "thesis_lib.analysis": 2,
    "thesis_lib.plotting": 2,
    "thesis_lib.weights": 2,
    "thesis_lib.experiments": 3,
    "thesis_lib.reporting": 4,
    "thesis_lib.notebook_sources": 4,
    "thesis_lib": 5,
    "thesis_lib.__main__": 5,
    "thesis_lib.cli": 5,
    "thesis_lib.notebook": 5,
}


# ------------------------------------------------------------------------------------------- the graph
def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `root` (a package's `__init__` is the package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_edges(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {module of the package it imports: line of the first such import}, at any depth of the code."""
    edges: dict[str, dict[str, int]] = {m: {} for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    edges[name][target] = min(edges[name].get(target, node.lineno), node.lineno)
    return edges


def unit(module: str) -> str:
    """The top-level package or module of thesis_lib that `module` belongs to (the package itself for itself)."""
    return ".".join(module.split(".")[:2])


def unit_edges(edges: dict[str, dict[str, int]]) -> dict[str, dict[str, tuple[str, str, int]]]:
    """unit -> {unit it imports: (importing module, imported module, line) of one such import}."""
    out: dict[str, dict[str, tuple[str, str, int]]] = {}
    for src, targets in edges.items():
        for dst, line in targets.items():
            if unit(src) != unit(dst):
                out.setdefault(unit(src), {}).setdefault(unit(dst), (src, dst, line))
    return out


def strongly_connected(graph: dict[str, dict]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycle_path(graph: dict[str, dict], component: list[str]) -> list[str]:
    """One cycle through the first node of `component`: [a, b, ..., a] (breadth-first, so a shortest one)."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    raise AssertionError(f"{component} is not a cycle")


def cycle_sentence(graph: dict[str, dict], component: list[str], lines) -> str:
    path = cycle_path(graph, component)
    steps = ", ".join(f"{a} imports {b} ({lines(a, b)})" for a, b in zip(path, path[1:]))
    return f"import cycle {' -> '.join(path)}: {steps}."


def layer_violations(edges: dict[str, dict[str, int]], layers: dict[str, int], modules: dict[str, Path]) -> list[str]:
    """One sentence per import from a lower layer to a higher one."""
    out = []
    for src in sorted(edges):
        for dst, line in sorted(edges[src].items()):
            a, b = layers[unit(src)], layers[unit(dst)]
            if a < b:
                where = f"{modules[src].relative_to(modules[src].parents[len(src.split('.')) - 1])}:{line}"
                out.append(
                    f"{src} (layer {a}, {LAYER_NAMES[a]}) imports {dst} (layer {b}, {LAYER_NAMES[b]}) at {where}: "
                    "a lower layer must not import a higher one, not even inside a function."
                )
    return out


# ------------------------------------------------------------------------------------------- the checks
def check(root: Path, package: str, layers: dict[str, int]) -> list[str]:
    """Every problem of the package at `root`, one sentence each ([] when it is cleanly layered)."""
    modules = module_files(root, package)
    problems = [
        f"{m} is in no layer: give {unit(m)} a layer in LAYERS (tests/test_layering.py)."
        for m in sorted(modules)
        if unit(m) not in layers
    ]
    if problems:
        return problems
    edges = import_edges(modules)
    units = unit_edges(edges)
    for comp in strongly_connected({u: dict(d) for u, d in units.items()}):
        problems.append(
            "between packages: "
            + cycle_sentence(
                units, comp, lambda a, b: f"{units[a][b][0]} imports {units[a][b][1]}, line {units[a][b][2]}"
            )
        )
    for comp in strongly_connected(edges):
        problems.append("between modules: " + cycle_sentence(edges, comp, lambda a, b: f"line {edges[a][b]}"))
    return problems + layer_violations(edges, layers, modules)


def test_no_import_cycle_and_no_import_from_a_lower_layer_to_a_higher_one():
    problems = check(ROOT, PACKAGE, LAYERS)
    assert not problems, "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.fixture
def toy(tmp_path):
    """A small package in three layers, cleanly layered: base <- mid <- top."""
    return _write(
        tmp_path,
        {
            "__init__.py": "",
            "base/__init__.py": "from .core import f\n",
            "base/core.py": "def f():\n    return 1\n",
            "mid.py": "from .base import f\n",
            "top/__init__.py": "",
            "top/report.py": "def g():\n    from ..mid import f\n    return f()\n",
        },
    )


TOY_LAYERS = {"pkg": 3, "pkg.base": 1, "pkg.mid": 2, "pkg.top": 3}


def test_the_check_passes_a_layered_package(toy):
    assert check(toy, "pkg", TOY_LAYERS) == []


def test_the_check_names_an_import_from_a_lower_layer_to_a_higher_one_even_inside_a_function(toy):
    (toy / "base" / "core.py").write_text("def f():\n    from ..top import report\n    return report\n")
    problems = check(toy, "pkg", TOY_LAYERS)
    assert any(
        p.startswith("pkg.base.core (layer 1, building blocks) imports pkg.top (layer 3, experiments) at ")
        and "core.py:2" in p
        for p in problems
    ), problems


def test_the_check_names_a_cycle_between_modules_and_between_packages(toy):
    (toy / "base" / "core.py").write_text("from .. import mid\n\n\ndef f():\n    return 1\n")
    problems = check(toy, "pkg", {**TOY_LAYERS, "pkg.mid": 1})
    assert (
        "between packages: import cycle pkg.base -> pkg.mid -> pkg.base: pkg.base imports pkg.mid "
        "(pkg.base.core imports pkg.mid, line 1), pkg.mid imports pkg.base (pkg.mid imports pkg.base, line 1)."
    ) in problems, problems
    assert (
        "between modules: import cycle pkg.base -> pkg.base.core -> pkg.mid -> pkg.base: pkg.base imports "
        "pkg.base.core (line 1), pkg.base.core imports pkg.mid (line 1), pkg.mid imports pkg.base (line 1)."
    ) in problems, problems


def test_from_dot_import_counts_as_importing_the_package(toy):
    """`from . import x` in a module that its package's __init__ imports is a cycle through the __init__."""
    (toy / "base" / "core.py").write_text("from . import other\n\n\ndef f():\n    return other\n")
    (toy / "base" / "other.py").write_text("")
    problems = check(toy, "pkg", TOY_LAYERS)
    assert problems == [
        "between modules: import cycle pkg.base -> pkg.base.core -> pkg.base: "
        "pkg.base imports pkg.base.core (line 1), pkg.base.core imports pkg.base (line 1)."
    ], problems


def test_the_check_names_a_module_in_no_layer(toy):
    (toy / "extra.py").write_text("")
    assert check(toy, "pkg", TOY_LAYERS) == [
        "pkg.extra is in no layer: give pkg.extra a layer in LAYERS (tests/test_layering.py)."
    ]
