"""`python -m thesis_lib reproduce`: run the thesis's experiments (skip finished ones, resume interrupted ones).

python -m thesis_lib reproduce --profile smoke|cpu|full [--only EXP[,EXP...]] [--results-dir DIR]
    [--data PATH] [--device D] [--cache-dir DIR] [--force] [--list] [--executor inprocess|ray] [--address ADDR]
"""

from __future__ import annotations

import argparse
import time

from ..utils import ThesisError
from .executors import EXECUTORS
from .runner import results_lock

__all__ = ["register", "handle_reproduce", "results_lock"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the thesis's experiments (smoke: CPU minutes; full: the protocol, GPU)",
        description="Run every experiment of the table in docs/protocol.md (or --only some) under a profile. Finished "
        "experiments are skipped, interrupted ones resume from their last finished step/checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--profile",
        default="smoke",
        help="smoke (small CIFAR-10 subset, CPU, minutes), cpu (larger CPU runs, only some experiments) "
        "or full (the protocol)",
    )
    p.add_argument("--only", default=None, help="comma-separated experiment names (their requirements run too)")
    p.add_argument("--results-dir", default="results", help="results folder (default: results)")
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: $THESIS_DATA, else torchvision download)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="training-run checkpoints (default: $THESIS_RUNS_CACHE, else <results-dir>/../.cache/runs)",
    )
    p.add_argument("--force", action="store_true", help="re-run the selected experiments even if finished")
    p.add_argument(
        "--list",
        action="store_true",
        help="list the experiments: finished (done), started (part, with what is stored) or not (todo); then exit",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inprocess",
        help="inprocess (default): one experiment after another in this process; ray: every training run and "
        "every experiment's evaluation as a Ray task, on this machine's GPUs or a Ray cluster "
        "(pip install '.[ray]'; results folder and --cache-dir on a filesystem every node shares)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="with --executor ray: the Ray cluster (auto: the one `ray start` runs here; HOST:PORT); "
        "default: a Ray started for this run on this machine",
    )
    p.set_defaults(func=handle_reproduce)


def handle_reproduce(args) -> int:
    from .executors import run_profile
    from .registry import get_experiment
    from .runner import is_complete, select_experiments, stored_progress

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    names = select_experiments(args.profile, only)
    if args.list:
        for n in names:
            e = get_experiment(n)
            done = is_complete(n, args.profile, args.results_dir)
            runs, steps = (0, 0) if done else stored_progress(n, args.profile, args.results_dir)
            state = "done" if done else "part" if runs or steps else "todo"
            stored = f" ({runs} training run(s), {steps} step(s) stored)" if state == "part" else ""
            print(f"{state:4s}  {n:22s} {e.section:8s} {e.notebook:32s} {e.title}{stored}")
        return 0
    if args.address is not None and args.executor != "ray":
        raise ThesisError("--address names a Ray cluster: use it with --executor ray.")
    if args.executor == "ray":
        from .ray_executor import import_ray

        import_ray()  # before anything runs: without Ray, one sentence saying how to install it
    t0 = time.perf_counter()
    with results_lock(args.results_dir):
        run_profile(
            args.profile,
            only,
            executor=args.executor,
            address=args.address,
            results_dir=args.results_dir,
            data=args.data,
            device=args.device,
            cache_dir=args.cache_dir,
            force=args.force,
        )
    print(
        f"reproduce: {len(names)} experiment(s) of profile {args.profile} ready in {args.results_dir}/{args.profile} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return 0
