"""The worker entrypoint: ``python -m mlbench_core.worker --run-id N --benchmark NAME``.

One process per rank, started by a launch backend (a local process, a Kubernetes pod) with
torchrun-style environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). It
runs a benchmark (``mlbench_core.benchmarks``) on the engine (``mlbench_core.engine``).
"""

from __future__ import annotations

from mlbench_core.engine import WorkerError

__all__ = ["WorkerError"]
