"""`python -m thesis_lib train ...` and `python -m thesis_lib lr-find ...`.

    python -m thesis_lib train --arch light_cnn --activation relu --method standard --epochs 2 \\
        --data ../shared/data/cifar10-jpeg.tar.gz --train-subset 2000 --test-subset 500 --out runs/demo
    python -m thesis_lib train ... --resume          # continue after the last completed epoch
    python -m thesis_lib lr-find --arch vgg --activation kaf --method fast_at --epochs 5 --out runs/lr-vgg-kaf

Exit status: 0 on success — including a run that diverged (NaN/inf), which is a result recorded
in metrics.json as `diverged` and announced by one "warning:" line; 2 with one "error:" line for
bad input (unknown names, eps < 0, missing data, corrupt checkpoint), leaving no files behind.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..utils import ThesisError, parse_number

__all__ = ["register"]


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """argparse prints usage + message; the project's convention is one `error:` line."""

    def error(message: str):
        print(f"error: {message} (see `python -m thesis_lib {parser.prog.split()[-1]} --help`)", file=sys.stderr)
        sys.exit(2)

    parser.error = error
    # Let values such as "-8/255" reach our own check (a clear "eps must be non-negative" line)
    # instead of argparse reading them as an unknown option.
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(/\d+\.?\d*)?$")


def _key_values(items: list[str] | None, flag: str) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ThesisError(f"{flag} takes KEY=VALUE (e.g. {flag} preset=paper), got {item!r}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _add_common(p: argparse.ArgumentParser, epochs_help: str) -> None:
    g = p.add_argument_group("model and method")
    g.add_argument("--arch", required=True, help="light_cnn, vgg, resnet20, resnet56 or resnet<6n+2>")
    g.add_argument(
        "--activation", default="relu", help="relu, elu, swish, kaf, kaf_relu, kaf_elu, kaf_swish, kaf_free, kwta, ..."
    )
    g.add_argument("--method", default="standard", help="standard, fast_at (FGSM-RS) or pgd_at")
    g.add_argument("--eps", default="8/255", help="training attack radius in [0, 1] pixel units, e.g. 8/255 (default)")
    g.add_argument("--pgd-steps", type=int, default=7, help="PGD-AT iterations (default 7)")
    g.add_argument("--pgd-step", default="2/255", help="PGD-AT step size (default 2/255)")
    g.add_argument("--activation-option", action="append", metavar="KEY=VALUE", help="e.g. preset=paper, ratio=0.2")
    g.add_argument(
        "--model-option", action="append", metavar="KEY=VALUE", help="e.g. block=he, zero_init_residual=true"
    )
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None, help=epochs_help)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--optimizer", default=None, help="sgd or adam (default: adam for light_cnn, sgd otherwise)")
    g.add_argument(
        "--schedule", default=None, help="constant, one_cycle or step (default: constant with adam, one_cycle with sgd)"
    )
    g.add_argument("--lr-min", default=None, help="lowest learning rate of the schedule")
    g.add_argument("--lr-max", default=None, help="peak (or constant) learning rate")
    g.add_argument("--momentum", default="0.9", help="SGD momentum / Adam beta1 (default 0.9)")
    g.add_argument("--no-weight-decay", action="store_true", help="drop the protocol's L2 penalties")
    g.add_argument("--grad-clip", default="0", help="max gradient L2 norm (default 0 = off)")
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 location: torchvision folder, image-folder tree or its .tar.gz "
        "(default: $THESIS_DATA, else torchvision download into ./data)",
    )
    g.add_argument("--train-subset", type=int, default=None, help="stratified subset of the training set")
    g.add_argument("--test-subset", type=int, default=None, help="stratified subset of the test set")
    g.add_argument("--subset-seed", type=int, default=0)
    g.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pad-4 random crop + flip (default: on for resnets only)",
    )
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    g.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=True, help="mixed precision on CUDA (default on)"
    )
    g.add_argument("--out", default=None, help="run folder (default runs/<arch>-<activation>-<method>-seed<seed>)")
    g.add_argument("--quiet", action="store_true", help="no per-epoch lines")


def _config(args, epochs: int | None = None):
    from .config import TrainConfig

    def num(v):
        return None if v is None else parse_number(v)

    return TrainConfig(
        arch=args.arch,
        activation=args.activation,
        method=args.method,
        eps=parse_number(args.eps),
        pgd_steps=args.pgd_steps,
        pgd_step=parse_number(args.pgd_step),
        activation_options=_key_values(args.activation_option, "--activation-option"),
        model_options=_key_values(args.model_option, "--model-option"),
        epochs=args.epochs if epochs is None else epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        schedule=args.schedule,
        lr_min=num(args.lr_min),
        lr_max=num(args.lr_max),
        momentum=parse_number(args.momentum),
        weight_decay=not args.no_weight_decay,
        grad_clip=parse_number(args.grad_clip),
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        subset_seed=args.subset_seed,
        augment=args.augment,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        decay_epochs=getattr(args, "decay_epochs", 0),
        log_norms_every=getattr(args, "log_norms_every", 0),
        log_norms_first=getattr(args, "log_norms_first", 100),
        nan_guard=not getattr(args, "no_nan_guard", False),
        early_stop=getattr(args, "early_stop", False),
        kwta_anneal=(
            {"target": args.kwta_anneal, "step": args.kwta_step, "every": args.kwta_every}
            if getattr(args, "kwta_anneal", None) is not None
            else None
        ),
    ).resolved()


def _default_out(cfg, kind: str = "") -> Path:
    return Path("runs") / f"{kind}{cfg.arch}-{cfg.activation}-{cfg.method}-seed{cfg.seed}"


def _train(args) -> int:
    from .trainer import train

    cfg = _config(args)
    out = Path(args.out) if args.out else _default_out(cfg)
    metrics = train(
        cfg,
        out_dir=out,
        resume=args.resume,
        data=args.data,
        overwrite=args.overwrite,
        stop_after=args.stop_after,
        verbose=not args.quiet,
    )
    if metrics.get("diverged"):
        state = f"diverged at step {metrics['diverged']['step']}"
    elif metrics.get("early_stopped"):
        state = f"early-stopped, weights of epoch {metrics['early_stopped']['best_epoch']}"
    elif metrics["finished"]:
        state = "finished"
    else:
        state = f"stopped after epoch {metrics['epochs_done']}"
    print(f"clean_acc {metrics['clean_acc']:.4f} ({state}; {out / 'metrics.json'})")
    return 0


def _lr_find(args) -> int:
    from .lr_finder import lr_find

    cfg = _config(args, epochs=args.epochs or 5)
    out = Path(args.out) if args.out else _default_out(cfg, "lr-find-")
    res = lr_find(
        cfg,
        out_dir=out,
        lr_start=parse_number(args.lr_start),
        lr_end=parse_number(args.lr_end),
        data=args.data,
        verbose=not args.quiet,
    )
    print(f"lr_min {res['lr_min']:.4g}  lr_max {res['lr_max']:.4g}  ({out / 'lr_find.json'})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (standard, fast_at, pgd_at); resumable",
        description="Train one model on CIFAR-10 and write RUN_DIR/{config.json, history.jsonl, "
        "checkpoints, model.safetensors, metrics.json}. A run that diverges (NaN/inf) "
        "is recorded in metrics.json and exits 0 with a warning line.",
    )
    _add_common(p, "epochs of the main schedule (default: 20 light_cnn, 60 vgg, 80 resnets)")
    g = p.add_argument_group("schedule, monitoring, control")
    g.add_argument("--decay-epochs", type=int, default=0, help="extra epochs decaying the lr a further 10x")
    g.add_argument("--log-norms-every", type=int, default=0, help="per-layer weight/grad norms every N steps (0 = off)")
    g.add_argument("--log-norms-first", type=int, default=100, help="... and at each of the first N steps")
    g.add_argument("--no-nan-guard", action="store_true", help="do not stop at NaN/inf losses or gradients")
    g.add_argument(
        "--early-stop",
        action="store_true",
        help="Wong et al.'s catastrophic-overfitting check (PGD on a held-out training batch each epoch)",
    )
    g.add_argument(
        "--kwta-anneal",
        type=float,
        default=None,
        metavar="TARGET",
        help="anneal the k-WTA ratio towards TARGET (by --kwta-step every --kwta-every epochs)",
    )
    g.add_argument("--kwta-step", type=float, default=0.01)
    g.add_argument("--kwta-every", type=int, default=2)
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    g.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="stop after this many epochs in total, as an interruption would (continue with --resume)",
    )
    _one_line_errors(p)
    p.set_defaults(func=_train)

    q = subparsers.add_parser(
        "lr-find",
        help="learning-rate range test: loss vs exponentially growing lr",
        description="Learning-rate range test; writes OUT/lr_find.json with the curve and suggested lr_min/lr_max.",
    )
    _add_common(q, "epochs of the sweep (default 5, as in the thesis)")
    q.add_argument("--lr-start", default="1e-4", help="first learning rate (default 1e-4)")
    q.add_argument("--lr-end", default="3", help="last learning rate (default 3)")
    _one_line_errors(q)
    q.set_defaults(func=_lr_find)
