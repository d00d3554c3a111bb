"""Numeric precision and memory format of a run: what was asked, what the hardware allows, what ran.

Mixed precision (autocast) and the channels_last (NHWC) layout are the fastest path on both kinds
of hardware this project runs on: cuDNN on CUDA, and oneDNN on CPUs with native bfloat16
(AVX512_BF16 or AMX: convolutions and matmuls in bfloat16 with float32 accumulation). A CPU
without native bfloat16 would emulate it slower than float32, so there the run falls back to
float32 and says so in one line. bfloat16 needs no loss scaling (float32's exponent range);
float16 (CUDA only, on GPUs without bfloat16) uses a GradScaler.

Every run records the resolved choice (`precision`, `memory_format`) next to its config.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache, partial

import torch

__all__ = ["Precision", "resolve_precision", "cpu_has_bf16"]


@lru_cache(maxsize=1)
def _cpu_bf16_probe() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - torch built without oneDNN
        return False


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 natively (oneDNN's check). `THESIS_CPU_BF16=0` pretends it does not."""
    if os.environ.get("THESIS_CPU_BF16", "1") == "0":
        return False
    return _cpu_bf16_probe()


@dataclass(frozen=True)
class Precision:
    """The resolved numeric setting of one run."""

    dtype: str  # "fp32" | "bf16" | "fp16": the autocast dtype of forward/backward (weights stay fp32)
    channels_last: bool  # NHWC activations and convolution weights
    device_type: str  # "cpu" | "cuda"

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"

    def autocast(self) -> Callable:
        """A context-manager factory: autocast at this dtype, or a no-op for fp32."""
        if self.dtype == "fp32":
            return nullcontext
        dt = torch.bfloat16 if self.dtype == "bf16" else torch.float16
        return partial(torch.autocast, self.device_type, dtype=dt)

    def scaler(self):
        return torch.amp.GradScaler("cuda") if self.dtype == "fp16" else None

    def record(self) -> dict:
        return {"precision": self.dtype, "memory_format": self.memory_format}


def resolve_precision(
    amp: bool, amp_dtype: str, channels_last: bool, device: torch.device, warn: Callable[[str], None] | None = None
) -> Precision:
    """What runs for a config's `amp`, `amp_dtype`, `channels_last` on `device`.

    CUDA: bf16 where supported ("auto"), else fp16. CPU: bf16 when the CPU has it natively, else
    fp32 with one line through `warn` (default: stderr); fp16 is not offered on CPU.
    """
    warn = warn or partial(print, file=sys.stderr)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not amp:
            return Precision("fp32", channels_last, "cuda")
        bf16 = amp_dtype == "bf16" or (amp_dtype == "auto" and torch.cuda.is_bf16_supported())
        return Precision("bf16" if bf16 else "fp16", channels_last, "cuda")
    if dev.type != "cpu":
        return Precision("fp32", False, dev.type)
    if not amp:
        return Precision("fp32", channels_last, "cpu")
    if amp_dtype == "fp16":
        warn("note: fp16 autocast is not used on CPU; training in bfloat16 if the CPU supports it, else float32")
    if cpu_has_bf16():
        return Precision("bf16", channels_last, "cpu")
    warn("note: this CPU has no native bfloat16; training in float32 (mixed precision is off)")
    return Precision("fp32", channels_last, "cpu")
