"""`train`: the thesis's training runs (standard, fast adversarial, PGD adversarial), resumable.

Protocol "Training". One run = one folder:
- `config.json`   the resolved TrainConfig (written once the run is known to be valid);
- `history.jsonl` one JSON line per epoch: train/test loss and accuracy, lr, seconds, ...;
- `norms.jsonl`   optional per-parameter weight/gradient L2 norms (every N steps and the first steps);
- `checkpoint.json` + `checkpoint-<epoch>.safetensors`  after every epoch (see checkpoint.py);
- `model.safetensors` the final weights; `metrics.json` the result (clean_acc, history, config,
  seed, provenance, wall time, `diverged`, `early_stopped`).

Precision (`thesis_lib.precision`): channels_last + bf16 autocast on CUDA and on CPUs with native
bf16, float32 elsewhere (one line says so); `metrics.json` records `precision` and
`memory_format`, and its `clean_acc` comes from a float32 evaluation of the final weights (the
per-epoch history is measured at the training precision).

Divergence (a NaN/inf loss, gradient or weight) is a result, not a crash: the run stops before
the offending update, records `diverged: {step, layer, quantity}` and returns normally (the CLI
prints a warning and exits 0). This is the expected outcome for a KAF ResNet-56 (thesis 5.2).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from tqdm.auto import tqdm

from ..allocator import keep_freed_memory
from ..data import DeviceLoader, describe_source, load_cifar10, stratified_indices
from ..models.batchnorm import fuse_activations
from ..precision import Precision, resolve_precision
from ..utils import (
    ThesisError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    get_device,
    progress_disabled,
    provenance,
    read_json,
    seed_everything,
)
from .adversarial import fgsm_rs_perturb, pgd_perturb, pgd_robust_accuracy
from .checkpoint import CHECKPOINT_JSON, load_checkpoint, model_state, restore_optimizer, restore_rng, save_checkpoint
from .config import TrainConfig
from .monitor import find_nonfinite, first_nonfinite_module, parameter_norms
from .schedule import schedule_lr

__all__ = ["train", "evaluate", "load_run", "RUN_FILES"]

RUN_FILES = ("config.json", "history.jsonl", "norms.jsonl", "metrics.json", "model.safetensors", CHECKPOINT_JSON)
# Settings that may change when a run is resumed (they do not change what has been computed).
RESUME_MUTABLE = {
    "epochs",
    "decay_epochs",
    "device",
    "eval_batch_size",
    "log_norms_every",
    "log_norms_first",
    "nan_guard",
    "amp",
    "amp_dtype",
    "channels_last",
}


# ---------------------------------------------------------------------------------------------- setup
def _as_config(config: TrainConfig | dict) -> TrainConfig:
    cfg = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    return cfg.resolved()


def _load_data(cfg: TrainConfig, data) -> dict:
    """Train/test (and early-stopping hold-out) tensors. `data`: None/path, or {"train": (x, y), "test": (x, y)}."""
    if isinstance(data, dict):
        out = {}
        for split, n in (("train", cfg.train_subset), ("test", cfg.test_subset)):
            x, y = data[split]
            y = torch.as_tensor(y).long()
            if n is not None:
                idx = stratified_indices(y, n, cfg.subset_seed)
                x, y = x[idx], y[idx]
            out[split] = (x, y)
        source = "in-memory tensors"
    else:
        out = {
            "train": load_cifar10("train", data, subset=cfg.train_subset, seed=cfg.subset_seed),
            "test": load_cifar10("test", data, subset=cfg.test_subset, seed=cfg.subset_seed),
        }
        source = describe_source(data)
    out["source"] = source
    if cfg.early_stop:
        x, y = out["train"]
        if cfg.early_stop_size >= len(y):
            raise ThesisError(
                f"early_stop_size ({cfg.early_stop_size}) must be smaller than the training set ({len(y)})."
            )
        hold = stratified_indices(y, cfg.early_stop_size, cfg.subset_seed + 1)
        keep = torch.ones(len(y), dtype=torch.bool)
        keep[hold] = False
        out["holdout"] = (x[hold], y[hold])
        out["train"] = (x[keep], y[keep])
    if cfg.watch_size:
        x, y = out["train"]
        if cfg.watch_size > len(y):
            raise ThesisError(f"watch_size ({cfg.watch_size}) exceeds the training set ({len(y)}).")
        idx = stratified_indices(y, cfg.watch_size, cfg.subset_seed + 2)
        out["watch"] = (x[idx], y[idx])  # still trained on: the watch sees what the model fits
    return out


def _precision(cfg: TrainConfig, device: torch.device, warn=None) -> Precision:
    """The autocast dtype and memory format this run uses on `device` (see `thesis_lib.precision`)."""
    return resolve_precision(cfg.amp, cfg.amp_dtype, cfg.channels_last, device, warn)


def _build_model(cfg: TrainConfig, device: torch.device, prec: Precision | None = None) -> torch.nn.Module:
    model = cfg.build_model().to(device)
    if prec is not None and prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if device.type == "cpu":
        fuse_activations(model)  # BatchNorm + the activation after it in one kernel (same function and state dict)
    return model


def model_with_weights(cfg: TrainConfig, state: dict, source) -> torch.nn.Module:
    """`cfg.build_model()` with `state` loaded; ThesisError naming `source` if the weights do not fit."""
    model = cfg.build_model()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ThesisError(
            f"The weights in {source} do not fit a {cfg.arch}/{cfg.activation} model ({str(e).splitlines()[0][:120]})."
        ) from None
    return model


def _setup(cfg: TrainConfig, device: torch.device, data, warn=None):
    """(data, precision, model, optimizer, loader, stepper) of a run, seeded: what train and lr_find share."""
    data = _load_data(cfg, data)
    seed_everything(cfg.seed)
    prec = _precision(cfg, device, warn)
    model = _build_model(cfg, device, prec)
    optimizer = _build_optimizer(cfg, model)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        keep_freed_memory()  # every step re-allocates the same tensors: reuse the pages (thesis_lib.allocator)
    loader = DeviceLoader(
        *data["train"],
        batch_size=cfg.batch_size,
        shuffle=True,
        augment=cfg.augment,
        device=device,
        seed=_loader_seed(cfg.seed),
        channels_last=prec.channels_last,
    )
    return data, prec, model, optimizer, loader, _Stepper(cfg, model, optimizer, prec.autocast(), prec.scaler())


def _build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    groups = model.param_groups() if cfg.weight_decay else [{"params": list(model.parameters()), "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr_min, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return torch.optim.Adam(groups, lr=cfg.lr_max, betas=(cfg.momentum, 0.999))


def _loader_seed(seed: int) -> int:
    # The loader's generator must not replay the global stream (dropout masks) of the same seed.
    return (seed * 1_000_003 + 12_345) % 2**63


def _kwta_annealing(cfg: TrainConfig):
    if cfg.kwta_anneal is None:
        return None
    from ..activations import KWTAAnnealing

    opts = {"start": cfg.activation_options.get("ratio", 0.30), **cfg.kwta_anneal}
    return KWTAAnnealing(**opts)


# ---------------------------------------------------------------------------------------------- steps
@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    autocast=nullcontext,
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` in eval mode on uint8 or [0, 1] float images."""
    device = next(model.parameters()).device if device is None else get_device(device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = len(labels)
    try:
        for start in range(0, n, batch_size):
            x = images[start : start + batch_size].to(device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            y = torch.as_tensor(labels[start : start + batch_size]).to(device)
            with autocast():
                out = model(x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    return (loss_sum / max(n, 1)).item(), correct.item() / max(n, 1)


def _robust_accuracy(model, x_u8, y, cfg: TrainConfig) -> float:
    """PGD accuracy on the early-stopping hold-out (Wong et al.: 5 steps of 2/255, one random start)."""
    return pgd_robust_accuracy(model, x_u8, y, cfg.eps, 2 / 255, cfg.early_stop_pgd_steps, cfg.eval_batch_size)


def _watch_accuracy(model, x_u8, y, cfg: TrainConfig) -> float:
    """PGD accuracy on the fixed watch images (float32, fixed random start: epochs are comparable).

    Seeded on its own generator so that the watch leaves the training's random stream untouched.
    """
    return pgd_robust_accuracy(
        model, x_u8, y, cfg.eps, 2 / 255, cfg.watch_pgd_steps, cfg.eval_batch_size, seed=cfg.seed
    )


class _Stepper:
    """One optimisation step of any method, shared by `train` and `lr_find`."""

    def __init__(self, cfg: TrainConfig, model, optimizer, autocast, scaler):
        self.cfg, self.model, self.optimizer, self.autocast, self.scaler = cfg, model, optimizer, autocast, scaler

    def inputs(self, x, y):
        cfg = self.cfg
        if cfg.method == "fast_at":
            scale = self.scaler.get_scale() if self.scaler is not None else 1.0
            return fgsm_rs_perturb(self.model, x, y, cfg.eps, cfg.fgsm_step * cfg.eps, self.autocast, scale)
        if cfg.method == "pgd_at":
            return pgd_perturb(self.model, x, y, cfg.eps, cfg.pgd_step, cfg.pgd_steps)
        return x

    def forward_backward(self, x, y):
        """Loss and logits on (possibly adversarial) inputs, gradients in .grad (unscaled)."""
        x_in = self.inputs(x, y)
        with self.autocast():
            out = self.model(x_in)
            loss = F.cross_entropy(out.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        return x_in, out, loss

    def update(self):
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()


# ---------------------------------------------------------------------------------------------- run files
def _write_history(run: Path, history: list[dict]) -> None:
    atomic_write_text(run / "history.jsonl", "".join(json.dumps(h, sort_keys=True) + "\n" for h in history))


def _append_norms(run: Path, records: list[dict]) -> None:
    if records:
        with open(run / "norms.jsonl", "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)  # not sorted: keys stay in layer order


def _truncate_norms(run: Path, step: int) -> None:
    """Drop norm records of steps >= `step` (an interrupted epoch that is about to be redone)."""
    path = run / "norms.jsonl"
    if path.exists():
        keep = [
            line
            for line in path.read_text().splitlines(keepends=True)
            if line.strip() and json.loads(line)["step"] < step
        ]
        atomic_write_text(path, "".join(keep))


def _check_resume_config(saved: dict, cfg: TrainConfig, run: Path) -> None:
    now = cfg.to_dict()
    for key in sorted(set(saved) | set(now)):
        if key in RESUME_MUTABLE:
            continue
        if saved.get(key) != now.get(key) and json.loads(json.dumps(saved.get(key))) != json.loads(
            json.dumps(now.get(key))
        ):
            raise ThesisError(
                f"Cannot resume {run}: its {key} is {saved.get(key)!r} but {now.get(key)!r} was asked; "
                f"use the original setting or a new --out folder."
            )


def _fmt(rec: dict, total: int) -> str:
    return (
        f"epoch {rec['epoch']}/{total}  train_loss {rec['train_loss']:.4f}  train_acc {rec['train_acc']:.4f}  "
        f"test_loss {rec['test_loss']:.4f}  test_acc {rec['test_acc']:.4f}  lr {rec['lr']:.4g}  {rec['seconds']:.1f}s"
    )


# ---------------------------------------------------------------------------------------------- train
def train(
    config: TrainConfig | dict,
    out_dir: str | Path | None = None,
    resume: bool = False,
    data=None,
    overwrite: bool = False,
    stop_after: int | None = None,
    verbose: bool = True,
) -> dict:
    """Train one model; return the metrics dict (also written to `out_dir`/metrics.json).

    config: a TrainConfig (or its dict). out_dir: the run folder (None: nothing is written, no
    checkpoints). resume: continue from out_dir's last checkpoint (a finished run is returned
    as is; a larger `epochs` extends it). data: a data location (see `load_cifar10`) or
    {"train": (images, labels), "test": (images, labels)}. overwrite: replace an existing run.
    stop_after: stop after this many epochs in total, as an interruption would (for tests and
    time-limited jobs; `resume=True` continues). verbose: print one line per epoch.
    """
    t0 = time.perf_counter()
    cfg = _as_config(config)
    device = get_device(cfg.device)
    run = Path(out_dir) if out_dir is not None else None
    say = print if verbose else (lambda *a, **k: None)
    warn = partial(print, file=sys.stderr)  # warnings are shown even when not verbose

    ckpt = None
    if run is not None:
        if run.exists() and not run.is_dir():
            raise ThesisError(f"The run folder {run} is a file; choose a folder path for --out.")
        if resume:
            metrics_path = run / "metrics.json"
            prior = read_json(metrics_path) if metrics_path.exists() else None
            ckpt = load_checkpoint(run)
            if ckpt is not None:
                _check_resume_config(ckpt["meta"].get("config", {}), cfg, run)
                done = int(ckpt["meta"]["epoch"])
                if done > cfg.total_epochs:
                    raise ThesisError(f"Cannot resume {run} to {cfg.total_epochs} epochs: it has already run {done}.")
            if (
                prior is not None
                and prior.get("finished")
                and (
                    prior.get("diverged")
                    or prior.get("early_stopped")
                    or int(prior.get("epochs_done", -1)) == cfg.total_epochs
                )
            ):
                say(f"{run} is already finished (clean_acc {prior.get('clean_acc')}); nothing to do")
                return prior
        elif not overwrite and any((run / f).exists() for f in RUN_FILES):
            raise ThesisError(
                f"{run} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                f"or choose another --out folder."
            )

    # Everything that can fail on bad input happens before the first file is written.
    data, prec, model, optimizer, loader, stepper = _setup(cfg, device, data, warn)
    autocast, scaler = stepper.autocast, stepper.scaler
    test_x, test_y = data["test"]
    anneal = _kwta_annealing(cfg)
    spe = len(loader)
    main_steps, decay_steps = cfg.epochs * spe, cfg.decay_epochs * spe

    epoch0, step, history, wall_before = 0, 0, [], 0.0
    best = None  # early stopping: {"acc", "epoch", "state"}
    if ckpt is not None:
        meta = ckpt["meta"]
        try:
            model.load_state_dict(model_state(ckpt))
            restore_optimizer(optimizer, ckpt)
        except (RuntimeError, ValueError, KeyError) as e:
            raise ThesisError(
                f"The checkpoint in {run} does not fit this model/optimizer "
                f"({str(e).splitlines()[0][:120]}); delete {run} to start again."
            ) from None
        if scaler is not None and meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        restore_rng(ckpt, loader)
        epoch0, step, history = int(meta["epoch"]), int(meta["step"]), list(meta.get("history", []))
        wall_before = float(meta.get("wall_time_s", 0.0))
        if meta.get("best") is not None:
            best = {**meta["best"], "state": model_state(ckpt, "extra/best/")}
        saved_cfg = meta.get("config", {})
        if cfg.schedule != "constant" and (saved_cfg.get("epochs"), saved_cfg.get("decay_epochs")) != (
            cfg.epochs,
            cfg.decay_epochs,
        ):
            warn(
                f"warning: resuming with a different number of epochs stretches the {cfg.schedule} schedule; "
                f"epochs already run used the old one"
            )
        say(f"resuming {run} after epoch {epoch0} (step {step})")

    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
        if ckpt is None:
            for f in RUN_FILES:
                (run / f).unlink(missing_ok=True)
            for f in run.glob("checkpoint-*.safetensors"):
                f.unlink()
        else:
            _truncate_norms(run, step)
        atomic_write_json(run / "config.json", cfg.to_dict())

    prov = provenance(device)
    diverged, early_stopped = None, None
    norms_on = cfg.log_norms_every > 0
    for epoch in range(epoch0, cfg.total_epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        t_epoch = time.perf_counter()
        model.train()
        ratio = anneal.apply(model, epoch) if anneal is not None else None
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, norm_records, lr = 0, [], None
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.total_epochs}", leave=False, disable=progress_disabled())
        for x, y in bar:
            lr = schedule_lr(cfg.schedule, step, main_steps, cfg.lr_min, cfg.lr_max, decay_steps)
            for g in optimizer.param_groups:
                g["lr"] = lr
            x_in, out, loss = stepper.forward_backward(x, y)
            div = find_nonfinite(model, loss, step) if cfg.nan_guard else None
            if scaler is not None and div is not None and div["quantity"] == "grad":
                div = None  # fp16 gradient overflow: the GradScaler skips this step and lowers its scale
            if norms_on and (step < cfg.log_norms_first or step % cfg.log_norms_every == 0 or div is not None):
                norm_records.append(
                    {"step": step, "epoch": epoch + 1, "loss": float(loss.detach()), "lr": lr, **parameter_norms(model)}
                )
            if div is not None:
                if div["quantity"] == "loss":
                    div["layer"] = first_nonfinite_module(model, x_in)
                diverged = dict(div)
                break
            stepper.update()
            loss_sum += loss.detach() * len(y)
            correct += (out.argmax(1) == y).sum()
            seen += len(y)
            step += 1
        bar.close()
        test_loss, test_acc = evaluate(model, test_x, test_y, cfg.eval_batch_size, device, autocast)
        rec = {
            "epoch": epoch + 1,
            "train_loss": (loss_sum / max(seen, 1)).item(),
            "train_acc": correct.item() / max(seen, 1),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": lr,
            "steps": step,
            "seconds": round(time.perf_counter() - t_epoch, 3),
        }
        if ratio is not None:
            rec["kwta_ratio"] = ratio
        if diverged is not None:
            rec["partial"] = True
        if cfg.watch_size and diverged is None:
            rec["watch_pgd_acc"] = _watch_accuracy(model, *data["watch"], cfg)
        if cfg.early_stop and diverged is None:
            robust = _robust_accuracy(model, *data["holdout"], cfg)
            rec["holdout_pgd_acc"] = robust
            if best is None or robust >= best["acc"]:
                best = {
                    "acc": robust,
                    "epoch": epoch + 1,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                }
            elif robust < best["acc"] - cfg.early_stop_drop:
                model.load_state_dict(best["state"])
                early_stopped = {
                    "epoch": epoch + 1,
                    "best_epoch": best["epoch"],
                    "holdout_pgd_acc": robust,
                    "best_holdout_pgd_acc": best["acc"],
                }
                say(
                    f"early stop at epoch {epoch + 1}: hold-out PGD accuracy {robust:.3f} fell below the best "
                    f"{best['acc']:.3f} (epoch {best['epoch']}) by more than {cfg.early_stop_drop}; "
                    f"restored epoch {best['epoch']}"
                )
        history.append(rec)
        say(_fmt(rec, cfg.total_epochs))
        if run is not None:
            _append_norms(run, norm_records)
            if diverged is None:
                save_checkpoint(
                    run,
                    model=model,
                    optimizer=optimizer,
                    epoch=epoch + 1,
                    step=step,
                    loader_state=loader.state_dict(),
                    scaler=scaler,
                    extra_tensors={f"best/{k}": v for k, v in best["state"].items()} if best is not None else None,
                    extra={
                        "config": cfg.to_dict(),
                        "history": history,
                        "wall_time_s": wall_before + time.perf_counter() - t0,
                        "best": None if best is None else {"acc": best["acc"], "epoch": best["epoch"]},
                    },
                )
            _write_history(run, history)
        if diverged is not None or early_stopped is not None:
            break

    epochs_done = len([h for h in history if not h.get("partial")])
    finished = diverged is not None or early_stopped is not None or epochs_done >= cfg.total_epochs
    if history and early_stopped is None and (prec.dtype == "fp32" or not finished):
        test_loss, test_acc = history[-1]["test_loss"], history[-1]["test_acc"]
    else:
        # restored best weights, no history, or a finished mixed-precision run (its per-epoch accuracy
        # was measured at the training precision): the reported accuracy is a float32 evaluation
        test_loss, test_acc = evaluate(model, test_x, test_y, cfg.eval_batch_size, device)
    last = history[-1] if history else {}
    metrics = {
        "clean_acc": test_acc,
        "test_loss": test_loss,
        "train_acc": last.get("train_acc"),
        "train_loss": last.get("train_loss"),
        "arch": cfg.arch,
        "activation": cfg.activation,
        "method": cfg.method,
        "seed": cfg.seed,
        "epochs_done": epochs_done,
        "steps": step,
        "finished": finished,
        "diverged": diverged,
        "early_stopped": early_stopped,
        "n_train": loader.num_examples,
        "n_test": len(test_y),
        "n_holdout": len(data["holdout"][1]) if "holdout" in data else 0,
        "n_watch": len(data["watch"][1]) if "watch" in data else 0,
        "data_source": data["source"],
        "wall_time_s": round(wall_before + time.perf_counter() - t0, 3),
        "history": history,
        "config": cfg.to_dict(),
        **prec.record(),
        **prov,
    }
    if diverged is not None:
        where = f" in {diverged['layer']}" if diverged["layer"] else ""
        warn(
            f"warning: run diverged at step {diverged['step']}: non-finite {diverged['quantity']}{where}; "
            f"stopped cleanly and recorded in metrics.json"
        )
    if run is not None:
        if finished:
            atomic_write_bytes(
                run / "model.safetensors",
                save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}),
            )
        atomic_write_json(run / "metrics.json", metrics)
    return metrics


# ---------------------------------------------------------------------------------------------- load_run
def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on `device`, metrics dict — or {"config": ...} for an unfinished run).

    Weights: the final `model.safetensors`, else the last checkpoint's. Raises ThesisError when the
    folder holds no run or its files are corrupt.
    """
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise ThesisError(
            f"No training run in {run}: config.json is missing; train one with "
            f"`python -m thesis_lib train --out {run}`."
        )
    cfg = TrainConfig.from_dict(read_json(run / "config.json"))
    dev = get_device(device)
    if (run / "model.safetensors").is_file():
        try:
            state = load_file(run / "model.safetensors")
        except (SafetensorError, OSError, ValueError) as e:
            raise ThesisError(
                f"{run / 'model.safetensors'} is corrupt ({str(e)[:80]}); re-run or resume the training."
            ) from None
    else:
        ckpt = load_checkpoint(run)
        if ckpt is None:
            raise ThesisError(
                f"The run in {run} has no weights yet (no model.safetensors or checkpoint); "
                f"resume it with `python -m thesis_lib train --resume --out {run} ...`."
            )
        state = model_state(ckpt)
    model = model_with_weights(cfg, state, run)
    info = read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {"config": cfg.to_dict()}
    return model.to(dev).eval(), info
