"""`python -m thesis_lib attack`: attack a trained run and write RUN_DIR/attack_<name>.json.

    python -m thesis_lib attack --run runs/vgg-relu --attack pgd            # PGD-50 x 10, eps 8/255, test set
    python -m thesis_lib attack --run runs/vgg-relu --attack pgd --eps 0.031 --step 0.003 --steps 40 \
        --restarts 1 --n-examples 1000
    python -m thesis_lib attack --run runs/vgg-relu --attack autoattack --version apgd

The JSON holds the settings, clean and robust accuracy, the per-example outcome (True = still correct),
the test-subset definition and provenance (git commit, hardware). An existing result with the same
settings is kept (the run is skipped) unless --force is given.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..utils import ThesisError, atomic_write_json, get_device, parse_number, provenance, read_json

__all__ = ["register", "handler"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "attack", help="evaluate a trained run under FGSM, PGD or AutoAttack", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--run", required=True, help="run folder written by `python -m thesis_lib train`")
    p.add_argument("--attack", choices=("fgsm", "pgd", "autoattack"), default="pgd", help="default: pgd")
    p.add_argument("--eps", default="8/255", help="radius in [0, 1] pixel units, e.g. 8/255 or 0.031 (default: 8/255)")
    p.add_argument("--step", default="2/255", help="PGD step size, pixel units (default: 2/255)")
    p.add_argument("--steps", type=int, default=50, help="PGD iterations per restart (default: 50)")
    p.add_argument("--restarts", type=int, default=10, help="PGD random restarts, worst case per example (default: 10)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf", help="default: linf")
    p.add_argument(
        "--version",
        choices=("standard", "apgd"),
        default="standard",
        help="AutoAttack version: standard, or the cheaper APGD-CE + APGD-T (default: standard)",
    )
    p.add_argument(
        "--aa-iters", type=int, default=None, help="override AutoAttack's 100 iterations (quick checks only)"
    )
    p.add_argument("--n-examples", type=int, default=None, help="stratified test subset size (default: all 10,000)")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the test subset (default: 0)")
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: $THESIS_DATA)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch-size", type=int, default=256, help="examples attacked concurrently (default: 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default: 0)")
    p.add_argument("--name", default=None, help="output name: RUN/attack_<name>.json (default: the attack)")
    p.add_argument("--force", action="store_true", help="recompute even if the same result exists")
    p.set_defaults(func=handler)


def _load_model(run_dir: Path, device):
    from .trainer import load_run

    return load_run(run_dir, device)


def _load_images(args):
    from ..data import load_cifar10

    return load_cifar10("test", root=args.data, subset=args.n_examples, seed=args.subset_seed)


def _settings(args, eps: float, step: float) -> dict:
    s = {
        "attack": args.attack,
        "eps": eps,
        "norm": args.norm,
        "seed": args.seed,
        "n_examples": args.n_examples,
        "subset_seed": args.subset_seed,
    }
    if args.attack == "pgd":
        s.update(step=step, steps=args.steps, restarts=args.restarts)
    elif args.attack == "autoattack":
        s.update(version=args.version, n_iter=args.aa_iters)
    return s


def handler(args) -> int:
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise ThesisError(
            f"Run folder {run_dir} does not exist; train one with `python -m thesis_lib train --out {run_dir}`."
        )
    eps, step = parse_number(args.eps), parse_number(args.step)
    for flag, value, minimum in (
        ("--steps", args.steps, 0),
        ("--restarts", args.restarts, 1),
        ("--batch-size", args.batch_size, 1),
        ("--n-examples", args.n_examples, 1),
    ):
        if value is not None and value < minimum:
            raise ThesisError(f"{flag} must be at least {minimum}, got {value}.")
    if eps < 0 or step < 0:
        raise ThesisError(f"--eps and --step must be >= 0 (pixel units in [0, 1]), got {args.eps} and {args.step}.")
    if args.attack == "fgsm" and args.norm != "linf":
        raise ThesisError("FGSM is an L-inf attack: drop --norm l2 or use --attack pgd.")
    name = args.name or (
        args.attack if args.attack != "autoattack" or args.version == "standard" else "autoattack_apgd"
    )
    out = run_dir / f"attack_{name}.json"
    settings = _settings(args, eps, step)
    if out.is_file() and not args.force:
        try:
            old = read_json(out)
        except ThesisError:
            old = {}
        if old.get("settings") == settings:
            print(
                f"{out} is up to date (robust_acc {old.get('robust_acc', float('nan')):.4f}); use --force to recompute"
            )
            return 0

    device = get_device(args.device)
    model, info = _load_model(run_dir, device)
    images, labels = _load_images(args)
    t0 = time.perf_counter()
    if args.attack == "autoattack":
        from ..attacks.autoattack import autoattack_eval

        res = autoattack_eval(
            model,
            images,
            labels,
            eps=eps,
            version=args.version,
            norm=args.norm,
            batch_size=args.batch_size,
            seed=args.seed,
            n_iter=args.aa_iters,
        )
        extra = {
            "per_attack": res["per_attack"],
            "summary": res["summary"],
            "max_perturbation": res["max_perturbation"],
        }
    else:
        from ..attacks.evaluate import robust_accuracy

        res = robust_accuracy(
            model,
            images,
            labels,
            args.attack,
            eps,
            step,
            args.steps,
            args.restarts,
            args.batch_size,
            None,
            args.norm,
            seed=args.seed,
        )
        extra = {"gradient_evaluations": res.get("gradient_evaluations")}
        if args.attack == "pgd":
            extra.update(success_restart=res["success_restart"], success_step=res["success_step"])
    config = info.get("config", {}) if isinstance(info, dict) else {}
    result = {
        "attack": args.attack,
        "settings": settings,
        "clean_acc": res["clean_acc"],
        "robust_acc": res["robust_acc"],
        "n": res["n"],
        "per_example": res["per_example"],
        "clean_correct": res["clean_correct"],
        "seconds": round(time.perf_counter() - t0, 3),
        "run": {
            "dir": str(run_dir),
            "arch": config.get("arch"),
            "activation": config.get("activation"),
            "method": config.get("method"),
            "train_clean_acc": info.get("clean_acc") if isinstance(info, dict) else None,
        },
        "data": {"split": "test", "subset": args.n_examples, "subset_seed": args.subset_seed},
        **extra,
        **provenance(device),
    }
    atomic_write_json(out, result)
    label = {"pgd": f"PGD-{args.steps}x{args.restarts}", "fgsm": "FGSM"}.get(
        args.attack, f"AutoAttack ({args.version})"
    )
    print(
        f"{label} eps {eps:.5f} on {res['n']} images: "
        f"clean_acc {res['clean_acc']:.4f} robust_acc {res['robust_acc']:.4f} "
        f"-> {out}"
    )
    return 0
