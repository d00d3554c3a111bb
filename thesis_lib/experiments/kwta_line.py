"""Section 3.1: k-WTA networks are discontinuous in their input (Tramer et al. 2020, k-WTA section).

The chapter-4 light CNNs (k-WTA, KAF and, for reference, ReLU) are evaluated along the line
x + t * d, t in [-t_max, t_max], for a few test images x and seeded Gaussian directions d of unit
L2 norm; `thesis_lib.analysis.line_scan` counts the jumps (confirmed by zooming in). The logits
along the line are stored for the first `plot_images` images (the figure), jump counts for all.
"""

from __future__ import annotations

from dataclasses import dataclass

from .experiment import Experiment, stored_settings
from .light_cnn import light_cnn_config

__all__ = ["KWTALineSettings"]


@dataclass(frozen=True)
class KWTALineSettings:
    activations: tuple = ("kwta", "kaf", "relu")  # light CNNs of experiment `light_cnn`
    images: int = 5  # test images (stratified, seeded); one line each
    t_max: float = 1.0  # half-length of the line, L2 units in [0, 1] pixel space
    points: int = 2001  # grid points along the line
    plot_images: int = 1  # images whose curves are stored for the figure
    zoom_levels: int = 2  # rounds of 16x zooming that confirm each candidate jump
    seed: int = 0  # images and directions


def run(ctx) -> dict:
    import torch

    from ..analysis import line_scan

    s: KWTALineSettings = ctx.settings
    light = ctx.sibling("light_cnn")
    images, labels = ctx.test_images(s.images, s.seed)
    rows, curves = [], {}
    for act in s.activations:
        cfg = light_cnn_config(light.settings, act)

        def scan():
            with light.model(act, cfg) as model:
                return _scan(model.cpu())

        def _scan(model):
            res = []
            for i in range(len(labels)):
                r = line_scan(
                    model,
                    images[i],
                    t_max=s.t_max,
                    points=s.points,
                    seed=s.seed + i,
                    device="cpu",
                    levels=s.zoom_levels,
                )
                item = {
                    "image": i,
                    "label": int(labels[i]),
                    "n_jumps": r["n_jumps"],
                    "jump_t": r["jump_t"],
                    "jump_sizes": r["jump_sizes"],
                    "step": r["step"],
                    "typical_step": r["typical_step"],
                    "direction_norm": r["direction_norm"],
                }
                if i < s.plot_images:  # the curves themselves, for the figure
                    item.update(t=r["t"], logits=r["logits"])
                res.append(item)
            return res

        with torch.no_grad():
            result = ctx.step(f"scan_{act}", {"config": cfg, "settings": stored_settings(s)}, scan)
        curves[act] = result
        rows += [{"activation": act, "image": r["image"], "n_jumps": r["n_jumps"]} for r in result]
    return {"jumps": rows}


EXPERIMENT = Experiment(
    name="kwta_line",
    section="3.1",
    title="Logits along a line: k-WTA discontinuities vs a smooth KAF network",
    run=run,
    settings={
        "smoke": KWTALineSettings(images=1, points=151, zoom_levels=1),
        "cpu": KWTALineSettings(),
        "full": KWTALineSettings(),
    },
    notebook="04_kwta_discontinuities",
    requires=("light_cnn",),
    figures=("kwta_line_scan", "kwta_jumps"),
)
