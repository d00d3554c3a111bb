"""Deterministic stratified subsets, so that small runs (CI, smoke tests) see every class equally.

`stratified_indices(labels, n, seed)` depends only on the labels, n and the seed: the same subset
comes out whether the data was decoded in full or only in part, on any machine.
"""

from __future__ import annotations

import torch

__all__ = ["stratified_indices"]


def stratified_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices (sorted ascending) of `n` examples whose class proportions match `labels`' as closely as possible.

    Each class c gets floor(n * n_c / N) examples; the remaining few go to the classes with the
    largest fractional parts (ties broken by a seeded permutation). Within a class the examples are
    the first of a seeded random permutation, so a larger subset of the same seed is not
    guaranteed to contain a smaller one.
    """
    labels = torch.as_tensor(labels).long().cpu()
    total = labels.numel()
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"subset size must be a positive integer, got {n!r}")
    if n > total:
        raise ValueError(f"subset size {n} exceeds the {total} examples available")
    if n == total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(int(seed))
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n / total
    quota = exact.floor().long()
    left = n - int(quota.sum())
    if left:
        tie_break = torch.randperm(len(classes), generator=gen).double() * 1e-6
        order = torch.argsort(exact - quota.double() + tie_break, descending=True)
        quota[order[:left]] += 1
    picks = []
    for c, q in zip(classes.tolist(), quota.tolist()):
        members = torch.nonzero(labels == c).flatten()
        picks.append(members[torch.randperm(len(members), generator=gen)[:q]])
    return torch.sort(torch.cat(picks)).values
