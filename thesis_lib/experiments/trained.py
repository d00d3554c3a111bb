"""The trained models of the other experiments, by experiment and run key (for chapter-6 analyses).

`trained_runs(ctx, "vgg")` lists (key, activation, config) of every run experiment "vgg" trains
under the context's profile, with the same configs (so the same cached run folders);
`ctx.sibling(name).model(key, config)` then loads one.
"""

from __future__ import annotations

__all__ = ["trained_runs", "FAMILIES"]

# experiment -> (architecture label, training label) for tables
FAMILIES = {
    "light_cnn": ("light CNN", "standard"),
    "vgg": ("VGG", "fast AT"),
    "resnet20_at": ("ResNet-20", "fast AT"),
    "resnet_standard": ("ResNet", "standard"),
}


def trained_runs(ctx, experiment: str, activations=None) -> list[tuple[str, str, dict]]:
    """[(run key, activation, TrainConfig dict)] of `experiment`; `activations` keeps runs by activation or key."""
    other = ctx.sibling(experiment)
    s = other.settings
    runs = []
    if experiment == "light_cnn":
        from .light_cnn import light_cnn_config

        runs = [(a, a, light_cnn_config(s, a)) for a in s.activations]
    elif experiment in ("vgg", "resnet20_at"):
        from .vgg import at_config, lr_bounds_for

        for a in s.activations:
            lo, hi, _ = lr_bounds_for(other, s, a)
            runs.append((a, a, at_config(s, a, lo, hi)))
    elif experiment == "resnet_standard":
        from .resnet_standard import resnet_standard_config

        runs = [(f"{arch}_{a}", a, resnet_standard_config(s, arch, a)) for arch in s.archs for a in s.activations]
    else:
        raise ValueError(f"experiment {experiment!r} trains no models listed here; valid: {', '.join(FAMILIES)}")
    if activations is not None:
        runs = [r for r in runs if r[1] in activations or r[0] in activations]
    return runs
