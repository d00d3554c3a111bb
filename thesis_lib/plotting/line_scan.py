"""Figure of thesis section 3.1: a network's logits along a 1-D line in input space, jumps marked.

Draws the data of `thesis_lib.analysis.line_scan`: k-WTA networks jump densely, KAF networks are
smooth (Tramer et al. 2020 made the same point with this plot).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .style import PALETTE, TEXT_WIDTH, styled

__all__ = ["plot_kwta_line_scan"]


@styled
def plot_kwta_line_scan(
    scans: Mapping[str, dict], logits: int = 3, title: str | None = None, zoom: float | None = None
):
    """One panel per scan ({label: line_scan(...) result}): the `logits` classes largest at t = 0.

    Confirmed jumps are marked by red ticks on the bottom edge, their count in the title (with
    `zoom`, those inside the window). Colours rank the logits at t = 0 (largest first), in every panel.
    zoom: half-width of a t window around 0 to show (None: the whole scan).
    """
    import matplotlib.pyplot as plt

    if not scans:
        raise ValueError("no line scans to plot")
    fig, axes = plt.subplots(1, len(scans), figsize=(TEXT_WIDTH, 2.6), squeeze=False)
    norms = set()
    for ax, (label, sc) in zip(axes[0], scans.items()):
        t, y = np.asarray(sc["t"]), np.asarray(sc["logits"])
        top = np.argsort(-y[np.argmin(np.abs(t))])[:logits]
        keep = np.abs(t) <= zoom if zoom else np.ones_like(t, dtype=bool)
        ranks = ("largest", "2nd", "3rd") + tuple(f"{k + 1}th" for k in range(3, logits))
        for k, c in enumerate(top):
            ax.plot(t[keep], y[keep, c], color=PALETTE[k % len(PALETTE)], lw=0.9, label=f"{ranks[k]} logit at t = 0")
        jt = np.asarray(sc.get("jump_t", []))
        jt = jt[np.abs(jt) <= zoom] if zoom else jt
        if len(jt):  # (an empty line in axis coordinates upsets constrained layout)
            ax.plot(
                jt,
                np.zeros_like(jt),
                "|",
                color="red",
                ms=5,
                mew=0.6,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
            )
        n = len(jt) if zoom else int(sc.get("n_jumps", len(jt)))
        ax.set_title(f"{label}: {n} jumps")
        ax.set_xlabel(r"$t$")
        norms.add(f"{sc.get('direction_norm', 1.0):.3g}")
    window = rf", jumps counted in $|t| \leq$ {zoom:g}" if zoom else ""
    fig.supxlabel(rf"input $x + t\,d$ along a random direction $d$, $\|d\|_2$ = {', '.join(sorted(norms))}{window}")
    axes[0, 0].set_ylabel("logit")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=len(names))
    if title:
        fig.suptitle(title)
    return fig
