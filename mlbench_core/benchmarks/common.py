"""What every benchmark builder does alike: its settings (the spec's hyperparameters with the
run's overrides), the optimizer and schedule, the goal, the number of epochs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from mlbench_core.api.schemas import cast_setting
from mlbench_core.benchmarks.registry import BenchmarkSpec
from mlbench_core.datasets import Source, obtain
from mlbench_core.engine import WorkerError
from mlbench_core.engine.goals import Goal
from mlbench_core.engine.schedules import constant, warmup_multistep
from mlbench_core.engine.trainer import TaskContext

__all__ = ["dataset_file", "epochs", "goal", "optimizer", "scheduler", "settings"]


def dataset_file(ctx: TaskContext, source: Source) -> tuple[Path, dict[str, Any]]:
    """The verified file of ``source`` for this worker (data folder, mirror, pinned digests
    from ``ctx``; rank 0 shows the download's progress) and its record."""
    return obtain(
        source,
        Path(ctx.data_dir or "."),
        base_url=ctx.data_url,
        checksums=ctx.data_checksums,
        progress=ctx.rank == 0,
    )


def settings(spec: BenchmarkSpec, ctx: TaskContext) -> dict[str, Any]:
    """The benchmark's settings for this run (:meth:`BenchmarkSpec.settings`) with
    ``ctx.overrides`` applied (unknown keys and bad values are refused, as the API refuses
    them). The keys overridden are listed under ``overridden`` so that a result never passes
    for the reference configuration when it was not."""
    base: dict[str, Any] = spec.settings
    for key, value in ctx.overrides.items():
        if key not in base:
            valid = ", ".join(sorted(base)) or "none"
            raise WorkerError(f"benchmark {spec.id} has no setting {key!r}; valid: {valid}")
        try:
            base[key] = cast_setting(key, value, base[key])
        except ValueError as exc:
            raise WorkerError(str(exc)) from None
    return {**base, "overridden": sorted(ctx.overrides)}


def optimizer(
    spec: BenchmarkSpec, params: Iterable[torch.nn.Parameter], hp: dict[str, Any]
) -> torch.optim.Optimizer:
    """The spec's optimizer with this run's values (``settings``), at the base learning rate
    (the schedule scales it)."""
    opt = spec.optimizer
    if opt is None:
        raise ValueError(f"benchmark {spec.id} trains nothing")
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    return torch.optim.SGD(
        params,
        lr=hp["lr"],
        momentum=hp["momentum"],
        nesterov=opt.nesterov and hp["momentum"] > 0,
        weight_decay=hp["weight_decay"],
    )


def scheduler(
    spec: BenchmarkSpec, opt: torch.optim.Optimizer, steps_per_epoch: int, world_size: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The spec's per-iteration schedule (warm-up to lr x workers, then decays); ``None``
    when the learning rate never changes (nothing to step)."""
    s = spec.schedule
    scale = world_size if s.scale_with_workers else 1
    if scale == 1 and not s.warmup_epochs and not s.milestones:
        return None
    if s.warmup_epochs or s.milestones:
        return warmup_multistep(
            opt,
            steps_per_epoch=max(1, steps_per_epoch),
            scale=scale,
            warmup_epochs=s.warmup_epochs,
            milestones=s.milestones,
            gamma=s.gamma,
        )
    return constant(opt, scale=scale)


def goal(spec: BenchmarkSpec, ctx: TaskContext) -> Goal | None:
    """The full or the light goal; none for synthetic data (its accuracy means nothing)."""
    if ctx.synthetic:
        return None
    return spec.light_goal if ctx.light else spec.goal


def epochs(spec: BenchmarkSpec, ctx: TaskContext) -> int:
    return ctx.epochs if ctx.epochs is not None else (spec.epochs or 1)
