"""One fixed figure style for the thesis, and reproducible figure files.

`use_style()` applies a seaborn-like "whitegrid" look with fixed font sizes (no seaborn import,
no system fonts: DejaVu Sans ships with matplotlib, so every machine draws the same glyphs).
`savefig(fig, name)` writes `<figures_dir>/<name>.pdf` and `.png` with no timestamps, no software
version strings and a fixed dpi, atomically, so that re-running a notebook leaves the files
byte-identical (reproducible builds in the sense of SOURCE_DATE_EPOCH; git sees no change).
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
from cycler import cycler

from ..utils import atomic_write_bytes

__all__ = [
    "STYLE",
    "PALETTE",
    "DPI",
    "TEXT_WIDTH",
    "MIN_FONT_SIZE",
    "use_style",
    "style_context",
    "savefig",
    "activation_color",
    "activation_marker",
    "activation_line",
    "is_kaf_name",
    "styled",
]

# seaborn's "deep" palette, hard-coded so the colours do not depend on the seaborn version.
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")
DPI = 200  # PNG resolution (dots per inch); fixed so PNG bytes do not depend on rcParams
# A thesis page's text width (inches, A4 with ~2.5 cm margins): figures are drawn at most this wide,
# so at their printed size no font is below MIN_FONT_SIZE points.
TEXT_WIDTH = 6.3
MIN_FONT_SIZE = 8

STYLE: dict = {
    "font.family": "DejaVu Sans",  # bundled with matplotlib: identical on every machine
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 11,
    "figure.labelsize": 9,  # fig.supxlabel / supylabel, as the axes' labels
    "figure.figsize": (TEXT_WIDTH, 3.4),  # inches: an A4 text width
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "figure.constrained_layout.use": True,
    "axes.facecolor": "white",
    "axes.edgecolor": "#444444",
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 6,
    "legend.frameon": False,
    "image.cmap": "viridis",
    "text.usetex": False,
    "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42,  # embed TrueType: text stays selectable in the thesis PDF
    "ps.fonttype": 42,
    "svg.hashsalt": "thesis",  # deterministic SVG ids, should anyone save SVG
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
}

# Fixed colours per activation, shared by every figure (same colour = same activation).
_ACT_ORDER = (
    "relu",
    "elu",
    "swish",
    "leaky_relu",
    "kwta",
    "kaf",
    "kaf_relu",
    "kaf_elu",
    "kaf_swish",
    "kaf_free",
    "gelu",
    "softplus",
    "sigmoid",
    "tanh",
)
_EXTRA = ("#1B9E77", "#D95F02", "#7570B3", "#E7298A")


def is_kaf_name(name: str) -> bool:
    """True for the trainable kernel activations (kaf, kaf_relu, kaf_elu, kaf_swish, kaf_free)."""
    return str(name).lower().startswith("kaf")


def activation_color(name: str) -> str:
    """The colour of activation `name` in every figure (unknown names get a deterministic colour)."""
    name = str(name).lower()
    colors = PALETTE + _EXTRA
    if name in _ACT_ORDER:
        return colors[_ACT_ORDER.index(name) % len(colors)]
    return colors[sum(name.encode()) % len(colors)]  # stable across processes (no hash())


def activation_marker(name: str) -> str:
    """Thesis convention: fixed activations are diamonds, KAFs are crosses."""
    return "X" if is_kaf_name(name) else "D"


def activation_line(name: str) -> dict:
    """Line keywords of activation `name` in curves over a shared axis: its colour and marker (4 pt), dashed
    for the KAFs (so that coinciding curves stay visible)."""
    return dict(
        marker=activation_marker(name), ms=4, color=activation_color(name), ls="--" if is_kaf_name(name) else "-"
    )


def use_style() -> dict:
    """Apply the thesis style to matplotlib's global rcParams; returns the applied settings.

    Safe in headless runs (does not touch the backend) and idempotent.
    """
    matplotlib.rcParams.update(STYLE)
    return dict(STYLE)


@contextmanager
def style_context() -> Iterator[None]:
    """The thesis style for the duration of a `with` block (global rcParams restored afterwards)."""
    with matplotlib.rc_context(STYLE):
        yield


def styled(fn):
    """Decorator: build the figure inside `style_context()` so it looks the same with or without use_style()."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style_context():
            return fn(*args, **kwargs)

    return wrapper


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def savefig(
    fig,
    name: str,
    figures_dir: str | Path = "figures",
    formats: tuple[str, ...] = ("pdf", "png"),
    dpi: int = DPI,
    stamp: str | None = None,
) -> list[Path]:
    """Write `fig` as `<figures_dir>/<name>.pdf` and `.png`; returns the paths written.

    Reproducible: PDF without CreationDate/ModDate/Producer/Creator, PNG without Software/date
    chunks, fixed dpi, tight bounding box; each file is rendered in memory and then written
    atomically (temporary file + rename), so a crash never leaves a half-written figure.
    The figure stays open (call `plt.close(fig)` when done).

    stamp: the profile stamp (`stamp.profile_stamp`): drawn over the figure (`stamp_figure`) and
    stored in the files' metadata (PNG "Description", PDF "Subject"). None: the stamp already
    drawn on the figure, if any, goes into the metadata.
    """
    from .stamp import figure_stamp, stamp_figure

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"figure name {name!r} must be a plain file stem of letters, digits, '.', '_' or '-'")
    bad = [f for f in formats if f not in ("pdf", "png")]
    if bad:
        raise ValueError(f"unsupported figure format(s) {bad}; use 'pdf' and/or 'png'")
    out = Path(figures_dir)
    if stamp is not None:
        stamp_figure(fig, stamp)
    stamp = figure_stamp(fig)
    metadata = {
        "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
        "png": {"Software": None},
    }
    if stamp:
        metadata["pdf"]["Subject"] = stamp
        metadata["png"]["Description"] = stamp
    paths = []
    # fontTools warns about the zeroed font timestamps that make the PDF reproducible: silence it.
    font_log = logging.getLogger("fontTools")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with matplotlib.rc_context({"svg.hashsalt": "thesis", "pdf.compression": 6, "pdf.fonttype": 42}):
            for fmt in formats:
                buf = io.BytesIO()
                fig.savefig(
                    buf,
                    format=fmt,
                    dpi=dpi,
                    metadata=metadata[fmt],
                    bbox_inches="tight",
                    pad_inches=0.03,
                    facecolor="white",
                )
                path = out / f"{name}.{fmt}"
                atomic_write_bytes(path, buf.getvalue())
                paths.append(path)
    finally:
        font_log.setLevel(level)
    return paths
