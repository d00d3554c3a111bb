"""Where CIFAR-10 comes from, and how one split of it is read.

Three kinds of source, detected from the path:
- an image-folder tree `<root>/{train,test}/<class>/<file>.jpg|png` (e.g. the offline
  `cifar10-jpeg` copy), given as the extracted folder or as the .tar.gz/.tar itself (members are
  read from memory, nothing is extracted);
- a torchvision CIFAR-10 folder (`<root>/cifar-10-batches-py/` with the pickled batches), or the
  original `cifar-10-python.tar.gz` read the same way;
- nothing given: torchvision downloads the original batches into ./data.

Reading a split is two steps: `index_split` lists the labels (cheap: they come from folder
names or the pickles), and the returned `decode(indices)` decodes only the images asked for, so a
small stratified subset of the JPEG copy costs a fraction of a full decode.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils import ThesisError, progress_disabled
from .archive import is_tar_path, read_tar_members

__all__ = ["CIFAR10_CLASSES", "DataSource", "find_source", "index_split", "DEFAULT_DOWNLOAD_ROOT"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_DOWNLOAD_ROOT = Path("data")
BATCH_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
BATCH_FILES_ALL = frozenset(BATCH_FILES["train"] + BATCH_FILES["test"])
HOW_TO = (
    "pass --data PATH or set THESIS_DATA to a torchvision CIFAR-10 folder, an image-folder tree with "
    "train/ and test/ class folders, or a .tar.gz of either"
)


@dataclass(frozen=True)
class DataSource:
    kind: str  # "tar" (archive of an image folder or of the pickled batches), "imagefolder", "torchvision"
    path: Path
    fingerprint: str  # changes when the source changes: part of the cache key

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"


def _stat_key(p: Path) -> str:
    st = p.stat()
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _imagefolder_root(path: Path) -> Path | None:
    """`path` itself or its only subfolder, if it holds train/ and test/ folders."""
    if all((path / s).is_dir() for s in SPLITS):
        return path
    subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if len(subdirs) == 1 and all((subdirs[0] / s).is_dir() for s in SPLITS):
        return subdirs[0]
    return None


def _batches_dir(path: Path) -> Path | None:
    for cand in (path, path / "cifar-10-batches-py"):
        if (cand / "test_batch").is_file() and (cand / "data_batch_1").is_file():
            return cand
    return None


def find_source(root: str | os.PathLike | None = None, download: bool | None = None) -> DataSource:
    """Locate CIFAR-10: `root`, else $THESIS_DATA, else torchvision's download into ./data.

    `download=None` allows the download except under CI/pytest or THESIS_NO_DOWNLOAD=1 (tests
    must never reach the network). Raises ThesisError naming where it looked and what to do.
    """
    origin = "the given path"
    if root is None and os.environ.get("THESIS_DATA"):
        root, origin = os.environ["THESIS_DATA"], "THESIS_DATA"
    if root is not None:
        path = Path(root).expanduser()
        if path.is_file() and is_tar_path(path):
            return DataSource("tar", path, _stat_key(path))
        if path.is_dir():
            if (bdir := _batches_dir(path)) is not None:
                return DataSource(
                    "torchvision",
                    bdir,
                    "|".join(_stat_key(bdir / f) for f in BATCH_FILES["test"] + BATCH_FILES["train"]),
                )
            if (iroot := _imagefolder_root(path)) is not None:
                parts = []
                for s in SPLITS:
                    for d in sorted((iroot / s).iterdir()):
                        if d.is_dir():
                            parts.append(f"{s}/{d.name}:{d.stat().st_mtime_ns}:{sum(1 for _ in d.iterdir())}")
                return DataSource("imagefolder", iroot, f"{iroot.resolve()}|" + "|".join(parts))
            if (path / "cifar-10-python.tar.gz").is_file():
                return DataSource("tar", path / "cifar-10-python.tar.gz", _stat_key(path / "cifar-10-python.tar.gz"))
        what = "does not exist" if not path.exists() else "holds no CIFAR-10 data"
        raise ThesisError(f"No CIFAR-10 found: {path} ({origin}) {what}; {HOW_TO}.")
    return _download(download)


def _download(download: bool | None) -> DataSource:
    root = DEFAULT_DOWNLOAD_ROOT
    if (bdir := _batches_dir(root)) is not None:
        return find_source(bdir.parent)
    if download is None:
        download = not (
            os.environ.get("THESIS_NO_DOWNLOAD") or os.environ.get("CI") or os.environ.get("PYTEST_CURRENT_TEST")
        )
    if not download:
        raise ThesisError(
            f"No CIFAR-10 found: THESIS_DATA is unset, {root.resolve()} holds no download and "
            f"downloading is off here (CI/tests); {HOW_TO}."
        )
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=False, download=True)
    except Exception as e:  # network errors come in many types
        raise ThesisError(
            f"No CIFAR-10 found: THESIS_DATA is unset and torchvision's download into "
            f"{root.resolve()} failed ({type(e).__name__}); {HOW_TO}."
        ) from None
    return find_source(root)


def _image_member(name: str) -> tuple[str, str] | None:
    """(split, class) of a path like .../train/<class>/<file>.jpg, else None."""
    parts = name.replace("\\", "/").split("/")
    if (
        len(parts) >= 3
        and parts[-3] in SPLITS
        and parts[-1].lower().endswith(IMAGE_SUFFIXES)
        and not parts[-1].startswith(".")
    ):
        return parts[-3], parts[-2]
    return None


def _class_and_file(name: str) -> tuple[str, str]:
    """(class folder, file name) of a path; string ops, as pathlib costs seconds for 60k names."""
    parts = name.replace("\\", "/").rsplit("/", 2)
    return parts[-2], parts[-1]


def _class_index(found: set[str], where: str) -> dict[str, int]:
    if found != set(CIFAR10_CLASSES):
        raise ThesisError(
            f"{where} has class folders {sorted(found)}, not the ten CIFAR-10 classes "
            f"{list(CIFAR10_CLASSES)}; {HOW_TO}."
        )
    return {c: i for i, c in enumerate(CIFAR10_CLASSES)}


def decode_images(blobs: list, names: list[str], what: str) -> torch.Tensor:
    """Decode encoded images (bytes-like) to an N x 3 x 32 x 32 uint8 tensor, with a progress bar.

    Pillow, not torchvision.io: importing torchvision costs seconds (it pulls in torch._dynamo),
    more than decoding a CI-sized subset; both use libjpeg and give identical pixels here.
    """
    from PIL import Image

    out = np.empty((len(blobs), 32, 32, 3), dtype=np.uint8)
    for i, (b, n) in enumerate(
        tqdm(
            zip(blobs, names),
            total=len(blobs),
            desc=f"decoding {what}",
            unit="img",
            disable=progress_disabled(),
            mininterval=0.5,
        )
    ):
        with Image.open(io.BytesIO(b)) as img:
            arr = np.asarray(img.convert("RGB"))
        if arr.shape != (32, 32, 3):
            raise ThesisError(f"{n} is {arr.shape[1]}x{arr.shape[0]}, not a 32x32 CIFAR-10 image; {HOW_TO}.")
        out[i] = arr
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


Decoder = Callable[[torch.Tensor], torch.Tensor]


def _from_batches(read: Callable[[str], bytes], split: str) -> tuple[torch.Tensor, Decoder]:
    data, labels = [], []
    for f in BATCH_FILES[split]:
        d = pickle.loads(read(f), encoding="latin1")  # the format CIFAR-10's authors publish
        data.append(np.asarray(d["data"], dtype=np.uint8))
        labels.extend(d["labels"])
    images = torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32))
    return torch.tensor(labels, dtype=torch.long), lambda idx: images[idx].clone()


def index_split(source: DataSource, split: str) -> tuple[torch.Tensor, Decoder]:
    """Labels of every example in `split` (int64, dataset order) and a function decoding a set of indices.

    Image-folder order is (class, file name), the order torchvision's ImageFolder uses.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if source.kind == "torchvision":
        return _from_batches(lambda f: (source.path / f).read_bytes(), split)
    if source.kind == "tar":
        buf, members = read_tar_members(source.path)

        def blob(name: str) -> memoryview:
            off, size = members[name]
            return buf[off : off + size]

        batches = {n.rsplit("/", 1)[-1]: n for n in members if n.rsplit("/", 1)[-1] in BATCH_FILES_ALL}
        if len(batches) == len(BATCH_FILES_ALL):
            return _from_batches(lambda f: blob(batches[f]).tobytes(), split)
        names = sorted((n for n in members if (_image_member(n) or ("",))[0] == split), key=_class_and_file)
        if not names:
            raise ThesisError(
                f"No CIFAR-10 found: the archive {source.path} has no {split}/<class>/ images "
                f"or CIFAR-10 batches; {HOW_TO}."
            )
        blobs = blob
        where = f"the archive {source.path}"
    else:
        split_dir = source.path / split
        names = [
            str(p)
            for d in sorted(split_dir.iterdir())
            if d.is_dir()
            for p in sorted(d.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        ]
        if not names:
            raise ThesisError(f"No CIFAR-10 found: {split_dir} has no <class>/ image files; {HOW_TO}.")
        blobs = None
        where = str(split_dir)
    classes = [_class_and_file(n)[0] for n in names]
    index = _class_index(set(classes), where)
    labels = torch.tensor([index[c] for c in classes], dtype=torch.long)

    def decode(idx: torch.Tensor) -> torch.Tensor:
        idx = idx.tolist()
        sel = [names[i] for i in idx]
        data = [blobs(n) for n in sel] if blobs is not None else [Path(n).read_bytes() for n in sel]
        return decode_images(data, sel, f"CIFAR-10 {split}")

    return labels, decode
