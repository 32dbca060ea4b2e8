"""The worker runtime: ``python -m mlbench_core.worker --run-id N --benchmark NAME``.

One process per rank, started by the local backend or as a Kubernetes pod with torchrun-style
environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
"""

from __future__ import annotations

__all__ = ["WorkerError"]


class WorkerError(Exception):
    """An expected failure, reported as one line and exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
