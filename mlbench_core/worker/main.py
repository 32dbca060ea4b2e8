"""One worker process: join the group, build the benchmark, train, report the result."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import torch

from mlbench_core.api import ApiClient, ApiError, MetricsWriter
from mlbench_core.api.errors import retry_for
from mlbench_core.benchmarks import allreduce, common
from mlbench_core.benchmarks.registry import BenchmarkSpec, get_benchmark
from mlbench_core.datasets import DatasetError
from mlbench_core.engine import WorkerError, distributed
from mlbench_core.engine.distributed import DEFAULT_TIMEOUT
from mlbench_core.engine.tracker import PhaseTracker
from mlbench_core.engine.trainer import TaskContext, train
from mlbench_core.settings import get_settings
from mlbench_core.worker import peak_memory, reproducibility
from mlbench_core.worker.sampler import ResourceSampler

__all__ = ["Options", "run"]

API_TIMEOUT = 10.0  # seconds per API request


def _say(message: str, stream: TextIO = sys.stdout) -> None:
    print(message, file=stream, flush=True)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which JSON lacks) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _store(what: str, call: Callable[[], Any], fallback: dict[str, Any]) -> None:
    """Store ``what`` through the API, retrying for up to ``MLBENCH_API_WAIT`` seconds while
    it is unreachable (restarting); says when it can't (and prints ``fallback`` so that it
    is in the run's logs at least). Results and records are PUTs: idempotent."""
    try:
        retry_for(call, get_settings().api_wait)
    except ApiError as exc:
        _say(f"cannot store the {what}: {exc}", sys.stderr)
        _say(f"{what}: {json.dumps(fallback)}")
        return
    _say(f"{what} stored")


def _store_in_background(
    what: str, call: Callable[[], Any], fallback: dict[str, Any]
) -> threading.Thread:
    """:func:`_store` on a thread, so that training does not wait for the API."""
    thread = threading.Thread(
        target=_store, args=(what, call, fallback), name=f"mlbench-{what}", daemon=True
    )
    thread.start()
    return thread


def _choose_aggregation(spec: BenchmarkSpec, requested: str | None) -> str | None:
    if requested is None:
        return None
    if requested not in spec.aggregations:
        valid = ", ".join(spec.aggregations) or "none"
        raise WorkerError(f"benchmark {spec.id} has no aggregation {requested!r}; valid: {valid}")
    return requested


def _record(
    spec: BenchmarkSpec,
    ctx: distributed.DistContext,
    seed: int,
    applied: dict[str, Any],
    hyperparameters: dict[str, Any],
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return reproducibility.record(
        backend=ctx.backend,
        world_size=ctx.world_size,
        seed=seed,
        benchmark=spec.id,
        hyperparameters=hyperparameters,
        data=data,
        deterministic=applied,
    )


def _train(
    client: ApiClient,
    writer: MetricsWriter,
    options: Options,
    spec: BenchmarkSpec,
    ctx: distributed.DistContext,
    applied: dict[str, Any],
) -> None:
    settings = get_settings()
    try:
        task = spec.load()(
            TaskContext(
                rank=ctx.rank,
                world_size=ctx.world_size,
                seed=options.seed,
                light=options.light,
                epochs=options.epochs,
                device=ctx.device,
                data_dir=settings.datasets_dir,
                data_url=settings.data_url,
                data_checksums=dict(settings.data_checksums),
                synthetic=options.synthetic,
                overrides=dict(options.overrides),
            ),
            spec,
        )
    except DatasetError as exc:
        raise WorkerError(f"dataset of benchmark {spec.id}: {exc}", 1) from None
    task.aggregation = options.aggregation or task.aggregation
    hyper = {
        **task.hyperparameters,
        "aggregation": task.aggregation,
        "epochs": task.epochs,
        "steps_per_epoch": options.steps_per_epoch,
        "synthetic": options.synthetic,
    }
    stored = None
    if ctx.is_main:
        record = _record(spec, ctx, options.seed, applied, hyper, task.data)
        stored = _store_in_background(
            "reproducibility record", lambda: client.put_record(options.run_id, record), record
        )
    outcome = train(
        task,
        ctx,
        tracker=PhaseTracker(),
        writer=writer,
        run_id=options.run_id,
        echo=_say,
        step_delay=settings.step_delay_of(spec.id),
        checkpoint_dir=options.checkpoint_dir,
        steps_per_epoch=options.steps_per_epoch,
    )
    memory = peak_memory.gather(peak_memory.own(settings.memory_cgroup), ctx.world_size)
    if ctx.is_main:
        goal = task.goal
        result = {
            "benchmark": spec.id,
            "light": options.light,
            "synthetic": options.synthetic,
            "goal": None if goal is None else {"metric": goal.metric, "target": goal.target},
            **outcome,
            "world_size": ctx.world_size,
            "seed": options.seed,
            "threads": torch.get_num_threads(),
            "step_delay_s": settings.step_delay_of(spec.id),
            "memory": peak_memory.summary(memory),
        }
        if goal is None:  # synthetic data: throughput only, nothing to reach
            for key in ("reached", "time_to_target_s"):
                result.pop(key, None)
        result = _finite(result)
        _store("result", lambda: client.put_result(options.run_id, result), result)
    if stored is not None:
        stored.join(get_settings().api_wait + API_TIMEOUT)


def _allreduce(
    client: ApiClient,
    writer: MetricsWriter,
    options: Options,
    spec: BenchmarkSpec,
    ctx: distributed.DistContext,
    applied: dict[str, Any],
) -> None:
    """A communication benchmark (0a): all-reduce latency and bus bandwidth per size and
    dtype."""
    context = TaskContext(ctx.rank, ctx.world_size, light=options.light)
    hyper = common.settings(spec, replace(context, overrides=dict(options.overrides)))
    largest = int(hyper["light_max_elements" if options.light else "max_elements"])
    sizes = allreduce.sizes(largest, per_decade=int(hyper["per_decade"]))
    dtypes = tuple(getattr(torch, name) for name in str(hyper["dtypes"]).split(","))
    hyper.update(sizes=len(sizes), largest=largest)
    if ctx.is_main:
        record = _record(spec, ctx, options.seed, applied, hyper, {"source": "synthetic"})
        _store("reproducibility record", lambda: client.put_record(options.run_id, record), record)

    def on_row(row: dict[str, Any]) -> None:
        if not ctx.is_main:
            return
        _say(f"rank 0: {json.dumps(row)}")
        for name, value, meta in allreduce.to_metrics(row):
            writer.write(name, value, run_id=options.run_id, metadata=json.dumps(meta))

    start = time.perf_counter()
    measure = spec.load()  # allreduce.run
    rows = measure(
        ctx.rank,
        ctx.world_size,
        sizes=sizes,
        dtypes=dtypes,
        warmup=int(hyper["warmup"]),
        repeats=int(hyper["repeats"]),
        device=ctx.device,
        on_row=on_row,
        step_delay=get_settings().step_delay_of(spec.id),
    )
    memory = peak_memory.gather(peak_memory.own(get_settings().memory_cgroup), ctx.world_size)
    if ctx.is_main:
        result = {
            "benchmark": spec.id,
            "light": options.light,
            "world_size": ctx.world_size,
            "backend": ctx.backend,
            "total_time_s": time.perf_counter() - start,
            **allreduce.against_cap(rows, get_settings().max_bandwidth),
            "rows": rows,
            "step_times": allreduce.step_times(rows),
            "step_delay_s": get_settings().step_delay_of(spec.id),
            "memory": peak_memory.summary(memory),
        }
        result = _finite(result)
        _store("result", lambda: client.put_result(options.run_id, result), result)


# What the entrypoint does around a benchmark of each kind.
BODIES: dict[str, Callable[..., None]] = {"training": _train, "communication": _allreduce}


@dataclass(frozen=True)
class Options:
    """What the worker was asked to do (its command line)."""

    run_id: int
    benchmark: str
    light: bool = False
    epochs: int | None = None
    seed: int | None = None  # None: the benchmark's seed
    backend: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    synthetic: bool = False
    aggregation: str | None = None
    checkpoint_dir: Path | None = None
    deterministic: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    steps_per_epoch: int | None = None


def run(options: Options) -> int:
    """Run rank ``RANK`` of run ``options.run_id``; the exit code. ``WorkerError`` for bad
    input."""
    try:
        spec = get_benchmark(options.benchmark)
    except KeyError as exc:
        raise WorkerError(exc.args[0]) from None
    body = BODIES[spec.kind]
    try:
        spec.load()  # fails early (exit 2) without an implementation
    except (ImportError, AttributeError) as exc:
        raise WorkerError(f"benchmark {spec.id} has no implementation: {exc}") from None
    aggregation = _choose_aggregation(spec, options.aggregation)
    if options.epochs is not None and options.epochs < 1:
        raise WorkerError("--epochs must be at least 1")
    seed = spec.seed if options.seed is None else options.seed
    options = replace(options, seed=seed, aggregation=aggregation)
    settings = get_settings()
    client = ApiClient(settings.api_url, token=settings.api_token, timeout=API_TIMEOUT)
    writer = MetricsWriter(client)
    sampler = None
    if settings.pod_name:
        sampler = ResourceSampler(
            writer,
            settings.pod_name,
            interface=settings.network_interface,
            cgroup=settings.cpu_cgroup,
        )
    try:
        if sampler is not None:
            sampler.start()
        ctx = distributed.init(options.backend, options.timeout)
        applied = reproducibility.seed_everything(seed, options.deterministic)
        _say(
            f"rank {ctx.rank}/{ctx.world_size}: run {options.run_id}, benchmark {spec.id}"
            f"{' (light)' if options.light else ''}"
            f"{' (synthetic data)' if options.synthetic else ''}, backend {ctx.backend}, "
            f"device {ctx.device}, {torch.get_num_threads()} threads, seed {seed}"
        )
        body(client, writer, options, spec, ctx, applied)
        return 0
    finally:
        try:
            if sampler is not None:
                sampler.stop()
            stats = writer.close(settings.api_wait)  # the last metrics wait as long
            if stats.failed or stats.dropped:
                lost = stats.failed + stats.dropped
                _say(f"metrics: {stats.delivered} delivered, {lost} lost", sys.stderr)
            client.close()
        finally:
            distributed.destroy()
