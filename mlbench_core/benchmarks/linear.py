"""Benchmark 2a: L2-regularised logistic regression on epsilon (LIBSVM files, or synthetic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mlbench_core.benchmarks import common
from mlbench_core.benchmarks.registry import get_benchmark
from mlbench_core.datasets import Batches, epsilon, obtain, partition, shard, synthetic_epsilon
from mlbench_core.models.logistic import LogisticRegression, l2_logistic_loss
from mlbench_core.worker.metrics import accuracy
from mlbench_core.worker.trainer import Task, TaskContext

__all__ = ["build", "load"]

VAL_BATCH = 1000
Split = tuple[torch.Tensor, torch.Tensor]


def load(ctx: TaskContext) -> tuple[Split, Split, dict[str, Any]]:
    """Training and test split (features, 0/1 labels) and where they came from."""
    if ctx.synthetic:
        train = synthetic_epsilon(epsilon.N_ROWS["train"], ctx.seed)
        test = synthetic_epsilon(epsilon.N_ROWS["test"], ctx.seed + 1)
        return train, test, {"source": "synthetic", "dataset": "epsilon"}
    splits, records = [], []
    for name in ("train", "test"):
        path, record = obtain(
            epsilon.SOURCES[name],
            Path(ctx.data_dir or "."),
            base_url=ctx.data_url,
            checksums=ctx.data_checksums,
            progress=ctx.rank == 0,
        )
        # The official files hold N_ROWS rows; a file pinned by the user may hold any number.
        pinned = path.name in ctx.data_checksums
        rows = None if pinned else epsilon.N_ROWS[name]
        splits.append(epsilon.load_libsvm(path, epsilon.N_FEATURES, rows))
        records.append(record)
    return splits[0], splits[1], {"source": "file", "dataset": "epsilon", "files": records}


def build(ctx: TaskContext) -> Task:
    """Logistic regression for rank ``ctx.rank``: its partition of the training rows, its
    shard of the test rows for validation."""
    spec = get_benchmark("2a")
    hp = common.settings(spec, ctx)
    (x_train, y_train), (x_test, y_test), source = load(ctx)
    mine = partition(len(y_train), ctx.rank, ctx.world_size, ctx.seed)
    val = shard(len(y_test), ctx.rank, ctx.world_size)
    train_loader = Batches(
        x_train[mine], y_train[mine], int(hp["batch_size"]), shuffle=True, seed=ctx.seed + ctx.rank
    )
    torch.manual_seed(ctx.seed)
    model = LogisticRegression(int(hp["features"])).to(ctx.device)
    optimizer = common.optimizer(spec, model.parameters(), hp)
    return Task(
        model=model,
        train_loader=train_loader,
        val_loader=Batches(x_test[val], y_test[val], VAL_BATCH),
        optimizer=optimizer,
        loss_fn=l2_logistic_loss(model, float(hp["l2"])),
        metric=accuracy(),
        goal=common.goal(spec, ctx),
        epochs=common.epochs(spec, ctx),
        scheduler=common.scheduler(spec, optimizer, len(train_loader), ctx.world_size),
        aggregation=spec.aggregation,
        hyperparameters=hp,
        data={**source, "train_samples_per_worker": len(mine)},
    )
