"""The training engine: distributed init, aggregation, the training loop and its tracker,
metrics, goals, schedules and checkpoints. It knows no benchmark (``mlbench_core.benchmarks``
builds on it) and no entrypoint (``mlbench_core.worker`` runs both)."""

from __future__ import annotations

__all__ = ["WorkerError"]


class WorkerError(Exception):
    """An expected failure, reported as one line and exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
