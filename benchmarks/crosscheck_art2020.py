"""The thesis's evaluation against the ART release it ran on (2020): ART 1.4.3's own PGD, without labels.

`thesis_lib.attacks.thesis_protocol_pgd(selection="best_rate")` reproduces how ART <= 1.4 reduced random
restarts (one restart kept for the whole input, by its success rate). The ART installed with the project
(>= 1.5) reduces them per image, so the experiments' own cross-check (`art_crosscheck_<act>` steps)
can only compare the per-image rule. This script compares the best-rate rule with ART 1.4.3 itself,
on the committed weights of one cpu-profile model and the same stratified test images as that step.

ART 1.4.3 does not install beside the project's dependencies (it pins old numpy/scipy APIs), so it is
put in a folder of its own and only its pure-Python package is imported from there:

    pip install --no-deps --target /tmp/art143 adversarial-robustness-toolbox==1.4.3
    python benchmarks/crosscheck_art2020.py --art-path /tmp/art143 --json benchmarks/results/art2020_crosscheck.json
"""

from __future__ import annotations

import argparse
import os
import sys


def import_art(path: str):
    """ART from `path`, with the names it uses that later NumPy, SciPy and Python removed or moved: the NumPy
    aliases of builtins (its parameter checks), `collections.Callable` and a SciPy private name (imported
    by its ShapeShifter and PixelAttack modules, not used by the PGD compared here)."""
    import collections
    import collections.abc

    import numpy as np
    import scipy.optimize._optimize as moved
    import scipy.optimize.optimize as shim

    for alias, builtin in (("int", int), ("float", float), ("object", object)):  # removed in NumPy 1.24
        if alias not in np.__dict__:
            setattr(np, alias, builtin)
    if not hasattr(collections, "Callable"):
        collections.Callable = collections.abc.Callable
    if not hasattr(shim, "_status_message"):
        shim._status_message = moved._status_message
    sys.path.insert(0, os.path.abspath(path))
    import art

    return art


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--art-path", required=True, help="folder holding ART 1.4.3 (pip install --target)")
    p.add_argument("--experiment", default="resnet20_at")
    p.add_argument("--key", default="relu")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--n", type=int, default=200, help="stratified test images (the experiments' cross-check: 200)")
    p.add_argument("--data", default=os.environ.get("THESIS_DATA"))
    p.add_argument("--json", default="")
    args = p.parse_args()

    art = import_art(args.art_path)
    import torch

    import thesis_lib
    from thesis_lib.attacks import art_crosscheck
    from thesis_lib.data import load_cifar10
    from thesis_lib.utils import git_commit

    sys.path.insert(0, os.path.dirname(__file__))
    from _report import write_json

    torch.manual_seed(0)
    model = thesis_lib.load_pretrained(args.experiment, args.key, profile=args.profile)
    images, labels = load_cifar10("test", root=args.data, subset=args.n, seed=0)
    r = art_crosscheck(model, images, labels)  # the thesis's settings: PGD-50x10, eps 8/255, step 2/255
    print(
        f"ART {r['art_version']} ({art.__file__}) vs ours, selection {r['settings']['selection']}, {r['n']} images: "
        f"robust {100 * r['art_robust_acc']:.1f}% vs {100 * r['ours_robust_acc']:.1f}%, same outcome on "
        f"{100 * r['same_outcome']:.1f}% of images, largest pixel difference {r['max_abs_pixel_diff']:.2g}"
    )
    model_name = f"{args.experiment}/{args.key} ({args.profile})"
    write_json(args.json, {"model": model_name, "commit": git_commit(), **r}, args)


if __name__ == "__main__":
    main()
