"""Benchmark: the KAF's vector kernels of this working tree against those of another git revision.

Both versions of `thesis_lib/activations/_kaf_simd.c` (with the headers beside it) are compiled with
the same flags and loaded side by side into one process, then called on the same tensors: the KAF
layers of ResNet-20 at batch 128 (16 channels at 32x32, 32 at 16x16, 64 at 8x8), channels_last,
bfloat16, D = 20, for

  - kaf:       the fixed, evenly spaced dictionary (the recurrence kernels),
  - kaf_free:  a dictionary that is not evenly spaced (the direct kernels, one exponential per point),

and three passes: `fwd` (y, as in training), `fwdd` (y and dy/dx, the frozen-parameter pass of attacks
and the FGSM step) and `bwd` (input and parameter gradients). The two versions alternate round by
round; the median of the rounds is reported with the ratio baseline / current (> 1: faster now) and
the largest difference between their outputs (0 where the arithmetic is unchanged).

    OMP_NUM_THREADS=2 python benchmarks/bench_kaf_kernels.py --baseline REV [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from _report import write_json

from thesis_lib.activations import _kaf_native as kn
from thesis_lib.activations.registry import make_activation

SHAPES = ((128, 16, 32), (128, 32, 16), (128, 64, 8))  # (batch, channels, height = width)
ACTS = ("kaf", "kaf_free")
NCHUNKS = kn.NCHUNKS


def baseline_library(rev: str, workdir: Path):
    """Compile and load the vector kernels as they are at git revision `rev`."""
    root = Path(__file__).resolve().parents[1]
    folder = "thesis_lib/activations"
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:{folder}"], cwd=root, capture_output=True, text=True
    )
    if listing.returncode != 0:
        raise SystemExit(f"--baseline {rev!r}: not a git revision of this repository with {folder}/")
    names = listing.stdout.split()
    for name in names:
        if name.endswith((".c", ".h")):
            blob = subprocess.run(["git", "show", f"{rev}:{folder}/{name}"], cwd=root, capture_output=True, check=True)
            (workdir / name).write_bytes(blob.stdout)
    return kn.load_library(workdir / "_kaf_simd.c", kn.configure_simd)


class Layer:
    """One KAF layer's inputs and parameters, and the three passes for a given library."""

    def __init__(self, act: str, n: int, c: int, hw: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        m = make_activation(act, c)
        d = m.alpha.shape[-1]
        self.alpha = (m.alpha.detach().reshape(c, d) + 0.1 * torch.randn(c, d, generator=g)).float().contiguous()
        dictionary = m.dictionary.detach().expand(c, d).float()
        if act == "kaf_free":  # a trained dictionary: no longer evenly spaced
            dictionary = dictionary + 0.05 * torch.randn(c, d, generator=g)
        self.dictionary = dictionary.contiguous()
        self.gamma = m.gamma.detach().expand(c).float().contiguous()
        self.free = act == "kaf_free"
        self.outer, self.c, self.d = n * hw * hw, c, d
        self.x = torch.randn(self.outer, c, generator=g).bfloat16()
        self.gy = torch.randn(self.outer, c, generator=g).bfloat16()

    def _params(self):
        return (
            kn._p(self.alpha),
            kn._p(self.dictionary),
            kn._p(self.gamma),
        )

    def fwd(self, lib, derivative: bool = False):
        y, dy = torch.empty_like(self.x), torch.empty_like(self.x) if derivative else None
        rc = lib.kafs_forward(
            kn._p(self.x),
            kn._p(y),
            kn._p(dy),
            1,
            *self._params(),
            self.outer,
            self.c,
            1,
            self.d,
            int(not self.free),
            torch.get_num_threads(),
            None,
            None,
        )
        assert rc == 0
        return (y, dy) if derivative else (y,)

    def bwd(self, lib):
        gx = torch.empty_like(self.x)
        pa = torch.zeros(NCHUNKS, self.c, self.d, dtype=torch.float64)
        pd = torch.zeros_like(pa) if self.free else None
        pg = torch.zeros(NCHUNKS, self.c, dtype=torch.float64) if self.free else None
        rc = lib.kafs_backward(
            kn._p(self.x),
            kn._p(self.gy),
            kn._p(gx),
            1,
            *self._params(),
            kn._p(pa),
            kn._p(pd),
            kn._p(pg),
            self.outer,
            self.c,
            1,
            self.d,
            int(not self.free),
            int(self.free),
            NCHUNKS,
            torch.get_num_threads(),
            None,
            None,
            None,  # no fused BatchNorm sums (kernels older than that argument ignore the two trailing NULLs)
            None,
        )
        assert rc == 0
        return (gx, pa.sum(0)) + ((pd.sum(0), pg.sum(0)) if self.free else ())


def max_diff(a: tuple, b: tuple) -> float:
    return max((u.double() - v.double()).abs().max().item() for u, v in zip(a, b))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="git revision whose kernels are the baseline")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--reps", type=int, default=10, help="calls per round and pass")
    p.add_argument("--json", default="")
    args = p.parse_args()
    if not kn.available():
        raise SystemExit("the vector KAF kernels are not available (no C compiler?)")
    current = kn.load_library(kn._SIMD_SRC, kn.configure_simd)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_library(args.baseline, Path(tmp))
        if base is None:
            raise SystemExit(f"could not build the kernels of {args.baseline}")
        libs = {"baseline": base, "current": current}
        for act in ACTS:
            for n, c, hw in SHAPES:
                layer = Layer(act, n, c, hw)
                passes = {
                    "fwd": lambda lib: layer.fwd(lib),
                    "fwdd": lambda lib: layer.fwd(lib, derivative=True),
                    "bwd": layer.bwd,
                }
                times = {(k, v): [] for k in passes for v in libs}
                for _ in range(args.rounds):
                    for k, f in passes.items():
                        for v, lib in libs.items():
                            t = time.perf_counter()
                            for _ in range(args.reps):
                                f(lib)
                            times[(k, v)].append((time.perf_counter() - t) / args.reps)
                for k, f in passes.items():
                    b, cur = (statistics.median(times[(k, v)]) for v in libs)
                    rows.append(
                        {
                            "activation": act,
                            "shape": [n, c, hw, hw],
                            "pass": k,
                            "baseline_ms": round(b * 1e3, 3),
                            "current_ms": round(cur * 1e3, 3),
                            "speedup": round(b / cur, 3),
                            "max_abs_diff": max_diff(f(base), f(current)),
                        }
                    )
                    r = rows[-1]
                    print(
                        f"{act:9s} {c:3d}x{hw:2d}x{hw:<2d} {k:5s} {r['baseline_ms']:8.3f} -> {r['current_ms']:8.3f} ms"
                        f"  ({r['speedup']:.2f}x)  max |diff| {r['max_abs_diff']:.3g}",
                        flush=True,
                    )
    write_json(args.json, {"baseline": args.baseline, "rows": rows}, args)


if __name__ == "__main__":
    main()
