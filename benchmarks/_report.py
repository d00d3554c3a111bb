"""Shared output of the benchmark scripts: results as JSON with the hardware and the arguments."""

from __future__ import annotations

import json

from thesis_lib.utils import hardware_info

__all__ = ["write_json"]


def write_json(path: str, payload: dict, args) -> None:
    """Write `payload` plus the machine description and the script's arguments to `path` (if given)."""
    if path:
        with open(path, "w") as f:
            json.dump({**payload, "hardware": hardware_info("cpu"), "args": vars(args)}, f, indent=1)
