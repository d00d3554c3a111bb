"""Profile stamps on figures and tables: every saved figure and table says which profile (scale) produced it.

A smoke-profile figure looks like a result but is not one (networks at chance accuracy after one
epoch on a few hundred images), so each figure carries a small line of text over it, and the same
text in its file metadata (PNG "Description", PDF "Subject"); each LaTeX table carries it in its
caption. The text is built from the results the figure shows, never typed by hand
(`thesis_lib.reporting.stamp.profile_stamp`, which reads the stored results); this module only draws
and reads it:

    from thesis_lib.reporting.stamp import profile_stamp
    save_figure(fig, "vgg_training_curves", figures_dir, stamp=profile_stamp(res))
    # "smoke profile: not a result (1 epoch, attacks on 32 images)"
    # "full profile (protocol, 20 epochs, attacks on 1000 images)"

`ANALYTIC` is the stamp of analytic figures (nothing trained). `stamp_figure(fig, text)` draws a
stamp, `read_stamp(path)` reads it back from a saved PNG or PDF, `tex_stamp(path)` from a table.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "ANALYTIC",
    "STAMP_GID",
    "stamp_figure",
    "figure_stamp",
    "is_stamp",
    "read_stamp",
    "tex_stamp",
    "caption_with_stamp",
]

ANALYTIC = "analytic: computed from the formulas, nothing trained"
STAMP_GID = "thesis-profile-stamp"  # gid of the stamp's Text artist (one per figure)
STAMP_FONTSIZE = 8  # points: the smallest font of the thesis figures
STAMP_COLOR = "#666666"

# Every stamp starts with one of these (checked by `is_stamp` and the tests of the figures).
_STAMP_RE = re.compile(r"\b(?:(?:smoke|cpu|full) profile|analytic:)")


def is_stamp(text) -> bool:
    """True when `text` holds a profile stamp (as built by `profile_stamp`)."""
    return isinstance(text, str) and bool(_STAMP_RE.search(text))


def figure_stamp(fig) -> str | None:
    """The stamp text drawn on `fig` by `stamp_figure` (None when it has none)."""
    for t in fig.texts:
        if t.get_gid() == STAMP_GID:
            return t.get_text()
    return None


def _outside_legend_sides(fig) -> set:
    """Sides ("upper", "lower", ...) of the figure legends placed outside the panels (loc="outside ...")."""
    return {getattr(leg, "_outside_loc", None) for leg in fig.legends} - {None}


def stamp_figure(fig, text: str):
    """Write `text` small and grey above the top right corner of `fig`'s content (replacing an earlier stamp).

    The figure is drawn first (its layout final), then the stamp goes just above everything it
    holds (titles included), so it never covers a panel, a label or a legend; a figure saved with
    a tight bounding box grows by the stamp's line. A figure legend placed outside the panels is
    anchored to the figure's edge and would follow that edge when the saved area grows, so with a
    legend outside at the top the stamp goes under the content instead. Returns the Text.
    """
    from matplotlib.transforms import offset_copy

    if not isinstance(text, str) or not text.strip():
        raise ValueError("a figure stamp must be a non-empty string (see profile_stamp)")
    for t in list(fig.texts):
        if t.get_gid() == STAMP_GID:
            t.remove()
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    top = "upper" not in _outside_legend_sides(fig)
    t = fig.text(
        box.x1 / width,  # figure fractions: savefig's tight bounding box shifts transFigure, not inches
        (box.y1 if top else box.y0) / height,
        text,
        ha="right",
        va="bottom" if top else "top",
        fontsize=STAMP_FONTSIZE,
        color=STAMP_COLOR,
        style="italic",
        transform=offset_copy(fig.transFigure, fig=fig, y=2 if top else -5, units="points"),
    )
    t.set_gid(STAMP_GID)  # (constrained layout ignores figure texts; the tight bounding box of savefig keeps it)
    return t


def _pdf_string(raw: bytes) -> str:
    if raw.startswith(b"<"):  # hex string (matplotlib writes non-ASCII text as UTF-16BE)
        data = bytes.fromhex(raw[1:-1].decode("ascii"))
        return data.decode("utf-16") if data.startswith(b"\xfe\xff") else data.decode("latin-1")
    body = raw[1:-1]
    body = re.sub(rb"\\([()\\])", rb"\1", body)
    return body.decode("latin-1")


def read_stamp(path: str | os.PathLike) -> str | None:
    """The stamp stored in a saved figure's metadata (PNG "Description", PDF "Subject"); None if absent."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            return im.text.get("Description") if hasattr(im, "text") else im.info.get("Description")
    if path.suffix.lower() == ".pdf":
        m = re.search(rb"/Subject\s*(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>)", path.read_bytes())
        return _pdf_string(m.group(1)) if m else None
    raise ValueError(f"read_stamp reads .png and .pdf files, not {path.name}")


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_"}
_TEX_SPECIAL.update({"{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"})


def caption_with_stamp(caption: str | None, stamp: str) -> str:
    """`caption` followed by the stamp in brackets (LaTeX-escaped), or the stamp alone."""
    escaped = "".join(_TEX_SPECIAL.get(c, c) for c in stamp)
    return f"{caption.rstrip()} [{escaped}]" if caption else f"[{escaped}]"


def tex_stamp(path: str | os.PathLike) -> str | None:
    """The stamp in the caption of a table written by `save_table` (None when the caption has none)."""
    text = Path(path).read_text(encoding="utf-8")
    m = re.search(r"\\caption\{(.*)\}\s*$", text, flags=re.MULTILINE)
    if not m:
        return None
    found = re.findall(r"\[([^\[\]]*)\]", m.group(1))
    stamps = [s for s in found if is_stamp(s)]
    return stamps[-1] if stamps else None
