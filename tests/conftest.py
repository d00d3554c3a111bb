"""Test set-up shared by every test file: fixed threads and seeds, offline data, quiet progress bars."""

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

# Tests never download: point the loader at the offline copy when it is beside the repo.
if "THESIS_DATA" not in os.environ and OFFLINE_CIFAR.is_file():
    os.environ["THESIS_DATA"] = str(OFFLINE_CIFAR)
os.environ.setdefault("THESIS_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def offline_cifar() -> str:
    """The offline CIFAR-10 location ($THESIS_DATA); tests that need real data skip without it."""
    path = os.environ.get("THESIS_DATA", "")
    if not path or not Path(path).exists():
        pytest.skip("THESIS_DATA is not set to the offline CIFAR-10 copy (see tests/conftest.py)")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """torch single-threaded for one test module, restored afterwards.

    For modules of many tiny ops (small models, float64 convolutions): intra-op threads only add
    synchronisation there, and spin on a busy shared CPU. Use with `pytest.mark.usefixtures`.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer tests, excluded from CI (run with -m slow)")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
