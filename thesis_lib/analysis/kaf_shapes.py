"""The learned shapes of every KAF in a network (thesis section 2.4; figures "KAF at init vs after training").

Each KAF module holds one function per channel; `KAF.evaluate(s)` returns them on a 1-D grid.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

__all__ = ["kaf_curves"]


def kaf_curves(model: nn.Module, s_range=(-4.0, 4.0), points: int = 401, s=None) -> list[dict]:
    """Curves of all KAF modules of `model` (in forward order when the model has `activation_modules`).

    s: an explicit 1-D grid (else `points` points on `s_range`). Returns one dict per KAF: layer
    (position among the KAF modules), name (module path), activation (e.g. "kaf_elu"), channels,
    s (array), curves (channels x len(s) array), slope_bound (per-channel max |f'|, array),
    dictionary_range ((lo, hi) over channels). An empty list when the model has no KAF.
    """
    from ..activations import KAF

    grid = torch.as_tensor(np.asarray(s if s is not None else np.linspace(*s_range, points), dtype=np.float64))
    mods = model.activation_modules() if hasattr(model, "activation_modules") else list(model.modules())
    names = {id(m): n for n, m in model.named_modules()}
    out = []
    for m in mods:
        if not isinstance(m, KAF):
            continue
        out.append(
            dict(
                layer=len(out),
                name=names.get(id(m), ""),
                activation=getattr(m, "name", "kaf"),
                channels=m.channels,
                s=grid.numpy(),
                curves=m.evaluate(grid).double().cpu().numpy(),
                slope_bound=copy.deepcopy(m).cpu().slope_bound().numpy(),  # (its grid is built on the CPU)
                dictionary_range=(float(m.dictionary.min()), float(m.dictionary.max())),
            )
        )
    return out
