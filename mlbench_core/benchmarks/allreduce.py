"""Benchmark 0a: the all-reduce backend benchmark.

Times ``torch.distributed.all_reduce`` (sum) of one tensor per data type and size, sizes
log-spaced from one element up (:func:`sizes`). For each size the tensor is allocated once
(zeros, so repeated sums neither overflow nor reach subnormal numbers), warmed up, then each
of ``repeats`` calls is timed on its own: a barrier first so that all ranks start together,
then the clock around the call (with ``torch.cuda.synchronize`` after it on a GPU, since
CUDA collectives return before they finish).

A call ends at different moments on different ranks; a repetition takes as long as its
slowest rank. So each rank's vector of per-repetition times is all-reduced with MAX, and the
statistics (median, 10th and 90th percentile, minimum) are taken over those maxima. The
spread across ranks is kept too: the smallest and largest of the ranks' own medians. Every
rank therefore returns the same rows.

Bandwidths follow the convention of NVIDIA's nccl-tests (``doc/PERFORMANCE.md`` in
github.com/NVIDIA/nccl-tests): algorithm bandwidth ``algbw = bytes / time`` (with the
median time) and bus bandwidth ``busbw = algbw * 2 (n - 1) / n`` for all-reduce with ``n``
ranks, which is what each rank's links carry in a ring all-reduce, comparable across world
sizes and to the hardware's peak. With one rank, ``busbw`` is 0.

Rows that cannot be measured are recorded, not fatal: a data type the backend rejects (gloo
raises "Invalid scalar type" for e.g. ``uint16``; in torch 2.13 it does reduce ``float16`` and
``bfloat16`` on CPU) and sizes whose tensor exceeds the memory budget carry a ``skipped``
reason. Both decisions are agreed by all ranks (an all-reduce), so no rank is left waiting in
a collective that another rank skipped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import psutil
import torch
import torch.distributed as dist

from mlbench_core.engine.distributed import collective

__all__ = [
    "DEFAULT_DTYPES",
    "against_cap",
    "Row",
    "default_budget",
    "run",
    "sizes",
    "step_times",
    "to_metrics",
]

Row = dict[str, Any]
DEFAULT_DTYPES = (torch.float32, torch.float16)
BUDGET_FRACTION = 0.25  # of the memory available to all ranks, for one tensor's timing
GIGA = 1e9  # GB/s as in nccl-tests: 10**9 bytes per second


def sizes(max_elements: int = 10**8, per_decade: int = 4) -> list[int]:
    """Element counts from 1 to ``max_elements`` (both included), ``per_decade`` per factor
    of ten, log-spaced and rounded to distinct integers, ascending."""
    if max_elements < 1:
        raise ValueError(f"max_elements must be >= 1, not {max_elements}")
    if per_decade < 1:
        raise ValueError(f"per_decade must be >= 1, not {per_decade}")
    top = math.log10(max_elements)
    count = max(1, math.ceil(top * per_decade)) + 1
    points = {round(10 ** (top * i / (count - 1))) for i in range(count)} if count > 1 else set()
    points |= {1, max_elements}
    return sorted(p for p in points if 1 <= p <= max_elements)


def default_budget(world_size: int, device: torch.device | str = "cpu") -> int:
    """The most bytes one benchmark tensor may take on this rank, by default.

    CPU: a quarter of the memory available now, shared by ``world_size`` ranks (they may all
    run on this host), halved again for the backend's own scratch copy of the tensor. GPU: a
    quarter of the device's free memory, halved likewise.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * BUDGET_FRACTION / 2)
    available = psutil.virtual_memory().available
    return int(available * BUDGET_FRACTION / max(1, world_size) / 2)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _agreed_min(value: int, device: torch.device, world_size: int) -> int:
    """The smallest of the ranks' ``value``."""
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    with collective():
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


# What each backend's all-reduce (sum) takes. Calling it with another type can leave an
# error pending in the process group that surfaces at a later collective, so those types are
# refused here, before any call.
_REDUCIBLE = frozenset(
    {
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.int8,
        torch.uint8,
        torch.int32,
        torch.int64,
    }
)
SUPPORTED: dict[str, frozenset[torch.dtype]] = {"gloo": _REDUCIBLE, "nccl": _REDUCIBLE}


def _probe(dtype: torch.dtype, device: torch.device, world_size: int) -> str | None:
    """None if every rank can all-reduce ``dtype``; else why not. Types outside the
    backend's known set (:data:`SUPPORTED`) are refused without a call; a known type is tried
    once on a 1-element tensor, and all ranks agree on the outcome (an all-reduce)."""
    backend = dist.get_backend() if dist.is_initialized() else "the backend"
    known = SUPPORTED.get(str(backend))
    if known is not None and dtype not in known:
        return f"{backend} cannot all-reduce {_dtype_name(dtype)}: Invalid scalar type"
    reason = None
    try:
        dist.all_reduce(torch.zeros(1, dtype=dtype, device=device))
    except (RuntimeError, TypeError, ValueError) as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
    if _agreed_min(0 if reason else 1, device, world_size):
        return None
    return f"{backend} cannot all-reduce {_dtype_name(dtype)}: {reason or 'fails on another rank'}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _barrier(world_size: int) -> None:
    if world_size > 1:
        with collective():
            dist.barrier()


def _row(dtype: torch.dtype, elements: int, world_size: int) -> Row:
    nbytes = elements * torch.empty((), dtype=dtype).element_size()
    return {
        "dtype": _dtype_name(dtype),
        "elements": elements,
        "bytes": nbytes,
        "world_size": world_size,
        "repeats": 0,
        "times_s": [],
        "median_s": None,
        "p10_s": None,
        "p90_s": None,
        "min_s": None,
        "rank_median_min_s": None,
        "rank_median_max_s": None,
        "algbw_bytes_per_s": None,
        "busbw_bytes_per_s": None,
        "skipped": None,
    }


def _measure(
    row: Row,
    dtype: torch.dtype,
    device: torch.device,
    world_size: int,
    warmup: int,
    repeats: int,
    step_delay: float = 0.0,
) -> None:
    tensor = torch.zeros(row["elements"], dtype=dtype, device=device)
    times = torch.zeros(repeats, dtype=torch.float64)
    with collective():
        for _ in range(warmup):
            dist.all_reduce(tensor)
        _sync(device)
        for i in range(repeats):
            dist.barrier()
            _sync(device)
            start = time.perf_counter()
            dist.all_reduce(tensor)
            _sync(device)
            if step_delay:  # an injected slowdown (MLBENCH_STEP_DELAY), inside the timing
                time.sleep(step_delay)
            times[i] = time.perf_counter() - start
        own = float(np.median(times.numpy()))
        low = high = own
        if world_size > 1:  # a repetition lasts as long as its slowest rank
            times = times.to(device)
            dist.all_reduce(times, op=dist.ReduceOp.MAX)
            spread = torch.tensor([-own, own], dtype=torch.float64, device=device)
            dist.all_reduce(spread, op=dist.ReduceOp.MAX)
            low, high = -float(spread[0]), float(spread[1])
    del tensor
    samples = times.cpu().numpy()
    median = float(np.median(samples))
    p10, p90 = (float(v) for v in np.percentile(samples, [10, 90]))
    algbw = row["bytes"] / median if median > 0 else None  # 0: below the clock's resolution
    row.update(
        repeats=repeats,
        times_s=[float(t) for t in samples],  # each repetition's, slowest rank
        median_s=median,
        p10_s=p10,
        p90_s=p90,
        min_s=float(samples.min()),
        rank_median_min_s=low,
        rank_median_max_s=high,
        algbw_bytes_per_s=algbw,
        busbw_bytes_per_s=None if algbw is None else algbw * 2 * (world_size - 1) / world_size,
    )


def run(
    rank: int,
    world_size: int,
    *,
    sizes: Iterable[int],
    dtypes: Iterable[torch.dtype] = DEFAULT_DTYPES,
    warmup: int = 5,
    repeats: int = 20,
    device: torch.device | str = "cpu",
    on_row: Callable[[Row], None] | None = None,
    memory_budget: int | None = None,
    step_delay: float = 0.0,
) -> list[Row]:
    """Collective (every rank calls it alike): time all-reduce for each data type and size.

    The process group must be initialised (any world size; with one rank, all-reduce is
    timed as the no-op it is). ``step_delay``: seconds slept inside each timed call (an
    injected slowdown, for the nightly's tests). ``memory_budget``: the most bytes one
    tensor may take (default :func:`default_budget`); the ranks use the smallest of their
    budgets. Each row
    goes to ``on_row`` as soon as it is known (on every rank; rank 0 typically posts it).

    A row: ``dtype`` (e.g. ``"float32"``), ``elements``, ``bytes``, ``world_size``,
    ``repeats``, ``times_s`` (each repetition's), ``median_s``, ``p10_s``, ``p90_s``,
    ``min_s`` (seconds),
    ``algbw_bytes_per_s``, ``busbw_bytes_per_s`` and ``skipped`` (None, or why the row has no
    timings, which are then None).
    """
    if warmup < 0 or repeats < 1:
        raise ValueError("need warmup >= 0 and repeats >= 1")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not within world size {world_size}")
    if not dist.is_initialized():
        raise RuntimeError("the all-reduce benchmark needs an initialised process group")
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ValueError(
            f"rank {rank} of world size {world_size} is not the process group's "
            f"(rank {dist.get_rank()} of {dist.get_world_size()})"
        )
    counts = sorted(set(sizes))
    if not counts or counts[0] < 1:
        raise ValueError("sizes must be element counts >= 1")
    device = torch.device(device)
    budget = default_budget(world_size, device) if memory_budget is None else memory_budget
    budget = _agreed_min(int(budget), device, world_size)
    rows: list[Row] = []
    for dtype in dtypes:
        unsupported = _probe(dtype, device, world_size)
        for elements in counts:
            row = _row(dtype, elements, world_size)
            if unsupported:
                row["skipped"] = unsupported
            elif row["bytes"] > budget:
                row["skipped"] = (
                    f"{row['bytes']} bytes exceed the memory budget of {budget} bytes per tensor"
                )
            else:
                _measure(row, dtype, device, world_size, warmup, repeats, step_delay)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    _barrier(world_size)
    return rows


def to_metrics(row: Row) -> list[tuple[str, float, dict[str, Any]]]:
    """A measured row as run metrics ``(name, value, metadata)``; none for a skipped row.

    Names (units as the report's, :mod:`~mlbench_core.benchmarks.allreduce_report`):
    ``allreduce_latency_us`` (median), ``allreduce_latency_p10_us``,
    ``allreduce_latency_p90_us``, ``allreduce_algbw_gbit_s`` and ``allreduce_busbw_gbit_s``
    (10**9 bits per second); metadata: ``dtype``, ``elements``, ``bytes``.
    """
    if row.get("skipped") or row.get("median_s") is None:
        return []
    meta = {"dtype": row["dtype"], "elements": row["elements"], "bytes": row["bytes"]}
    algbw, busbw = row["algbw_bytes_per_s"], row["busbw_bytes_per_s"]
    values = (
        ("allreduce_latency_us", row["median_s"] * 1e6),
        ("allreduce_latency_p10_us", row["p10_s"] * 1e6),
        ("allreduce_latency_p90_us", row["p90_s"] * 1e6),
        ("allreduce_algbw_gbit_s", None if algbw is None else algbw * 8 / GIGA),
        ("allreduce_busbw_gbit_s", None if busbw is None else busbw * 8 / GIGA),
    )
    return [
        (name, float(value), dict(meta))
        for name, value in values
        if value is not None and math.isfinite(value)
    ]


def step_times(rows: Iterable[Row]) -> dict[str, Any] | None:
    """The repetition times of the largest measured size of the first data type, as a run's
    step-time sample (:mod:`mlbench_core.engine.step_times`' shape, plus which row): what the
    nightly compares night by night when 0a is its reference entry."""
    measured = [r for r in rows if r.get("times_s")]
    if not measured:
        return None
    first = [r for r in measured if r["dtype"] == measured[0]["dtype"]]
    row = max(first, key=lambda r: r["elements"])
    seconds = [round(t, 9) for t in row["times_s"]]
    return {"seconds": seconds, "steps": len(seconds), "stride": 1,
            "of": f"{row['dtype']} x {row['elements']}"}  # fmt: skip


MEGABIT = 1e6 / 8  # bytes per second in one Mbit/s


def against_cap(rows: Iterable[Row], cap_mbit: float | None) -> dict[str, Any]:
    """The bus bandwidth reached at the largest measured size of each data type, in Mbit/s
    (the unit of a run's cap), and with a cap its ratio to the cap: what each rank's link
    carried against what it was allowed. For a run's result."""
    largest: dict[str, Row] = {}
    for row in rows:
        if row.get("busbw_bytes_per_s") is None:
            continue
        known = largest.get(row["dtype"])
        if known is None or row["elements"] > known["elements"]:
            largest[row["dtype"]] = row
    reached = {
        dtype: {
            "bytes": row["bytes"],
            "busbw_mbit_s": row["busbw_bytes_per_s"] / MEGABIT,
            **({"of_cap": row["busbw_bytes_per_s"] / MEGABIT / cap_mbit} if cap_mbit else {}),
        }
        for dtype, row in largest.items()
    }
    return {"bandwidth_cap_mbit_s": cap_mbit, "busbw_at_largest": reached}
