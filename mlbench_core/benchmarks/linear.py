"""Benchmark 2a: L2-regularised logistic regression on epsilon (LIBSVM files, or synthetic)."""

from __future__ import annotations

from typing import Any

import torch

from mlbench_core.benchmarks import common
from mlbench_core.benchmarks.registry import BenchmarkSpec
from mlbench_core.datasets import (
    Batches,
    SyntheticBatches,
    epsilon,
    partition,
    shard,
    synthetic_epsilon,
)
from mlbench_core.engine.metrics import accuracy
from mlbench_core.engine.trainer import Task, TaskContext
from mlbench_core.models.logistic import LogisticRegression, l2_logistic_loss

__all__ = ["build", "loaders"]

VAL_BATCH = 1000


def loaders(ctx: TaskContext, batch_size: int) -> tuple[Any, Any, dict[str, Any]]:
    """This rank's training loader (its partition of the training rows), validation loader
    (its shard of the test rows) and the record of where the data came from."""
    if ctx.synthetic:  # made batch by batch: an epoch as long as the real one, no memory
        train_n = epsilon.N_ROWS["train"] // ctx.world_size
        val_n = len(shard(epsilon.N_ROWS["test"], ctx.rank, ctx.world_size))
        train = SyntheticBatches(synthetic_epsilon, train_n, batch_size, seed=ctx.seed + ctx.rank)
        val = SyntheticBatches(synthetic_epsilon, val_n, VAL_BATCH, seed=10_000 + ctx.rank)
        return train, val, {"source": "synthetic", "dataset": "epsilon"}
    splits, records = [], []
    for name in ("train", "test"):
        path, record = common.dataset_file(ctx, epsilon.SOURCES[name])
        # The official files hold N_ROWS rows; a file pinned by the user may hold any number.
        rows = None if path.name in ctx.data_checksums else epsilon.N_ROWS[name]
        splits.append(epsilon.load_libsvm(path, epsilon.N_FEATURES, rows))
        records.append(record)
    (x_train, y_train), (x_test, y_test) = splits
    mine = partition(len(y_train), ctx.rank, ctx.world_size, ctx.seed)
    val = shard(len(y_test), ctx.rank, ctx.world_size)
    train = Batches(
        x_train[mine], y_train[mine], batch_size, shuffle=True, seed=ctx.seed + ctx.rank
    )
    source = {"source": "file", "dataset": "epsilon", "files": records}
    return train, Batches(x_test[val], y_test[val], VAL_BATCH), source


def build(ctx: TaskContext, spec: BenchmarkSpec) -> Task:
    """Logistic regression for rank ``ctx.rank``: its partition of the training rows, its
    shard of the test rows for validation."""
    hp = common.settings(spec, ctx)
    train_loader, val_loader, source = loaders(ctx, int(hp["batch_size"]))
    torch.manual_seed(ctx.seed)
    model = LogisticRegression(int(hp["features"])).to(ctx.device)
    optimizer = common.optimizer(spec, model.parameters(), hp)
    return Task(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        optimizer=optimizer,
        loss_fn=l2_logistic_loss(model, float(hp["l2"])),
        metric=accuracy(),
        goal=common.goal(spec, ctx),
        epochs=common.epochs(spec, ctx),
        scheduler=common.scheduler(spec, optimizer, len(train_loader), ctx.world_size),
        aggregation=spec.aggregation,
        hyperparameters=hp,
        data={**source, "train_batches_per_worker": len(train_loader)},
    )
