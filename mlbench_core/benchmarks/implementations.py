"""Which benchmarks the worker can run: registry id → task builder."""

from __future__ import annotations

from collections.abc import Callable

from mlbench_core.benchmarks import digits
from mlbench_core.benchmarks.registry import REGISTRY
from mlbench_core.worker import WorkerError
from mlbench_core.worker.trainer import Task, TaskContext

__all__ = ["BUILDERS", "Builder", "get_builder"]

Builder = Callable[[TaskContext], Task]

BUILDERS: dict[str, Builder] = {
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
