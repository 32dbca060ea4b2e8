"""Demo benchmark: a small MLP on scikit-learn's bundled handwritten digits.

1797 8x8 images of 10 classes ship inside scikit-learn (no download). A fixed 80/20 split;
the training set is shuffled with the shared seed and cut into ``world_size`` disjoint parts
of equal size (the remainder, fewer than ``world_size`` images, is left out); the validation
set is dealt out to the ranks in turn, so the shards together are the whole set.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from mlbench_core.benchmarks import common
from mlbench_core.benchmarks.registry import BenchmarkSpec
from mlbench_core.datasets import Batches, partition, shard
from mlbench_core.engine.metrics import top_k_accuracy
from mlbench_core.engine.trainer import Task, TaskContext

__all__ = ["Batches", "build", "load", "partition", "shard"]

SPLIT_SEED = 20240501  # the train/validation split never changes
VAL_FRACTION = 0.2
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


def model(hidden: int = HIDDEN) -> nn.Module:
    """The MLP: 64 → hidden → 10 with ReLU."""
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def build(ctx: TaskContext, spec: BenchmarkSpec) -> Task:
    """The digits task for rank ``ctx.rank`` of ``ctx.world_size``."""
    hp = common.settings(spec, ctx)
    x_train, y_train, x_val, y_val = load()
    mine = partition(len(y_train), ctx.rank, ctx.world_size, ctx.seed)
    val = shard(len(y_val), ctx.rank, ctx.world_size)
    torch.manual_seed(ctx.seed)  # the same initial weights on every rank
    net = model(int(hp["hidden"])).to(ctx.device)
    train_loader = Batches(
        x_train[mine], y_train[mine], int(hp["batch_size"]), shuffle=True, seed=ctx.seed + ctx.rank
    )
    optimizer = common.optimizer(spec, net.parameters(), hp)
    return Task(
        model=net,
        train_loader=train_loader,
        val_loader=Batches(x_val[val], y_val[val], 256),
        optimizer=optimizer,
        loss_fn=nn.functional.cross_entropy,
        metric=replace(top_k_accuracy(1), name="accuracy"),
        goal=common.goal(spec, ctx),
        epochs=common.epochs(spec, ctx),
        scheduler=common.scheduler(spec, optimizer, len(train_loader), ctx.world_size),
        hyperparameters=hp,
        data={"source": "bundled", "dataset": "sklearn.datasets.load_digits", "samples": 1797},
    )
