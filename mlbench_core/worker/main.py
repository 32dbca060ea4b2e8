"""One worker process: join the group, build the benchmark, train, report the result."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO

import torch

from mlbench_core.api import ApiClient, ApiError, MetricsWriter
from mlbench_core.benchmarks.implementations import get_builder
from mlbench_core.settings import get_settings
from mlbench_core.worker import WorkerError, distributed
from mlbench_core.worker.distributed import DEFAULT_TIMEOUT
from mlbench_core.worker.sampler import ResourceSampler
from mlbench_core.worker.tracker import PhaseTracker
from mlbench_core.worker.trainer import TaskContext, train

__all__ = ["run"]

API_TIMEOUT = 10.0  # seconds per API request
CLOSE_TIMEOUT = 5.0  # seconds to deliver the last metrics at exit
RESULT_ATTEMPTS = 3


def _say(message: str, stream: TextIO = sys.stdout) -> None:
    print(message, file=stream, flush=True)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which JSON lacks) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _put_result(client: ApiClient, run_id: int, result: dict[str, Any]) -> None:
    """Store the result, retrying briefly while the API is unreachable; says when it can't."""
    for attempt in range(RESULT_ATTEMPTS):
        try:
            client.put_result(run_id, result)
            _say(f"result of run {run_id} stored")
            return
        except ApiError as exc:
            if not exc.retryable or attempt == RESULT_ATTEMPTS - 1:
                _say(f"cannot store the result of run {run_id}: {exc}", sys.stderr)
                _say(f"result: {json.dumps(result)}")
                return
            time.sleep(0.5 * 2**attempt)


def run(
    run_id: int,
    benchmark: str,
    light: bool = False,
    epochs: int | None = None,
    seed: int = 0,
    *,
    backend: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Run rank ``RANK`` of run ``run_id``; the exit code. ``WorkerError`` for bad input."""
    build = get_builder(benchmark)
    if epochs is not None and epochs < 1:
        raise WorkerError("--epochs must be at least 1")
    settings = get_settings()
    client = ApiClient(settings.api_url, token=settings.api_token, timeout=API_TIMEOUT)
    writer = MetricsWriter(client)
    sampler = ResourceSampler(writer, settings.pod_name) if settings.pod_name else None
    try:
        if sampler is not None:
            sampler.start()
        ctx = distributed.init(backend, timeout)
        _say(
            f"rank {ctx.rank}/{ctx.world_size}: run {run_id}, benchmark {benchmark}"
            f"{' (light)' if light else ''}, backend {ctx.backend}, device {ctx.device}, "
            f"{torch.get_num_threads()} threads, seed {seed}"
        )
        task = build(
            TaskContext(
                rank=ctx.rank,
                world_size=ctx.world_size,
                seed=seed,
                light=light,
                epochs=epochs,
                device=ctx.device,
            )
        )
        outcome = train(
            task,
            ctx,
            tracker=PhaseTracker(),
            writer=writer,
            run_id=run_id,
            echo=_say,
            step_delay=settings.step_delay,
        )
        if ctx.is_main:
            goal = task.goal
            result = {
                "benchmark": benchmark,
                "light": light,
                "goal": None if goal is None else {"metric": goal.metric, "target": goal.target},
                **outcome,
                "world_size": ctx.world_size,
                "seed": seed,
                "threads": torch.get_num_threads(),
                "step_delay_s": settings.step_delay,
            }
            _put_result(client, run_id, _finite(result))
        return 0
    finally:
        try:
            if sampler is not None:
                sampler.stop()
            stats = writer.close(CLOSE_TIMEOUT)
            if stats.failed or stats.dropped:
                lost = stats.failed + stats.dropped
                _say(f"metrics: {stats.delivered} delivered, {lost} lost", sys.stderr)
            client.close()
        finally:
            distributed.destroy()
