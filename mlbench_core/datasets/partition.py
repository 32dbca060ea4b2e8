"""Splitting a dataset between workers.

``partition``: a rank's training samples, a seeded random draw, disjoint between ranks and of
equal sizes (the remainder, fewer than ``world_size`` samples, is left out). ``shard``: a
rank's validation samples, dealt in turn, so the shards together are the whole set.
``contiguous``: a rank's chunk of a token stream, in order and of equal length, for language
models (whose batches are cut from contiguous text).
"""

from __future__ import annotations

import torch

__all__ = ["contiguous", "partition", "shard"]


def _check(n: int, rank: int, world_size: int) -> None:
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not within 0 and {world_size - 1}")
    if n < world_size:
        raise ValueError(f"{n} samples cannot be shared by {world_size} workers")


def partition(n: int, rank: int, world_size: int, seed: int) -> torch.Tensor:
    """Rank ``rank``'s indices of ``n`` training samples: disjoint, equal sizes."""
    _check(n, rank, world_size)
    size = n // world_size
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[rank * size : (rank + 1) * size]


def shard(n: int, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s validation indices: every ``world_size``-th one (all are covered)."""
    return torch.arange(rank, n, world_size)


def contiguous(n: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous chunk of a stream of ``n`` items: ``n // world_size`` long,
    chunks in rank order, the remainder at the end left out."""
    _check(n, rank, world_size)
    size = n // world_size
    return slice(rank * size, (rank + 1) * size)
