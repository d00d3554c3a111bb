"""Per-epoch checkpoints: tensors in safetensors, everything else in JSON, both written atomically.

A checkpoint is `checkpoint-<epoch>.safetensors` (model state, optimizer state tensors, RNG
states as uint8 tensors, optional extra tensors such as the early-stopping best weights) plus
`checkpoint.json` (epoch, step, optimizer hyperparameters, GradScaler state, Python RNG state,
the run's history, and the sha256 of the tensor file). The JSON is written last and names its
tensor file, so a crash between the two writes leaves the previous, complete checkpoint in
force; the previous tensor file is removed only after the new JSON is in place. Restoring all
RNG states makes `--resume` bitwise identical to an uninterrupted run on CPU.

No pickle anywhere: checkpoints from others can be loaded safely.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..utils import ThesisError, atomic_write_bytes, atomic_write_json

__all__ = ["save_checkpoint", "load_checkpoint", "restore_optimizer", "restore_rng", "model_state", "CHECKPOINT_JSON"]

CHECKPOINT_JSON = "checkpoint.json"
FORMAT = 1


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, plain = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{idx}/{key}"] = value
            else:
                plain.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "plain_state": plain}


def _rng_tensors(loader_state: dict | None) -> dict[str, torch.Tensor]:
    out = {"rng/cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng/cuda/{i}"] = s
    if loader_state is not None:
        out["rng/loader"] = loader_state["generator"]
    return out


def save_checkpoint(
    run_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    step: int,
    loader_state: dict | None = None,
    scaler=None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the checkpoint of a run that has completed `epoch` epochs (`step` optimisation steps)."""
    run_dir = Path(run_dir)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_json = _optimizer_parts(optimizer)
    tensors.update(opt_tensors)
    tensors.update(_rng_tensors(loader_state))
    tensors.update({f"extra/{k}": v for k, v in (extra_tensors or {}).items()})
    blob = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": str(FORMAT)})
    name = f"checkpoint-{epoch:04d}.safetensors"
    atomic_write_bytes(run_dir / name, blob)
    meta = {
        "format": FORMAT,
        "tensors": name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "epoch": epoch,
        "step": step,
        "optimizer": opt_json,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "python_random": random.getstate(),
        **(extra or {}),
    }
    atomic_write_json(run_dir / CHECKPOINT_JSON, meta)
    for old in run_dir.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / name


def load_checkpoint(run_dir: str | Path) -> dict | None:
    """{"meta": the JSON, "tensors": {key: CPU tensor}} of the run's checkpoint; None if it has none.

    Raises ThesisError (one sentence) when the checkpoint exists but is corrupt or incomplete.
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_JSON

    def corrupt(why: str) -> ThesisError:
        return ThesisError(
            f"The checkpoint in {run_dir} is corrupt or incomplete ({why}); "
            f"delete {run_dir} (or pass --overwrite without --resume) to start the run again."
        )

    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
        blob = (run_dir / meta["tensors"]).read_bytes()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise corrupt(f"{CHECKPOINT_JSON} is not valid JSON: {type(e).__name__}") from None
    except (KeyError, TypeError):
        raise corrupt(f"{CHECKPOINT_JSON} does not name a tensor file") from None
    except OSError:
        raise corrupt(f"its tensor file {meta.get('tensors')} is missing") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise corrupt(f"unknown checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise corrupt(f"{meta['tensors']} does not match its recorded checksum")
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError) as e:
        raise corrupt(f"{meta['tensors']} is unreadable: {e}") from None
    for key in ("epoch", "step", "optimizer"):
        if key not in meta:
            raise corrupt(f"{CHECKPOINT_JSON} lacks {key!r}")
    return {"meta": meta, "tensors": tensors}


def restore_optimizer(optimizer: torch.optim.Optimizer, ckpt: dict) -> None:
    meta, tensors = ckpt["meta"], ckpt["tensors"]
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, plain in meta["optimizer"].get("plain_state", {}).items():
        state.setdefault(int(idx), {}).update(plain)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})


def model_state(ckpt: dict, prefix: str = "model/") -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in ckpt["tensors"].items() if k.startswith(prefix)}


def restore_rng(ckpt: dict, loader=None) -> None:
    """Put the CPU, CUDA, loader and Python RNGs back where the checkpoint left them."""
    tensors = ckpt["tensors"]
    torch.set_rng_state(tensors["rng/cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    if loader is not None and "rng/loader" in tensors:
        loader.load_state_dict({"generator": tensors["rng/loader"]})
    py = ckpt["meta"].get("python_random")
    if py is not None:
        random.setstate((py[0], tuple(py[1]), py[2]))
