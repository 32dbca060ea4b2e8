"""Benchmark 1a: ResNet-20 on CIFAR-10 (the official python tarball, or synthetic images)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mlbench_core.benchmarks import common
from mlbench_core.benchmarks.registry import BenchmarkSpec
from mlbench_core.datasets import (
    Batches,
    SyntheticBatches,
    augment,
    cifar10,
    normalize,
    partition,
    shard,
    synthetic_cifar10,
)
from mlbench_core.datasets.download import folder_lock
from mlbench_core.engine.metrics import top_k_accuracy
from mlbench_core.engine.trainer import Task, TaskContext
from mlbench_core.models.resnet import resnet20

__all__ = ["build", "loaders"]

VAL_BATCH = 500


def _normalized(images: torch.Tensor, _generator: torch.Generator) -> torch.Tensor:
    return normalize(images)


def loaders(ctx: TaskContext, batch_size: int) -> tuple[Any, Any, dict[str, Any]]:
    """This rank's training loader (its partition, random crop + flip), validation loader
    (its shard of the test set) and the record of where the data came from."""
    if ctx.synthetic:  # made batch by batch: an epoch as long as the real one, no memory
        train = SyntheticBatches(
            synthetic_cifar10,
            cifar10.N_TRAIN // ctx.world_size,
            batch_size,
            seed=ctx.seed + ctx.rank,
            transform=augment,
        )
        val_n = len(shard(cifar10.N_TEST, ctx.rank, ctx.world_size))
        val = SyntheticBatches(
            synthetic_cifar10, val_n, VAL_BATCH, seed=10_000 + ctx.rank, transform=_normalized
        )
        return train, val, {"source": "synthetic", "dataset": "cifar10"}
    path, record = common.dataset_file(ctx, cifar10.SOURCE)
    with folder_lock(path.parent):  # one worker writes the array cache
        data = cifar10.read_cifar10(path)
    mine = partition(len(data.train_labels), ctx.rank, ctx.world_size, ctx.seed)
    val_index = shard(len(data.test_labels), ctx.rank, ctx.world_size)
    train = Batches(
        data.train_images[mine],
        data.train_labels[mine],
        batch_size,
        shuffle=True,
        seed=ctx.seed + ctx.rank,
        transform=augment,
    )
    val = Batches(
        data.test_images[val_index], data.test_labels[val_index], VAL_BATCH, transform=_normalized
    )
    return train, val, {"source": "file", "dataset": "cifar10", "files": [record]}


def build(ctx: TaskContext, spec: BenchmarkSpec) -> Task:
    """ResNet-20 for rank ``ctx.rank``: its partition of the 50,000 training images (random
    crop + flip), its shard of the 10,000 test images for validation."""
    hp = common.settings(spec, ctx)
    train_loader, val_loader, source = loaders(ctx, int(hp["batch_size"]))
    torch.manual_seed(ctx.seed)  # the same initial weights on every rank
    model = resnet20().to(ctx.device)
    optimizer = common.optimizer(spec, model.parameters(), hp)
    return Task(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        optimizer=optimizer,
        loss_fn=nn.functional.cross_entropy,
        metric=top_k_accuracy(1),
        goal=common.goal(spec, ctx),
        epochs=common.epochs(spec, ctx),
        scheduler=common.scheduler(spec, optimizer, len(train_loader), ctx.world_size),
        aggregation=spec.aggregation,
        hyperparameters=hp,
        data={**source, "train_batches_per_worker": len(train_loader)},
    )
