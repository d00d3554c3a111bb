"""Small shared helpers: devices, seeds, atomic files, provenance (git commit, hardware).

Everything a result file needs to say where it came from lives here, so that every JSON the
project writes carries the same provenance fields (RobustBench-style: results are data).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "ThesisError",
    "get_device",
    "seed_everything",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "read_json",
    "to_jsonable",
    "short_commit",
    "model_device",
    "check_model_device",
    "frozen_parameters",
    "git_commit",
    "hardware_info",
    "provenance",
    "parse_number",
    "progress_disabled",
]


class ThesisError(Exception):
    """A user-facing error: its message is one sentence that says what is wrong and how to fix it.

    The command line prints it without a traceback and exits with status 2.
    """


def get_device(device: str | torch.device | None = None) -> torch.device:
    """`None` or "auto" picks CUDA when present, else CPU; anything else is parsed by torch."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:  # e.g. "gpu"
        raise ThesisError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ThesisError(f"Device {device!r} was requested but CUDA is not available on this machine.")
    return dev


@contextlib.contextmanager
def frozen_parameters(model: torch.nn.Module):
    """Parameters without requires_grad for the duration (restored after): autograd then builds no
    weight-gradient work, and no gradient can land in `.grad`. Used by attacks and by the FGSM step
    of fast adversarial training, which need input gradients only."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy (if present) and torch; return a CPU generator seeded the same way."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any, digits: int | None = None) -> Any:
    """numpy/torch containers -> plain lists and floats; floats rounded to `digits` significant digits.

    The one JSON conversion of the package: results, configs and model cards all go through it.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, digits) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), digits)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            return obj  # json writes NaN / Infinity; read back by Python's json
        return float(f"{obj:.{digits}g}") if digits else obj
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomic, stable JSON (sorted keys, 2-space indent, trailing newline) so diffs stay readable."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def short_commit(sha: str | None) -> str:
    """'0123456789+dirty' from a full SHA (the '+dirty' marker says the tree had uncommitted changes)."""
    base, _, flag = str(sha or "unknown").partition("+")
    return base[:10] + (f"+{flag}" if flag else "")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def check_model_device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    """The model's device, after checking it is `device` (None: any); analyses do not move models."""
    dev = model_device(model)
    want = get_device(device) if device is not None else dev
    if want.type != dev.type or want.index not in (None, dev.index):
        raise ValueError(f"the model is on {dev}, not on {device}: move it first (model.to(device))")
    return dev


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ThesisError(f"Expected a JSON file at {path}, but it does not exist.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ThesisError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); delete it and re-run.") from e


def git_commit(short: bool = False) -> str:
    """The commit of the code that produced a result ("unknown" outside a git checkout).

    A "+dirty" suffix says the code (the package, pyproject.toml, requirements.txt) had uncommitted
    changes; regenerated outputs (results/, figures/, notebooks/) do not count.
    """
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", "--short", "HEAD") if short else git("rev-parse", "HEAD")
        code = (".", "../pyproject.toml", "../requirements.txt")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", *code)
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info(device: torch.device | str | None = None) -> dict:
    """What the numbers were measured on: CPU, thread count, GPU name, torch version."""
    info = {
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    dev = torch.device(device) if device is not None else None
    if dev is not None:
        info["device"] = str(dev)
        if dev.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(dev)
    return info


def provenance(device: torch.device | str | None = None) -> dict:
    """The fields every result JSON carries besides its config and metrics."""
    return {"git_commit": git_commit(), "hardware": hardware_info(device)}


def parse_number(text: str | float | int) -> float:
    """Parse "8/255", "0.031" or 1e-3 into a float (for command-line eps and step sizes)."""
    if isinstance(text, (int, float)):
        return float(text)
    try:
        return float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError) as e:
        raise ThesisError(f"Could not read {text!r} as a number: use forms like 0.031 or 8/255.") from e


def progress_disabled() -> bool:
    """Progress bars are off under CI, pytest and papermill test runs (THESIS_NO_PROGRESS=1)."""
    return bool(os.environ.get("THESIS_NO_PROGRESS") or os.environ.get("CI") or os.environ.get("PYTEST_CURRENT_TEST"))
