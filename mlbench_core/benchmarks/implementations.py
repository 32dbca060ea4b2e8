"""Which benchmarks the worker can train: registry id → task builder (``0a`` measures the
communication backend instead, see :mod:`mlbench_core.benchmarks.allreduce`)."""

from __future__ import annotations

from collections.abc import Callable

from mlbench_core.benchmarks import digits, language, linear, vision
from mlbench_core.benchmarks.registry import REGISTRY
from mlbench_core.worker import WorkerError
from mlbench_core.worker.trainer import Task, TaskContext

__all__ = ["BUILDERS", "Builder", "get_builder"]

Builder = Callable[[TaskContext], Task]

BUILDERS: dict[str, Builder] = {
    "1a": vision.build,
    "2a": linear.build,
    "3a": language.build,
    "digits": digits.build,
}


def get_builder(benchmark_id: str) -> Builder:
    """The builder of ``benchmark_id``; ``WorkerError`` (exit 2) if unknown or not built yet."""
    if benchmark_id not in REGISTRY:
        raise WorkerError(f"unknown benchmark {benchmark_id!r}; valid: {', '.join(REGISTRY)}")
    try:
        return BUILDERS[benchmark_id]
    except KeyError:
        raise WorkerError(f"benchmark {benchmark_id} has no implementation yet") from None
