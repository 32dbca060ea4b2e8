"""The report of an all-reduce run (0a): per data type and message size, the latency, the
algorithm and bus bandwidth, against the cap when one was set. One declaration of its
columns (:data:`COLUMNS`) that the CLI's table, the run page's table and chart and the CSV
and JSON downloads all derive from.

Units, the same everywhere: sizes in bytes; latencies in microseconds (µs); bandwidths in
Gbit/s (10**9 bits per second, the unit of network links and of a run's cap; nccl-tests
print GB/s, which is 8 times fewer). ``algbw = bytes / p50 latency``; ``busbw = algbw x 2(n -
1)/n`` for ``n`` ranks (nccl-tests' definitions, see :mod:`~mlbench_core.benchmarks.allreduce`).
Latency statistics (p10, p50, p90) are over the repetitions (each lasting as long as its
slowest rank); "ranks min/max" are the smallest and largest of the ranks' own p50s.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["COLUMNS", "Column", "Report", "is_report", "report"]

GBIT = 1e9 / 8  # bytes per second in one Gbit/s
MICRO = 1e6


@dataclass(frozen=True)
class Column:
    key: str
    title: str  # with its unit
    show: Callable[[Any], str]
    numeric: bool = True


def _int(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def _us(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def _gbit(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _share(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


COLUMNS: tuple[Column, ...] = (
    Column("dtype", "dtype", str, numeric=False),
    Column("bytes", "bytes", _int),
    Column("elements", "elements", _int),
    Column("latency_p50_us", "p50 (µs)", _us),
    Column("latency_p10_us", "p10 (µs)", _us),
    Column("latency_p90_us", "p90 (µs)", _us),
    Column("rank_p50_min_us", "ranks min (µs)", _us),
    Column("rank_p50_max_us", "ranks max (µs)", _us),
    Column("algbw_gbit_s", "algbw (Gbit/s)", _gbit),
    Column("busbw_gbit_s", "busbw (Gbit/s)", _gbit),
    Column("of_cap", "of cap", _share),
    Column("repeats", "reps", _int),
    Column("skipped", "skipped", lambda v: v or "", numeric=False),
)
TABLE_KEYS = tuple(c.key for c in COLUMNS)


def _scaled(value: Any, factor: float) -> float | None:
    return float(value) * factor if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Report:
    rows: list[dict[str, Any]]  # one per dtype and size, keys TABLE_KEYS
    cap_gbit_s: float | None
    world_size: int | None

    @property
    def dtypes(self) -> list[str]:
        return list(dict.fromkeys(r["dtype"] for r in self.rows))

    def columns(self) -> list[Column]:
        """The columns worth showing: the cap's share only under a cap, the reason a row
        was skipped only when one was."""
        skipped = any(r.get("skipped") for r in self.rows)
        return [
            c
            for c in COLUMNS
            if (c.key != "of_cap" or self.cap_gbit_s is not None)
            and (c.key != "skipped" or skipped)
        ]

    def cells(self, row: Mapping[str, Any]) -> list[str]:
        return [c.show(row.get(c.key)) for c in self.columns()]

    def to_csv(self) -> str:
        """Every column (numbers unformatted), one row per dtype and size."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*TABLE_KEYS, "cap_gbit_s"], lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({**row, "cap_gbit_s": self.cap_gbit_s})
        return out.getvalue()

    def as_dict(self) -> dict[str, Any]:
        units = {c.key: c.title for c in COLUMNS}
        return {
            "units": units,
            "cap_gbit_s": self.cap_gbit_s,
            "world_size": self.world_size,
            "rows": self.rows,
        }


def is_report(result: Any) -> bool:
    """Whether a run's result is an all-reduce benchmark's (rows of sizes)."""
    return isinstance(result, Mapping) and isinstance(result.get("rows"), list)


def report(result: Mapping[str, Any]) -> Report:
    """The report of a 0a result (its ``rows``, ``bandwidth_cap_mbit_s``)."""
    cap_mbit = result.get("bandwidth_cap_mbit_s")
    cap = float(cap_mbit) / 1000 if isinstance(cap_mbit, int | float) and cap_mbit > 0 else None
    rows = []
    for raw in result.get("rows") or []:
        if not isinstance(raw, Mapping):
            continue
        busbw = _scaled(raw.get("busbw_bytes_per_s"), 1 / GBIT)
        rows.append(
            {
                "dtype": str(raw.get("dtype", "-")),
                "bytes": raw.get("bytes"),
                "elements": raw.get("elements"),
                "latency_p50_us": _scaled(raw.get("median_s"), MICRO),
                "latency_p10_us": _scaled(raw.get("p10_s"), MICRO),
                "latency_p90_us": _scaled(raw.get("p90_s"), MICRO),
                "rank_p50_min_us": _scaled(raw.get("rank_median_min_s"), MICRO),
                "rank_p50_max_us": _scaled(raw.get("rank_median_max_s"), MICRO),
                "algbw_gbit_s": _scaled(raw.get("algbw_bytes_per_s"), 1 / GBIT),
                "busbw_gbit_s": busbw,
                "of_cap": busbw / cap if cap and busbw is not None else None,
                "repeats": raw.get("repeats"),
                "skipped": raw.get("skipped"),
            }
        )
    order = {dtype: i for i, dtype in enumerate(dict.fromkeys(r["dtype"] for r in rows))}
    rows.sort(key=lambda r: (order[r["dtype"]], r["bytes"] or 0))  # the run's dtype order
    world = result.get("world_size")
    return Report(rows, cap, world if isinstance(world, int) else None)
