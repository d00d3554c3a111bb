"""Section 2.4: KAF shapes at initialisation vs after training.

Two of the section-5.1 VGG models are inspected: `kaf` (alpha ~ N(0, 0.05^2), random shapes) and
`kaf_elu` (alpha by kernel ridge regression so that every channel starts as ELU). The initial
network is rebuilt exactly as `train` built it (same seed, same model options), so "before" and
"after" show the same channels. Stored: the curves of a few channels of the first, a middle and the
last KAF layer on a grid, before and after training, and per-layer summary statistics of how far
the trained shapes moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .experiment import Experiment, stored_settings

__all__ = ["KAFShapesSettings", "initial_model", "kaf_layers"]


@dataclass(frozen=True)
class KAFShapesSettings:
    activations: tuple = ("kaf", "kaf_elu")  # VGG runs of experiment `vgg`
    channels: int = 4  # channels per layer stored
    s_min: float = -4.0  # grid of pre-activation values
    s_max: float = 4.0
    points: int = 161
    bound_points: int = 801  # grid of KAF.slope_bound (its error term shrinks with the grid step)


def initial_model(config: dict):
    """The network `train(config)` starts from (same seed, same construction order)."""
    from ..training import TrainConfig
    from ..utils import seed_everything

    c = TrainConfig.from_dict(config).resolved()
    seed_everything(c.seed)
    return c.build_model()


def kaf_layers(model, grid: np.ndarray, bound_points: int) -> list[dict]:
    """Per KAF module (forward order): name, channels, curves on `grid`, per-channel slope bounds."""
    import torch

    from ..activations import KAF

    names = {id(m): n for n, m in model.named_modules()}
    s = torch.as_tensor(grid, dtype=torch.float64)
    return [
        {
            "name": names.get(id(m), ""),
            "channels": m.channels,
            "curves": m.evaluate(s).double().cpu().numpy(),
            "slope_bound": m.slope_bound(points=bound_points).cpu().numpy(),
            "dictionary_range": (float(m.dictionary.min()), float(m.dictionary.max())),
        }
        for m in model.activation_modules()
        if isinstance(m, KAF)
    ]


def run(ctx) -> dict:
    from .vgg import at_config, lr_bounds_for

    s: KAFShapesSettings = ctx.settings
    vgg = ctx.sibling("vgg")
    out = {}
    for act in s.activations:
        lo, hi, _ = lr_bounds_for(vgg, vgg.settings, act)
        cfg = at_config(vgg.settings, act, lo, hi)

        def curves():
            grid = np.linspace(s.s_min, s.s_max, s.points)
            before = kaf_layers(initial_model(cfg), grid, s.bound_points)
            with vgg.model(act, cfg) as model:
                after = kaf_layers(model.cpu(), grid, s.bound_points)
            n = len(before)
            layers = sorted({0, n // 2, n - 1}) if n else []
            res = {"s": grid, "layers": []}
            for li in layers:
                b, a = before[li], after[li]
                ch = list(range(min(s.channels, b["channels"])))
                res["layers"].append(
                    {
                        "layer": li,
                        "name": b["name"],
                        "channels": ch,
                        "before": b["curves"][ch],
                        "after": a["curves"][ch],
                        "dictionary_range": a["dictionary_range"],
                    }
                )
            res["summary"] = [
                {
                    "layer": i,
                    "name": b["name"],
                    "channels": b["channels"],
                    "mean_abs_change": float(np.abs(a["curves"] - b["curves"]).mean()),
                    "slope_bound_before": float(np.max(b["slope_bound"])),
                    "slope_bound_after": float(np.max(a["slope_bound"])),
                }
                for i, (b, a) in enumerate(zip(before, after))
            ]
            return res

        out[act] = ctx.step(f"curves_{act}", {"config": cfg, "settings": stored_settings(s)}, curves)
    return {act: out[act]["summary"] for act in out}


EXPERIMENT = Experiment(
    name="kaf_shapes",
    section="2.4",
    title="KAF shapes at initialisation vs after training (VGG kaf, kaf_elu)",
    run=run,
    # cpu: the same curves, of the cpu profile's VGG runs (minutes once they are trained)
    settings={"smoke": KAFShapesSettings(), "cpu": KAFShapesSettings(), "full": KAFShapesSettings()},
    notebook="03_kernel_activation_functions",
    requires=("vgg",),
    figures=("kaf_random_init_vs_trained", "kaf_elu_init_vs_trained"),
)
