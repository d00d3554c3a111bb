"""Checks of drawn figures that a reader would notice: panels without visible data, fonts too small to print.

`blank_axes(fig)` lists the visible panels in which nothing of the data can be seen: no line with
a marker or two neighbouring finite points inside the view, no scatter point, bar or image.
Reference artists (lines and bands in axis coordinates, e.g. `axvline`, `axvspan`) do not count.
A one-point history drawn as a line without a marker, the defect of a one-epoch training-curve
figure, is blank. `small_fonts(fig)` lists the texts smaller than `style.MIN_FONT_SIZE`.
"""

from __future__ import annotations

import numpy as np

from .style import MIN_FONT_SIZE

__all__ = ["blank_axes", "visible_data", "small_fonts"]


def _inside(ax, x, y) -> np.ndarray:
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return np.isfinite(x) & np.isfinite(y) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _line_visible(ax, line) -> bool:
    if not line.get_visible() or line.get_transform() != ax.transData:
        return False
    inside = _inside(ax, line.get_xdata(orig=False), line.get_ydata(orig=False))
    if not inside.any():
        return False
    if line.get_marker() not in (None, "", " ", "None", "none"):
        return True
    drawn = line.get_linestyle() not in ("", " ", "None", "none") and line.get_linewidth() > 0
    return drawn and bool((inside[1:] & inside[:-1]).any())  # a segment needs two neighbouring points


def visible_data(ax) -> int:
    """How many of `ax`'s data artists show something inside its view (lines, scatters, bars, images)."""
    n = sum(_line_visible(ax, ln) for ln in ax.get_lines())
    for c in ax.collections:
        if not c.get_visible():
            continue
        offsets = np.asarray(c.get_offsets())
        if len(offsets) and c.get_offset_transform() == ax.transData and _inside(ax, *offsets.T).any():
            n += 1
        elif len(c.get_paths()) and c.get_transform() == ax.transData:
            n += 1  # polygons in data coordinates (fill_between, ...)
    for p in ax.patches:
        if p.get_visible() and p.get_transform() != ax.transAxes and not _is_reference(ax, p):
            n += 1
    n += sum(im.get_visible() for im in ax.images)
    return n


def _is_reference(ax, patch) -> bool:
    """axvspan / axhspan bands: drawn in blended (axis) coordinates, background, not data."""
    return patch.get_transform() in (ax.get_xaxis_transform(), ax.get_yaxis_transform())


def blank_axes(fig) -> list:
    """The visible panels of `fig` (axis on) that show no data; legend-only panels (axis off) are skipped."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        if visible_data(ax) == 0 and not _twin_has_data(fig, ax):
            out.append(ax)
    return out


def _twin_has_data(fig, ax) -> bool:
    """A twin axes (twinx) shares the panel: data on either counts for both."""
    siblings = [a for a in fig.axes if a is not ax and a.bbox.bounds == ax.bbox.bounds]
    return any(visible_data(a) for a in siblings)


def small_fonts(fig, minimum: float = MIN_FONT_SIZE) -> list[str]:
    """Texts of `fig` (titles, labels, tick labels, legends, annotations) smaller than `minimum` points."""
    from matplotlib.text import Text

    fig.canvas.draw()
    found = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < minimum - 1e-9:
            found.append(f"{t.get_text()!r} ({t.get_fontsize():g} pt)")
    return found
