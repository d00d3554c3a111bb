"""Reporting: everything that reads the stored results to produce the thesis's tables, verdicts and stamps.

The layers of `thesis_lib`, lowest first (a layer imports only from the layers below it, never the
other way, not even inside a function; `tests/test_layering.py` checks it):

1. `utils`, `precision`, `allocator`, `activations`, `models`, `data`, `training`, `attacks`: the building blocks;
2. `analysis` (computations and statistics), `plotting` (draws the data it is given, reads no
   results) and `weights` (safetensors files and model cards);
3. `experiments`: the registry, the runner and one module per experiment (they compute and store
   results);
4. `reporting` (this package) and `notebook_sources`: reading the stored results back;
5. `notebook` (the first cell of every notebook), `cli` and the package itself: entry points.

The modules of this package, one concept each:

- `observations`: the chapter-4 observations on the light CNNs, with their intervals;
- `chapter5`: the chapter-5 tables and verdicts (sections 5.1 to 5.3) and the ResNet-56 fix (chapter 6);
- `claims`: every claim of the thesis with its verdict from the stored results (notebook 11);
- `stamp`: the profile stamp of a figure or table, from the results it shows;
- `outputs`: what the notebooks save and show (figures, LaTeX tables, provenance);
- `pretrained`: the committed trained networks by experiment name (`load_pretrained`);
- `kaf_reach`: the KAF reach of the committed networks (section 2.4);
- `readme`: the README's result blocks (`python -m thesis_lib.reporting.readme`);
- `notebooks`: executes the notebooks, which regenerates every figure and table
  (`python -m thesis_lib.reporting.notebooks`).

Importing this package imports none of them.
"""

__all__ = [
    "observations",
    "chapter5",
    "claims",
    "stamp",
    "outputs",
    "pretrained",
    "kaf_reach",
    "readme",
    "notebooks",
]
