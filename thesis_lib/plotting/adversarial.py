"""Figure of thesis sections 1.1 / 2.2: clean image, magnified perturbation, adversarial image.

Follows the layout of Goodfellow, Shlens, Szegedy (2015), fig. 1: x + delta = x_adv with the
predicted label and confidence under each image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .style import styled

__all__ = ["plot_adversarial_example", "plot_adversarial_grid"]


def _hwc(img) -> np.ndarray:
    """C x H x W (torch or numpy, [0, 1]) -> H x W x C float numpy."""
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    a = a.astype(np.float64)
    if a.ndim != 3:
        raise ValueError(f"expected an image of shape C x H x W, got shape {a.shape}")
    return np.transpose(a, (1, 2, 0)) if a.shape[0] in (1, 3) else a


def _name(label, class_names):
    if isinstance(label, str):
        return label
    if class_names is None:
        try:
            from ..data import CIFAR10_CLASSES as class_names  # noqa: N811
        except ImportError:
            return str(int(label))
    return str(class_names[int(label)])


def _caption(prefix, label, conf, class_names):
    text = f"{prefix}: {_name(label, class_names)}"
    return text + (f" ({100 * float(conf):.1f}%)" if conf is not None else "")


@styled
def plot_adversarial_example(
    x,
    delta,
    x_adv,
    labels,
    confidences=None,
    true_labels=None,
    class_names: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
):
    """Clean image | perturbation (rescaled to [0, 1], magnification in the title) | adversarial image.

    x, x_adv: one image (3 x H x W) or a batch (N x 3 x H x W) in [0, 1]; delta: the perturbation
    (None: x_adv - x). labels: (clean prediction, adversarial prediction) per row, as class
    indices or names; confidences: the matching softmax probabilities (or None). One row per image;
    row_titles (e.g. ("FGSM", "PGD")) label the rows.
    """
    import matplotlib.pyplot as plt

    def batch(a):
        if a is None:
            return None
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        return a[None] if a.ndim == 3 else a

    xs, xa = batch(x), batch(x_adv)
    ds = batch(delta) if delta is not None else xa - xs
    n = len(xs)
    if len(xa) != n or len(ds) != n:
        raise ValueError(f"x, delta and x_adv must hold the same number of images, got {len(xs)}, {len(ds)}, {len(xa)}")
    labels = [labels] if n == 1 and len(labels) == 2 and not isinstance(labels[0], (list, tuple)) else list(labels)
    confs = (
        [None] * n
        if confidences is None
        else (
            [confidences] if n == 1 and not isinstance(confidences[0], (list, tuple, np.ndarray)) else list(confidences)
        )
    )
    trues = (
        [None] * n
        if true_labels is None
        else ([true_labels] if n == 1 and np.ndim(true_labels) == 0 else list(true_labels))
    )
    pairs_ok = all(isinstance(p, (list, tuple, np.ndarray)) and len(p) == 2 for p in labels) and all(
        c is None or (isinstance(c, (list, tuple, np.ndarray)) and len(c) == 2) for c in confs
    )
    if len(labels) != n or len(confs) != n or not pairs_ok:
        raise ValueError(f"need one (clean, adversarial) label pair and confidence pair per image ({n})")

    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.5 * n), squeeze=False)
    for i in range(n):
        d = ds[i]
        m = float(np.abs(d).max())
        dplot = 0.5 + 0.5 * d / m if m > 0 else np.full_like(d, 0.5)  # symmetric rescale: grey = 0
        c_clean, c_adv = (None, None) if confs[i] is None else confs[i]
        true = "" if trues[i] is None else f"true: {_name(trues[i], class_names)}\n"
        panels = [
            (xs[i], true + _caption("prediction", labels[i][0], c_clean, class_names)),
            (
                dplot,
                f"perturbation (x{0.5 / m:.0f})\n" + r"$\|\delta\|_\infty$" + f" = {m * 255:.1f}/255"
                if m > 0
                else "perturbation (zero)",
            ),
            (xa[i], _caption("prediction", labels[i][1], c_adv, class_names)),
        ]
        for ax, (img, title) in zip(axes[i], panels):
            ax.imshow(np.clip(_hwc(img), 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_xlabel(title)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i])
    return fig


_WRONG = "#C44E52"  # the thesis palette's red: a misclassified image


@styled
def plot_adversarial_grid(
    images,
    probabilities,
    true_labels,
    class_names: Sequence[str] | None = None,
    column_titles: Sequence[str] | None = None,
    image_size: float = 1.3,
):
    """Clean and adversarial images as a grid: one row per image, one column per version (clean, FGSM, PGD).

    images: {column: batch N x 3 x H x W in [0, 1]}, the first column the clean images (e.g.
    {"clean": x, "FGSM": x_fgsm, "PGD": x_pgd}); probabilities: the same keys, N x classes softmax
    outputs; true_labels: N class indices. Under each image: the predicted class and its
    probability, red when wrong. Each adversarial column's title gives the largest L-inf distance
    to the clean images (x255). image_size: inches per image.
    """
    import matplotlib.pyplot as plt

    cols = list(images)
    if not cols or list(probabilities) != cols:
        raise ValueError(f"images and probabilities need the same columns, got {cols} and {list(probabilities)}")

    def batch(a):
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        return a[None] if a.ndim == 3 else a

    imgs = {c: batch(images[c]) for c in cols}
    probs = {
        c: np.asarray(probabilities[c].detach().cpu() if hasattr(probabilities[c], "detach") else probabilities[c])
        for c in cols
    }
    true = np.atleast_1d(np.asarray(true_labels.detach().cpu() if hasattr(true_labels, "detach") else true_labels))
    n = len(imgs[cols[0]])
    if any(len(imgs[c]) != n or len(probs[c]) != n for c in cols) or len(true) != n:
        raise ValueError(f"every column needs {n} images and {n} probability rows, and {n} true labels")
    titles = list(column_titles) if column_titles is not None else []
    if not titles:
        for k, c in enumerate(cols):
            if k == 0:
                titles.append(str(c))
            else:
                linf = float(np.abs(imgs[c] - imgs[cols[0]]).max()) * 255
                titles.append(f"{c}\n" + r"$\|\delta\|_\infty$" + f" = {linf:.1f}/255")
    fig, axes = plt.subplots(
        n, len(cols), figsize=(image_size * len(cols) + 0.45, (image_size + 0.32) * n + 0.4), squeeze=False
    )
    for i in range(n):
        for k, c in enumerate(cols):
            ax = axes[i, k]
            ax.imshow(np.clip(_hwc(imgs[c][i]), 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for side in ax.spines.values():  # a thin frame on every side (the style keeps only two)
                side.set_visible(True)
                side.set_linewidth(0.5)
            pred = int(np.argmax(probs[c][i]))
            ax.set_xlabel(
                f"{_name(pred, class_names)} ({100 * float(probs[c][i][pred]):.1f}%)",
                color="black" if pred == int(true[i]) else _WRONG,
            )
            if i == 0:
                ax.set_title(titles[k])
        axes[i, 0].set_ylabel(f"true: {_name(int(true[i]), class_names)}")
    return fig
