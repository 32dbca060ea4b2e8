"""What every benchmark builder does alike: its settings (the spec's hyperparameters with the
run's overrides), the optimizer and schedule, the goal, the number of epochs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

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


def _cast(key: str, value: Any, default: Any) -> Any:
    """``value`` (often text from the command line) as the type of ``default``."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes"):
                return True
            if str(value).lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = type(default).__name__
        raise WorkerError(f"setting {key}: {value!r} is not a valid {kind}") from None
    return str(value)


def settings(spec: BenchmarkSpec, ctx: TaskContext) -> dict[str, Any]:
    """The benchmark's settings for this run: batch size, optimizer values and the spec's
    hyperparameters, with ``ctx.overrides`` applied (unknown keys are refused). The keys
    overridden are listed under ``overridden`` so that a result never passes for the
    reference configuration when it was not."""
    base: dict[str, Any] = {"batch_size": spec.batch_size, **spec.hyperparameters}
    if spec.optimizer is not None:
        base.update(
            lr=spec.optimizer.lr,
            momentum=spec.optimizer.momentum,
            weight_decay=spec.optimizer.weight_decay,
        )
    for key, value in ctx.overrides.items():
        if key not in base or base[key] is None:
            valid = ", ".join(k for k, v in base.items() if v is not None)
            raise WorkerError(f"benchmark {spec.id} has no setting {key!r}; valid: {valid}")
        base[key] = _cast(key, value, base[key])
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
