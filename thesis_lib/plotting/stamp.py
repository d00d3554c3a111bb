"""Profile stamps: every saved figure and table says which profile (scale) produced it.

A smoke-profile figure looks like a result but is not one (networks at chance accuracy after one
epoch on a few hundred images), so each figure carries a small line of text over it, and the same
text in its file metadata (PNG "Description", PDF "Subject"); each LaTeX table carries it in its
caption. The text is built from the results the figure shows, never typed by hand:

    from thesis_lib.plotting import profile_stamp
    save_figure(fig, "vgg_training_curves", figures_dir, stamp=profile_stamp(res))
    # "smoke profile: not a result (1 epoch, attacks on 32 images)"
    # "full profile (protocol, 20 epochs, attacks on 1000 images)"

`profile_stamp()` without results gives the stamp of analytic figures (nothing trained).
`read_stamp(path)` reads the stamp back from a saved PNG or PDF, `tex_stamp(path)` from a table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ANALYTIC",
    "STAMP_GID",
    "profile_stamp",
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

# What each profile is (docs/protocol.md, "Profiles"): (stamp head, first word of the details).
_PROFILE_TEXT = {
    "smoke": ("smoke profile: not a result", None),
    "cpu": ("cpu profile", "reduced scale"),
    "full": ("full profile", "protocol"),
}
# Every stamp starts with one of these (checked by `is_stamp` and the tests of the figures).
_STAMP_RE = re.compile(r"\b(?:(?:smoke|cpu|full) profile|analytic:)")

# Settings that give the number of attacked images, in order of preference ("pgd.n": settings["pgd"]["n"]).
_ATTACK_IMAGE_KEYS = ("attack_n", "n", "pgd.n", "images")


def _as_list(results) -> list:
    if results is None:
        return []
    if isinstance(results, (list, tuple)) or (isinstance(results, Iterable) and not hasattr(results, "summary")):
        return list(results)
    return [results]


def _lookup(settings: dict, key: str):
    value = settings
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def _required(res) -> list:
    """The ExperimentResults of the experiments `res` required, where they are stored beside it."""
    from ..experiments.runner import ExperimentResults, summary_path

    root = Path(res.dir).parent.parent
    out = []
    for name in res.summary.get("requires") or ():
        if summary_path(name, res.profile, root).exists():
            out.append(ExperimentResults(name, res.profile, root))
    return out


def _epochs(res, seen: set | None = None) -> set[int]:
    """Training epochs of the models behind `res`: its training runs, else its settings, else its requirements."""
    from ..utils import read_json

    seen = set() if seen is None else seen
    if res.name in seen:
        return set()
    seen.add(res.name)
    runs = sorted((Path(res.dir) / "training").glob("*.json"))
    epochs = set()
    for path in runs:
        config = read_json(path).get("config") or {}
        if isinstance(config.get("epochs"), int):
            epochs.add(int(config["epochs"]))
    if epochs:
        return epochs
    if isinstance(res.settings.get("epochs"), int):
        return {int(res.settings["epochs"])}
    for req in _required(res):
        epochs |= _epochs(req, seen)
    return epochs


def _attack_images(res) -> set:
    """Images attacked (None: the whole test set), when the experiment attacks anything; else empty."""
    s = res.settings
    if "eps" not in s and "pgd" not in s:
        return set()
    for key in _ATTACK_IMAGE_KEYS:
        try:
            value = _lookup(s, key)
        except KeyError:
            continue
        if value is None or isinstance(value, int):
            return {value}
    return set()


def _span(values: set, one: str, many: str) -> str:
    vals = sorted(values)
    if len(vals) == 1:
        return f"{vals[0]} {one if vals[0] == 1 else many}"
    return f"{vals[0]}-{vals[-1]} {many}"


def profile_stamp(results=None) -> str:
    """The stamp of a figure or table showing `results` (an ExperimentResults or several; None: analytic).

    Says the profile (smoke: "not a result"; cpu: reduced scale; full: the protocol), the training
    epochs of the models behind the results (their training runs, or those of the experiments they
    required) and the number of attacked images when the experiment attacks. ASCII only.
    """
    items = _as_list(results)
    if not items:
        return ANALYTIC
    parts = []
    for profile in dict.fromkeys(r.profile for r in items):
        group = [r for r in items if r.profile == profile]
        epochs = set().union(*(_epochs(r) for r in group))
        images = set().union(*(_attack_images(r) for r in group))
        details = []
        if epochs:
            details.append(_span(epochs, "epoch", "epochs"))
        if images == {None}:
            details.append("attacks on the whole test set")
        elif images:
            known = {i for i in images if i is not None}
            details.append("attacks on " + _span(known, "image", "images") + (" or all" if None in images else ""))
        head, word = _PROFILE_TEXT.get(profile, (f"{profile} profile", None))
        details = ([word] if word else []) + details
        parts.append(head + (f" ({', '.join(details)})" if details else ""))
    return "; ".join(parts)


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
