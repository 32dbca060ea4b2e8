"""Demo benchmark: a small MLP on scikit-learn's bundled handwritten digits.

1797 8x8 images of 10 classes ship inside scikit-learn (no download). A fixed 80/20 split;
the training set is shuffled with the shared seed and cut into ``world_size`` disjoint parts
of equal size (the remainder, fewer than ``world_size`` images, is left out); the validation
set is dealt out to the ranks in turn, so the shards together are the whole set.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mlbench_core.benchmarks.registry import get_benchmark
from mlbench_core.worker.trainer import Metric, Task, TaskContext

__all__ = ["Batches", "build", "load", "partition", "shard"]

SPLIT_SEED = 20240501  # the train/validation split never changes
VAL_FRACTION = 0.2
BATCH_SIZE = 32  # per worker
LEARNING_RATE = 0.1
MOMENTUM = 0.9
HIDDEN = 128


def load() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and validation images (float32 in [0, 1], shape (n, 64)) and labels (int64)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = round(len(y) * VAL_FRACTION)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def partition(n: int, rank: int, world_size: int, seed: int) -> torch.Tensor:
    """Rank ``rank``'s indices of ``n`` training samples: disjoint, equal sizes."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not within 0 and {world_size - 1}")
    if n < world_size:
        raise ValueError(f"{n} samples cannot be shared by {world_size} workers")
    size = n // world_size
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[rank * size : (rank + 1) * size]


def shard(n: int, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s validation indices: every ``world_size``-th one (all are covered)."""
    return torch.arange(rank, n, world_size)


class Batches:
    """Mini-batches of tensors, reshuffled each epoch (``shuffle``) by a seeded generator."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


def correct_percent(output: torch.Tensor, target: torch.Tensor) -> float:
    """100 x the number of correct predictions (its mean is the accuracy in %)."""
    return 100.0 * float((output.argmax(dim=1) == target).sum())


def model() -> nn.Module:
    """The MLP: 64 → 128 → 10 with ReLU."""
    return nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def build(ctx: TaskContext) -> Task:
    """The digits task for rank ``ctx.rank`` of ``ctx.world_size``."""
    spec = get_benchmark("digits")
    x_train, y_train, x_val, y_val = load()
    mine = partition(len(y_train), ctx.rank, ctx.world_size, ctx.seed)
    val = shard(len(y_val), ctx.rank, ctx.world_size)
    torch.manual_seed(ctx.seed)  # the same initial weights on every rank
    net = model().to(ctx.device)
    return Task(
        model=net,
        train_loader=Batches(
            x_train[mine], y_train[mine], BATCH_SIZE, shuffle=True, seed=ctx.seed + ctx.rank
        ),
        val_loader=Batches(x_val[val], y_val[val], 256),
        optimizer=torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM),
        loss_fn=nn.functional.cross_entropy,
        metric=Metric("accuracy", correct_percent),
        goal=spec.light_goal if ctx.light else spec.goal,
        epochs=ctx.epochs if ctx.epochs is not None else (spec.epochs or 30),
    )
