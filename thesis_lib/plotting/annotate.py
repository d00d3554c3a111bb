"""Two annotation helpers the figures share: point labels that do not overlap, and values a log axis can not show.

`label_points(ax, xs, ys, labels)` labels scatter points with adjustText (iterative repulsion,
deterministic: a fixed number of iterations, never a time limit) and then checks that no two labels
overlap; should any still touch, or adjustText be missing, a deterministic placement takes over
(each label tries eight positions around its point, nearest first, and takes the first that
overlaps no earlier label, no point and stays inside the axes).

`mark_off_scale(ax, pos, values, axis="y")` draws the values a logarithmic axis drops silently
(zeros, negatives, NaN and inf) as markers on the axis edge: zeros and -inf at the low end, +inf
at the high end, NaN as a cross at the high end, so that a missing point is visibly missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .style import MIN_FONT_SIZE

__all__ = ["label_points", "mark_off_scale", "off_scale_handles", "texts_overlap", "OFF_SCALE_COLOR"]

OFF_SCALE_COLOR = "#C44E52"  # the thesis palette's red: values outside a log axis
_ITERATIONS = 400  # adjustText iterations (a fixed count keeps the files reproducible)


def _boxes(ax, artists, pad: float = 1.0):
    renderer = ax.figure.canvas.get_renderer()
    out = []
    for a in artists:
        bb = a.get_window_extent(renderer)
        out.append((bb.x0 - pad, bb.y0 - pad, bb.x1 + pad, bb.y1 + pad))
    return out


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def texts_overlap(ax, texts) -> list[tuple[int, int]]:
    """Pairs (i, j) of `texts` whose drawn boxes overlap (after a draw of the figure)."""
    ax.figure.canvas.draw()
    boxes = _boxes(ax, texts, pad=0.0)
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if _overlap(boxes[i], boxes[j])]


# Offsets (in points) tried by the deterministic placement, nearest first: eight directions on rings
# of growing radius (right / left offsets are measured from the label's near edge).
_OFFSETS = tuple(
    (round(dx * r, 1), round(dy * r - (3 if dy <= 0 else 0), 1))
    for r in (1.0, 2.2, 3.4, 4.6, 5.8)
    for dx, dy in ((6, 5), (-6, 5), (6, -8), (-6, -8), (0, 9), (0, -12), (10, -1), (-10, -1))
)


def _greedy(ax, xs, ys, texts, marker_pts: float) -> None:
    """Deterministic placement: each label takes the first of `_OFFSETS` free of earlier labels and points."""
    from matplotlib.transforms import offset_copy

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    half = marker_pts * fig.dpi / 72.0 / 2
    taken = [(px - half, py - half, px + half, py + half) for px, py in pts]
    axbox = ax.get_window_extent(renderer)
    for k, t in enumerate(texts):
        best = None
        for dx, dy in _OFFSETS:
            t.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
            t.set_va("baseline")
            t.set_position((xs[k], ys[k]))
            t.set_transform(offset_copy(ax.transData, fig=fig, x=dx, y=dy, units="points"))
            bb = t.get_window_extent(renderer)
            box = (bb.x0 - 1, bb.y0 - 1, bb.x1 + 1, bb.y1 + 1)
            inside = bb.x0 >= axbox.x0 and bb.x1 <= axbox.x1 and bb.y0 >= axbox.y0 and bb.y1 <= axbox.y1
            clashes = sum(_overlap(box, o) for o in taken)
            if inside and not clashes:
                best = None
                break
            if inside and (best is None or clashes < best[0]):
                best = (clashes, dx, dy)
        if best is not None:  # no free place: the least crowded one inside the axes
            _, dx, dy = best
            t.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
            t.set_transform(offset_copy(ax.transData, fig=fig, x=dx, y=dy, units="points"))
            bb = t.get_window_extent(renderer)
            box = (bb.x0 - 1, bb.y0 - 1, bb.x1 + 1, bb.y1 + 1)
        taken.append(box)


def label_points(
    ax,
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    fontsize: float = MIN_FONT_SIZE,
    marker_pts: float = 9.0,
    use_adjusttext: bool = True,
) -> list:
    """Label each point (xs[i], ys[i]) with labels[i] so that no two labels overlap; returns the Text artists.

    Call it last, once the axes' limits, legend and titles are final (labels are placed in display
    space). Labels that adjustText moved away from their point get a thin grey leader line.
    marker_pts: the size of the points' markers (points), kept free of labels.
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if not (len(xs) == len(ys) == len(labels)):
        raise ValueError(f"need one label per point, got {len(xs)} x, {len(ys)} y and {len(labels)} labels")
    if not len(xs):
        return []
    adjust_text = None
    if use_adjusttext:
        try:
            from adjustText import adjust_text
        except ImportError:  # the deterministic placement does the job
            adjust_text = None
    texts = [ax.text(x, y, str(lab), fontsize=fontsize, zorder=4) for x, y, lab in zip(xs, ys, labels)]
    if adjust_text is not None:
        from matplotlib.transforms import Bbox

        ax.figure.canvas.draw()
        half = marker_pts * ax.figure.dpi / 72.0 / 2
        to_data = ax.transData.inverted()
        markers = [
            Bbox(to_data.transform([[px - half, py - half], [px + half, py + half]]))
            for px, py in ax.transData.transform(np.column_stack([xs, ys]))
        ]
        _, lines = adjust_text(
            texts,
            x=xs,
            y=ys,
            ax=ax,
            objects=markers,
            iter_lim=_ITERATIONS,
            expand=(1.15, 1.35),
            force_static=(0.3, 0.5),
            ensure_inside_axes=True,
            arrowprops=dict(arrowstyle="-", color="#888888", lw=0.6, shrinkA=1, shrinkB=3),
        )
        if not texts_overlap(ax, texts):
            return texts
        for a in list(lines):  # adjustText left an overlap: place them deterministically instead
            a.remove()
    _greedy(ax, xs, ys, texts, marker_pts)
    return texts


def off_scale_handles(low: bool = True, high: bool = True, what: str = "value"):
    """Legend handles for the marks of `mark_off_scale` (low: zero / -inf; high: inf / NaN)."""
    from matplotlib.lines import Line2D

    out = []
    if low:
        out.append(
            Line2D([], [], ls="", marker="v", color=OFF_SCALE_COLOR, ms=5, label=f"{what} 0 or -inf (off the log axis)")
        )
    if high:
        out.append(Line2D([], [], ls="", marker="x", color=OFF_SCALE_COLOR, ms=5, label=f"{what} NaN or inf"))
    return out


def mark_off_scale(ax, pos, values, axis: str = "y", color: str = OFF_SCALE_COLOR) -> dict:
    """Mark the `values` (at positions `pos` along the other axis) that a log `axis` can not show.

    axis="y": a log y axis, `pos` are x positions; marks sit on the bottom (zero, negative, -inf) or
    top (+inf, NaN) edge. axis="x": a log x axis (or log-valued bars), `pos` are y positions; marks
    on the left or right edge. Values <= 0 count as "low" only for a log axis; for an axis of log
    values (already log10, e.g. -inf for a zero) pass them as they are: -inf is low there too.
    Returns {"low": n, "high": n} (how many were marked).
    """
    pos, v = np.asarray(pos, dtype=float), np.asarray(values, dtype=float)
    if pos.shape != v.shape:
        raise ValueError(f"pos and values must have the same shape, got {pos.shape} and {v.shape}")
    log = (ax.get_yscale() if axis == "y" else ax.get_xscale()) == "log"
    low = (v == -np.inf) | ((v <= 0) & log)
    high = np.isnan(v) | (v == np.inf)
    for sel, edge, marker in ((low, 0.0, "v" if axis == "y" else "<"), (high, 1.0, "x")):
        if not sel.any():
            continue
        if axis == "y":
            xy = (pos[sel], np.full(sel.sum(), edge))
            transform = ax.get_xaxis_transform()
        else:
            xy = (np.full(sel.sum(), edge), pos[sel])
            transform = ax.get_yaxis_transform()
        ax.plot(*xy, ls="", marker=marker, color=color, ms=5, mew=1.2, transform=transform, clip_on=False, zorder=5)
    return {"low": int(low.sum()), "high": int(high.sum())}
