"""CIFAR-10 loading (tarball, extracted folder, torchvision batches), stratified subsets, cache, DeviceLoader."""

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from thesis_lib.data import (
    CIFAR10_CLASSES,
    DeviceLoader,
    find_source,
    load_cifar10,
    random_crop_flip,
    sample_crop_flip,
    stratified_indices,
)
from thesis_lib.data.archive import read_tar_members
from thesis_lib.utils import ThesisError


@pytest.fixture(scope="module")
def tarball():
    path = os.environ.get("THESIS_DATA", "")
    if not path.endswith(".tar.gz") or not Path(path).is_file():
        pytest.skip("THESIS_DATA does not point at the offline cifar10-jpeg.tar.gz (see tests/conftest.py)")
    return Path(path)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("THESIS_LIB_CACHE", str(d))
    return d


def _write_png_tree(root: Path, per_class: int = 3) -> torch.Tensor:
    """A tiny image-folder tree of PNGs (lossless, so decoded pixels must match exactly)."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 10, per_class, 32, 32, 3), generator=gen, dtype=torch.uint8)
    for s, split in enumerate(("train", "test")):
        for c, name in enumerate(CIFAR10_CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(images[s, c, i].numpy()).save(root / split / name / f"{i:04d}.png")
    return images


def test_stratified_subset_is_balanced_deterministic_and_sorted():
    labels = torch.arange(10).repeat_interleave(100)
    a = stratified_indices(labels, 55, seed=3)
    assert torch.equal(a, stratified_indices(labels, 55, seed=3))
    assert not torch.equal(a, stratified_indices(labels, 55, seed=4))
    assert torch.equal(a, a.sort().values) and len(a.unique()) == 55
    counts = torch.bincount(labels[a], minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 55
    assert torch.equal(stratified_indices(labels, 1000), torch.arange(1000))
    with pytest.raises(ValueError):
        stratified_indices(labels, 1001)
    with pytest.raises(ValueError):
        stratified_indices(labels, 0)


def test_tarball_subset_decodes_only_the_subset_and_is_cached(tarball, cache):
    x, y = load_cifar10("test", root=tarball, subset=100, seed=0)
    assert x.dtype == torch.uint8 and x.shape == (100, 3, 32, 32) and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 10))
    files = list(cache.glob("*.safetensors"))
    assert len(files) == 1 and "-n100-s0" in files[0].name  # only the subset was decoded and cached
    x2, y2 = load_cifar10("test", root=tarball, subset=100, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    # The pixels are those of the JPEG member, read here independently with tarfile + Pillow
    # (the test split comes first in the archive, so the streaming read stops early).
    import io

    from PIL import Image

    _, members = read_tar_members(tarball)
    names = sorted(
        (n for n in members if n.startswith("cifar10-jpeg/test/")), key=lambda n: (n.split("/")[-2], n.split("/")[-1])
    )
    idx = stratified_indices(torch.tensor([CIFAR10_CLASSES.index(n.split("/")[-2]) for n in names]), 100, 0)
    k = int(idx[37])
    with tarfile.open(tarball, "r|gz") as tf:
        ref = next(
            np.array(Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")) for m in tf if m.name == names[k]
        )
    assert torch.equal(x[37], torch.from_numpy(ref).permute(2, 0, 1))
    assert y[37].item() == CIFAR10_CLASSES.index(names[k].split("/")[-2])


def test_fast_tar_walker_agrees_with_tarfile(tarball):
    buf, members = read_tar_members(tarball)
    assert len(members) == 60000  # 50k train + 10k test JPEGs (shared/data/README.md)
    checked = 0
    with tarfile.open(tarball, "r|gz") as tf:  # streaming: compare the first 300 files only
        for m in tf:
            if m.isfile():
                off, size = members[m.name]
                assert bytes(buf[off : off + size]) == tf.extractfile(m).read()
                checked += 1
                if checked == 300:
                    break
    assert checked == 300


def test_image_folder_and_its_tarball_give_identical_tensors(tmp_path, cache):
    root = tmp_path / "tree"
    images = _write_png_tree(root / "cifar-png")
    x, y = load_cifar10("train", root=root)  # parent folder with a single dataset folder inside
    assert x.shape == (30, 3, 32, 32)
    assert torch.equal(y, torch.arange(10).repeat_interleave(3))
    assert torch.equal(x[4], images[0, 1, 1].permute(2, 0, 1))
    tgz = tmp_path / "tree.tar.gz"
    with tarfile.open(tgz, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        tf.add(root / "cifar-png", arcname="cifar-png")
    xt, yt = load_cifar10("train", root=tgz)
    assert torch.equal(x, xt) and torch.equal(y, yt)
    xs, ys = load_cifar10("test", root=tgz, subset=10)
    assert torch.equal(ys, torch.arange(10))


def test_torchvision_batches_folder(tmp_path, cache):
    d = tmp_path / "tv" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    gen = torch.Generator().manual_seed(1)
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 20)]:
        data = torch.randint(0, 256, (n, 3072), generator=gen, dtype=torch.uint8).numpy()
        with open(d / name, "wb") as f:
            pickle.dump({"data": data, "labels": [i % 10 for i in range(n)]}, f)
    x, y = load_cifar10("train", root=tmp_path / "tv")
    assert x.shape == (100, 3, 32, 32) and torch.equal(y[:10], torch.arange(10))
    with open(d / "data_batch_1", "rb") as f:
        first = pickle.load(f)["data"][0]
    assert torch.equal(x[0].flatten(), torch.from_numpy(first))
    assert find_source(tmp_path / "tv").kind == "torchvision"


def test_missing_data_is_one_sentence_naming_the_place(tmp_path, monkeypatch):
    with pytest.raises(ThesisError) as err:
        load_cifar10("train", root=tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "THESIS_DATA" in msg and "\n" not in msg
    monkeypatch.delenv("THESIS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data here, and downloads are off under pytest
    with pytest.raises(ThesisError, match="THESIS_DATA is unset"):
        load_cifar10("test")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ThesisError, match="holds no CIFAR-10"):
        load_cifar10("test", root=empty)


def test_crop_flip_matches_a_reference_loop():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 32, 32), generator=gen, dtype=torch.uint8)
    params = sample_crop_flip(16, generator=gen)
    out = random_crop_flip(x, params)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i, (dy, dx, flip) in enumerate(params.tolist()):
        ref = padded[i, :, dy : dy + 32, dx : dx + 32]
        assert torch.equal(out[i], ref.flip(-1) if flip else ref)
    assert params[:, :2].min() >= 0 and params[:, :2].max() <= 8 and set(params[:, 2].tolist()) <= {0, 1}


def test_device_loader_batches_and_resumable_generator():
    x = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(50) % 10
    loader = DeviceLoader(x, y, batch_size=16, shuffle=True, augment=True, device="cpu", seed=0)
    assert len(loader) == 4
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [16, 16, 16, 2]
    xb, yb = batches[0]
    assert xb.dtype == torch.float32 and 0 <= xb.min() and xb.max() <= 1
    state = loader.state_dict()
    after = [b[1] for b in loader]
    loader.load_state_dict(state)
    assert all(torch.equal(a, b[1]) for a, b in zip(after, loader))
    plain = DeviceLoader(x, y, batch_size=50, shuffle=False, device="cpu")
    xp, yp = next(iter(plain))
    assert torch.equal(xp, x.float() / 255) and torch.equal(yp, y)
    assert len(DeviceLoader(x, y, batch_size=16, drop_last=True)) == 3
