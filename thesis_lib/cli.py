"""Command line: `python -m thesis_lib {train,lr-find,attack,reproduce} ...`.

Each sub-command lives next to the code it drives and registers itself here through a module
exposing `register(subparsers)`; that function adds its sub-parser(s) and sets `func=handler`
with `handler(args) -> int`. User errors (`ThesisError`, bad names as ValueError from the
registries) print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .utils import ThesisError

__all__ = ["main", "build_parser"]

# Modules that contribute sub-commands; a missing one is skipped so that the CLI works while
# the project is assembled piece by piece.
COMMAND_MODULES = (
    "thesis_lib.training.cli",  # train, lr-find
    "thesis_lib.training.attack_cli",  # attack (a trained run under attack: training depends on attacks)
    "thesis_lib.experiments.cli",  # reproduce
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m thesis_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ThesisError, ValueError, FileNotFoundError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run with --resume to continue from the last checkpoint", file=sys.stderr)
        return 130
